"""Limits counted across replicas through a real Redis (and a real store): runs per minute, each login's
runs in flight (its concurrency and its budgets), failed logins. First the Redis implementations alone
(two clients or owners act as two replicas), then services and a replica process killed outright, then
two app servers sharing one PostgreSQL store and one Redis through the HTTP API."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from llmtool.accounts.principal import Principal
from llmtool.catalog import Catalog
from llmtool.errors import BudgetExceededError, TooManyRunsError
from llmtool.replicas.counters import RedisCounters
from llmtool.replicas.guard import Guard, async_client, sync_client
from llmtool.replicas.limits import share_limits
from llmtool.replicas.runs import KEY as INFLIGHT_KEY
from llmtool.replicas.runs import RedisRuns
from llmtool.replicas.throttle import RedisThrottle
from llmtool.service import LLMService, RunRequest
from llmtool.service.limits import Limits
from llmtool.service.shared import RunElsewhere
from llmtool.settings import LoginThrottle
from llmtool.web.app import create_app
from llmtool.web.context import AppContext
from llmtool.web.serve import BackgroundServer
from tests.accounts.support import users_file
from tests.replicas.conftest import words
from tests.replicas.limits_support import ROLE_OF, ROLES, limited_settings, origin, principals
from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer
from tests.web.support import make_settings, start_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[Callable[[], Redis]]:
    """`sync_redis()`: one more synchronous client of the test's Redis database (one per replica)."""
    made: list[Redis] = []

    def make() -> Redis:
        made.append(sync_client(redis_url))
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.fixture
async def redis_runs(redis_url: str, sync_redis: Callable[[], Redis]) -> AsyncIterator[Callable[..., RedisRuns]]:
    """`redis_runs(**options)`: one replica's `RedisRuns` on the test's Redis database."""
    made: list[tuple[RedisRuns, AsyncRedis]] = []

    def make(**options: Any) -> RedisRuns:
        aclient = async_client(redis_url)
        made.append((RedisRuns(sync_redis(), aclient, **options), aclient))
        return made[-1][0]

    yield make
    for runs, aclient in made:
        await runs.aclose()
        await aclient.aclose()


# -- runs per minute --------------------------------------------------------------------------------
def test_two_replicas_count_one_window(sync_redis: Callable[[], Redis]) -> None:
    a, b = RedisCounters(sync_redis()), RedisCounters(sync_redis())
    assert [a.hit("starts:ann", 3, 60), b.hit("starts:ann", 3, 60), a.hit("starts:ann", 3, 60)] == [0.0] * 3
    wait = b.hit("starts:ann", 3, 60)  # the fourth start of the minute, on the replica that counted one
    assert 59 < wait <= 60
    assert a.peek("starts:ann", 3, 60) == pytest.approx(wait, abs=0.5)
    assert a.count("starts:ann", 60) == b.count("starts:ann", 60) == 3  # the refused ones counted nothing
    assert b.hit("starts:bob", 3, 60) == 0.0 and a.count("starts:bob", 60) == 1  # each key its own


def test_the_window_slides_and_a_quiet_key_goes(sync_redis: Callable[[], Redis]) -> None:
    client = sync_redis()
    counters = RedisCounters(client)
    assert counters.hit("k", 2, 0.5) == 0.0 and counters.hit("k", 2, 0.5) == 0.0
    wait = counters.hit("k", 2, 0.5)
    assert 0 < wait <= 0.5
    time.sleep(wait + 0.02)
    assert counters.hit("k", 2, 0.5) == 0.0  # the oldest left the window
    assert 0 < client.pttl("llmtool:count:k") <= 500  # the key lives a window after its last event
    time.sleep(0.55)
    assert counters.count("k", 0.5) == 0 and not client.exists("llmtool:count:k")


def test_replicas_starting_at_once_count_exactly_the_limit(sync_redis: Callable[[], Redis]) -> None:
    replicas = [RedisCounters(sync_redis()), RedisCounters(sync_redis())]
    barrier = threading.Barrier(16)
    answers: list[float] = []

    def start(counters: RedisCounters) -> None:
        barrier.wait()
        answers.append(counters.hit("starts:ann", 5, 60))

    threads = [threading.Thread(target=start, args=(replicas[i % 2],)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers.count(0.0) == 5 and replicas[0].count("starts:ann", 60) == 5


# -- runs in flight ---------------------------------------------------------------------------------
async def test_a_claim_counts_only_other_replicas_runs_and_takes_the_last_slot_once(redis_runs) -> None:
    a, b = redis_runs(), redis_runs()
    now = time.time()
    assert a.claim("ann", "a1", 2, now) == 0 and a.claim("ann", "a2", 2, now) == 0  # A's own: its scheduler's
    assert b.elsewhere("ann") == 2 and a.elsewhere("ann") == 0
    assert b.claim("ann", "b1", 2, now) == 2  # refused: counted nothing
    assert a.elsewhere("ann") == 0 and "b1" not in b._mine
    assert b.claim("bob", "b2", None, now) == 0 and a.elsewhere("bob") == 1  # no cap: counted, never refused
    # Two replicas claiming a login's last slot at the same moment: exactly one gets it, every time.
    for round_ in range(30):
        user, barrier, answers = f"u{round_}", threading.Barrier(2), []

        def claim(replica: RedisRuns, run_id: str, user: str = user, barrier: threading.Barrier = barrier,
                  answers: list[int] = answers) -> None:
            barrier.wait()
            answers.append(replica.claim(user, run_id, 1, now))

        threads = [threading.Thread(target=claim, args=(replica, f"{name}-{round_}"))
                   for replica, name in ((a, "a"), (b, "b"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(answers) == [0, 1], (round_, answers)


async def test_an_ended_run_frees_its_slot_and_its_cost_counts_until_released(redis_runs) -> None:
    a, b = redis_runs(), redis_runs()
    created = time.time()
    assert a.claim("ann", "r1", 1, created) == 0
    assert await b.others("ann") == [RunElsewhere("r1", created, 0.0)] and await a.others("ann") == []
    a.ended("ann", "r1", 0.25)
    assert b.elsewhere("ann") == 0 and b.claim("ann", "r2", 1, created) == 0  # the slot is free
    assert await b.others("ann") == [RunElsewhere("r1", created, 0.25)]  # the cost still counts
    a.release("ann", "r1")  # stored: the store answers for its cost now
    assert await b.others("ann") == [] and a.elsewhere("ann") == 1  # (b's r2)
    b.release("ann", "r2")
    assert not await b.aclient.exists(INFLIGHT_KEY + "ann", INFLIGHT_KEY + "ann:runs")  # nothing left behind


async def test_a_live_owner_renews_its_entries_and_a_dead_ones_expire(redis_runs) -> None:
    lease = 0.6
    owner, survivor = redis_runs(lease=lease, renew_every=0.1), redis_runs(lease=lease)
    owner.report = lambda run_id: (0.125, False)  # what Limits.report says of a run still streaming
    owner.start()
    created = time.time()
    owner.claim("ann", "r1", 1, created)
    await asyncio.sleep(3 * lease)  # well past a lease: renewed meanwhile, with its cost so far
    assert survivor.elsewhere("ann") == 1
    assert await survivor.others("ann") == [RunElsewhere("r1", created, 0.125)]
    await owner.aclose()  # renewals stop, nothing released: as when its process dies
    died = time.monotonic()
    assert survivor.elsewhere("ann") == 1
    while survivor.elsewhere("ann"):
        assert time.monotonic() - died < lease + 0.5
        await asyncio.sleep(0.02)
    assert await survivor.others("ann") == [] and survivor.claim("ann", "r2", 1, time.time()) == 0


async def test_a_budget_counts_what_runs_on_other_replicas_cost_so_far(redis_runs, tmp_path: Path) -> None:
    settings = limited_settings(f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}", None, OPENAI_API_KEY="sk-test")
    cat = Principal(user="cat", role="budgeted", policy=settings.roles["budgeted"])  # $0.50 a day
    elsewhere, here = redis_runs(), redis_runs()
    elsewhere.report = lambda run_id: (0.5, False)  # what its run on the other replica cost so far
    elsewhere.claim("cat", "r1", None, time.time())
    await elsewhere.renew()
    limits = Limits(settings.runs, shared=here)
    spending = await limits.spending(cat, None)
    assert spending.day == pytest.approx(0.5) and spending.in_flight == pytest.approx(0.5)
    model = Catalog(settings).resolve("openai:gpt-4.1-mini")
    request = RunRequest(model=model.id, prompt="Hello")
    with pytest.raises(BudgetExceededError, match=r"spent \$0\.50 of your \$0\.50 daily budget, counting your runs"):
        await limits.check_budget(cat, model, request, None)
    await Limits(settings.runs).check_budget(cat, model, request, None)  # counted alone, it would go


# -- login throttling -------------------------------------------------------------------------------
async def test_failed_logins_count_on_every_replica(redis_url: str) -> None:
    settings = LoginThrottle(free_failures=2, delay=1.0, lock_after=5, lock_minutes=1, window_minutes=1)
    clients = [async_client(redis_url), async_client(redis_url)]
    a, b = (RedisThrottle(client, settings) for client in clients)
    keys = ["user:ann", "address:203.0.113.9"]
    try:
        assert [(await a.failure(keys)).delay, (await b.failure(keys)).delay] == [0.0, 0.0]  # the free ones
        assert (await a.failure(keys)).delay == 1.0  # the third, on either replica: slowed down
        refused = await b.refusal(keys)
        assert refused is not None and not refused.locked and 0 < refused.retry_after <= 1.0
        assert (await b.failure(keys)).delay == 2.0
        locked = (await a.failure(["user:ann", "address:198.51.100.1"])).locked  # the fifth of ann's
        assert locked is not None and locked.retry_after == 60
        on_b = await b.refusal(["user:ann", "address:192.0.2.1"])
        assert on_b is not None and on_b.locked and 59 < on_b.retry_after <= 60
        await b.success(["user:ann"])  # the right password does not end a lock-out
        assert (await a.refusal(["user:ann"])) is not None
        # A success forgets the user name's failures, not the address's.
        await a.failure(["user:bob", "address:192.0.2.7"])
        await a.success(["user:bob", "address:192.0.2.7"])
        await b.failure(["user:bob", "address:192.0.2.7"])
        assert (await b.failure(["user:bob", "address:192.0.2.7"])).delay == 1.0  # the address: its third
        await a.clear()
        assert await b.refusal(["user:ann"]) is None and not await clients[0].keys("llmtool:login:*")
    finally:
        for client in clients:
            await client.aclose()


# -- Redis down -------------------------------------------------------------------------------------
async def test_without_redis_each_replica_counts_alone_says_so_and_shares_again_when_it_is_back(
        caplog: pytest.LogCaptureFixture) -> None:
    with RedisServer() as server:
        url = server.url(1)
        client, aclient = sync_client(url), async_client(url)
        guard = Guard("runs per minute", retry=0.2)
        counters = RedisCounters(client, guard)
        runs = RedisRuns(client, aclient, guard=Guard("runs in flight", retry=0.2), owner="a")
        throttle = RedisThrottle(aclient, LoginThrottle(free_failures=1, lock_after=1, delay=0),
                                 Guard("failed logins", retry=0.2))
        try:
            assert counters.hit("starts:ann", 2, 60) == 0.0
            server.stop(keep_dir=True)
            caplog.set_level(logging.WARNING, logger="llmtool.replicas.guard")
            began = time.monotonic()
            answers = [counters.hit("starts:ann", 2, 60) for _ in range(3)]  # this replica's own count
            assert answers[:2] == [0.0, 0.0] and answers[2] > 59  # (the one Redis counted is not known here)
            assert time.monotonic() - began < 1.0  # one short timeout, then local without asking again
            assert runs.claim("ann", "r1", 1, time.time()) == 0 and runs.elsewhere("ann") == 0
            assert await runs.others("ann") == []
            assert (await throttle.failure(["user:ann"])).locked is not None  # counted locally: locked
            assert await throttle.refusal(["user:ann"]) is not None
            errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
            assert len([e for e in errors if "runs per minute are counted by this replica alone" in e]) == 1
            assert any("failed logins are counted by this replica alone" in e for e in errors)
            server.start()
            await asyncio.sleep(0.25)
            assert counters.hit("starts:ann", 2, 60) == 0.0  # Redis again (restarted empty): not the local 2
            assert guard.failing is False
            assert any("Redis answers again: runs per minute" in r.getMessage() for r in caplog.records)
            runs.report = lambda run_id: (0.0, False)
            await asyncio.sleep(0.25)
            await runs.renew()  # what was claimed meanwhile is written now
            assert RedisRuns(client, aclient, owner="b").elsewhere("ann") == 1
        finally:
            client.close()
            await aclient.aclose()


# -- services, and a replica killed outright ---------------------------------------------------------
async def test_a_killed_replicas_runs_free_their_logins_slots_once_their_lease_ends(
        redis_url: str, tmp_path: Path) -> None:
    lease = 1.0
    database = f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}"
    settings = limited_settings(database, redis_url)
    survivor = await LLMService.open(settings, principals=principals(settings))
    shared = share_limits(survivor, None, redis_url, lease=lease, renew_every=0.1)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.replicas.limits_support", database, redis_url, str(lease),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    request = RunRequest(prompt="Hello")
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            line = (await process.stdout.readline()).decode()
        assert line.startswith("run "), line
        await asyncio.sleep(2 * lease)  # the owner renews its entry: ann's one slot stays taken
        with pytest.raises(TooManyRunsError, match="1 run in progress on other servers") as refused:
            await survivor.submit(request, origin("ann"))
        assert refused.value.retry_after == 5
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()
        killed = time.monotonic()
        with pytest.raises(TooManyRunsError):  # not at once: the entry lives out its lease
            survivor.start(request, origin("ann"))
        while True:
            try:
                run = await survivor.submit(request, origin("ann"))
                break
            except TooManyRunsError:
                assert time.monotonic() - killed < lease + 1.0
                await asyncio.sleep(0.05)
        assert (await run.wait()).kind == "completed"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await survivor.aclose()
        await shared.aclose()


async def test_a_start_refused_by_another_replicas_count_leaves_nothing_counted(redis_url: str,
                                                                                 tmp_path: Path) -> None:
    """The race `Limits.admit` closes: another replica counted after `start`'s first looks (made stale
    here), so the claim or the count refuses, and what was taken before is given back."""
    settings = limited_settings(f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}", redis_url)
    service = await LLMService.open(settings, principals=principals(settings))
    shared = share_limits(service, None, redis_url)
    other = RedisRuns(sync_client(redis_url), async_client(redis_url), owner="elsewhere")
    shared.runs.elsewhere = lambda user: 0  # type: ignore[method-assign]  # the looks saw nothing yet
    shared.counters.peek = lambda key, limit, window: 0.0  # type: ignore[method-assign]
    try:
        other.claim("ann", "theirs", 1, time.time())  # another replica takes ann's one slot
        with pytest.raises(TooManyRunsError, match="1 run in progress on other servers"):
            service.start(RunRequest(prompt="Hello"), origin("ann"))
        for _ in range(5):  # dan's minute is full with the other replica's starts
            RedisCounters(other.client).hit("starts:dan", 5, 60)
        with pytest.raises(TooManyRunsError, match="started 5 runs in the last minute"):
            service.start(RunRequest(prompt="Hello"), origin("dan"))  # claimed, then refused by the count
        assert service.running() == [] and service.limits.in_flight("ann") == service.limits.in_flight("dan") == []
        assert service.limits.scheduler.running == {} and shared.runs._mine == {}
        assert await other.others("dan") == []  # dan's claim was given back
        assert await other.others("ann") == []  # (and ann's never written)
    finally:
        await service.aclose()
        await shared.aclose()
        other.client.close()
        await other.aclient.aclose()


# -- two app servers, one store, one Redis, through the HTTP API --------------------------------------
PASSWORDS = {"ann": "ann-password-1", "bob": "bob-password-1", "eve": "eve-password-1"}


@pytest.fixture(scope="module")
def servers(postgres_server: PostgresServer, redis_server: RedisServer,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundServer, BackgroundServer]]:
    folder = tmp_path_factory.mktemp("shared-limits")
    logins = users_file(folder, PASSWORDS, {user: ROLE_OF[user] for user in PASSWORDS if user in ROLE_OF})
    settings = make_settings(
        None, folder, database_url=postgres_server.new_database(), redis_url=redis_server.new_url(),
        tokens_per_second=100, roles=ROLES, ui={"users_file": str(logins)},
        accounts={"trusted_proxies": ["127.0.0.1"],  # the throttle counts X-Forwarded-For's address
                  "throttle": {"free_failures": 1, "delay": 0, "lock_after": 4, "lock_minutes": 1}},
        store={"flush_interval": 0.1, "heartbeat_interval": 0.5},
    )
    contexts = [AppContext(settings), AppContext(settings)]
    with BackgroundServer(create_app(context=contexts[0])) as a, BackgroundServer(create_app(context=contexts[1])) as b:
        a.context, b.context = contexts  # type: ignore[attr-defined]
        yield a, b


def client(server: BackgroundServer, user: str, password: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=(user, password or PASSWORDS[user]), timeout=10)


def test_a_logins_concurrency_holds_across_replicas(servers: tuple[BackgroundServer, BackgroundServer]) -> None:
    a, b = servers
    long = {"model": "demo:echo", "prompt": words(600)}  # ~6 s at 100 tokens a second
    with client(a, "ann") as on_a, client(b, "ann") as on_b:
        first = start_run(on_a, long)
        refused = on_b.post("/api/runs", json=long)  # ann may run one at a time: hers runs on A
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"].endswith("/too-many-runs") and refused.json()["retry_after"] == 5
        assert refused.headers["Retry-After"] == "5"
        assert "1 run in progress on other servers" in refused.json()["detail"]
        queued = start_run(on_a, long)  # on A itself it waits in ann's line, as in one process
        assert a.context.started_service().limits.scheduler.waiting("ann") == 1  # type: ignore[attr-defined]
        assert on_b.post("/api/runs", json=long).status_code == 429  # (2 of hers now: running, waiting)
        for run in (queued, first):
            assert on_a.post(f"/api/runs/{run['id']}/cancel").json()["status"] == "stopped"
        deadline = time.monotonic() + 5
        while (answer := on_b.post("/api/runs", json={"model": "demo:echo", "prompt": "Hi"})).status_code == 429:
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.05)
        assert answer.status_code == 202, answer.text  # her runs on A ended: B takes hers


def test_runs_per_minute_count_across_replicas(servers: tuple[BackgroundServer, BackgroundServer]) -> None:
    a, b = servers
    quick = {"model": "demo:echo", "prompt": "Hi"}
    with client(a, "bob") as on_a, client(b, "bob") as on_b:
        for http in (on_a, on_b, on_a):
            start_run(http, quick)
        refused = on_b.post("/api/runs", json=quick)  # the fourth of the minute; B itself started one
        assert refused.status_code == 429, refused.text
        assert refused.json()["type"].endswith("/too-many-runs")
        assert "started 3 runs in the last minute" in refused.json()["detail"]
        assert 55 <= int(refused.headers["Retry-After"]) <= 60


def test_failed_logins_count_across_replicas(servers: tuple[BackgroundServer, BackgroundServer]) -> None:
    a, b = servers
    address = {"X-Forwarded-For": "203.0.113.7"}  # through the trusted proxy: a client of its own
    wrong_a, wrong_b = client(a, "eve", "not-her-password"), client(b, "eve", "not-her-password")
    with wrong_a, wrong_b, client(a, "eve") as right:
        answers = [http.get("/api/models", headers=address).status_code for http in (wrong_a, wrong_b, wrong_a)]
        assert answers == [401, 401, 401]
        locking = wrong_b.get("/api/models", headers=address)  # the fourth failure: on B, counted with A's
        assert locking.status_code == 429 and locking.json()["type"].endswith("/too-many-logins")
        refused = right.get("/api/models", headers=address)  # the right password, on A: locked all the same
        assert refused.status_code == 429, refused.text
        assert 55 <= int(refused.headers["Retry-After"]) <= 60
        assert right.get("/api/models", headers={"X-Forwarded-For": "192.0.2.1"}).status_code == 429  # eve's name
