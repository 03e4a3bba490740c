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
]

DEFAULT_TEXT = (
    "Loopback servers keep streaming tests honest. Every answer arrives in small pieces, "
    "one token after another, exactly as a real provider would send it over the wire. "
    "When the network misbehaves, a careful client notices quickly, keeps what it has "
    "already received, and explains the failure in plain words. This paragraph exists "
    "only to be split, streamed, and joined back together."
)


class Scenario(BaseModel):
    """How to answer one request.

    Usage numbers are echoed verbatim: OpenAI ``input_tokens`` / ``prompt_tokens`` and Anthropic
    ``input_tokens`` all equal ``input_tokens``; ``cached_input_tokens`` becomes OpenAI
    ``cached_tokens`` and Anthropic ``cache_read_input_tokens``. Output tokens are the number of
    text deltas actually sent.
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
}
