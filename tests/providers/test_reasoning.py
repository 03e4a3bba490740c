"""Reasoning models through the real SDKs: thinking is its own stream, never timed out as a missing
first token, never retried, never part of the answer or its validation."""

from __future__ import annotations

import asyncio

import pytest

from llmtool.errors import InvalidRequestError
from llmtool.events import Completed, Failed, Notice, ReasoningDelta, TextDelta
from llmtool.loopback import DEFAULT_TEXT, ModelSpec, Scenario
from tests.providers.conftest import service_for

# One reasoning model per wire protocol.
THINKERS = {
    "responses": "openai:gpt-5.1",
    "chat": "local:test-model",
    "messages": "anthropic:claude-haiku-4-5",
}
THOUGHTS = "**Reading the question.** The user wants a forbidden word checked. Forbidden words stay here."


def kinds(events: list) -> list[str]:
    """Event kinds with consecutive repeats collapsed."""
    out: list[str] = []
    for event in events:
        if not out or out[-1] != event.kind:
            out.append(event.kind)
    return out


async def collect(run) -> list:
    return [event async for event in run.events()]


async def test_a_long_think_outlasts_the_first_token_timeout_and_is_not_retried(server) -> None:
    # A 5 s think against a 2 s first-token limit, all three protocols at once.
    for _ in THINKERS:
        server.enqueue(Scenario(reasoning=THOUGHTS, think_seconds=5.0, tokens_per_second=200))
    service = service_for(server, timeouts={"first_token": 2, "idle": 2, "total": 30})
    runs = [service.start({"model": model, "prompt": "hi", "reasoning_effort": "low"}) for model in THINKERS.values()]
    logs = await asyncio.gather(*(collect(run) for run in runs))
    await service.aclose()
    for events in logs:
        completed = events[-1]
        assert isinstance(completed, Completed), events[-1]
        assert completed.text == DEFAULT_TEXT
        assert completed.reasoning.replace("\n", " ").split() == THOUGHTS.split()
        assert completed.metrics.attempts == 1
        assert completed.metrics.thinking_time is not None and completed.metrics.thinking_time > 4.0
        assert kinds(events) == ["started", "reasoning", "text", "usage", "validated", "completed"]
    assert len(server.requests) == 3


async def test_a_silent_think_is_not_a_missing_first_token(protocol: str, server) -> None:
    if protocol == "chat":
        pytest.skip("Chat Completions sends nothing while a model thinks silently: nothing to see")
    server.enqueue(Scenario(reasoning_format="omitted", think_seconds=1.5, tokens_per_second=400))
    service = service_for(server, timeouts={"first_token": 0.7, "idle": 2})
    run = service.start({"model": THINKERS[protocol], "prompt": "hi", "reasoning_effort": "low"})
    events = await collect(run)
    await service.aclose()
    completed = events[-1]
    assert isinstance(completed, Completed) and completed.text == DEFAULT_TEXT and completed.reasoning == ""
    first = next(e for e in events if isinstance(e, ReasoningDelta))
    assert first.text == ""  # the model began to think: the UI can say so


async def test_a_stall_while_thinking_hits_the_reasoning_idle_limit_without_a_retry(protocol: str, server) -> None:
    server.enqueue(Scenario(kind="stall_during_reasoning", reasoning=THOUGHTS, after_tokens=3, stall_seconds=5))
    service = service_for(server, timeouts={"first_token": 1, "reasoning_idle": 0.5})
    run = service.start({"model": THINKERS[protocol], "prompt": "hi", "reasoning_effort": "low"})
    failed = await run.wait()
    await service.aclose()
    assert isinstance(failed, Failed)
    assert failed.error_kind == "reasoning_idle_timeout"
    assert "was thinking but sent nothing for more than 0.5 s" in failed.message
    assert failed.metrics.attempts == 1 and len(server.requests) == 1
    assert failed.reasoning  # what it thought so far is kept


async def test_reasoning_never_enters_the_answer_or_its_validation(protocol: str, server) -> None:
    server.enqueue(Scenario(reasoning=THOUGHTS, tokens_per_second=400))
    service = service_for(server)
    run = service.start({
        "model": THINKERS[protocol], "prompt": "hi", "reasoning_effort": "medium",
        "validation": {"forbidden_words": ["forbidden"], "mode": "buffer"},
    })
    events = await collect(run)
    await service.aclose()
    completed = events[-1]
    assert isinstance(completed, Completed)
    validated = next(e for e in events if e.kind == "validated")
    assert validated.passed, validated.problems
    assert "forbidden" not in completed.text.lower() and "forbidden" in completed.reasoning.lower()
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == DEFAULT_TEXT
    # Buffer mode holds the text until it is validated; the thoughts stream as they come.
    assert kinds(events)[:3] == ["started", "reasoning", "usage"]


@pytest.mark.parametrize("style", ["reasoning_content", "reasoning", "think_tags"])
async def test_compatible_servers_reasoning_in_any_of_its_three_forms(style: str, server) -> None:
    server.enqueue(Scenario(reasoning=THOUGHTS, reasoning_format=style, tokens_per_second=400))
    service = service_for(server)
    run = service.start({"model": THINKERS["chat"], "prompt": "hi"})
    completed = await run.wait()
    await service.aclose()
    assert isinstance(completed, Completed)
    assert completed.text == DEFAULT_TEXT
    assert completed.reasoning.split() == THOUGHTS.split()
    assert "<think>" not in completed.text


async def test_the_effort_reaches_each_provider_in_its_own_field(server) -> None:
    for _ in range(3):
        server.enqueue(Scenario(reasoning=THOUGHTS, tokens_per_second=400))
    service = service_for(server)
    for model in THINKERS.values():
        assert (await service.start({"model": model, "prompt": "hi", "reasoning_effort": "high"}).wait()).kind == "completed"
    await service.aclose()
    bodies = {r.protocol: r.body for r in server.requests}
    assert bodies["responses"]["reasoning"] == {"effort": "high", "summary": "auto"}
    assert bodies["chat"]["reasoning_effort"] == "high"
    thinking = bodies["messages"]["thinking"]
    assert thinking["type"] == "enabled" and thinking["display"] == "summarized"
    assert 1024 <= thinking["budget_tokens"] < bodies["messages"]["max_tokens"]
    assert "output_config" not in bodies["messages"]  # haiku 4.5 takes no effort parameter


async def test_anthropic_effort_and_adaptive_thinking_follow_the_models_listed_capabilities(server) -> None:
    server.enqueue(Scenario(reasoning=THOUGHTS, tokens_per_second=400))
    service = service_for(server)
    await service.model_lists.for_provider("anthropic")  # learns claude-opus-4-7: adaptive, effort up to max
    run = service.start({"model": "anthropic:claude-opus-4-7", "prompt": "hi", "reasoning_effort": "max"})
    assert (await run.wait()).kind == "completed"
    with pytest.raises(InvalidRequestError, match="does not accept reasoning effort 'xhigh'"):
        service.start({"model": "anthropic:claude-opus-4-5", "prompt": "hi", "reasoning_effort": "xhigh"})
    await service.aclose()
    body = server.requests[-1].body
    assert body["thinking"] == {"type": "adaptive", "display": "summarized"}
    assert body["output_config"] == {"effort": "max"}


async def test_an_effort_the_model_does_not_take_is_refused_before_sending(server) -> None:
    service = service_for(server)
    with pytest.raises(InvalidRequestError, match="not a reasoning model"):
        service.start({"model": "openai:gpt-4.1-mini", "prompt": "hi", "reasoning_effort": "low"})
    with pytest.raises(InvalidRequestError, match="more than 1024 output tokens"):
        service.start({"model": THINKERS["messages"], "prompt": "hi", "reasoning_effort": "low", "max_output_tokens": 500})
    await service.aclose()
    assert server.requests == []


SCHEMA = {
    "title": "Verdict",
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}


async def test_the_schema_reaches_each_provider_in_its_own_field(server) -> None:
    for _ in range(3):
        server.enqueue(Scenario(text='{"ok": true}', tokens_per_second=400))
    service = service_for(server)
    for model in ("openai:gpt-4.1-mini", "local:test-model", "anthropic:claude-haiku-4-5"):
        run = service.start({"model": model, "prompt": "hi", "validation": {"json_schema": SCHEMA}})
        assert (await run.wait()).kind == "completed"
    await service.aclose()
    asked = {r.protocol: r.structured_output for r in server.requests}
    assert asked["responses"] == {"type": "json_schema", "name": "Verdict", "schema": SCHEMA, "strict": True}
    assert asked["chat"] == {"name": "Verdict", "schema": SCHEMA, "strict": True}
    assert asked["messages"] == {"type": "json_schema", "schema": SCHEMA}


async def test_a_schema_outside_strict_mode_is_sent_non_strict() -> None:
    from llmtool.providers.schemas import strict_compatible

    assert strict_compatible(SCHEMA)
    assert not strict_compatible({"type": "object", "properties": {"a": {"type": "string"}}})
    assert not strict_compatible({**SCHEMA, "properties": {"ok": {"type": "boolean"}, "why": {"type": "string"}}})


async def test_a_server_without_structured_output_gets_the_schema_by_instruction(protocol: str, server) -> None:
    models = {"responses": "openai:gpt-4.1-mini", "chat": "local:test-model", "messages": "anthropic:claude-haiku-4-5"}
    server.enqueue(Scenario(reject_structured_output=True), Scenario(text='{"ok": false}', tokens_per_second=400))
    service = service_for(server)
    run = service.start({"model": models[protocol], "prompt": "hi", "system": "Be brief.",
                         "validation": {"json_schema": SCHEMA}})
    events = await collect(run)
    await service.aclose()
    notice = next(e for e in events if isinstance(e, Notice))
    assert "cannot be asked for structured output" in notice.message
    completed = events[-1]
    assert isinstance(completed, Completed) and completed.text == '{"ok": false}'
    assert next(e for e in events if e.kind == "validated").passed  # still checked after the answer
    first, second = server.requests
    assert first.status == 400 and second.structured_output is None
    system = second.body.get("instructions") or second.body.get("system")
    if system is None:  # chat: the system message
        system = second.body["messages"][0]["content"]
    assert system.startswith("Be brief.") and '"required":["ok"]' in system
    assert completed.metrics.attempts == 1  # not a retry: nothing was billed


async def test_any_model_name_runs_with_its_cost_unknown(protocol: str, server) -> None:
    names = {"responses": "openai:gpt-9-preview", "chat": "local:brand-new", "messages": "anthropic:claude-next"}
    server.enqueue(Scenario(tokens_per_second=400))
    service = service_for(server)
    completed = await service.start({"model": names[protocol], "prompt": "hi"}).wait()
    await service.aclose()
    assert isinstance(completed, Completed) and completed.text == DEFAULT_TEXT
    assert server.requests[0].body["model"] == names[protocol].partition(":")[2]
    if protocol == "chat":
        assert completed.metrics.cost_usd == 0.0  # a local server's models are free unless priced
    else:
        assert completed.metrics.cost_usd is None
        assert "cost unknown" in completed.metrics.summary()


async def test_a_model_the_provider_does_not_know_reads_clearly(protocol: str, server) -> None:
    names = {"responses": "openai:gpt-nope", "chat": "local:nope", "messages": "anthropic:claude-nope"}
    server.enqueue("model_not_found")
    service = service_for(server)
    failed = await service.start({"model": names[protocol], "prompt": "hi"}).wait()
    await service.aclose()
    assert isinstance(failed, Failed) and failed.error_kind == "model_not_found"
    model = names[protocol].partition(":")[2]
    assert failed.message.startswith(f"{names[protocol].partition(':')[0]} does not know model {model!r}")
    assert len(server.requests) == 1  # not retried


async def test_model_lists_are_live_and_fall_back_to_the_configured_ones(server) -> None:
    service = service_for(server, model_list_ttl=60)
    listed = await service.model_lists.for_provider("openai")
    assert listed.live and "openai:gpt-5.1" in [m.id for m in listed.models]
    again = await service.model_lists.for_provider("openai")
    assert again is listed and len(server.requests) == 1  # cached

    server.enqueue_models("server_error")
    failing = await service.model_lists.for_provider("anthropic")
    assert not failing.live and "HTTP 500" in (failing.problem or "")
    assert [m.id for m in failing.models] == [m.id for m in service.catalog.of_provider("anthropic")]
    ids = await service.model_ids()
    assert ids[-1].startswith("demo:") and "local:test-model" in ids
    await service.aclose()


async def test_long_prompts_are_cached_at_anthropic_and_cache_writes_priced(server) -> None:
    server.enqueue(Scenario(input_tokens=5000, cache_creation_input_tokens=4000, tokens_per_second=400))
    service = service_for(server)
    long_system = "You follow the style guide. " * 800
    completed = await service.start({"model": "anthropic:claude-haiku-4-5", "prompt": "hi", "system": long_system}).wait()
    await service.aclose()
    body = server.requests[0].body
    assert body["system"] == [{"type": "text", "text": long_system, "cache_control": {"type": "ephemeral"}}]
    assert body["messages"][0]["content"] == "hi"  # short content is not marked
    metrics = completed.metrics
    assert metrics.cache_write_tokens == 4000 and metrics.input_tokens == 9000
    # 5000 fresh at $1, 4000 written at $1.25, the output at $5 (per million)
    output = metrics.output_tokens or 0
    assert metrics.cost_usd == pytest.approx((5000 * 1.0 + 4000 * 1.25 + output * 5.0) / 1e6)


async def test_a_model_unknown_here_is_looked_up_in_the_providers_list_before_an_effort_is_sent(server) -> None:
    server.enqueue(Scenario(reasoning=THOUGHTS, tokens_per_second=400))
    service = service_for(server)
    run = service.start({"model": "anthropic:claude-opus-4-7", "prompt": "hi", "reasoning_effort": "max"})
    assert (await run.wait()).kind == "completed"
    assert [r.protocol for r in server.requests] == ["models", "messages"]
    assert server.requests[-1].body["thinking"]["type"] == "adaptive"  # as the list says, not a budget

    # A listed model that does not take the effort is refused before its request is sent.
    listed = server.models
    server.models = [*listed, ModelSpec(id="claude-small", thinking=("enabled",), efforts=("low",))]
    try:
        service.model_lists.forget()
        failed = await service.start({"model": "anthropic:claude-small", "prompt": "hi", "reasoning_effort": "high"}).wait()
    finally:
        server.models = listed
        await service.aclose()
    assert isinstance(failed, Failed) and failed.error_kind == "invalid_request"
    assert "does not accept reasoning effort 'high'" in failed.message
    assert [r.protocol for r in server.requests] == ["models", "messages", "models"]


async def test_a_pasted_document_stays_cached_for_the_follow_up_questions(server) -> None:
    server.enqueue(Scenario(tokens_per_second=400))
    service = service_for(server)
    document = "Clause 4.2: the supplier delivers within thirty days. " * 400
    messages = [{"role": "user", "content": document}, {"role": "assistant", "content": "Read it."}]
    completed = await service.start({"model": "anthropic:claude-haiku-4-5", "messages": messages,
                                     "prompt": "When is delivery due?"}).wait()
    await service.aclose()
    assert completed.kind == "completed"
    sent = server.requests[0].body["messages"]
    assert sent[0]["content"] == [{"type": "text", "text": document, "cache_control": {"type": "ephemeral"}}]
    assert sent[1]["content"] == "Read it."
    assert sent[2]["content"][0]["cache_control"] == {"type": "ephemeral"}  # the conversation so far


async def test_a_compatible_server_thinking_silently_gets_the_reasoning_idle_limit_for_its_first_token(server) -> None:
    # Chat Completions has no event for "thinking began": with an effort set, silence may be thought.
    server.enqueue(Scenario(reasoning_format="omitted", think_seconds=1.2, tokens_per_second=400))
    service = service_for(server, timeouts={"first_token": 0.5, "reasoning_idle": 3})
    completed = await service.start({"model": THINKERS["chat"], "prompt": "hi", "reasoning_effort": "low"}).wait()
    await service.aclose()
    assert isinstance(completed, Completed) and completed.metrics.attempts == 1 and len(server.requests) == 1
