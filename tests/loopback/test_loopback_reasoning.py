"""Reasoning / thinking streams through the real SDKs: each format as the typed event the app reads."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import anthropic
import openai
import pytest
from anthropic.types import RawContentBlockDeltaEvent, RawContentBlockStartEvent, SignatureDelta, ThinkingDelta
from openai.types.responses import ResponseReasoningSummaryTextDeltaEvent, ResponseReasoningTextDeltaEvent

from llmtool.loopback import DEFAULT_REASONING, LoopbackServer, Scenario, split_tokens

from .helpers import collect, open_stream

PROTOCOLS = ["responses", "chat", "messages"]
ANSWER = "The answer is forty-two."
R_TOKENS = len(split_tokens(DEFAULT_REASONING))
A_TOKENS = len(split_tokens(ANSWER))


def thinking(**kw: Any) -> Scenario:
    return Scenario(reasoning=DEFAULT_REASONING, text=ANSWER, **kw)


# -- Responses ---------------------------------------------------------------------------------


async def test_responses_summary_parts_and_usage(server: LoopbackServer, oai: openai.AsyncOpenAI) -> None:
    server.default = thinking()
    got = await collect("responses", await open_stream("responses", oai, None))  # type: ignore[arg-type]
    assert got.error is None and got.text == ANSWER
    deltas = [e for e in got.events if e.type == "response.reasoning_summary_text.delta"]
    assert deltas and all(isinstance(e, ResponseReasoningSummaryTextDeltaEvent) for e in deltas)
    parts: dict[int, str] = {}
    for e in deltas:
        parts[e.summary_index] = parts.get(e.summary_index, "") + e.delta
    # One summary part per **heading** section, as OpenAI sends them; "\n\n" joins them back.
    assert list(parts) == [0, 1] and "\n\n".join(parts.values()) == DEFAULT_REASONING
    types = [e.type for e in got.events]
    added = [e for e in got.events if e.type == "response.output_item.added"]
    assert [(e.output_index, e.item.type) for e in added] == [(0, "reasoning"), (1, "message")]
    assert types.index("response.output_item.added") < types.index("response.reasoning_summary_part.added")
    assert types.index("response.reasoning_summary_text.delta") < types.index("response.output_text.delta")
    final = got.events[-1].response
    reasoning_item, message = final.output
    assert [s.text for s in reasoning_item.summary] == list(parts.values())
    assert message.type == "message" and final.output_text == ANSWER
    usage = final.usage
    assert usage.output_tokens_details.reasoning_tokens == len(deltas) == R_TOKENS
    assert usage.output_tokens == A_TOKENS + len(deltas)
    assert server.wait_closed(0).reasoning_deltas_sent == len(deltas)


async def test_responses_stream_helper_accepts_reasoning_items(server: LoopbackServer, oai: openai.AsyncOpenAI) -> None:
    server.default = thinking()
    async with oai.responses.stream(model="m", input="x") as stream:
        response = await stream.get_final_response()
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.output_text == ANSWER


async def test_responses_reasoning_text_format(server: LoopbackServer, oai: openai.AsyncOpenAI) -> None:
    server.default = thinking(reasoning_format="text")
    got = await collect("responses", await open_stream("responses", oai, None))  # type: ignore[arg-type]
    deltas = [e for e in got.events if e.type == "response.reasoning_text.delta"]
    assert all(isinstance(e, ResponseReasoningTextDeltaEvent) for e in deltas)
    assert "".join(e.delta for e in deltas) == DEFAULT_REASONING and len(deltas) == R_TOKENS
    assert not any(e.type.startswith("response.reasoning_summary") for e in got.events)
    item = got.events[-1].response.output[0]
    assert item.summary == [] and item.content[0].type == "reasoning_text"
    assert item.content[0].text == DEFAULT_REASONING


async def test_responses_omitted_reasoning_is_an_empty_item(server: LoopbackServer, oai: openai.AsyncOpenAI) -> None:
    server.default = thinking(reasoning_format="omitted")
    got = await collect("responses", await open_stream("responses", oai, None))  # type: ignore[arg-type]
    types = [e.type for e in got.events]
    assert not any("reasoning" in t for t in types)
    assert types[2:4] == ["response.output_item.added", "response.output_item.done"]
    assert got.events[2].item.type == "reasoning" and got.events[3].item.summary == []
    usage = got.events[-1].response.usage  # silent thinking is still billed
    assert usage.output_tokens_details.reasoning_tokens == R_TOKENS
    assert usage.output_tokens == R_TOKENS + A_TOKENS
    assert server.wait_closed(0).reasoning_deltas_sent == 0


async def test_responses_encrypted_content_when_included(server: LoopbackServer, oai: openai.AsyncOpenAI) -> None:
    server.default = thinking()
    response = await oai.responses.create(model="m", input="x", include=["reasoning.encrypted_content"])
    assert response.output[0].encrypted_content


# -- Chat Completions --------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_chat_reasoning_fields(field: str, server: LoopbackServer, oai: openai.AsyncOpenAI) -> None:
    server.default = thinking(reasoning_format=field)
    stream = await open_stream("chat", oai, None, stream_options={"include_usage": True})  # type: ignore[arg-type]
    got = await collect("chat", stream)
    chunks = [e for e in got.events if e.choices]
    # The SDK keeps the unknown field: as an attribute and in model_extra.
    reasoning = [getattr(c.choices[0].delta, field, None) for c in chunks]
    assert "".join(r for r in reasoning if r) == DEFAULT_REASONING
    assert all(c.choices[0].delta.model_extra == {field: r} for c, r in zip(chunks, reasoning, strict=True) if r)
    assert reasoning.index(None) == R_TOKENS  # all reasoning before the first answer token
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].choices[0].delta.content is None
    assert [c.choices[0].delta.role for c in chunks[1:]] == [None] * (len(chunks) - 1)
    assert got.text == ANSWER
    usage = got.events[-1].usage
    assert usage.completion_tokens_details.reasoning_tokens == R_TOKENS
    assert usage.completion_tokens == R_TOKENS + A_TOKENS


async def test_chat_think_tags_in_content(server: LoopbackServer, oai: openai.AsyncOpenAI) -> None:
    server.default = thinking(reasoning_format="think_tags")
    got = await collect("chat", await open_stream("chat", oai, None))  # type: ignore[arg-type]
    assert got.text == f"<think>\n{DEFAULT_REASONING}\n</think>\n\n{ANSWER}"
    assert got.events[0].choices[0].delta.content == "<think>\n"
    assert all(not e.choices[0].delta.model_extra for e in got.events)


async def test_chat_omitted_sends_nothing_while_thinking(server: LoopbackServer, oai: openai.AsyncOpenAI) -> None:
    server.default = thinking(reasoning_format="omitted", think_seconds=0.2)
    started = time.monotonic()
    stream = await open_stream("chat", oai, None, stream_options={"include_usage": True})  # type: ignore[arg-type]
    got = await collect("chat", stream)
    assert time.monotonic() - started >= 0.2
    assert got.text == ANSWER and all(not e.choices or not e.choices[0].delta.model_extra for e in got.events)
    assert got.events[-1].usage.completion_tokens_details.reasoning_tokens == R_TOKENS


async def test_a_format_the_protocol_lacks_means_its_default(server: LoopbackServer, oai: openai.AsyncOpenAI) -> None:
    server.default = thinking(reasoning_format="think_tags")
    got = await collect("responses", await open_stream("responses", oai, None))  # type: ignore[arg-type]
    assert any(e.type == "response.reasoning_summary_text.delta" for e in got.events)


# -- Anthropic Messages ------------------------------------------------------------------------


async def test_messages_thinking_block_then_text(server: LoopbackServer, ant: anthropic.AsyncAnthropic) -> None:
    server.default = thinking(cache_creation_input_tokens=7)
    got = await collect("messages", await open_stream("messages", None, ant))  # type: ignore[arg-type]
    assert got.error is None and got.text == ANSWER
    starts = [e for e in got.events if e.type == "content_block_start"]
    assert all(isinstance(e, RawContentBlockStartEvent) for e in starts)
    assert [(e.index, e.content_block.type) for e in starts] == [(0, "thinking"), (1, "text")]
    deltas = [e for e in got.events if e.type == "content_block_delta"]
    assert all(isinstance(e, RawContentBlockDeltaEvent) for e in deltas)
    kinds = [(e.index, e.delta.type) for e in deltas]
    assert kinds == [(0, "thinking_delta")] * R_TOKENS + [(0, "signature_delta")] + [(1, "text_delta")] * A_TOKENS
    thought = [e.delta for e in deltas if isinstance(e.delta, ThinkingDelta)]
    assert "".join(d.thinking for d in thought) == DEFAULT_REASONING
    assert isinstance(deltas[R_TOKENS].delta, SignatureDelta) and deltas[R_TOKENS].delta.signature
    types = [e.type for e in got.events]
    assert types.index("content_block_stop") == types.index("content_block_start", 2) - 1
    assert got.events[types.index("content_block_stop")].index == 0
    assert got.events[0].message.usage.cache_creation_input_tokens == 7
    assert got.events[-2].usage.output_tokens == R_TOKENS + A_TOKENS


async def test_messages_omitted_thinking_carries_only_a_signature(
    server: LoopbackServer, ant: anthropic.AsyncAnthropic
) -> None:
    ant_preset = anthropic.AsyncAnthropic(base_url=server.preset_url("thinking_silent"), api_key="t", max_retries=0)
    async with ant_preset.messages.stream(model="m", max_tokens=100, messages=[{"role": "user", "content": "x"}]) as s:
        events = [e async for e in s]
        message = await s.get_final_message()
    await ant_preset.close()
    deltas = [e.delta.type for e in events if e.type == "content_block_delta"]
    assert deltas[0] == "signature_delta" and "thinking_delta" not in deltas
    assert message.content[0].type == "thinking" and message.content[0].thinking == ""
    assert message.content[0].signature and message.content[1].text.startswith("Loopback servers")


async def test_messages_stream_helper_accumulates_thinking(server: LoopbackServer, ant: anthropic.AsyncAnthropic) -> None:
    server.default = thinking()
    async with ant.messages.stream(model="m", max_tokens=100, messages=[{"role": "user", "content": "x"}]) as stream:
        message = await stream.get_final_message()
    thought, text = message.content
    assert thought.type == "thinking" and thought.thinking == DEFAULT_REASONING and thought.signature
    assert text.type == "text" and text.text == ANSWER


# -- timing, stalls, caps, non-streaming ---------------------------------------------------------


async def _times(protocol: str, stream: Any) -> list[tuple[float, Any]]:
    return [(time.monotonic(), e) async for e in stream]


@pytest.mark.parametrize("reasoning", [None, "silent"])
@pytest.mark.parametrize("protocol", ["responses", "messages"])
async def test_reasoning_opens_before_the_think_pause(
    protocol: str,
    reasoning: str | None,
    server: LoopbackServer,
    oai: openai.AsyncOpenAI,
    ant: anthropic.AsyncAnthropic,
) -> None:
    fmt = "omitted" if reasoning else None
    server.default = Scenario(text=ANSWER, reasoning=reasoning, reasoning_format=fmt, think_seconds=0.3)
    started = time.monotonic()
    timed = await _times(protocol, await open_stream(protocol, oai, ant))
    if protocol == "responses":
        opened = next(t for t, e in timed if e.type == "response.output_item.added")
        answered = next(t for t, e in timed if e.type == "response.output_text.delta")
    else:
        opened = next(t for t, e in timed if e.type == "content_block_start")
        answered = next(t for t, e in timed if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert opened - started < 0.2 and answered - opened >= 0.28


async def test_think_tags_open_before_the_pause(server: LoopbackServer, oai: openai.AsyncOpenAI) -> None:
    server.default = Scenario(text=ANSWER, reasoning_format="think_tags", think_seconds=0.3)
    started = time.monotonic()
    timed = await _times("chat", await open_stream("chat", oai, None))  # type: ignore[arg-type]
    assert timed[0][1].choices[0].delta.content == "<think>\n" and timed[0][0] - started < 0.2
    assert timed[1][1].choices[0].delta.content == "\n</think>\n\n" and timed[1][0] - timed[0][0] >= 0.28


async def test_reasoning_tokens_are_spread_over_think_seconds(server: LoopbackServer, oai: openai.AsyncOpenAI) -> None:
    server.default = Scenario(text="ok", reasoning="one two three four", think_seconds=0.4)
    timed = await _times("chat", await open_stream("chat", oai, None))  # type: ignore[arg-type]
    reasoning_times = [t for t, e in timed if e.choices and getattr(e.choices[0].delta, "reasoning_content", None)]
    answer_time = next(t for t, e in timed if e.choices and e.choices[0].delta.content)
    gaps = [b - a for a, b in itertools.pairwise(reasoning_times)]
    assert len(reasoning_times) == 4 and min(gaps) >= 0.07  # ~0.1 s apart, not in one burst
    assert answer_time - reasoning_times[0] >= 0.27  # the first token came after a quarter of the time


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_stall_during_reasoning_honours_close(
    protocol: str, server: LoopbackServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    server.enqueue(Scenario(kind="stall_during_reasoning", reasoning=DEFAULT_REASONING, after_tokens=2, stall_seconds=5))
    stream = await open_stream(protocol, oai, ant)
    consumer = asyncio.create_task(collect(protocol, stream))
    await asyncio.sleep(0.15)  # let the consumer reach the stall
    closed = time.monotonic()
    await stream.close()
    got = await asyncio.wait_for(consumer, 2)
    record = await asyncio.to_thread(server.wait_closed, 0, 2.0)
    assert record.closed_by_client and record.closed_at is not None and record.closed_at - closed < 0.2
    assert (record.reasoning_deltas_sent, record.deltas_sent) == (2, 0) and got.text == ""
    assert record.scenario_kind == "stall_during_reasoning"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_short_reasoning_stall_then_completes(
    protocol: str, server: LoopbackServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    server.enqueue(Scenario(kind="stall_during_reasoning", reasoning="a b c", stall_seconds=0.15, text=ANSWER))
    started = time.monotonic()
    got = await collect(protocol, await open_stream(protocol, oai, ant))
    assert got.error is None and got.text == ANSWER and time.monotonic() - started >= 0.15
    record = server.wait_closed(0)
    assert (record.reasoning_deltas_sent, record.deltas_sent) == (3, A_TOKENS)


@pytest.mark.parametrize(
    ("protocol", "cap"),
    [("responses", {"max_output_tokens": 3}), ("chat", {"max_tokens": 3}), ("messages", {"max_tokens": 3})],
)
async def test_cap_reached_while_thinking_leaves_no_answer(
    protocol: str, cap: dict, server: LoopbackServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    server.default = thinking(reasoning_format=None)
    got = await collect(protocol, await open_stream(protocol, oai, ant, **cap))
    assert got.error is None and got.text == ""
    if protocol == "responses":
        final = got.events[-1].response
        assert got.events[-1].type == "response.incomplete" and [i.type for i in final.output] == ["reasoning"]
        assert final.usage.output_tokens == final.usage.output_tokens_details.reasoning_tokens == 3
    elif protocol == "chat":
        assert got.events[-1].choices[0].finish_reason == "length"
    else:
        assert [e.content_block.type for e in got.events if e.type == "content_block_start"] == ["thinking"]
        assert got.events[-2].delta.stop_reason == "max_tokens" and got.events[-2].usage.output_tokens == 3
    record = server.wait_closed(0)
    assert (record.reasoning_deltas_sent, record.deltas_sent) == (3, 0)


async def test_non_streaming_answers_include_reasoning(
    server: LoopbackServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    server.default = thinking(think_seconds=0.1)
    started = time.monotonic()
    response = await oai.responses.create(model="m", input="x")
    assert time.monotonic() - started >= 0.1
    assert response.output[0].type == "reasoning" and "\n\n".join(s.text for s in response.output[0].summary) == (
        DEFAULT_REASONING
    )
    assert response.output_text == ANSWER and response.usage.output_tokens_details.reasoning_tokens == R_TOKENS
    completion = await oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    message = completion.choices[0].message
    assert message.content == ANSWER and getattr(message, "reasoning_content", None) == DEFAULT_REASONING
    assert completion.usage.completion_tokens_details.reasoning_tokens == R_TOKENS
    reply = await ant.messages.create(model="m", max_tokens=100, messages=[{"role": "user", "content": "x"}])
    assert [b.type for b in reply.content] == ["thinking", "text"] and reply.content[0].thinking == DEFAULT_REASONING
    assert reply.usage.output_tokens == R_TOKENS + A_TOKENS
    assert [r.reasoning_deltas_sent for r in server.requests] == [R_TOKENS, R_TOKENS, R_TOKENS]


async def test_thinking_preset_by_url(server: LoopbackServer) -> None:
    client = openai.AsyncOpenAI(base_url=f"{server.preset_url('thinking')}/v1", api_key="t", max_retries=0)
    started = time.monotonic()
    got = await collect("chat", await open_stream("chat", client, None))  # type: ignore[arg-type]
    await client.close()
    assert time.monotonic() - started >= 0.45 and got.text.startswith("Loopback servers")
    assert "".join(getattr(e.choices[0].delta, "reasoning_content", None) or "" for e in got.events) == (
        DEFAULT_REASONING
    )
