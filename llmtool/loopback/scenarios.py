"""Scenarios: what the loopback server does with one request, and the named presets."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ScenarioKind = Literal[
    "normal",
    "http_error",
    "reset_before_response",
    "reset_mid_stream",
    "error_event",
    "stall_before_first_token",
    "stall_mid_stream",
    "no_terminal_event",
    "malformed_json",
    "stall_during_reasoning",
    "model_not_found",
]

ReasoningFormat = Literal["summary", "text", "reasoning_content", "reasoning", "think_tags", "omitted"]
"""How reasoning is sent. Responses: ``summary`` (OpenAI's reasoning summary events, the default),
``text`` (``response.reasoning_text.*`` as local servers send). Chat: ``reasoning_content`` (the
default, DeepSeek/llama.cpp/vLLM), ``reasoning`` (OpenRouter/Ollama), ``think_tags`` (raw
``<think>…</think>`` inside ``content``). Messages: always a ``thinking`` block. ``omitted``
everywhere: the model thinks silently. A format the protocol does not have means its default."""

DEFAULT_TEXT = (
    "Loopback servers keep streaming tests honest. Every answer arrives in small pieces, "
    "one token after another, exactly as a real provider would send it over the wire. "
    "When the network misbehaves, a careful client notices quickly, keeps what it has "
    "already received, and explains the failure in plain words. This paragraph exists "
    "only to be split, streamed, and joined back together."
)

DEFAULT_REASONING = (
    "**Reading the request**\n\n"
    "The user asks for something short, so a single paragraph will do. "
    "I should mention why streaming tests need a fake provider.\n\n"
    "**Planning the answer**\n\n"
    "I will describe small deltas, careful clients and failures explained in plain words, then stop."
)
"""Two ``**heading**`` sections: the Responses ``summary`` format sends each as its own summary part."""


class Scenario(BaseModel):
    """How to answer one request.

    Usage numbers are echoed verbatim: OpenAI ``input_tokens`` / ``prompt_tokens`` and Anthropic
    ``input_tokens`` all equal ``input_tokens``; ``cached_input_tokens`` becomes OpenAI
    ``cached_tokens`` and Anthropic ``cache_read_input_tokens``; ``cache_creation_input_tokens`` is
    Anthropic's field of that name. Output tokens are the number of text deltas actually sent plus
    the reasoning tokens; OpenAI also reports the latter as ``reasoning_tokens``.

    Reasoning: the model thinks when ``reasoning``, ``reasoning_format`` or ``think_seconds`` is set
    (or ``kind`` is ``stall_during_reasoning``). The reasoning item/block opens first, then
    ``reasoning`` is streamed token by token, spread evenly over ``think_seconds`` (without
    ``think_seconds`` paced like the text), and only then does the answer start. With no visible
    tokens (``omitted``, or no ``reasoning``) ``think_seconds`` is one silent pause after the
    opening. ``omitted`` reasoning still counts as reasoning tokens in usage, as it is billed.
    A request cap (``max_output_tokens``/``max_tokens``) covers reasoning plus answer; a cap hit
    while thinking ends the response with no answer item/block.

    ``reject_structured_output``: a request that asks for a JSON schema in its protocol's field
    (Responses ``text.format``, Chat ``response_format``, Messages ``output_config.format``) gets
    HTTP 400 ``invalid_request_error``; other requests are answered as usual.
    """

    model_config = ConfigDict(extra="forbid")

    kind: ScenarioKind = "normal"
    text: str = DEFAULT_TEXT
    tokens_per_second: float | None = Field(default=None, gt=0)
    status: int = Field(default=500, ge=400, le=599)
    headers: dict[str, str] = {}
    error_type: str | None = None
    error_message: str | None = None
    after_tokens: int = Field(default=3, ge=0)
    stall_seconds: float = Field(default=30.0, ge=0)
    input_tokens: int = Field(default=12, ge=0)
    cached_input_tokens: int = Field(default=0, ge=0)
    cache_creation_input_tokens: int = Field(default=0, ge=0)
    reasoning: str | None = None
    reasoning_format: ReasoningFormat | None = None
    think_seconds: float = Field(default=0.0, ge=0)
    reject_structured_output: bool = False

    @property
    def thinks(self) -> bool:
        """Whether a reasoning phase (item, block or pause) precedes the answer."""
        return (
            self.reasoning is not None
            or self.reasoning_format is not None
            or self.think_seconds > 0
            or self.kind == "stall_during_reasoning"
        )

    @classmethod
    def preset(cls, name: str) -> Scenario:
        """A fresh copy of the named preset; ``KeyError`` naming the valid ones otherwise."""
        try:
            return PRESETS[name].model_copy(deep=True)
        except KeyError:
            raise KeyError(f"unknown scenario preset {name!r}; valid: {', '.join(PRESETS)}") from None


PRESETS: dict[str, Scenario] = {
    "normal": Scenario(),
    "rate_limit": Scenario(
        kind="http_error", status=429, headers={"retry-after-ms": "200", "retry-after": "1"}
    ),
    "server_error": Scenario(kind="http_error", status=500),
    "unavailable": Scenario(kind="http_error", status=503),
    "overloaded": Scenario(
        kind="http_error",
        status=529,
        headers={"x-should-retry": "true"},
    ),
    "should_not_retry": Scenario(kind="http_error", status=503, headers={"x-should-retry": "false"}),
    "unauthorized": Scenario(kind="http_error", status=401),
    "bad_request": Scenario(kind="http_error", status=400),
    "reset_before_response": Scenario(kind="reset_before_response"),
    "reset_mid_stream": Scenario(kind="reset_mid_stream"),
    "error_event": Scenario(kind="error_event"),
    "stall_before_first_token": Scenario(kind="stall_before_first_token"),
    "stall_mid_stream": Scenario(kind="stall_mid_stream"),
    "no_terminal_event": Scenario(kind="no_terminal_event"),
    "malformed_json": Scenario(kind="malformed_json"),
    "thinking": Scenario(reasoning=DEFAULT_REASONING, think_seconds=0.5),
    "thinking_silent": Scenario(reasoning=DEFAULT_REASONING, reasoning_format="omitted", think_seconds=0.5),
    "stall_during_reasoning": Scenario(kind="stall_during_reasoning", reasoning=DEFAULT_REASONING),
    "model_not_found": Scenario(kind="model_not_found"),
    "reject_structured_output": Scenario(reject_structured_output=True),
}
