"""Scenario selection (queue, URL prefix, default), the HTTP control API and lifecycle."""

from __future__ import annotations

import anthropic
import httpx2
import openai
import pytest

from llmtool.loopback import DEFAULT_TEXT, LoopbackServer, Scenario

from .helpers import collect, open_stream


async def test_url_prefix_selects_preset(server: LoopbackServer) -> None:
    oai = openai.AsyncOpenAI(base_url=f"{server.preset_url('rate_limit')}/v1", api_key="t", max_retries=0)
    ant = anthropic.AsyncAnthropic(base_url=server.preset_url("overloaded"), api_key="t", max_retries=0)
    with pytest.raises(openai.RateLimitError):
        await open_stream("chat", oai, ant)
    with pytest.raises(anthropic.OverloadedError):
        await open_stream("messages", oai, ant)
    await oai.close()
    await ant.close()
    first, second = server.requests
    assert (first.path, first.preset, first.status) == ("/v1/chat/completions", "rate_limit", 429)
    assert first.target == "/scenario/rate_limit/v1/chat/completions"
    assert (second.path, second.preset, second.status) == ("/v1/messages", "overloaded", 529)


async def test_unknown_preset_is_404_naming_valid_ones(server: LoopbackServer) -> None:
    ant = anthropic.AsyncAnthropic(base_url=server.preset_url("nope"), api_key="t", max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as caught:
        await open_stream("messages", None, ant)  # type: ignore[arg-type]
    await ant.close()
    assert caught.value.type == "not_found_error"
    assert "'nope'" in str(caught.value) and "rate_limit" in str(caught.value)


async def test_queue_is_fifo_then_default(server: LoopbackServer, oai: openai.AsyncOpenAI) -> None:
    server.default = Scenario(text="default answer")
    server.enqueue("rate_limit", Scenario(kind="http_error", status=503), Scenario(text="scripted"))
    with pytest.raises(openai.RateLimitError):
        await open_stream("chat", oai, None)  # type: ignore[arg-type]
    with pytest.raises(openai.InternalServerError):
        await open_stream("chat", oai, None)  # type: ignore[arg-type]
    assert (await collect("chat", await open_stream("chat", oai, None))).text == "scripted"  # type: ignore[arg-type]
    assert (await collect("chat", await open_stream("chat", oai, None))).text == "default answer"  # type: ignore[arg-type]
    assert [r.status for r in server.requests] == [429, 503, 200, 200]


async def test_queue_wins_over_url_prefix(server: LoopbackServer) -> None:
    server.enqueue("normal")
    oai = openai.AsyncOpenAI(base_url=f"{server.preset_url('server_error')}/v1", api_key="t", max_retries=0)
    assert (await collect("responses", await open_stream("responses", oai, None))).text == DEFAULT_TEXT  # type: ignore[arg-type]
    with pytest.raises(openai.InternalServerError):
        await open_stream("responses", oai, None)  # type: ignore[arg-type]
    await oai.close()


def test_control_api(server: LoopbackServer) -> None:
    with httpx2.Client(base_url=server.url) as http:
        queued = http.post("/_loopback/enqueue", json=[{"kind": "http_error", "status": 503}, "rate_limit"])
        assert queued.status_code == 200 and queued.json() == {"queued": 2}
        assert http.post("/v1/chat/completions", json={"model": "m", "stream": True}).status_code == 503
        assert http.post("/v1/chat/completions", json={"model": "m", "stream": True}).status_code == 429
        server.wait_closed(1)
        records = http.get("/_loopback/requests").json()
        assert [(r["path"], r["status"], r["scenario_kind"]) for r in records] == [
            ("/v1/chat/completions", 503, "http_error"),
            ("/v1/chat/completions", 429, "http_error"),
        ]
        assert records[0]["headers"]["content-type"] == "application/json"
        bad = http.post("/_loopback/enqueue", json=[{"kind": "explode"}])
        assert bad.status_code == 400 and "error" in bad.json()
        assert http.post("/_loopback/enqueue", json=["nope"]).status_code == 400
        http.post("/_loopback/enqueue", json="rate_limit")
        assert http.post("/_loopback/reset").json() == {"ok": True}
        assert http.get("/_loopback/requests").json() == []
        assert http.post("/v1/chat/completions", json={"model": "m", "stream": True}).status_code == 200
        assert "normal" in http.get("/_loopback/presets").json()
        assert http.get("/_loopback/nothing").status_code == 404


def test_unknown_route_and_method(server: LoopbackServer) -> None:
    with httpx2.Client(base_url=server.url) as http:
        missing = http.post("/v1/embeddings", json={})
        assert missing.status_code == 404
        assert missing.json()["error"]["message"] == "Invalid URL (POST /v1/embeddings)"
        assert http.get("/v1/messages").json()["type"] == "error"  # Anthropic shape by path
    assert [r.status for r in server.wait_for_requests(2)] == [404, 405]


def test_reset_and_wait_closed_timeout(server: LoopbackServer) -> None:
    server.enqueue("rate_limit")
    server.reset()
    with httpx2.Client(base_url=server.url) as http:
        assert http.post("/v1/responses", json={"model": "m", "stream": True}).status_code == 200
    assert server.wait_closed(0).status == 200
    with pytest.raises(TimeoutError):
        server.wait_closed(5, timeout=0.05)


def test_lifecycle_and_port_in_use() -> None:
    server = LoopbackServer(tokens_per_second=1000).start()
    try:
        assert server.openai_base_url == f"http://127.0.0.1:{server.port}/v1"
        assert server.anthropic_base_url == server.url
        with pytest.raises(OSError):
            LoopbackServer(port=server.port).start()
        with pytest.raises(RuntimeError):
            server.start()
    finally:
        server.stop()
    server.stop()  # idempotent
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(f"{server.url}/_loopback/requests", timeout=1)
