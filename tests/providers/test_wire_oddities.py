"""Shapes real servers send that the scripted loopback does not: each maps cleanly, none crashes."""

from __future__ import annotations

import json
from types import SimpleNamespace

import aiohttp
import anthropic
import httpx2
import openai
import pytest

from llmtool import errors
from llmtool.providers.sdk_errors import map_sdk_errors
from tests.providers.canned import canned_server, sse_response
from tests.providers.conftest import PROTOCOL_MODELS, service_at


def frames(*events: tuple[str | None, dict]) -> str:
    out = []
    for name, data in events:
        out.append((f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n")
    return "".join(out)


ANTHROPIC_WITHOUT_USAGE = frames(
    ("message_start", {"type": "message_start", "message": {
        "id": "m", "type": "message", "role": "assistant", "model": "x", "content": [],
        "stop_reason": None, "stop_sequence": None}}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}}),
    ("message_stop", {"type": "message_stop"}),
)

CHAT_WITH_NULL_CHOICES = frames(
    (None, {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "x",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}]}),
    (None, {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "x",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    (None, {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "x", "choices": None,
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}),
) + "data: [DONE]\n\n"

RESPONSES_FLAT_ERROR = frames(
    ("error", {"type": "error", "sequence_number": 0, "code": "rate_limit_exceeded", "message": "Slow down", "param": None}),
)


@pytest.mark.parametrize(
    ("protocol", "body"),
    [("messages", ANTHROPIC_WITHOUT_USAGE), ("chat", CHAT_WITH_NULL_CHOICES)],
    ids=["anthropic-message-start-without-usage", "chat-usage-chunk-with-null-choices"],
)
async def test_streams_missing_optional_fields_still_complete(protocol, body):
    async with canned_server(sse_response(body)) as (url, _):
        service = service_at(f"{url}/v1", url)
        run = service.start({"model": PROTOCOL_MODELS[protocol], "prompt": "hi"})
        completed = await run.wait()
        await service.aclose()
    assert completed.kind == "completed" and completed.text == "Hi"


async def test_openai_flat_error_event_is_classified_and_retried_like_the_nested_one():
    async with canned_server(sse_response(RESPONSES_FLAT_ERROR)) as (url, received):
        service = service_at(f"{url}/v1", url, retry={"max_attempts": 2})
        run = service.start({"model": PROTOCOL_MODELS["responses"], "prompt": "hi"})
        failed = await run.wait()
        await service.aclose()
    assert [e.kind for e in run.log] == ["started", "retrying", "failed"]
    assert failed.error_kind == "rate_limited" and "Slow down" in failed.message
    assert len(received) == 2


@pytest.mark.parametrize("value", ["nan", "inf", "soon"])
async def test_a_nonsense_retry_after_falls_back_to_backoff(value):
    body = json.dumps({"error": {"message": "busy", "type": "rate_limit", "code": None, "param": None}})
    response = sse_response(body, status="429 Too Many Requests", headers={"retry-after": value})
    async with canned_server(response) as (url, received):
        service = service_at(f"{url}/v1", url, retry={"max_attempts": 2})
        run = service.start({"model": PROTOCOL_MODELS["chat"], "prompt": "hi"})
        failed = await run.wait()
        await service.aclose()
    retry = run.log[1]
    assert retry.kind == "retrying" and retry.delay < 1  # the backoff's, not nan or forever
    assert failed.error_kind == "rate_limited" and len(received) == 2


async def test_a_retry_after_past_the_deadline_fails_at_once_with_the_real_cause():
    body = json.dumps({"error": {"message": "busy", "type": "rate_limit", "code": None, "param": None}})
    response = sse_response(body, status="429 Too Many Requests", headers={"retry-after": "5"})
    async with canned_server(response) as (url, received):
        service = service_at(f"{url}/v1", url, timeouts={"total": 1, "first_token": 1})
        run = service.start({"model": PROTOCOL_MODELS["chat"], "prompt": "hi"})
        failed = await run.wait()
        await service.aclose()
    assert [e.kind for e in run.log] == ["started", "failed"]
    assert failed.error_kind == "rate_limited" and len(received) == 1


@pytest.mark.parametrize(
    ("raised", "kind", "retryable"),
    [
        (httpx2.ReadTimeout("idle"), "idle_timeout", False),
        (httpx2.RemoteProtocolError("incomplete chunked read"), "connection_failed", True),
        (httpx2.ReadError("reset"), "connection_failed", True),
        (httpx2.LocalProtocolError("bad header"), "connection_failed", False),
    ],
)
def test_raw_httpx2_errors_leaked_while_iterating_are_classified(raised, kind, retryable):
    with pytest.raises(errors.ProviderError) as caught, map_sdk_errors(anthropic, "anthropic"):
        raise raised
    assert caught.value.kind == kind and caught.value.wants_retry is retryable


@pytest.mark.parametrize(
    ("cause", "kind", "words"),
    [
        (aiohttp.ServerDisconnectedError(), "connection_failed", "was lost"),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), "connection_failed", "was lost"),
        (aiohttp.ClientConnectorError(SimpleNamespace(host="127.0.0.1", port=9, ssl=None),
                                      ConnectionRefusedError(111, "refused")), "connection_failed",
         "could not connect"),
        (aiohttp.ConnectionTimeoutError(), "connect_timeout", "in time"),
        (aiohttp.SocketTimeoutError(), "idle_timeout", "sent nothing"),
    ],
)
def test_aiohttp_errors_are_classified_by_their_own_kind(cause, kind, words):
    # The SDKs' aiohttp adapter turns every aiohttp connection error into httpx2.ConnectTimeout;
    # "could not connect in time" for a reset mid-stream would send people after the wrong problem.
    request = httpx2.Request("POST", "http://127.0.0.1:9/v1/responses")
    with pytest.raises(errors.ProviderError) as caught, map_sdk_errors(openai, "openai"):
        try:
            raise httpx2.ConnectTimeout(str(cause)) from cause
        except httpx2.ConnectTimeout as mapped:
            raise openai.APIConnectionError(request=request) from mapped
    assert caught.value.kind == kind and words in str(caught.value)
