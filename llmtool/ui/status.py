"""A run's progress as people read it: events in, one status line and one validation line out.

Pure functions and a small accumulator, no Gradio, so every wording is unit-tested:

    progress = RunProgress(model="openai:gpt-4.1-mini")
    for event in batch:
        progress.apply(event)
    progress.status_line(elapsed=2.4)   # 'Streaming · 120 tokens · 58 tok/s · 2.4 s'

The phases a run goes through:

    connecting → waiting ⇄ retrying → thinking → streaming → done
       (buffer mode: generating instead of thinking and streaming)  └→ stopped | failed

A reasoning model's thoughts (`ReasoningDelta`) are kept apart from the answer (`reasoning`), with
when they began (`thinking_from`): "thinking" lasts until the first text. A `Notice` is said at the
end of every status line from then on.

`spend_line` says what a login spent of its role's budgets: 'Today $0.42 of $5.00 · this month $3.10
of $50.00'.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from llmtool.events import (
    Completed,
    Failed,
    Metrics,
    Notice,
    ReasoningDelta,
    Retrying,
    RunEvent,
    Started,
    Stopped,
    TextDelta,
    Validated,
)
from llmtool.service.limits import Spending, in_words

Phase = Literal["connecting", "waiting", "retrying", "thinking", "streaming", "generating", "done", "stopped",
                "failed"]
_FINISH_NOTES = {
    "max_tokens": "cut off at the max output tokens",
    "content_filter": "cut off by the provider's content filter",
}
# Enough to neutralise code, links, images and tags in a line of text, while names like
# OPENAI_API_KEY stay readable for API clients (GFM ignores underscores inside words).
_MARKDOWN_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*[]"} | {"<": "&lt;", "&": "&amp;"})


def escape_markdown(text: str) -> str:
    """Text shown literally inside Markdown: an error message can hold `*`, `<b>` or a link."""
    return text.translate(_MARKDOWN_SPECIAL)


def seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


@dataclass
class RunProgress:
    """What the UI knows about one run so far; `apply` every event in order."""

    model: str
    buffered: bool = False
    phase: Phase = "connecting"
    text: str = ""
    deltas: int = 0
    first_text_at: float | None = None
    retry: Retrying | None = None
    validated: Validated | None = None
    terminal: Completed | Stopped | Failed | None = None
    reasoning: str = ""  # what the model showed of its thoughts, never part of `text`
    thinking_from: float | None = None  # `elapsed` of its first sign of thinking (even a silent one)
    notices: list[str] = field(default_factory=list)
    events: int = field(default=0, repr=False)

    @classmethod
    def replay(cls, model: str, log: Iterable[RunEvent], buffered: bool = False) -> RunProgress:
        progress = cls(model=model, buffered=buffered)
        for event in log:
            progress.apply(event)
        return progress

    @property
    def done(self) -> bool:
        return self.terminal is not None

    def apply(self, event: RunEvent) -> None:
        self.events += 1
        if isinstance(event, Started):
            self.phase = "generating" if self.buffered else "waiting"
        elif isinstance(event, Retrying):
            self.retry, self.phase = event, "retrying"
        elif isinstance(event, Notice):
            if event.message not in self.notices:
                self.notices.append(event.message)
        elif isinstance(event, ReasoningDelta):
            if self.thinking_from is None:
                self.thinking_from = event.elapsed
            self.reasoning += event.text
            if self.first_text_at is None and self.phase in ("connecting", "waiting", "retrying"):
                self.phase = "thinking"
        elif isinstance(event, TextDelta):
            if self.first_text_at is None:
                self.first_text_at = event.elapsed
            self.text += event.text
            self.deltas += 1
            if not self.buffered:
                self.phase = "streaming"
        elif isinstance(event, Validated):
            self.validated = event
        elif isinstance(event, Completed):
            self._end(event, "done")
        elif isinstance(event, Stopped):
            self._end(event, "stopped")
        elif isinstance(event, Failed):
            self._end(event, "failed")

    def _end(self, event: Completed | Stopped | Failed, phase: Phase) -> None:
        self.terminal, self.phase, self.text = event, phase, self._shown_text(event.text)
        self.reasoning = event.reasoning or self.reasoning
        if self.thinking_from is None and event.metrics.thinking_time is not None:
            self.thinking_from = 0.0  # a log without its reasoning events (not expected): still say it thought

    def _shown_text(self, final: str) -> str:
        # Buffer mode shows the text only once it passed validation.
        if self.buffered and not (self.validated and self.validated.passed):
            return self.text
        return final

    @property
    def thinking(self) -> bool:
        """Did the model think (even without showing its thoughts)?"""
        return self.thinking_from is not None

    @property
    def thinking_done(self) -> bool:
        """Has the model stopped thinking: its first text came (buffer mode: the run ended)?"""
        return self.terminal is not None or (self.first_text_at is not None and not self.buffered)

    def thinking_seconds(self, elapsed: float) -> float | None:
        """How long the model thought: so far while it thinks, else until its first text (the run's
        own measure once it ended). None if it did not think."""
        if self.thinking_from is None:
            return None
        if self.terminal is not None and self.terminal.metrics.thinking_time is not None:
            return self.terminal.metrics.thinking_time
        end = self.first_text_at if self.first_text_at is not None else (
            self.terminal.elapsed if self.terminal is not None else elapsed)
        return max(0.0, end - self.thinking_from)

    @property
    def withheld_text(self) -> str:
        """Buffer mode: the answer that failed validation and was not shown."""
        if self.buffered and self.validated and not self.validated.passed and self.terminal:
            return self.terminal.text
        return ""

    # -- wording -------------------------------------------------------------------------------
    def status_line(self, elapsed: float) -> str:
        """One line for the page: what is happening now, or how the run ended; then any notice."""
        line = self._phase_line(elapsed)
        return " · ".join([line, *self.notices]) if line else line

    def _phase_line(self, elapsed: float) -> str:
        if self.phase == "connecting":
            return f"Connecting to {self.model}…"
        if self.phase == "waiting":
            return f"Waiting for the first token · {seconds(elapsed)}"
        if self.phase == "retrying":
            return self._retry_line(elapsed)
        if self.phase == "thinking":
            return f"Thinking ({seconds(self.thinking_seconds(elapsed) or 0.0)})"
        if self.phase == "generating":
            return f"Validating… the answer appears once it passes its rules · {seconds(elapsed)}"
        if self.phase == "streaming":
            return self._streaming_line(elapsed)
        if isinstance(self.terminal, Completed):
            note = _FINISH_NOTES.get(self.terminal.finish_reason)
            head = f"Done ({note})" if note else "Done"
            return f"{head} · {metrics_line(self.terminal.metrics)}"
        if isinstance(self.terminal, Stopped):
            kept = " · partial answer kept" if self.terminal.text else ""
            return f"Stopped after {seconds(self.terminal.metrics.total_time)}{kept}"
        if isinstance(self.terminal, Failed):
            kept = " · partial answer kept" if self.terminal.text else ""
            return f"Failed: {self.terminal.message}{kept}"
        return ""

    def _retry_line(self, elapsed: float) -> str:
        retry = self.retry
        assert retry is not None
        remaining = retry.elapsed + retry.delay - elapsed
        attempt = f"attempt {retry.attempt} of {retry.max_attempts}"
        if remaining <= 0:
            return f"{retry.reason} — retrying now, {attempt} · {seconds(elapsed)}"
        return f"{retry.reason} — retrying in {seconds(remaining)}, {attempt}"

    def _streaming_line(self, elapsed: float) -> str:
        parts = [f"Streaming · {self.deltas} tokens"]
        if self.first_text_at is not None and elapsed - self.first_text_at >= 0.2:
            parts.append(f"{self.deltas / (elapsed - self.first_text_at):.0f} tok/s")
        parts.append(seconds(elapsed))
        return " · ".join(parts)

    def validation_line(self) -> str:
        """'Validation passed (3 rules)' / 'Validation failed: …' / '' before the run is validated."""
        validated = self.validated
        if validated is None:
            if self.buffered and not self.done:
                return "Validating… (buffer mode: the answer is shown once it passes)"
            return ""
        if validated.rules_checked == 0:
            return "No validation rules"
        rules = f"{validated.rules_checked} rule{'s' if validated.rules_checked != 1 else ''}"
        if validated.passed:
            return f"Validation passed ({rules})"
        return f"Validation failed ({rules}): " + "; ".join(validated.problems)


def metrics_line(metrics: Metrics) -> str:
    """'TTFT 0.41 s · total 3.2 s · 120→512 tok · 160 tok/s · $0.0011'; 'cost unknown' when no price
    is known (never $0), 'thought 2.0 s' after a reasoning model's thinking."""
    return metrics.summary()


def with_price_hint(line: str, metrics: Metrics | None, hint: str | None) -> str:
    """A finished run's status line and, when its cost is unknown, how to price the model, on a
    line of its own (plain text: escape before showing)."""
    if metrics is None or metrics.cost_usd is not None or not hint:
        return line
    return f"{line}\n\nⓘ {hint[0].upper()}{hint[1:]}."


def spend_line(spending: Spending | None, now: float) -> str:
    """'Today $0.42 of $5.00 · this month $3.10 of $50.00' for a role with budgets ('' without one, or
    without logins); a spent budget says when it resets."""
    if spending is None:
        return ""
    parts: list[str] = []
    spent_out: list[str] = []
    if spending.daily_budget is not None:
        parts.append(f"today ${spending.day:,.2f} of ${spending.daily_budget:,.2f}")
        if spending.day >= spending.daily_budget:
            spent_out.append(f"the daily budget is spent until 00:00 UTC (in {in_words(spending.day_resets - now)})")
    if spending.monthly_budget is not None:
        parts.append(f"this month ${spending.month:,.2f} of ${spending.monthly_budget:,.2f}")
        if spending.month >= spending.monthly_budget:
            resets = datetime.fromtimestamp(spending.month_resets, UTC)
            spent_out.append(f"the monthly budget is spent until {resets.day} {resets:%B} "
                             f"(in {in_words(spending.month_resets - now)})")
    if not parts:
        return ""
    line = " · ".join([*parts, *spent_out])
    return line[0].upper() + line[1:]
