"""A login's role through the HTTP API: a forbidden model is 403, runs per minute and a spent budget are
429 with Retry-After, and a refused run never reaches the provider (the loopback server records every
request); without logins the same settings limit nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from httpx_sse import connect_sse

from llmtool.accounts.principal import Principal
from llmtool.events import Metrics
from llmtool.loopback import LoopbackServer
from llmtool.store import RunRecord, open_store
from llmtool.web.app import create_app
from llmtool.web.context import AppContext
from llmtool.web.serve import BackgroundServer
from tests.web.support import make_settings, start_run, wait_status

MODEL = "openai:gpt-4.1-mini"
USERS = {"ann": ("pw-ann", "partner"), "bob": ("pw-bob", "member")}
ROLES = {"partner": {"models": ["openai:gpt-4.1*", "demo:*"], "runs_per_minute": 3, "daily_budget": 1.0}}


@pytest.fixture(scope="module")
def context(loopback: LoopbackServer, tmp_path_factory: pytest.TempPathFactory) -> AppContext:
    return AppContext(make_settings(loopback, tmp_path_factory.mktemp("limits"), roles=ROLES))


@pytest.fixture(scope="module")
def served(context: AppContext) -> Iterator[BackgroundServer]:
    app = create_app(context=context, auth=lambda user, password: USERS.get(user, ("", ""))[0] == password)
    with BackgroundServer(app) as server:
        service = context.started_service()
        assert service is not None
        roles = context.settings.roles
        service.principals = lambda user: (Principal(user, USERS[user][1], roles[USERS[user][1]])
                                           if user in USERS else None)
        yield server


def client(server: BackgroundServer, user: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=(user, USERS[user][0]), timeout=10)


@pytest.fixture
def fresh_minute(context: AppContext) -> None:
    """Each test starts with nobody's runs of the last minute counted."""
    fresh_minute_again(context)


def test_a_model_the_role_does_not_allow_is_403_and_nothing_is_sent(served, upstream: LoopbackServer,
                                                                    fresh_minute) -> None:
    with client(served, "ann") as ann:
        answer = ann.post("/api/runs", json={"model": "openai:gpt-4o", "prompt": "Hello"})
        assert answer.status_code == 403, answer.text
        problem = answer.json()
        assert problem["type"] == "/api/problems/forbidden"
        assert problem["detail"].startswith("Your role (partner) may not use openai:gpt-4o")
        unpriced = ann.post("/api/runs", json={"model": "openai:gpt-4.1-future", "prompt": "Hello"})
        assert unpriced.status_code == 403 and "is unknown" in unpriced.json()["detail"]
    assert upstream.requests == []
    with client(served, "bob") as bob:  # a member may
        run = start_run(bob, {"model": "openai:gpt-4o", "prompt": "Hello"})
        wait_status(bob, run["id"], lambda s: s["status"] == "completed")
    assert len(upstream.requests) == 1


def test_runs_per_minute_is_429_with_retry_after(served, upstream: LoopbackServer, fresh_minute) -> None:
    with client(served, "ann") as ann:
        runs = [start_run(ann, {"model": MODEL, "prompt": f"n{i}"}) for i in range(3)]
        answer = ann.post("/api/runs", json={"model": MODEL, "prompt": "one too many"})
        assert answer.status_code == 429, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert 55 <= int(answer.headers["retry-after"]) <= 60
        problem = answer.json()
        assert problem["type"] == "/api/problems/too-many-runs" and problem["retry_after"] == int(
            answer.headers["retry-after"])
        assert problem["detail"].startswith("You have started 3 runs in the last minute")
        for run in runs:
            wait_status(ann, run["id"], lambda s: s["status"] == "completed")
    assert sorted(r.body["input"][-1]["content"] for r in upstream.requests) == ["n0", "n1", "n2"]


def test_a_repeated_idempotency_key_is_answered_past_the_limit_and_a_refused_one_stays_free(
        served, context: AppContext, upstream: LoopbackServer, fresh_minute) -> None:
    with client(served, "ann") as ann:
        first = ann.post("/api/runs", json={"model": MODEL, "prompt": "n0"}, headers={"Idempotency-Key": "k-1"})
        assert first.status_code == 202
        for i in (1, 2):
            start_run(ann, {"model": MODEL, "prompt": f"n{i}"})
        again = ann.post("/api/runs", json={"model": MODEL, "prompt": "n0"}, headers={"Idempotency-Key": "k-1"})
        assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
        assert again.json()["id"] == first.json()["id"]  # the first request's run, though the minute is full
        refused = ann.post("/api/runs", json={"model": MODEL, "prompt": "n3"}, headers={"Idempotency-Key": "k-2"})
        assert refused.status_code == 429
        fresh_minute_again(context)
        later = ann.post("/api/runs", json={"model": MODEL, "prompt": "n3"}, headers={"Idempotency-Key": "k-2"})
        assert later.status_code == 202 and "idempotent-replayed" not in later.headers  # a new request
        wait_status(ann, later.json()["id"], lambda s: s["status"] == "completed")
    assert len(upstream.wait_for_requests(4)) == 4


def fresh_minute_again(context: AppContext) -> None:
    service = context.started_service()
    assert service is not None
    service.limits.counters._events.clear()  # type: ignore[attr-defined]


def test_a_spent_budget_is_429_with_the_sentence_and_the_refused_run_costs_nothing(
        served, context: AppContext, upstream: LoopbackServer, fresh_minute) -> None:
    record = RunRecord(id=uuid.uuid4().hex[:12], user="ann", model=MODEL, request={"model": MODEL},
                       status="completed", metrics=Metrics(cost_usd=1.25), created_at=time.time() - 5)
    asyncio.run(_save(context.settings.database_url, record))  # as another process of the deployment would
    with client(served, "ann") as ann:
        answer = ann.post("/api/runs", json={"model": MODEL, "prompt": "Hello"})
        assert answer.status_code == 429, answer.text
        problem = answer.json()
        assert problem["type"] == "/api/problems/budget-exceeded"
        assert problem["detail"].startswith("You have spent $1.25 of your $1.00 daily budget; it resets at "
                                            "00:00 UTC (in ")
        midnight = (int(time.time()) // 86400 + 1) * 86400
        assert abs(int(answer.headers["retry-after"]) - (midnight - time.time())) < 5
        # The same refusal for the cheapest thing that costs: nothing reached the provider.
        assert ann.post("/api/runs", json={"model": MODEL, "prompt": "x"}).status_code == 429
        runs = ann.get("/api/runs").json()
    assert upstream.requests == []
    assert [r["id"] for r in runs["runs"] if r["status"] != "completed" or r["id"] == record.id] == [record.id]


def test_a_second_users_first_token_comes_promptly_while_the_first_has_many_queued(loopback, tmp_path) -> None:
    settings = make_settings(loopback, tmp_path, first_token_delay=0.05, tokens_per_second=40,
                             runs={"max_concurrent": 8, "user_headroom": 2})
    context = AppContext(settings)
    app = create_app(context=context, auth=lambda user, password: USERS.get(user, ("", ""))[0] == password)
    with BackgroundServer(app) as server, client(server, "ann") as ann, client(server, "bob") as bob:
        service = context.started_service()
        assert service is not None
        service.principals = lambda user: Principal(user, "member", settings.roles["member"])
        burst = [start_run(ann, {"model": "demo:assistant", "prompt": f"story {i}"}) for i in range(30)]
        assert service.limits.scheduler.waiting("ann") == 24
        began = time.monotonic()
        quick = start_run(bob, {"model": "demo:echo", "prompt": "Hi there"})
        with connect_sse(bob, "GET", f"/api/runs/{quick['id']}/events") as source:
            kinds = []
            for sse in source.iter_sse():
                kinds.append(sse.event)
                if sse.event == "text":
                    break
        waited = time.monotonic() - began
        assert kinds == ["started", "text"] and waited < 1.5, (kinds, waited)
        assert service.limits.scheduler.waiting("ann") >= 20  # ann's burst was still queued meanwhile
        with connect_sse(ann, "GET", f"/api/runs/{burst[-1]['id']}/events") as source:
            frames = iter(source.iter_sse())
            assert [next(frames).event, next(frames).event] == ["started", "notice"]  # the last one says it waits
        for run in burst:
            ann.post(f"/api/runs/{run['id']}/cancel")


def test_without_logins_the_same_roles_limit_nothing(loopback: LoopbackServer, tmp_path) -> None:
    loopback.reset()
    context = AppContext(make_settings(loopback, tmp_path, roles={"partner": {"runs_per_minute": 1}}))
    with BackgroundServer(create_app(context=context)) as server, \
            httpx.Client(base_url=server.url, timeout=10) as http:
        runs = [start_run(http, {"model": MODEL, "prompt": f"n{i}"}) for i in range(4)]
        for run in runs:
            wait_status(http, run["id"], lambda s: s["status"] == "completed")
    assert len(loopback.requests) == 4


async def _save(database_url: str | None, record: RunRecord) -> None:
    store = await open_store(database_url)
    try:
        await store.save([record], [])
    finally:
        await store.aclose()
