"""A run's progress as people read it: events in, one status line and one validation line out.

Pure functions and a small accumulator, no Gradio, so every wording is unit-tested:

    progress = RunProgress(model="openai:gpt-4.1-mini")
    for event in batch:
        progress.apply(event)
    progress.status_line(elapsed=2.4)   # 'Streaming · 120 tokens · 58 tok/s · 2.4 s'

The phases a run goes through:

    connecting → waiting ⇄ retrying → streaming → done
       (buffer mode: generating instead of streaming)  └→ stopped | failed
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from llmtool.events import (
    Completed,
    Failed,
    Metrics,
    Retrying,
    RunEvent,
    Started,
    Stopped,
    TextDelta,
    Validated,
)

Phase = Literal["connecting", "waiting", "retrying", "streaming", "generating", "done", "stopped", "failed"]
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
            self.terminal, self.phase, self.text = event, "done", self._shown_text(event.text)
        elif isinstance(event, Stopped):
            self.terminal, self.phase, self.text = event, "stopped", self._shown_text(event.text)
        elif isinstance(event, Failed):
            self.terminal, self.phase, self.text = event, "failed", self._shown_text(event.text)

    def _shown_text(self, final: str) -> str:
        # Buffer mode shows the text only once it passed validation.
        if self.buffered and not (self.validated and self.validated.passed):
            return self.text
        return final

    @property
    def withheld_text(self) -> str:
        """Buffer mode: the answer that failed validation and was not shown."""
        if self.buffered and self.validated and not self.validated.passed and self.terminal:
            return self.terminal.text
        return ""

    # -- wording -------------------------------------------------------------------------------
    def status_line(self, elapsed: float) -> str:
        """One line for the page: what is happening now, or how the run ended."""
        if self.phase == "connecting":
            return f"Connecting to {self.model}…"
        if self.phase == "waiting":
            return f"Waiting for the first token · {seconds(elapsed)}"
        if self.phase == "retrying":
            return self._retry_line(elapsed)
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
    """'TTFT 0.41 s · total 3.2 s · 120→512 tok · 160 tok/s · $0.0011', saying when cost is unknown."""
    line = metrics.summary()
    if metrics.cost_usd is None:
        line += " · cost unknown"
    return line
