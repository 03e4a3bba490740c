"""Events in, status line and validation line out: every wording a person reads."""

from __future__ import annotations

import pytest

from llmtool.events import (
    Completed,
    Failed,
    Metrics,
    Retrying,
    Started,
    Stopped,
    TextDelta,
    Usage,
    Validated,
)
from llmtool.ui.status import RunProgress, escape_markdown, metrics_line

MODEL = "openai:gpt-4.1-mini"
METRICS = Metrics(time_to_first_token=0.41, total_time=3.2, input_tokens=120, output_tokens=512,
                  tokens_per_second=160, cost_usd=0.0011)
STARTED = Started(run_id="r1", model=MODEL)
RETRY = Retrying(elapsed=0.5, attempt=2, max_attempts=4, delay=2.0, error_kind="rate_limited",
                 reason="rate limited (HTTP 429)")


def progress_after(*events, buffered: bool = False) -> RunProgress:
    return RunProgress.replay(MODEL, events, buffered=buffered)


@pytest.mark.parametrize(
    ("events", "elapsed", "expected"),
    [
        ((), 0.0, "Connecting to openai:gpt-4.1-mini…"),
        ((STARTED,), 1.24, "Waiting for the first token · 1.2 s"),
        ((STARTED,), 12.0, "Waiting for the first token · 12 s"),
        ((STARTED, RETRY), 0.6, "rate limited (HTTP 429) — retrying in 1.9 s, attempt 2 of 4"),
        ((STARTED, RETRY), 2.7, "rate limited (HTTP 429) — retrying now, attempt 2 of 4 · 2.7 s"),
        ((STARTED, TextDelta(elapsed=1.0, text="Hi")), 1.1, "Streaming · 1 tokens · 1.1 s"),
        (
            (STARTED, *[TextDelta(elapsed=1.0 + i / 100, text="x") for i in range(100)]),
            2.0,
            "Streaming · 100 tokens · 100 tok/s · 2.0 s",
        ),
        (
            (STARTED, TextDelta(text="Hi"), Usage(), Validated(passed=True),
             Completed(finish_reason="stop", text="Hi", metrics=METRICS)),
            5.0,
            "Done · TTFT 0.41 s · total 3.20 s · 120→512 tok · 160 tok/s · $0.0011",
        ),
        (
            (STARTED, Completed(finish_reason="max_tokens", text="Hi", metrics=METRICS)),
            5.0,
            "Done (cut off at the max output tokens) · TTFT 0.41 s · total 3.20 s · 120→512 tok"
            " · 160 tok/s · $0.0011",
        ),
        (
            (STARTED, Completed(finish_reason="stop", text="Hi", metrics=Metrics(total_time=1.0))),
            5.0,
            "Done · total 1.00 s · cost unknown",
        ),
        (
            (STARTED, TextDelta(text="Hel"), Stopped(text="Hel", metrics=Metrics(total_time=2.34))),
            9.0,
            "Stopped after 2.3 s · partial answer kept",
        ),
        ((STARTED, Stopped(text="", metrics=Metrics(total_time=0.5))), 9.0, "Stopped after 0.5 s"),
        (
            (STARTED, TextDelta(text="Hel"), Failed(
                error_kind="idle_timeout", message="local stopped sending for more than 1 s",
                retryable=False, text="Hel", metrics=Metrics())),
            9.0,
            "Failed: local stopped sending for more than 1 s · partial answer kept",
        ),
    ],
)
def test_status_line(events, elapsed: float, expected: str) -> None:
    assert progress_after(*events).status_line(elapsed) == expected


def test_buffer_mode_says_it_is_validating_until_the_answer_is_shown() -> None:
    progress = progress_after(STARTED, buffered=True)
    assert progress.status_line(1.0) == "Validating… the answer appears once it passes its rules · 1.0 s"
    assert progress.validation_line().startswith("Validating…")
    assert progress.text == ""


def test_buffer_mode_keeps_a_failed_answer_out_of_the_text() -> None:
    progress = progress_after(
        STARTED, Usage(), Validated(passed=False, problems=["not valid JSON"], rules_checked=1),
        Completed(finish_reason="stop", text="nope", metrics=METRICS), buffered=True,
    )
    assert progress.text == ""
    assert progress.withheld_text == "nope"
    assert progress.validation_line() == "Validation failed (1 rule): not valid JSON"


def test_buffer_mode_shows_a_passing_answer() -> None:
    progress = progress_after(
        STARTED, Usage(), Validated(passed=True, rules_checked=2), TextDelta(text='{"a": 1}'),
        Completed(finish_reason="stop", text='{"a": 1}', metrics=METRICS), buffered=True,
    )
    assert progress.text == '{"a": 1}'
    assert progress.withheld_text == ""
    assert progress.validation_line() == "Validation passed (2 rules)"


def test_buffer_mode_stopped_run_shows_nothing_unvalidated() -> None:
    progress = progress_after(STARTED, Stopped(text="half a docu", metrics=Metrics()), buffered=True)
    assert progress.text == ""


@pytest.mark.parametrize(
    ("validated", "expected"),
    [
        (None, ""),
        (Validated(passed=True, rules_checked=0), "No validation rules"),
        (Validated(passed=True, rules_checked=1), "Validation passed (1 rule)"),
        (
            Validated(passed=False, problems=["too long: 12 characters, at most 5 allowed",
                                              "forbidden word used: lorem"], rules_checked=2),
            "Validation failed (2 rules): too long: 12 characters, at most 5 allowed; "
            "forbidden word used: lorem",
        ),
    ],
)
def test_validation_line(validated, expected: str) -> None:
    events = [STARTED] + ([validated] if validated else [])
    assert progress_after(*events).validation_line() == expected


def test_stream_mode_text_accumulates_and_completion_wins() -> None:
    progress = progress_after(STARTED, TextDelta(text="Hel"), TextDelta(text="lo"))
    assert progress.text == "Hello" and progress.deltas == 2 and not progress.done
    progress.apply(Completed(finish_reason="stop", text="Hello", metrics=METRICS))
    assert progress.done and progress.phase == "done"


def test_metrics_line_without_cost_says_so() -> None:
    assert metrics_line(Metrics(total_time=1.0)) == "total 1.00 s · cost unknown"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain words", "plain words"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)>"),
        ("**bold** `code`", "\\*\\*bold\\*\\* \\`code\\`"),
        ("![x](http://evil/a.png)", "!\\[x\\](http://evil/a.png)"),
        ("set OPENAI_API_KEY", "set OPENAI_API_KEY"),
    ],
)
def test_escape_markdown(text: str, expected: str) -> None:
    assert escape_markdown(text) == expected
