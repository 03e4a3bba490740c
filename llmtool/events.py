"""The typed events a run produces, in order, and the metrics a finished run reports.

Every run's log reads:

    started → retrying* → notice* → reasoning* → text* → usage? → validated → completed
                                                          └─────────────→ stopped | failed

A stored run whose process died while it streamed ends with `interrupted` (written by the store).

Exactly one terminal event (completed, stopped or failed) ends the log. In `buffer` output mode
the text arrives as one `text` event after validation passed. Reasoning (a thinking model's summary
or its full thoughts) is its own stream of `reasoning` events, never part of the text nor validated;
one with empty text says the model began to think without showing its thoughts. Consumers never
see SDK objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from llmtool.errors import ErrorKind

FinishReason = Literal["stop", "max_tokens", "content_filter", "tool_use", "other"]


class Metrics(BaseModel):
    """What a run cost and how fast it was. Token counts are None when the provider gave none."""

    model_config = ConfigDict(frozen=True)

    time_to_first_token: float | None = None
    total_time: float = 0.0
    deltas: int = 0
    attempts: int = 1
    input_tokens: int | None = None
    cached_input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = Field(None, description="Part of output_tokens, never added to them.")
    cache_write_tokens: int | None = Field(None, description="Part of input_tokens, priced as cache writes.")
    usage_estimated: bool = False
    tokens_per_second: float | None = None
    cost_usd: float | None = Field(None, description="None: unknown (no price for the model), never $0.")
    thinking_time: float | None = Field(None, description="Seconds the model reasoned before its first text.")

    def summary(self) -> str:
        """One line for a status bar or stderr: 'TTFT 0.41 s · 3.2 s · 120→512 tok · 160 tok/s · $0.0011'."""
        parts = []
        if self.thinking_time is not None:
            parts.append(f"thought {self.thinking_time:.1f} s")
        if self.time_to_first_token is not None:
            parts.append(f"TTFT {self.time_to_first_token:.2f} s")
        parts.append(f"total {self.total_time:.2f} s")
        if self.input_tokens is not None or self.output_tokens is not None:
            approx = "~" if self.usage_estimated else ""
            parts.append(f"{approx}{self.input_tokens or 0}→{self.output_tokens or 0} tok")
        if self.reasoning_tokens:
            parts.append(f"{self.reasoning_tokens} reasoning")
        if self.tokens_per_second is not None:
            parts.append(f"{self.tokens_per_second:.0f} tok/s")
        parts.append("cost unknown" if self.cost_usd is None else f"${self.cost_usd:.4f}")
        if self.attempts > 1:
            parts.append(f"{self.attempts} attempts")
        return " · ".join(parts)


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    elapsed: float = Field(0.0, description="Seconds since the run started.")


class Started(_Event):
    kind: Literal["started"] = "started"
    run_id: str
    model: str


class Retrying(_Event):
    kind: Literal["retrying"] = "retrying"
    attempt: int = Field(description="The attempt about to be made (2 for the first retry).")
    max_attempts: int
    delay: float = Field(description="Seconds until that attempt starts.")
    error_kind: ErrorKind
    reason: str = Field(description="Why, for a person: 'rate limited (HTTP 429)'.")

    def describe(self) -> str:
        return (
            f"{self.reason} — retrying in {self.delay:.1f} s "
            f"(attempt {self.attempt} of {self.max_attempts})"
        )


class Notice(_Event):
    """Something the user should know that changes nothing about the run's outcome, e.g. that the
    provider cannot be asked for structured output, so the schema is asked for by instruction."""

    kind: Literal["notice"] = "notice"
    message: str


class ReasoningDelta(_Event):
    kind: Literal["reasoning"] = "reasoning"
    text: str = Field(description="Empty: the model began to think without showing its thoughts.")
    summary: bool = Field(True, description="A summary of the thoughts (True) or the thoughts themselves.")


class TextDelta(_Event):
    kind: Literal["text"] = "text"
    text: str


class Usage(_Event):
    kind: Literal["usage"] = "usage"
    input_tokens: int | None = None
    cached_input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_write_tokens: int | None = None
    estimated: bool = False


class Validated(_Event):
    kind: Literal["validated"] = "validated"
    passed: bool
    problems: list[str] = Field(default_factory=list)
    rules_checked: int = 0


class Completed(_Event):
    kind: Literal["completed"] = "completed"
    finish_reason: FinishReason
    text: str
    reasoning: str = ""
    metrics: Metrics


class Stopped(_Event):
    kind: Literal["stopped"] = "stopped"
    text: str = Field(description="The partial text received (in buffer mode, never shown).")
    reasoning: str = ""
    metrics: Metrics


class Failed(_Event):
    kind: Literal["failed"] = "failed"
    error_kind: ErrorKind
    message: str
    retryable: bool
    status: int | None = None
    text: str = Field("", description="Partial text received before the failure; never lost.")
    reasoning: str = ""
    metrics: Metrics


class Interrupted(_Event):
    """Written by the store, never by a live run: the process running it stopped (crash, kill)."""

    kind: Literal["interrupted"] = "interrupted"
    message: str
    text: str = Field("", description="The text stored before the process stopped.")
    metrics: Metrics


RunEvent = Annotated[
    Started | Retrying | Notice | ReasoningDelta | TextDelta | Usage | Validated
    | Completed | Stopped | Failed | Interrupted,
    Field(discriminator="kind"),
]
TerminalEvent = Completed | Stopped | Failed | Interrupted
TERMINAL_KINDS = frozenset({"completed", "stopped", "failed", "interrupted"})

run_event_adapter: TypeAdapter[RunEvent] = TypeAdapter(RunEvent)


def is_terminal(event: RunEvent) -> bool:
    return event.kind in TERMINAL_KINDS


def stretches(events: Sequence[RunEvent]) -> list[tuple[int, list[RunEvent]]]:
    """The events as a person reads a log: each stretch of consecutive text deltas (or reasoning
    deltas) as one group, every other event a group of its own; with the index of each group's
    first event."""
    groups: list[tuple[int, list[RunEvent]]] = []
    for index, event in enumerate(events):
        if groups and isinstance(event, TextDelta | ReasoningDelta) and type(groups[-1][1][-1]) is type(event):
            groups[-1][1].append(event)
        else:
            groups.append((index, [event]))
    return groups
