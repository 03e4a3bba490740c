"""The service end to end on the offline demo provider: event order, readers, stop, buffer mode."""

import asyncio

import pytest

from llmtool.errors import InvalidRequestError, UsageError
from llmtool.events import Completed, Failed, Stopped, TextDelta, Validated
from llmtool.service import LLMService, RunRequest
from llmtool.settings import load_settings


async def kinds(run):
    return [event.kind async for event in run.events()]


async def test_a_completed_run_has_the_documented_event_order(fast_settings):
    service = LLMService(fast_settings)
    run = service.start(RunRequest(model="demo:echo", prompt="one two three"))
    seen = await kinds(run)
    assert seen[0] == "started"
    assert seen[-3:] == ["usage", "validated", "completed"]
    assert set(seen[1:-3]) == {"text"}
    completed = run.terminal
    assert isinstance(completed, Completed)
    assert completed.text == "one two three"
    assert "".join(e.text for e in run.log if isinstance(e, TextDelta)) == "one two three"
    assert completed.metrics.output_tokens == 3 and completed.metrics.deltas == 3
    assert completed.metrics.cost_usd == 0.0
    await service.aclose()


async def test_many_readers_from_any_position_see_the_same_log(fast_settings):
    service = LLMService(fast_settings)
    run = service.start({"model": "demo:assistant", "prompt": "Tell me about streams."})
    first, second = await asyncio.gather(kinds(run), kinds(run))
    late = [e.kind async for e in run.events(after=3)]
    assert first == second
    assert late == first[3:]
    await service.aclose()


async def test_a_reader_leaving_does_not_stop_the_run():
    service = LLMService(load_settings(demo={"first_token_delay": 0, "tokens_per_second": 2000}))
    run = service.start({"model": "demo:assistant", "prompt": "hello"})
    async for event in run.events():
        if event.kind == "text":
            break  # the reader goes away
    terminal = await run.wait()
    assert isinstance(terminal, Completed)
    await service.aclose()


async def test_stop_keeps_the_partial_text_and_ends_with_stopped():
    service = LLMService(load_settings(demo={"first_token_delay": 0, "tokens_per_second": 200}))
    run = service.start({"model": "demo:assistant", "prompt": "hello"})
    texts = []
    async for event in run.events():
        if isinstance(event, TextDelta):
            texts.append(event.text)
            if len(texts) == 5:
                assert run.cancel() is True
    stopped = run.terminal
    assert isinstance(stopped, Stopped)
    assert stopped.text == "".join(texts) and len(texts) >= 5
    assert stopped.metrics.usage_estimated is True
    assert run.cancel() is False  # already over
    await service.aclose()


async def test_stop_before_the_run_took_its_first_step_still_ends_the_log(fast_settings):
    service = LLMService(fast_settings)
    run = service.start({"model": "demo:echo", "prompt": "hi"})
    assert run.cancel() is True  # the run's task has not run yet
    stopped = await asyncio.wait_for(run.wait(), timeout=2)
    assert isinstance(stopped, Stopped) and stopped.text == ""
    await service.aclose()


async def test_buffer_mode_releases_text_only_after_it_passed(fast_settings):
    schema = {"type": "object", "required": ["label"], "properties": {"label": {"enum": ["spam", "ham"]}}}
    service = LLMService(fast_settings)
    run = service.start(
        {"model": "demo:assistant", "prompt": "Is this spam?", "validation": {"json_schema": schema, "mode": "buffer"}}
    )
    seen = await kinds(run)
    assert seen == ["started", "usage", "validated", "text", "completed"]
    assert run.log[2].passed is True and run.log[2].rules_checked == 1
    assert '"label": "spam"' in run.log[3].text
    await service.aclose()


async def test_buffer_mode_withholds_text_that_failed(fast_settings):
    service = LLMService(fast_settings)
    run = service.start(
        {"model": "demo:echo", "prompt": "not json", "validation": {"json": True, "mode": "buffer"}}
    )
    seen = await kinds(run)
    assert "text" not in seen
    validated = next(e for e in run.log if isinstance(e, Validated))
    assert not validated.passed and validated.problems[0].startswith("not valid JSON")
    assert run.terminal.text == "not json"  # kept for inspection, never lost
    await service.aclose()


async def test_stream_mode_flags_a_failed_validation(fast_settings):
    service = LLMService(fast_settings)
    run = service.start({"model": "demo:echo", "prompt": "I must delve", "validation": {"forbidden_words": ["delve"]}})
    await run.wait()
    validated = next(e for e in run.log if isinstance(e, Validated))
    assert validated.problems == ["forbidden word used: delve"]
    assert isinstance(run.terminal, Completed)
    await service.aclose()


async def test_deadline_fails_with_its_own_error_and_keeps_text():
    service = LLMService(load_settings(demo={"first_token_delay": 0, "tokens_per_second": 50}))
    run = service.start({"model": "demo:assistant", "prompt": "hi", "timeouts": {"total": 0.3, "first_token": 0.2}})
    failed = await run.wait()
    assert isinstance(failed, Failed)
    assert failed.error_kind == "deadline_exceeded"
    assert "0.3 s limit" in failed.message
    assert failed.text and failed.text == "".join(e.text for e in run.log if isinstance(e, TextDelta))
    await service.aclose()


async def test_first_token_timeout_is_retried_then_reported():
    settings = load_settings(
        demo={"first_token_delay": 5, "tokens_per_second": 100},
        retry={"max_attempts": 2, "initial_delay": 0.01, "jitter": 0},
    )
    service = LLMService(settings)
    run = service.start({"model": "demo:assistant", "prompt": "hi", "timeouts": {"first_token": 0.1}})
    failed = await run.wait()
    assert [e.kind for e in run.log] == ["started", "retrying", "failed"]
    assert run.log[1].attempt == 2 and run.log[1].reason == "no first token in time"
    assert failed.error_kind == "first_token_timeout" and "gave up after 2 attempts" in failed.message
    await service.aclose()


@pytest.mark.parametrize(
    ("request_data", "words"),
    [
        ({"prompt": "   "}, "the prompt is empty"),
        ({"messages": []}, "the prompt is empty"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "must end with a user message"),
        ({"prompt": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"prompt": "x", "timeouts": {"idle": -1}}, "timeouts.idle"),
        ({"prompt": "x", "timeouts": {"first_token": 100, "total": 10}}, "longer than the total"),
        ({"prompt": "x", "colour": "blue"}, "colour"),
    ],
)
async def test_bad_requests_are_refused_before_anything_runs(fast_settings, request_data, words):
    service = LLMService(fast_settings)
    with pytest.raises(UsageError) as caught:
        service.start({"model": "demo:echo", **request_data})
    assert words in caught.value.message
    assert service.runs() == []


def test_request_errors_are_invalid_request_errors():
    with pytest.raises(InvalidRequestError):
        RunRequest.parse({"prompt": ""})


async def test_python_rules_are_refused_from_request_data_and_unlisted_modules(fast_settings):
    service = LLMService(fast_settings)
    with pytest.raises(InvalidRequestError, match="runs code on the server"):
        service.start({"model": "demo:echo", "prompt": "rm -rf /", "validation": {"python": "os:system"}})
    rules = {"python": "tests.core.test_validation:passes_if_short"}
    trusted = RunRequest.parse({"model": "demo:echo", "prompt": "short", "validation": rules}, allow_python_rules=True)
    with pytest.raises(InvalidRequestError, match="not allowed"):
        service.start(trusted)  # even from a template: only listed modules may run
    service = LLMService(fast_settings.model_copy(update={"validator_modules": ["tests.core"]}))
    run = service.start(trusted)
    await run.wait()
    assert next(e for e in run.log if isinstance(e, Validated)).passed
    await service.aclose()


async def test_first_token_timeouts_are_retried_even_when_as_long_as_the_retry_budget():
    settings = load_settings(
        demo={"first_token_delay": 5, "tokens_per_second": 100},
        retry={"max_attempts": 3, "initial_delay": 0.01, "jitter": 0, "max_retry_time": 0.2},
    )
    service = LLMService(settings)
    run = service.start({"model": "demo:assistant", "prompt": "hi", "timeouts": {"first_token": 0.2}})
    await run.wait()
    await service.aclose()
    # attempt time (0.2 s each) does not count against the waits-only retry budget
    assert [e.kind for e in run.log] == ["started", "retrying", "retrying", "failed"]


async def test_the_demo_thinker_shows_its_thoughts_apart_from_its_answer(fast_settings):
    service = LLMService(fast_settings)
    run = service.start({"model": "demo:thinker", "prompt": "Plan a launch", "reasoning_effort": "minimal"})
    events = [event async for event in run.events()]
    completed = events[-1]
    assert completed.kind == "completed"
    reasoning = "".join(e.text for e in events if e.kind == "reasoning")
    assert reasoning == completed.reasoning and "Plan a launch" in reasoning
    assert "Understanding the request" not in completed.text
    assert completed.metrics.thinking_time is not None and completed.metrics.thinking_time >= 0.5
    assert completed.metrics.reasoning_tokens and completed.metrics.reasoning_tokens < completed.metrics.output_tokens
    assert "thought" in completed.metrics.summary()
    # Effort none: the thinker answers at once, with no thoughts at all.
    quick = await service.start({"model": "demo:thinker", "prompt": "hi", "reasoning_effort": "none"}).wait()
    assert quick.reasoning == "" and quick.metrics.thinking_time is None
    await service.aclose()
