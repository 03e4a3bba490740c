"""Normal streams through the real SDKs, plus the raw bytes on the socket."""

from __future__ import annotations

import asyncio
import time

import anthropic
import openai
import pytest

from llmtool.loopback import DEFAULT_TEXT, LoopbackServer, Scenario, split_tokens

from .helpers import collect, open_stream

PROTOCOLS = ["responses", "chat", "messages"]


async def test_responses_stream_parses(server: LoopbackServer, oai: openai.AsyncOpenAI) -> None:
    server.default = Scenario(input_tokens=20, cached_input_tokens=5)
    got = await collect("responses", await open_stream("responses", oai, None, model="gpt-test"))  # type: ignore[arg-type]
    assert got.error is None and got.text == DEFAULT_TEXT
    assert got.events[0].type == "response.created"
    final = got.events[-1]
    assert final.type == "response.completed" and final.response.model == "gpt-test"
    usage = final.response.usage
    assert (usage.input_tokens, usage.input_tokens_details.cached_tokens) == (20, 5)
    assert usage.output_tokens == len(split_tokens(DEFAULT_TEXT))
    assert usage.output_tokens_details.reasoning_tokens == 0
    assert final.response.output_text == DEFAULT_TEXT
    seqs = [e.sequence_number for e in got.events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


async def test_chat_stream_parses_with_usage(server: LoopbackServer, oai: openai.AsyncOpenAI) -> None:
    server.default = Scenario(input_tokens=20, cached_input_tokens=5)
    stream = await open_stream("chat", oai, None, model="llama-test", stream_options={"include_usage": True})  # type: ignore[arg-type]
    got = await collect("chat", stream)
    assert got.error is None and got.text == DEFAULT_TEXT
    assert got.events[0].choices[0].delta.role == "assistant"
    assert got.events[-2].choices[0].finish_reason == "stop"
    assert got.events[-1].choices == []
    usage = got.events[-1].usage
    assert (usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens) == (20, 5)
    assert usage.completion_tokens == len(split_tokens(DEFAULT_TEXT))
    assert usage.total_tokens == 20 + usage.completion_tokens
    assert {e.model for e in got.events} == {"llama-test"}


async def test_chat_stream_without_usage_option(oai: openai.AsyncOpenAI) -> None:
    got = await collect("chat", await open_stream("chat", oai, None))  # type: ignore[arg-type]
    assert got.text == DEFAULT_TEXT and all(e.usage is None for e in got.events)
    assert got.events[-1].choices[0].finish_reason == "stop"


async def test_messages_stream_parses(server: LoopbackServer, ant: anthropic.AsyncAnthropic) -> None:
    server.default = Scenario(input_tokens=20, cached_input_tokens=5)
    got = await collect("messages", await open_stream("messages", None, ant, model="claude-test"))  # type: ignore[arg-type]
    assert got.error is None and got.text == DEFAULT_TEXT
    types = [e.type for e in got.events]
    assert types[:2] == ["message_start", "content_block_start"]  # the SDK drops ping
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start = got.events[0].message
    assert start.model == "claude-test"
    assert (start.usage.input_tokens, start.usage.cache_read_input_tokens, start.usage.output_tokens) == (20, 5, 1)
    delta = got.events[-2]
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == len(split_tokens(DEFAULT_TEXT))


async def test_messages_stream_helper_accumulates(ant: anthropic.AsyncAnthropic) -> None:
    async with ant.messages.stream(model="m", max_tokens=100, messages=[{"role": "user", "content": "x"}]) as stream:
        message = await stream.get_final_message()
    assert message.content[0].text == DEFAULT_TEXT and message.stop_reason == "end_turn"


@pytest.mark.parametrize(
    ("protocol", "cap"),
    [("responses", {"max_output_tokens": 5}), ("chat", {"max_tokens": 5}),
     ("chat", {"max_completion_tokens": 5}), ("messages", {"max_tokens": 5})],
)  # fmt: skip
async def test_max_tokens_truncates(
    protocol: str, cap: dict, server: LoopbackServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    got = await collect(protocol, await open_stream(protocol, oai, ant, **cap))
    assert got.error is None and got.text == "".join(split_tokens(DEFAULT_TEXT)[:5])
    last = got.events[-1]
    if protocol == "responses":
        assert last.type == "response.incomplete"
        assert last.response.incomplete_details.reason == "max_output_tokens"
        assert last.response.usage.output_tokens == 5
    elif protocol == "chat":
        assert last.choices[0].finish_reason == "length"
    else:
        assert got.events[-2].delta.stop_reason == "max_tokens" and got.events[-2].usage.output_tokens == 5
    assert server.wait_closed(0).deltas_sent == 5


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_requests_are_recorded(
    protocol: str, server: LoopbackServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    await collect(protocol, await open_stream(protocol, oai, ant))
    record = server.wait_closed(0)
    assert record.method == "POST" and record.protocol == protocol
    assert record.path == {"responses": "/v1/responses", "chat": "/v1/chat/completions", "messages": "/v1/messages"}[protocol]
    assert record.headers["x-stainless-retry-count"] == "0"
    assert record.body["stream"] is True and record.body["model"] == "test-model"
    assert record.status == 200 and record.scenario_kind == "normal"
    assert record.deltas_sent == len(split_tokens(DEFAULT_TEXT)) and not record.closed_by_client
    assert record.closed_at is not None and record.closed_at >= record.received_at


async def test_tokens_per_second_paces_deltas(server: LoopbackServer, oai: openai.AsyncOpenAI) -> None:
    server.default = Scenario(text="one two three four five six seven eight nine ten", tokens_per_second=100)
    started = time.monotonic()
    got = await collect("chat", await open_stream("chat", oai, None))  # type: ignore[arg-type]
    assert got.text.endswith("ten") and time.monotonic() - started >= 0.09


async def test_raw_bytes_are_chunked_sse(server: LoopbackServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    body = b'{"model":"m","stream":true,"max_tokens":2,"messages":[]}'
    writer.write(
        b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    lines = head.lower().split(b"\r\n")
    assert b"content-type: text/event-stream; charset=utf-8" in lines
    assert b"transfer-encoding: chunked" in lines and b"connection: close" in lines
    assert any(line.startswith(b"request-id: req_") for line in lines)
    assert rest.endswith(b"0\r\n\r\n")
    size, _, after = rest.partition(b"\r\n")
    first = after[: int(size, 16)]
    assert first.startswith(b'event: message_start\ndata: {"type":"message_start","message":{')
    assert b'event: ping\ndata: {"type": "ping"}\n\n' in rest
    assert b'event: message_stop\ndata: {"type":"message_stop"}\n\n' in rest


async def test_non_streaming_requests_get_json(
    oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    response = await oai.responses.create(model="m", input="x")
    assert response.output_text == DEFAULT_TEXT and response.status == "completed"
    completion = await oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], max_tokens=2)
    assert completion.choices[0].message.content == "Loopback servers"
    assert completion.choices[0].finish_reason == "length"
    message = await ant.messages.create(model="m", max_tokens=100, messages=[{"role": "user", "content": "x"}])
    assert message.content[0].text == DEFAULT_TEXT and message.usage.output_tokens == len(split_tokens(DEFAULT_TEXT))
