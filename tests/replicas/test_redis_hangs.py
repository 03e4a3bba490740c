"""A Redis that hangs (its process stopped: connections accepted, nothing answered) costs a Stop from
another replica, a new follower's looks and a batch of live events one short timeout each
(`guard.ASYNC_TIMEOUT`), not the blocking read's long one nor one per retry; the run never waits for it,
and everything works again once it answers. Every client has the same explicit retry policy (one
reconnect on a dropped connection, none on a timeout), whatever redis-py's default."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from llmtool.replicas import RedisUnavailable, connect
from llmtool.replicas.guard import ASYNC_TIMEOUT, async_client, sync_client
from llmtool.replicas.streams import LINGER
from llmtool.service import LLMService, RunRequest
from tests.replicas.conftest import BLOCK, RECHECK, replica_settings, words
from tests.replicas.test_live_events import logged
from tests.servers.redis import RedisServer

MARGIN = 0.7  # seconds of scheduling slack on a busy two-core machine


async def attempts(retry: Any, error: Exception) -> int:
    """How many times `retry` (a redis-py Retry, sync or asyncio) tries a call that raises `error`."""
    calls = 0

    def do() -> Any:
        nonlocal calls
        calls += 1
        raise error

    async def ado() -> Any:
        return do()

    async def afail(_: Exception) -> None:
        pass

    with pytest.raises(type(error)):
        if asyncio.iscoroutinefunction(retry.call_with_retry):
            await retry.call_with_retry(ado, afail)
        else:
            retry.call_with_retry(do, lambda _: None)
    return calls


async def test_every_client_reconnects_once_after_a_dropped_connection_and_never_retries_a_timeout(
        replicas: Callable[..., Awaitable[Any]], redis_url: str) -> None:
    _, linked = await replicas()
    guarded, aguarded = sync_client(redis_url), async_client(redis_url)
    try:
        clients = {"quick commands": linked.client, "blocking read": linked.reader,
                   "limits (sync)": guarded, "limits": aguarded}
        for name, client in clients.items():
            options = client.connection_pool.connection_kwargs
            assert await attempts(options["retry"], RedisConnectionError("dropped")) == 2, name
            assert await attempts(options["retry"], RedisTimeoutError("no answer")) == 1, name
            assert options["socket_timeout"] <= BLOCK + ASYNC_TIMEOUT, name
        assert linked.client.connection_pool.connection_kwargs["socket_timeout"] <= ASYNC_TIMEOUT
    finally:
        guarded.close()
        await aguarded.aclose()


async def test_a_redis_that_hangs_costs_each_call_one_short_timeout_and_the_run_nothing(tmp_path) -> None:
    with RedisServer() as server:
        assert server.process is not None
        settings = replica_settings(f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}", server.url())
        owner, other = await LLMService.open(settings), await LLMService.open(settings)
        published = await connect(owner, server.url(), block=BLOCK, recheck=RECHECK)
        linked = await connect(other, server.url(), block=BLOCK, recheck=RECHECK)
        loop = asyncio.get_running_loop()
        stopped = False
        try:
            run = owner.start(RunRequest(prompt=words(4000)))  # ~10 s unless stopped
            await logged(run, 10)
            await published.publisher.flush()
            assert published.problem is None
            os.kill(server.process.pid, signal.SIGSTOP)
            stopped = True
            began, logged_then = loop.time(), len(run.log)

            while published.problem is None:  # the batch under way gives up after one short timeout
                assert loop.time() - began < ASYNC_TIMEOUT + LINGER + MARGIN
                await asyncio.sleep(0.02)

            began = loop.time()
            with pytest.raises(RedisUnavailable):  # a Stop from another replica: said at once, not after 10 s
                await linked.request_cancel(run.id, wait=2)
            assert loop.time() - began < ASYNC_TIMEOUT + MARGIN

            began = loop.time()  # a new follower: its looks at Redis time out, the store answers
            async with contextlib.aclosing(linked.follow(run.id, 0)) as events:
                first = await anext(events)
            assert first == run.log[0]
            assert loop.time() - began < 2 * ASYNC_TIMEOUT + BLOCK + MARGIN

            assert not run.done and len(run.log) > logged_then + 100  # the run never waited for Redis

            os.kill(server.process.pid, signal.SIGCONT)
            stopped = False
            ending = await linked.request_cancel(run.id, wait=5)  # answered again: Stop reaches the owner
            assert ending is not None and ending.kind == "stopped"
            assert (await run.wait()).kind == "stopped"
        finally:
            if stopped:
                os.kill(server.process.pid, signal.SIGCONT)
            for service, replicas in ((owner, published), (other, linked)):
                await service.aclose()
                await replicas.aclose()
