"""The offline demo provider: the default with no key, paced like a real model, no network.

demo:grader answers grading prompts with a deterministic JSON verdict (`demo_grader`)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator

from llmtool.events import FinishReason
from llmtool.providers.base import (
    FinishChunk,
    ProviderChunk,
    ProviderRequest,
    ReasoningChunk,
    TextChunk,
    UsageChunk,
)
from llmtool.providers.demo_answers import THINKING_SECONDS, answer, reasoning
from llmtool.providers.demo_grader import grade
from llmtool.settings import DemoSettings
from llmtool.tokens import estimate_tokens

_TOKEN = re.compile(r"\s*\S+|\s+")


class DemoProvider:
    def __init__(self, name: str = "demo", pacing: DemoSettings | None = None) -> None:
        self.name = name
        self.pacing = pacing or DemoSettings()

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderChunk, None]:
        text = grade(request) if request.model == "grader" else answer(request.model, request)
        tokens = _TOKEN.findall(text)
        limit = request.max_output_tokens
        finish: FinishReason = "stop"
        if limit is not None and len(tokens) > limit:
            tokens, finish = tokens[:limit], "max_tokens"
        await asyncio.sleep(self.pacing.first_token_delay)
        thoughts = _TOKEN.findall(reasoning(request.model, request))
        if thoughts:
            yield ReasoningChunk()
            seconds = THINKING_SECONDS.get(request.reasoning_effort or "medium", 2.0)
            async for token in _paced(thoughts, seconds / len(thoughts)):
                yield ReasoningChunk(token)
        async for token in _paced(tokens, 1.0 / self.pacing.tokens_per_second):
            yield TextChunk(token)
        prompt_text = (request.system or "") + "".join(m.content for m in request.messages)
        yield UsageChunk(
            input_tokens=estimate_tokens(prompt_text),
            output_tokens=len(tokens) + len(thoughts),
            reasoning_tokens=len(thoughts) or None,
        )
        yield FinishChunk(finish)

    async def aclose(self) -> None:
        return None


async def _paced(tokens: list[str], interval: float) -> AsyncGenerator[str, None]:
    # Pace against the clock, not per sleep, so many small sleeps do not drift slow.
    loop = asyncio.get_running_loop()
    start = loop.time()
    for index, token in enumerate(tokens):
        delay = start + index * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        yield token
