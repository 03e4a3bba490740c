"""A run's state in words for the no-JavaScript pages (pure functions, unit-tested).

    state_line(status)                       # 'Writing… — 12 s', 'Done in 3.2 s · 412 tokens · $0.0031'
                                             # 'Thinking… (12 s)' while a reasoning model thinks
    thinking_line(status)                    # 'Thought for 14 s' (the reasoning's summary), None without reasoning
    estimate_line(typical=8.4, elapsed=3)    # 'Answers from this model usually take about 8.4 s: about 5 s left.'

The words match the Gradio tool's (`ui/status.py`) where they overlap; these say "—" and whole
seconds while a run is going, because the page shows the state once per visit, not 4 times a second.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable

from llmtool.events import Metrics, Retrying
from llmtool.web.run_status import RunStatusBody

Redact = Callable[[str], str]
MIN_SAMPLES = 3  # completed runs needed before the page dares an estimate


def seconds(value: float) -> str:
    """'3.2 s' under ten seconds, '12 s' above, '2 min 5 s' past two minutes."""
    value = max(value, 0.0)
    if value < 10:
        return f"{value:.1f} s"
    if value < 120:
        return f"{value:.0f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest} s"


def waited(value: float) -> str:
    """Whole seconds for a clock that is still running: '4 s', '2 min 5 s'."""
    value = max(int(value), 0)
    return f"{value} s" if value < 120 else f"{value // 60} min {value % 60} s"


def metrics_words(metrics: Metrics | None) -> str:
    """' · 412 tokens · $0.0031' (estimated counts marked '~'), or '' when nothing is known."""
    if metrics is None:
        return ""
    parts = []
    if metrics.output_tokens is not None:
        approx = "~" if metrics.usage_estimated else ""
        parts.append(f"{approx}{metrics.output_tokens} token{'s' if metrics.output_tokens != 1 else ''}")
    if metrics.cost_usd is None:
        parts.append("cost unknown")  # no price for the model: never $0
    else:
        parts.append(f"${metrics.cost_usd:.4f}" if metrics.cost_usd > 0 else "no cost")
    return "".join(f" · {part}" for part in parts)


def state_line(status: RunStatusBody, *, redact: Redact = str, retry: Retrying | None = None,
               buffered: bool = False) -> str:
    """What is happening now, or how the run ended, in one sentence."""
    elapsed = status.elapsed_s
    if status.status in ("running", "queued"):
        if retry is not None:
            return (f"{redact(retry.reason)} — trying again (attempt {retry.attempt} of {retry.max_attempts})"
                    f" — {waited(elapsed)}")
        if buffered and not status.text:
            return f"Writing and checking the answer (it is shown once it passes its checks) — {waited(elapsed)}"
        if not status.text and (status.thinking_s is not None or status.reasoning):
            return f"Thinking… ({waited(status.thinking_s)})" if status.thinking_s is not None else "Thinking…"
        if not status.text:
            return f"Waiting for the first token — {waited(elapsed)}"
        return f"Writing… — {waited(elapsed)}"
    took = status.metrics.total_time if status.metrics is not None and status.metrics.total_time else elapsed
    kept = " · the partial answer is kept" if status.text else ""
    if status.status == "completed":
        return f"Done in {seconds(took)}{metrics_words(status.metrics)}"
    if status.status == "stopped":
        return f"Stopped after {seconds(took)}{kept}"
    message = redact(status.error.message) if status.error is not None and status.error.message else ""
    if status.status == "interrupted":
        return f"Interrupted: {message or 'the server stopped while this answer was written'}{kept}"
    return f"Failed: {message or 'the run ended with an error'}{kept}"


def thinking_line(status: RunStatusBody) -> str | None:
    """The summary of a run's reasoning: 'Thinking… (12 s)' while the model thinks (no text yet),
    'Thought for 14 s' once it wrote or ended; None when it did not reason."""
    if status.thinking_s is None and not status.reasoning:
        return None
    if status.status in ("running", "queued") and not status.text:
        return f"Thinking… ({waited(status.thinking_s)})" if status.thinking_s is not None else "Thinking…"
    if status.thinking_s is None:
        return "The model's thoughts"
    return f"Thought for {seconds(status.thinking_s)}"


def typical_time(total_times: Iterable[float]) -> float | None:
    """The median total time of a model's recent completed runs; None with too few to go by."""
    times = [t for t in total_times if t > 0]
    return statistics.median(times) if len(times) >= MIN_SAMPLES else None


def estimate_line(typical: float | None, elapsed: float) -> str | None:
    """How long answers from this model usually take, and what that leaves; None without a basis."""
    if typical is None:
        return None
    usual = f"Answers from this model usually take about {seconds(typical)}"
    left = typical - elapsed
    if left >= 1:
        return f"{usual}: about {waited(left)} left."
    if left > 0:
        return f"{usual}: it should be done in a moment."
    return f"{usual}; this one is taking longer than usual."


def validation_line(status: RunStatusBody, redact: Redact = str) -> str | None:
    """'The answer failed its checks: …' when it did; None when it passed or had none."""
    validation = status.validation
    if validation is None or validation.passed:
        return None
    return "The answer failed its checks: " + redact("; ".join(validation.problems))
