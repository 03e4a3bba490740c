"""`/readyz` (a balancer's probe) and draining: 200 while the replica takes runs; 503 with a reason while
draining, or when the store or Redis does not answer; no login. The service refuses new runs while
draining and interrupts, text kept, what outlives the grace period."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from llmtool.errors import ServerDrainingError
from llmtool.service import LLMService, RunRequest
from llmtool.settings import load_settings
from llmtool.web import health
from llmtool.web.app import create_app
from llmtool.web.context import AppContext
from llmtool.web.serve import BackgroundServer
from tests.replicas.processes import free_port
from tests.servers.redis import RedisServer


def _on_loop(context: AppContext, coroutine):  # type: ignore[no-untyped-def]
    assert context._loop is not None
    return asyncio.run_coroutine_threadsafe(coroutine, context._loop).result(timeout=10)


def test_readyz_says_why_a_replica_cannot_take_runs(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(default_model="demo:assistant", database_url=f"sqlite:///{tmp_path / 'runs.db'}")
    context = AppContext(settings, auth=lambda user, password: (user, password) == ("ann", "a long password"))
    with BackgroundServer(create_app(context=context)) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        ready = http.get("/readyz")  # with logins, still none asked
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        service = context.started_service()
        assert service is not None and service.store is not None

        async def broken() -> None:
            raise ConnectionRefusedError

        monkeypatch.setattr(service.store, "ping", broken)
        assert http.get("/readyz").status_code == 200  # the last look is kept a second
        monkeypatch.setattr(health, "CACHE_SECONDS", 0.0)
        down = http.get("/readyz")
        assert down.status_code == 503, down.text
        assert down.json() == {"status": "unavailable",
                               "reason": "the run store does not answer (ConnectionRefusedError)"}
        monkeypatch.undo()
        monkeypatch.setattr(health, "CACHE_SECONDS", 0.0)

        _on_loop(context, context.drain(0))
        draining = http.get("/readyz")
        assert draining.status_code == 503 and draining.json()["status"] == "draining"
        refused = http.post("/api/runs", json={"prompt": "hello"}, auth=("ann", "a long password"))
        assert refused.status_code == 503 and refused.json()["type"] == "/api/problems/draining"
        assert refused.headers["retry-after"] == "5"


def test_readyz_is_503_while_redis_does_not_answer(tmp_path, redis_server: RedisServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "CACHE_SECONDS", 0.0)
    dead = f"redis://127.0.0.1:{free_port()}/0"  # a port nobody listens on
    for url, status in ((redis_server.new_url(), 200), (dead, 503)):
        settings = load_settings(default_model="demo:assistant", database_url=f"sqlite:///{tmp_path / 'runs.db'}",
                                 redis_url=url)
        context = AppContext(settings)
        with BackgroundServer(create_app(context=context)) as server:
            answer = httpx.get(server.url + "/readyz", timeout=10)
        assert answer.status_code == status, answer.text
        if status == 503:
            assert answer.json()["reason"].startswith("Redis does not answer")


async def test_drain_refuses_new_runs_and_interrupts_what_outlives_the_grace() -> None:
    service = LLMService(load_settings(default_model="demo:echo", demo={"first_token_delay": 0, "tokens_per_second": 50}))
    try:
        short = service.start(RunRequest(prompt="a b"))
        long = service.start(RunRequest(prompt=" ".join(f"w{i}" for i in range(500))))
        async for event in long.events():
            if event.kind == "text":
                break
        started = time.monotonic()
        interrupted = await service.drain(0.5)
        assert time.monotonic() - started < 2
        assert interrupted == [long.id]
        assert short.status == "completed"
        assert long.status == "interrupted" and long.terminal is not None
        assert long.terminal.text and long.terminal.text == long.text_so_far()  # type: ignore[union-attr]
        with pytest.raises(ServerDrainingError, match="draining"):
            service.start(RunRequest(prompt="too late"))
    finally:
        await service.aclose()
