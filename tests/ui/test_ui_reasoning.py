"""A reasoning model in the UI, without a browser: thinking in the status line, thoughts above the
answer (never in it), the effort picker's values, cost unknown, stored thoughts, the live model lists."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import gradio as gr
import pytest

from llmtool.catalog import ModelInfo
from llmtool.errors import InvalidRequestError
from llmtool.events import (
    Completed,
    Failed,
    Metrics,
    Notice,
    ReasoningDelta,
    Started,
    Stopped,
    TextDelta,
    Usage,
    Validated,
)
from llmtool.service.model_lists import ProviderModels
from llmtool.store import RunRecord
from llmtool.ui.compare import pane_markdown
from llmtool.ui.handlers import MODEL_DEFAULT, build_request, reasoning_effort
from llmtool.ui.history_render import answer_for, cost, events_rows, metrics_markdown, request_markdown
from llmtool.ui.model_pickers import ModelPickers
from llmtool.ui.restore import status_of_record, turn_from_record
from llmtool.ui.status import RunProgress, metrics_line, with_price_hint
from llmtool.ui.transcript import SILENT, Thought, Turn, chat_messages, provider_messages, turn_from_progress

MODEL = "openai:gpt-5.1"
STARTED = Started(run_id="r", model=MODEL)
THOUGHTS = "**Planning.** Short answer first."
HINT = 'the cost of openai:gpt-5.1 is unknown: add its price under [prices."openai:gpt-5.1"]'


def thinking(*texts: str, start: float = 1.0) -> list[ReasoningDelta]:
    return [ReasoningDelta(elapsed=start + i * 0.5, text=t) for i, t in enumerate(texts)]


def completed(text: str = "Answer.", reasoning: str = THOUGHTS, **metrics) -> Completed:
    return Completed(elapsed=9.0, finish_reason="stop", text=text, reasoning=reasoning,
                     metrics=Metrics(total_time=9.0, **metrics))


# -- the status line --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("events", "elapsed", "expected"),
    [
        ((STARTED, *thinking("")), 13.0, "Thinking (12 s)"),  # a silent think counts too
        ((STARTED, *thinking("**Plan", "ning.**")), 3.5, "Thinking (2.5 s)"),
        ((STARTED, *thinking("x"), TextDelta(elapsed=4.0, text="Hi")), 4.1, "Streaming · 1 tokens · 4.1 s"),
        ((STARTED, Notice(message="asked for the JSON Schema by instruction")), 1.0,
         "Waiting for the first token · 1.0 s · asked for the JSON Schema by instruction"),
        ((STARTED, *thinking("x"), completed(thinking_time=2.0, cost_usd=0.01)), 9.0,
         "Done · thought 2.0 s · total 9.00 s · $0.0100"),
    ],
)
def test_the_status_line_says_the_model_thinks(events, elapsed: float, expected: str) -> None:
    assert RunProgress.replay(MODEL, events).status_line(elapsed) == expected


def test_buffer_mode_keeps_saying_it_validates_while_the_model_thinks() -> None:
    progress = RunProgress.replay(MODEL, [STARTED, *thinking("x")], buffered=True)
    assert progress.status_line(3.0).startswith("Validating…")
    assert turn_from_progress("q", progress, 3.0).thought == Thought("x", 2.0, done=False)


def test_cost_unknown_is_said_never_zero_and_the_price_hint_follows() -> None:
    metrics = Metrics(total_time=1.0)
    assert metrics_line(metrics) == "total 1.00 s · cost unknown"
    assert with_price_hint("Done", metrics, HINT) == f"Done\n\nⓘ The{HINT[3:]}."
    assert with_price_hint("Done", Metrics(cost_usd=0.0), HINT) == "Done"  # known to be free
    assert with_price_hint("Done", metrics, None) == "Done"
    assert cost(metrics) == "unknown" and cost(Metrics(cost_usd=0.0)) == "$0.0000"
    assert "ⓘ The cost of openai:gpt-5.1 is unknown" in metrics_markdown(metrics, HINT)
    assert "\\[prices." in metrics_markdown(metrics, HINT)  # escaped: shown, never a link


# -- thoughts above the answer ---------------------------------------------------------------------
def test_the_chat_shows_the_thought_above_the_answer_never_in_it() -> None:
    progress = RunProgress.replay(MODEL, [STARTED, *thinking("**Planning.**", " Short answer first.")])
    live = chat_messages([turn_from_progress("q", progress, 13.0)])
    assert [m["role"] for m in live] == ["user", "assistant", "assistant"]
    assert live[1] == {"role": "assistant", "content": THOUGHTS,
                       "metadata": {"title": "Thinking… 12 s", "status": "pending"}}
    assert live[2]["content"] == "…"

    for event in (TextDelta(elapsed=14.0, text="Ans"), TextDelta(elapsed=14.5, text="wer.")):
        progress.apply(event)
    answering = chat_messages([turn_from_progress("q", progress, 15.0)])
    assert answering[1]["metadata"] == {"title": "Thought for 13 s", "status": "done"}
    assert answering[2]["content"] == "Answer."

    progress.apply(completed(thinking_time=13.2))
    turn = turn_from_progress("q", progress, 99.0)
    done = chat_messages([turn])
    assert done[1]["metadata"] == {"title": "Thought for 13 s", "status": "done"}
    assert THOUGHTS not in done[2]["content"]
    assert provider_messages([turn])[-1].content == "Answer."  # the thoughts are never sent back


@pytest.mark.parametrize("terminal", [
    Stopped(elapsed=3.0, text="", reasoning="half a thought", metrics=Metrics(thinking_time=2.0)),
    Failed(elapsed=3.0, error_kind="reasoning_idle_timeout", message="stalled", retryable=False,
           reasoning="half a thought", metrics=Metrics(thinking_time=2.0)),
])
def test_a_run_that_ended_while_thinking_keeps_its_thoughts(terminal) -> None:
    progress = RunProgress.replay(MODEL, [STARTED, *thinking("half a thought"), terminal])
    assert turn_from_progress("q", progress).thought == Thought("half a thought", 2.0, done=True)


def test_a_silent_think_still_shows_a_thought_with_its_time() -> None:
    progress = RunProgress.replay(MODEL, [STARTED, *thinking(""), TextDelta(elapsed=6.0, text="Hi")])
    message = chat_messages([turn_from_progress("q", progress)])[1]
    assert message == {"role": "assistant", "content": SILENT,
                       "metadata": {"title": "Thought for 5.0 s", "status": "done"}}


def test_no_thought_without_reasoning() -> None:
    progress = RunProgress.replay(MODEL, [STARTED, TextDelta(elapsed=1.0, text="Hi"), Usage(), Validated(passed=True),
                                          completed("Hi", reasoning="")])
    assert turn_from_progress("q", progress).thought is None
    assert len(chat_messages([turn_from_progress("q", progress)])) == 2


def test_a_pane_shows_the_thought_as_details_it_cannot_break_out_of() -> None:
    turn = Turn("", "Answer.", "completed", thought=Thought("a</details><b>x</b>\n```py\ncode", 14.2))
    shown = pane_markdown(turn)
    assert shown.startswith('<details class="thought"><summary>Thought for 14 s</summary>\n\n')
    assert "a&lt;/details><b>x</b>\n```py\ncode\n```\n\n</details>\n\n" in shown  # closed fence, one end
    assert shown.endswith("Answer.") and shown.count("</details>") == 1
    thinking_now = pane_markdown(Turn("", "", "streaming", thought=Thought("", 3.0, done=False)))
    assert thinking_now.startswith('<details class="thought" open><summary>Thinking… 3.0 s</summary>')
    assert SILENT in thinking_now


# -- the reasoning effort picker --------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [
    (None, None), ("", None), (MODEL_DEFAULT, None), ("high", "high"), (" Low ", "low"), ("max", "max"),
])
def test_the_effort_picker_values(value, expected) -> None:
    assert reasoning_effort(value) == expected
    assert build_request("q", [], {"reasoning_effort": value}).reasoning_effort == expected


def test_an_unknown_effort_is_refused_with_the_values() -> None:
    with pytest.raises(InvalidRequestError, match="reasoning effort must be one of none, minimal, low"):
        reasoning_effort("extreme")


# -- stored runs --------------------------------------------------------------------------------
def record(**fields) -> RunRecord:
    base = dict(id="r", model=MODEL, request={"model": MODEL, "reasoning_effort": "high"}, prompt="Q",
                status="completed", text="Answer.", reasoning=THOUGHTS,
                metrics=Metrics(total_time=9.0, thinking_time=14.4, reasoning_tokens=300, output_tokens=400))
    return RunRecord(**(base | fields))


def test_a_stored_run_brings_its_thoughts_back() -> None:
    turn = turn_from_record(record(), str)
    assert turn.thought == Thought(THOUGHTS, 14.4, done=True)
    messages = chat_messages([turn])
    assert messages[1]["metadata"]["title"] == "Thought for 14 s" and messages[2]["content"] == "Answer."
    running = turn_from_record(record(status="running", metrics=None), str)
    assert running.thought == Thought(THOUGHTS, None, done=False)
    assert turn_from_record(record(reasoning="", metrics=Metrics()), str).thought is None
    silent = turn_from_record(record(reasoning="", metrics=Metrics(thinking_time=3.0)), str)
    assert silent.thought == Thought("", 3.0)
    assert "Done · thought 14.4 s" in status_of_record(record())
    assert "ⓘ The cost of" not in status_of_record(record(metrics=Metrics(cost_usd=0.5)), HINT)
    assert status_of_record(record(metrics=Metrics()), HINT).endswith(f"ⓘ The{HINT[3:]}.")


def test_history_shows_the_thoughts_above_the_answer_and_the_effort_asked() -> None:
    shown = answer_for(record(), str)
    assert shown.startswith('<details class="thought"><summary>Thought for 14 s</summary>')
    assert shown.endswith("</details>\n\nAnswer.")
    assert '**Parameters** · reasoning_effort "high"' in request_markdown(record(), str)


def test_history_events_group_the_reasoning_and_say_notices() -> None:
    events = [STARTED, Notice(elapsed=0.1, message="asked by instruction"), *thinking("ab", "cd", "e"),
              TextDelta(elapsed=3.0, text="Hi"), completed("Hi", reasoning="abcde")]
    rows = events_rows(events, str)
    assert rows[1] == ["1", "notice", "0.10", "asked by instruction"]
    assert rows[2] == ["2–4", "reasoning ×3", "1.00–2.00", "5 chars"]
    assert rows[3] == ["5", "text ×1", "3.00", "2 chars"]
    assert rows[4][3] == "stop · 2 chars · 5 chars of reasoning"


# -- the live model lists ---------------------------------------------------------------------------
class _Lists:
    def __init__(self, listed: list[ProviderModels] | Exception) -> None:
        self.listed = listed

    async def all(self) -> list[ProviderModels]:
        if isinstance(self.listed, Exception):
            raise self.listed
        return self.listed


def _pickers(listed: list[ProviderModels] | Exception) -> ModelPickers:
    service = SimpleNamespace(model_lists=_Lists(listed))
    context = SimpleNamespace(service=service, redact=lambda text: text.replace("sk-secret", "sk-…"))
    pickers = ModelPickers(context)  # type: ignore[arg-type]
    for first, note in (((), True), (("(the template's model)",), False), (("(any)",), False)):
        pickers.add(SimpleNamespace(), first=first, note=note)  # type: ignore[arg-type]
    return pickers


def _model(model_id: str) -> ModelInfo:
    provider, name = model_id.split(":", 1)
    return ModelInfo(provider=provider, name=name, kind="demo" if provider == "demo" else "openai")


def test_the_pickers_offer_the_live_lists_and_say_which_failed() -> None:
    listed = [
        ProviderModels(provider="openai", models=[_model("openai:gpt-5.1"), _model("openai:o4-mini")], live=True),
        ProviderModels(provider="anthropic", models=[_model("anthropic:claude-opus-4-5")], live=False,
                       problem="the key sk-secret was refused"),
        ProviderModels(provider="demo", models=[_model("demo:thinker")], live=False),
    ]
    chat, compare, history = asyncio.run(_pickers(listed).refresh())
    models = ["openai:gpt-5.1", "openai:o4-mini", "anthropic:claude-opus-4-5", "demo:thinker"]
    assert chat["choices"] == models and compare["choices"] == ["(the template's model)", *models]
    assert history["choices"] == ["(any)", *models] and "info" not in history
    assert chat["info"].startswith("Live model list unavailable (anthropic: the key sk-… was refused)")
    assert "value" not in chat  # what the user picked or typed stays


def test_the_pickers_keep_their_lists_when_listing_fails() -> None:
    updates = asyncio.run(_pickers(RuntimeError("boom")).refresh())
    assert updates == (gr.skip(),) * 3  # the lists the page was built with stay
