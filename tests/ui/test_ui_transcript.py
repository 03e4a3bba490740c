"""Turns → what the page shows and what the provider is sent; the run request built from the form."""

from __future__ import annotations

import pytest

from llmtool.errors import InvalidRequestError
from llmtool.events import Completed, Failed, Metrics, Started, Stopped, TextDelta, Usage, Validated
from llmtool.providers.base import ChatMessage
from llmtool.ui.handlers import build_request
from llmtool.ui.status import RunProgress
from llmtool.ui.transcript import (
    VALIDATING,
    WAITING,
    Turn,
    chat_messages,
    provider_messages,
    turn_from_progress,
)

STARTED = Started(run_id="r", model="demo:assistant")


def answer(turn: Turn) -> str:
    return chat_messages([turn])[1]["content"]


@pytest.mark.parametrize(
    ("turn", "expected"),
    [
        (Turn("q", "", "streaming"), WAITING),
        (Turn("q", "Hel", "streaming"), "Hel"),
        (Turn("q", "", "validating"), VALIDATING),
        (Turn("q", "Hello", "completed"), "Hello"),
        (Turn("q", "Hel", "stopped"), "Hel\n\n_Stopped — partial answer._"),
        (Turn("q", "", "stopped"), "_Stopped — partial answer._"),
        (Turn("q", "Hel", "failed", "timed out <b>"), "Hel\n\n_⚠ Failed: timed out &lt;b>_"),
        (Turn("q", "```py\nx = 1", "stopped"), "```py\nx = 1\n```\n\n_Stopped — partial answer._"),
    ],
)
def test_answer_as_shown(turn: Turn, expected: str) -> None:
    assert answer(turn) == expected


def test_withheld_answer_is_collapsed_under_its_reason() -> None:
    messages = chat_messages([Turn("q", "", "withheld", "not valid JSON", withheld="{oops")])
    assert [m["role"] for m in messages] == ["user", "assistant", "assistant"]
    assert "failed validation — not valid JSON" in messages[1]["content"]
    assert messages[2] == {
        "role": "assistant",
        "content": "{oops",
        "metadata": {"title": "Withheld answer (failed validation)", "status": "done"},
    }


def test_provider_sees_only_what_the_model_said() -> None:
    turns = [
        Turn("one", "first answer", "completed"),
        Turn("two", "partial", "stopped"),
        Turn("three", "", "failed", "refused"),
        Turn("four", "", "withheld", "bad", withheld="secret draft"),
        Turn("five", "half", "failed", "connection lost"),
    ]
    assert provider_messages(turns) == [
        ChatMessage(role="user", content="one"),
        ChatMessage(role="assistant", content="first answer"),
        ChatMessage(role="user", content="two"),
        ChatMessage(role="assistant", content="partial"),
        ChatMessage(role="user", content="five"),
        ChatMessage(role="assistant", content="half"),
    ]


@pytest.mark.parametrize(
    ("events", "buffered", "expected"),
    [
        ((STARTED,), False, Turn("q", "", "streaming")),
        ((STARTED, TextDelta(text="ab")), False, Turn("q", "ab", "streaming")),
        ((STARTED,), True, Turn("q", "", "validating")),
        (
            (STARTED, TextDelta(text="ab"), Usage(), Validated(passed=True),
             Completed(finish_reason="stop", text="ab", metrics=Metrics())),
            False,
            Turn("q", "ab", "completed"),
        ),
        ((STARTED, TextDelta(text="a"), Stopped(text="a", metrics=Metrics())), False, Turn("q", "a", "stopped")),
        (
            (STARTED, Failed(error_kind="authentication", message="refused the API key", retryable=False,
                             metrics=Metrics())),
            False,
            Turn("q", "", "failed", "refused the API key"),
        ),
        (
            (STARTED, Usage(), Validated(passed=False, problems=["p1", "p2"], rules_checked=2),
             Completed(finish_reason="stop", text="draft", metrics=Metrics())),
            True,
            Turn("q", "", "withheld", "p1; p2", "draft"),
        ),
    ],
)
def test_turn_from_progress(events, buffered: bool, expected: Turn) -> None:
    progress = RunProgress.replay("demo:assistant", events, buffered=buffered)
    assert turn_from_progress("q", progress) == expected


def test_build_request_from_the_form() -> None:
    history = [Turn("hi", "hello", "completed")]
    request = build_request("next?", history, {
        "model": "demo:echo", "system": "  be brief ", "temperature": 0.3, "max_output_tokens": 64.0,
        "mode": "buffer", "must_be_json": True, "max_length": 500.0, "forbidden_words": "lorem, ipsum,,",
    })
    assert request.model == "demo:echo"
    assert request.system == "be brief"
    assert request.temperature == 0.3
    assert request.max_output_tokens == 64
    assert [m.content for m in request.messages] == ["hi", "hello", "next?"]
    assert request.validation.mode == "buffer"
    assert request.validation.must_be_json
    assert request.validation.max_length == 500
    assert request.validation.forbidden_words == ["lorem", "ipsum"]


@pytest.mark.parametrize(("temperature", "max_tokens"), [(None, None), ("", 0), ("  ", 0.0)])
def test_build_request_leaves_empty_fields_to_the_model(temperature, max_tokens) -> None:
    request = build_request("hi", [], {"model": "demo:assistant", "system": "", "temperature": temperature,
                                       "max_output_tokens": max_tokens, "max_length": 0})
    assert request.system is None and request.temperature is None and request.max_output_tokens is None
    assert request.validation.rule_count == 0


def test_build_request_reads_a_typed_temperature() -> None:
    assert build_request("hi", [], {"temperature": " 0,5 "}).temperature == 0.5
    assert build_request("hi", [], {"temperature": "0"}).temperature == 0.0


@pytest.mark.parametrize(
    ("prompt", "options", "message"),
    [
        ("   ", {}, "the prompt is empty"),
        ("hi", {"temperature": 5}, "temperature"),
        ("hi", {"temperature": "warm"}, r"temperature must be a number from 0 to 2 \(empty: the model's default\); got 'warm'"),
        ("hi", {"temperature": "NaN"}, "temperature must be a number from 0 to 2 .*; got NaN"),
        ("hi", {"temperature": float("inf")}, "temperature must be a number from 0 to 2 .*; got Infinity"),
        ("hi", {"max_output_tokens": "abc"}, r"max output tokens must be a whole number from 1 to 1,000,000 "
                                             r"\(0: the model's default\); got 'abc'"),
        ("hi", {"max_output_tokens": float("nan")}, "max output tokens must be a whole number .*; got NaN"),
        ("hi", {"max_length": 2.5}, r"max length must be a whole number from 1 to 100,000,000 \(0: no limit\); "
                                    "got 2.5"),
    ],
)
def test_build_request_rejects_bad_input_with_a_clear_message(prompt, options, message) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        build_request(prompt, [], options)
