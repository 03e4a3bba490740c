"""Two replicas of the app (two servers, each its own event loop, as two processes would be) sharing a
real PostgreSQL store and a real Redis: a run started on A is followed live over SSE on B, resumed from
a Last-Event-ID, and stopped from B (the loopback upstream sees its connection closed). Without Redis,
B follows A's runs through the store as before."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from httpx_sse import connect_sse

from llmtool.loopback import LoopbackServer, Scenario
from llmtool.web.app import create_app
from llmtool.web.context import AppContext
from llmtool.web.serve import BackgroundServer
from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer
from tests.web.support import make_settings, send_form, start_run, state, token, wait_status

MODEL = "openai:gpt-4.1-mini"


def _pair(loopback: LoopbackServer, folder, database_url: str, redis_url: str | None) -> Iterator[tuple[BackgroundServer, ...]]:  # type: ignore[no-untyped-def]
    contexts = [AppContext(make_settings(loopback, folder, database_url=database_url, redis_url=redis_url,
                                         store={"flush_interval": 0.1, "heartbeat_interval": 0.5}))
                for _ in range(2)]
    with BackgroundServer(create_app(context=contexts[0])) as a, BackgroundServer(create_app(context=contexts[1])) as b:
        a.context, b.context = contexts  # type: ignore[attr-defined]
        yield a, b


@pytest.fixture(scope="module")
def replicas(loopback: LoopbackServer, postgres_server: PostgresServer, redis_server: RedisServer,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundServer, ...]]:
    yield from _pair(loopback, tmp_path_factory.mktemp("replicas"), postgres_server.new_database(),
                     redis_server.new_url())


def read_events(client: httpx.Client, run_id: str, headers: dict | None = None, limit: int | None = None) -> list:
    seen = []
    with connect_sse(client, "GET", f"/api/runs/{run_id}/events", headers=headers or {}) as source:
        for sse in source.iter_sse():
            seen.append(sse)
            if limit is not None and len(seen) >= limit:
                break
    return seen


def known_on(client: httpx.Client, run_id: str, timeout: float = 2.0) -> dict:
    """The run's status as another replica answers it, once that replica knows it: the owner writes a
    new run to the store at once, which takes a few milliseconds (until then: 404)."""
    deadline = time.monotonic() + timeout
    while (answer := client.get(f"/api/runs/{run_id}")).status_code == 404:
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.01)
    assert answer.status_code == 200, answer.text
    return answer.json()


def on_loop(server: BackgroundServer, coroutine):  # type: ignore[no-untyped-def]
    """Run `coroutine` on the server's own event loop (where its replicas live); its result."""
    context: AppContext = server.context  # type: ignore[attr-defined]
    return asyncio.run_coroutine_threadsafe(coroutine, context._loop).result(timeout=10)  # type: ignore[arg-type]


def test_a_run_of_replica_a_is_followed_live_on_b_and_resumed_from_a_last_event_id(
        replicas: tuple[BackgroundServer, ...], upstream: LoopbackServer) -> None:
    a, b = replicas
    upstream.enqueue(Scenario(tokens_per_second=60))  # ~2 s of text: B reads while A streams
    with httpx.Client(base_url=a.url, timeout=10) as on_a, httpx.Client(base_url=b.url, timeout=10) as on_b:
        run = start_run(on_a, {"model": MODEL, "prompt": "Tell me a story"})
        assert b.context.started_service().get(run["id"]) is None  # type: ignore[attr-defined]  # B does not run it
        known_on(on_b, run["id"])
        replicas_b = b.context.replicas  # type: ignore[attr-defined]
        follows = []
        real_follow = replicas_b.follow
        replicas_b.follow = lambda run_id, start: follows.append(start) or real_follow(run_id, start)
        began = time.monotonic()
        first = read_events(on_b, run["id"], limit=6)
        assert [e.id for e in first] == ["0", "1", "2", "3", "4", "5"]
        assert time.monotonic() - began < 1.5  # live: B did not wait for the run to end
        rest = read_events(on_b, run["id"], headers={"Last-Event-ID": "5"})
        assert not upstream.requests[0].closed_by_client  # reading elsewhere never stopped it
        seen = first + rest
        assert [int(e.id) for e in seen] == list(range(len(seen)))  # in order, nothing lost, nothing twice
        assert seen[-1].event == "completed"
        assert follows == [0, 6]  # both through Redis
        del replicas_b.follow
        on_owner = read_events(on_a, run["id"])
        assert [(e.id, e.event, e.data) for e in seen] == [(e.id, e.event, e.data) for e in on_owner]
        text = "".join(json.loads(e.data)["text"] for e in seen if e.event == "text")
        assert text == json.loads(seen[-1].data)["text"]


def test_stop_on_b_stops_the_run_on_a_and_closes_its_upstream_connection(
        replicas: tuple[BackgroundServer, ...], upstream: LoopbackServer) -> None:
    a, b = replicas
    upstream.enqueue(Scenario(tokens_per_second=20))
    with httpx.Client(base_url=a.url, timeout=10) as on_a, httpx.Client(base_url=b.url, timeout=10) as on_b:
        run = start_run(on_a, {"model": MODEL, "prompt": "Tell me a story"})
        known_on(on_b, run["id"])
        wait_status(on_b, run["id"], lambda s: s["text"])  # streaming, as B sees it (through the store)
        began = time.monotonic()
        stopped = on_b.post(f"/api/runs/{run['id']}/cancel")  # the API's Stop, on the replica that is not the owner
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["status"] == "stopped" and stopped.json()["cancel_requested"]
        assert time.monotonic() - began < 2
        record = upstream.wait_closed(0, timeout=2)
        assert record.closed_by_client and record.deltas_sent < 40
        assert on_b.get(f"/api/runs/{run['id']}").json()["status"] == "stopped"  # B's answer agrees at once
        followed = read_events(on_b, run["id"])
        assert followed[-1].event == "stopped"
        assert [int(e.id) for e in followed] == list(range(len(followed)))


def test_lite_stop_on_b_stops_the_run_on_a_and_its_page_on_b_says_stopped(
        replicas: tuple[BackgroundServer, ...], upstream: LoopbackServer) -> None:
    """/lite is round robin behind `llmtool serve`: its Stop reaches the replica that runs the answer
    through Redis, as the API's cancel does (it used to answer 409 "Stop it where it runs")."""
    a, b = replicas
    upstream.enqueue(Scenario(tokens_per_second=20))
    with httpx.Client(base_url=a.url, timeout=10) as on_a, httpx.Client(base_url=b.url, timeout=10) as on_b:
        location = send_form(on_a, model=MODEL, prompt="Tell me a story")
        run_id = location.rsplit("/", 1)[1]
        assert b.context.started_service().get(run_id) is None  # type: ignore[attr-defined]  # B does not run it
        wait_status(on_b, run_id, lambda s: s["text"])  # streaming, as B sees it (through the store)
        began = time.monotonic()
        stopped = on_b.post(location + "/stop", data={"csrf_token": token(on_b)})
        assert stopped.status_code == 303, stopped.text
        assert stopped.headers["location"] == location
        assert time.monotonic() - began < 2.5
        answer = next(r for r in upstream.requests if r.protocol not in (None, "models"))  # (the form listed models)
        record = upstream.wait_closed(answer.index, timeout=2)
        assert record.closed_by_client and record.deltas_sent < 40
        page = on_b.get(location)  # the page the 303 leads to, on B: the store already says so
        assert page.status_code == 200 and state(page).startswith("Stopped"), state(page)
        assert on_a.get(f"/api/runs/{run_id}").json()["status"] == "stopped"


def test_without_redis_b_follows_a_through_the_store_as_before(
        loopback: LoopbackServer, upstream: LoopbackServer, tmp_path) -> None:
    for a, b in _pair(loopback, tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}", None):
        assert a.context.replicas is None and b.context.replicas is None  # type: ignore[attr-defined]
        upstream.enqueue(Scenario(tokens_per_second=200))
        with httpx.Client(base_url=a.url, timeout=10) as on_a, httpx.Client(base_url=b.url, timeout=10) as on_b:
            run = start_run(on_a, {"model": MODEL, "prompt": "Tell me a story"})
            known_on(on_b, run["id"])
            followed = read_events(on_b, run["id"])
            assert followed[-1].event == "completed"
            assert [int(e.id) for e in followed] == list(range(len(followed)))
            assert [(e.id, e.data) for e in followed] == [(e.id, e.data) for e in read_events(on_a, run["id"])]
