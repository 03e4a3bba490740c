"""Each fault scenario as the real SDKs report it, and prompt detection of a client close."""

from __future__ import annotations

import asyncio
import json
import time

import anthropic
import httpx2
import openai
import pytest

from llmtool.loopback import LoopbackServer, Scenario

from .helpers import collect, open_stream

PROTOCOLS = ["responses", "chat", "messages"]


async def test_rate_limit_reaches_openai_as_rate_limit_error(server: LoopbackServer, oai: openai.AsyncOpenAI) -> None:
    server.enqueue("rate_limit")
    with pytest.raises(openai.RateLimitError) as caught:
        await open_stream("responses", oai, None)  # type: ignore[arg-type]
    err = caught.value
    assert err.status_code == 429 and err.code == "rate_limit_exceeded"
    assert err.response.headers["retry-after-ms"] == "200"
    assert err.response.headers["retry-after"] == "1"
    assert err.response.headers["x-request-id"].startswith("req_")
    record = server.wait_closed(0)
    assert record.status == 429 and record.headers["x-stainless-retry-count"] == "0"
    assert len(server.requests) == 1


async def test_rate_limit_reaches_anthropic_as_rate_limit_error(
    server: LoopbackServer, ant: anthropic.AsyncAnthropic
) -> None:
    server.enqueue("rate_limit")
    with pytest.raises(anthropic.RateLimitError) as caught:
        await open_stream("messages", None, ant)  # type: ignore[arg-type]
    assert caught.value.type == "rate_limit_error"
    assert caught.value.response.headers["retry-after-ms"] == "200"


async def test_overloaded_reaches_anthropic_as_overloaded(server: LoopbackServer, ant: anthropic.AsyncAnthropic) -> None:
    server.enqueue("overloaded")
    with pytest.raises(anthropic.OverloadedError) as caught:
        await open_stream("messages", None, ant)  # type: ignore[arg-type]
    err = caught.value
    assert err.status_code == 529 and err.type == "overloaded_error"
    assert err.response.headers["x-should-retry"] == "true"
    assert err.request_id is not None and err.request_id == err.body["request_id"]  # type: ignore[index]
    assert server.wait_closed(0).headers["x-stainless-retry-count"] == "0"


async def test_sdk_retry_honours_retry_after_ms_then_succeeds(server: LoopbackServer) -> None:
    server.enqueue("rate_limit", "normal")
    client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test", max_retries=1)
    started = time.monotonic()
    got = await collect("chat", await open_stream("chat", client, None))  # type: ignore[arg-type]
    await client.close()
    assert got.error is None and time.monotonic() - started >= 0.2
    assert [r.headers["x-stainless-retry-count"] for r in server.requests] == ["0", "1"]
    assert [r.status for r in server.requests] == [429, 200]


async def test_should_not_retry_header_stops_sdk_retries(server: LoopbackServer) -> None:
    server.default = Scenario.preset("should_not_retry")
    client = anthropic.AsyncAnthropic(base_url=server.anthropic_base_url, api_key="test", max_retries=2)
    with pytest.raises(anthropic.InternalServerError):
        await open_stream("messages", None, client)  # type: ignore[arg-type]
    await client.close()
    assert len(server.requests) == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_error_event_mid_stream(
    protocol: str, server: LoopbackServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    server.enqueue(Scenario(kind="error_event", after_tokens=2))
    got = await collect(protocol, await open_stream(protocol, oai, ant))
    assert got.text == "Loopback servers"
    if protocol == "messages":
        assert type(got.error) is anthropic.APIStatusError  # not OverloadedError
        assert got.error.status_code == 200 and got.error.type == "overloaded_error"
    else:
        assert type(got.error) is openai.APIError
        expected = "too_many_requests" if protocol == "responses" else None
        assert got.error.code == expected
    assert server.wait_closed(0).deltas_sent == 2


async def test_response_failed_variant_is_an_event(server: LoopbackServer, oai: openai.AsyncOpenAI) -> None:
    server.enqueue(Scenario(kind="error_event", error_type="response.failed", error_message="boom"))
    got = await collect("responses", await open_stream("responses", oai, None))  # type: ignore[arg-type]
    assert got.error is None
    last = got.events[-1]
    assert last.type == "response.failed" and last.response.status == "failed"
    assert last.response.error.code == "server_error" and last.response.error.message == "boom"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_reset_mid_stream(
    protocol: str, server: LoopbackServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    server.enqueue("reset_mid_stream")
    got = await collect(protocol, await open_stream(protocol, oai, ant))
    assert got.text == "Loopback servers keep"
    if protocol == "messages":  # the Anthropic SDK leaks the transport error
        assert isinstance(got.error, httpx2.TransportError)
    else:
        assert isinstance(got.error, openai.APIConnectionError)
        assert isinstance(got.error.__cause__, httpx2.TransportError)
    record = server.wait_closed(0)
    assert record.deltas_sent == 3 and not record.closed_by_client


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_reset_before_response(
    protocol: str, server: LoopbackServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    server.enqueue("reset_before_response")
    error = openai.APIConnectionError if protocol != "messages" else anthropic.APIConnectionError
    with pytest.raises(error):
        await open_stream(protocol, oai, ant)
    record = server.wait_closed(0)
    assert record.status is None and record.scenario_kind == "reset_before_response"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_no_terminal_event_ends_silently(
    protocol: str, server: LoopbackServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    server.enqueue(Scenario(kind="no_terminal_event", after_tokens=4))
    got = await collect(protocol, await open_stream(protocol, oai, ant))
    assert got.error is None and got.text == "Loopback servers keep streaming"
    if protocol == "responses":
        assert got.events[-1].type == "response.output_text.delta"
    elif protocol == "chat":
        assert all(e.choices[0].finish_reason is None for e in got.events)
    else:
        assert got.events[-1].type == "content_block_delta"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_malformed_json_raises_decode_error(
    protocol: str, server: LoopbackServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    server.enqueue("malformed_json")
    got = await collect(protocol, await open_stream(protocol, oai, ant))
    assert isinstance(got.error, json.JSONDecodeError) and got.text == "Loopback servers keep"


@pytest.mark.parametrize("kind", ["stall_before_first_token", "stall_mid_stream"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_closing_a_stalled_stream_is_seen_within_200ms(
    kind: str, protocol: str, server: LoopbackServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    server.enqueue(Scenario(kind=kind, stall_seconds=5))
    stream = await open_stream(protocol, oai, ant)
    consumer = asyncio.create_task(collect(protocol, stream))
    await asyncio.sleep(0.1)  # let the consumer reach the stall
    closed = time.monotonic()
    await stream.close()
    got = await asyncio.wait_for(consumer, 2)
    record = await asyncio.to_thread(server.wait_closed, 0, 2.0)
    assert record.closed_by_client and record.closed_at is not None
    assert record.closed_at - closed < 0.2
    assert record.deltas_sent == (0 if kind == "stall_before_first_token" else 3)
    assert got.text == ("" if kind == "stall_before_first_token" else "Loopback servers keep")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_short_stall_then_stream_completes(
    protocol: str, server: LoopbackServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    server.enqueue(Scenario(kind="stall_mid_stream", stall_seconds=0.1, text="a b c d e"))
    started = time.monotonic()
    got = await collect(protocol, await open_stream(protocol, oai, ant))
    assert got.error is None and got.text == "a b c d e" and time.monotonic() - started >= 0.1


async def test_stall_longer_than_read_timeout(server: LoopbackServer) -> None:
    server.default = Scenario(kind="stall_before_first_token", stall_seconds=2)
    timeout = httpx2.Timeout(0.2, connect=1)
    oai = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="t", max_retries=0, timeout=timeout)
    ant = anthropic.AsyncAnthropic(base_url=server.anthropic_base_url, api_key="t", max_retries=0, timeout=timeout)
    got = await collect("responses", await open_stream("responses", oai, ant))
    assert isinstance(got.error, openai.APITimeoutError)
    got = await collect("messages", await open_stream("messages", oai, ant))
    assert isinstance(got.error, httpx2.ReadTimeout)  # raw, not an SDK error
    await oai.close()
    await ant.close()
    for index in (0, 1):
        assert server.wait_closed(index, 2.0).closed_by_client
