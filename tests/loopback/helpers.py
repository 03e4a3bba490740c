"""Stream helpers shared by the loopback tests: open a stream per protocol, collect its text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai

MESSAGES = [{"role": "user", "content": "Say something."}]


@dataclass
class Collected:
    text: str = ""
    events: list[Any] = field(default_factory=list)
    error: BaseException | None = None


async def open_stream(
    protocol: str, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic, model: str = "test-model", **kw: Any
) -> Any:
    if protocol == "responses":
        return await oai.responses.create(model=model, input="Say something.", stream=True, **kw)
    if protocol == "chat":
        return await oai.chat.completions.create(model=model, messages=MESSAGES, stream=True, **kw)
    kw.setdefault("max_tokens", 1024)
    return await ant.messages.create(model=model, messages=MESSAGES, stream=True, **kw)


def delta_text(protocol: str, event: Any) -> str:
    if protocol == "responses":
        return event.delta if event.type == "response.output_text.delta" else ""
    if protocol == "chat":
        return (event.choices[0].delta.content or "") if event.choices else ""
    if event.type == "content_block_delta" and event.delta.type == "text_delta":
        return event.delta.text
    return ""  # thinking and signature deltas are not the answer


async def collect(protocol: str, stream: Any) -> Collected:
    """Iterate to the end, keeping the text, every event and the exception (if any)."""
    out = Collected()
    try:
        async for event in stream:
            out.events.append(event)
            out.text += delta_text(protocol, event)
    except Exception as exc:  # the point of these tests is which exception
        out.error = exc
    return out
