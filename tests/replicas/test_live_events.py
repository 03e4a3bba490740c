"""A run's events in Redis and a follower on another replica: positions as entry ids, every event live
and once, the store filling what Redis lacks (the cap, a lost stream, a restarted Redis, a dead owner)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from redis.asyncio import Redis

from llmtool.events import RunEvent, run_event_adapter
from llmtool.replicas import connect, replicas_of
from llmtool.replicas.streams import entry_id, position_of, stream_key
from llmtool.replicas.watch import watched_key
from llmtool.service import LLMService, Run, RunRequest
from tests.replicas.conftest import BLOCK, RECHECK, replica_settings, words
from tests.servers.redis import RedisServer, _free_port


async def logged(run: Run, count: int) -> None:
    """Until the run has logged `count` events."""
    async with contextlib.aclosing(run.events()) as events:
        async for _ in events:
            if len(run.log) >= count:
                return


class Reader:
    """Follows a run on a replica in a task; `reached(n)` waits until it has seen `n` events."""

    def __init__(self, follow, run_id: str) -> None:  # type: ignore[no-untyped-def]
        self.seen: list[RunEvent] = []
        self._more = asyncio.Event()
        self.task = asyncio.create_task(self._read(follow, run_id))

    async def _read(self, follow, run_id: str) -> None:  # type: ignore[no-untyped-def]
        try:
            async with contextlib.aclosing(follow(run_id, 0)) as events:
                async for event in events:
                    self.seen.append(event)
                    self._more.set()
        finally:
            self._more.set()

    async def reached(self, count: int) -> None:
        while len(self.seen) < count:
            assert not self.task.done(), self.seen
            self._more.clear()
            await self._more.wait()

    async def ended(self, timeout: float) -> list[RunEvent]:
        async with asyncio.timeout(timeout):
            await self.task
        return self.seen


def dumped(events: list[RunEvent]) -> list[str]:
    return [event.model_dump_json() for event in events]


async def collect(replicas_follow, run_id: str, start: int = 0, timeout: float = 10) -> list[RunEvent]:  # type: ignore[no-untyped-def]
    seen: list[RunEvent] = []
    async with asyncio.timeout(timeout), contextlib.aclosing(replicas_follow(run_id, start)) as events:
        async for event in events:
            seen.append(event)
    return seen


async def test_every_event_is_in_the_runs_stream_at_its_position_and_the_stream_expires_after_the_end(
        replicas, redis: Redis) -> None:
    service, linked = await replicas(ttl=120)
    run = service.start(RunRequest(prompt=words(30)))
    await run.wait()
    await linked.publisher.flush()
    entries = await redis.xrange(stream_key(run.id))
    assert [entry.decode() for entry, _ in entries] == [entry_id(n) for n in range(len(run.log))]
    assert [position_of(entry) for entry, _ in entries] == list(range(len(run.log)))
    assert [run_event_adapter.validate_json(fields[b"e"]) for _, fields in entries] == run.log
    assert 0 < await redis.ttl(stream_key(run.id)) <= 120  # expires some time after the end
    assert linked.publisher.batches < len(run.log)  # batched: fewer round trips than events


async def test_a_follower_on_another_replica_gets_the_rest_live_in_order_from_the_middle(replicas) -> None:
    owner, _ = await replicas()
    other, linked = await replicas()
    run = owner.start(RunRequest(prompt=words(200)))  # ~0.5 s at 400 tokens/s
    await logged(run, 20)
    assert other.get(run.id) is None and replicas_of(other) is linked
    seen = await collect(linked.follow, run.id, start=7)
    assert not run.done or len(seen) > 0
    assert dumped(seen) == dumped(run.log[7:])
    assert seen[-1].kind == "completed"


async def test_events_older_than_the_cap_come_from_the_store(replicas, redis: Redis) -> None:
    owner, publisher = await replicas(maxlen=10)
    _, linked = await replicas()
    run = owner.start(RunRequest(prompt=words(600)))
    await run.wait()
    await publisher.publisher.flush()
    kept = await redis.xlen(stream_key(run.id))
    assert kept < len(run.log)  # trimmed (approximately: whole nodes of 100 entries)
    first = position_of((await redis.xrange(stream_key(run.id), count=1))[0][0])
    assert first > 0
    await owner.recorder.flush()  # type: ignore[union-attr]
    seen = await collect(linked.follow, run.id, start=first - 5)  # across the store → Redis boundary
    assert dumped(seen) == dumped(run.log[first - 5:])


async def test_a_stream_lost_mid_run_is_filled_from_the_store_nothing_lost_or_twice(replicas, redis: Redis) -> None:
    owner, _ = await replicas()
    _, linked = await replicas()
    run = owner.start(RunRequest(prompt=words(600)))
    reader = Reader(linked.follow, run.id)
    await reader.reached(60)
    await redis.delete(stream_key(run.id))  # as a Redis restart without persistence loses it
    await reader.reached(120)
    assert not run.done and await redis.ttl(stream_key(run.id)) > 3600  # made again, with its live expiry
    assert dumped(await reader.ended(10)) == dumped(run.log)


async def test_redis_restarted_mid_run_followers_resume_nothing_lost_or_twice(tmp_path) -> None:
    with RedisServer() as server:
        settings = replica_settings(f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}", server.url())
        owner, other = await LLMService.open(settings), await LLMService.open(settings)
        published = await connect(owner, server.url(), block=BLOCK, recheck=RECHECK)
        linked = await connect(other, server.url(), block=BLOCK, recheck=RECHECK)
        try:
            run = owner.start(RunRequest(prompt=words(600)))  # ~1.5 s
            reader = Reader(linked.follow, run.id)
            await reader.reached(50)
            await asyncio.to_thread(server.restart)
            assert dumped(await reader.ended(15)) == dumped(run.log)
            assert run.status == "completed"  # the run never noticed
        finally:
            for service, replicas in ((owner, published), (other, linked)):
                await service.aclose()
                await replicas.aclose()


async def test_a_run_that_ended_long_ago_is_read_from_the_store(replicas, redis: Redis) -> None:
    owner, _ = await replicas(ttl=1)
    _, linked = await replicas()
    run = owner.start(RunRequest(prompt=words(20)))
    await run.wait()
    await owner.recorder.flush()  # type: ignore[union-attr]
    await redis.delete(stream_key(run.id))  # expired
    assert dumped(await collect(linked.follow, run.id, 3)) == dumped(run.log[3:])
    assert await collect(linked.follow, run.id, len(run.log)) == []
    assert await collect(linked.follow, "no-such-run") == []


@pytest.mark.parametrize("missed", [False, True], ids=["heard", "message-missed"])
async def test_stop_from_another_replica_reaches_the_owner(replicas, redis: Redis, missed: bool) -> None:
    owner, published = await replicas()
    other, linked = await replicas()
    run: Run = owner.start(RunRequest(prompt=words(4000)))  # ~10 s unless stopped
    await logged(run, 10)
    began = asyncio.get_running_loop().time()
    if missed:  # the flag without the message: the owner finds it at its next look
        await redis.set(f"llmtool:cancel:{run.id}", b"1")
        ending = await run.wait()
    else:
        ending_elsewhere = await linked.request_cancel(run.id, wait=3)
        assert ending_elsewhere is not None and ending_elsewhere.kind == "stopped"
        ending = await run.wait()
        record = await other.record(run.id)
        assert record is not None and record.status == "stopped"  # the store agrees by the time it answers
    assert ending.kind == "stopped"
    assert asyncio.get_running_loop().time() - began < 2 * RECHECK + 1
    assert published.cancels.cancelled == 1


async def test_a_run_followed_on_another_replica_counts_as_watched(replicas, redis: Redis) -> None:
    """With `runs.stop_unwatched_after`, the owner stops a run nobody reads: a follower elsewhere reads it."""
    unwatched = {"runs": {"stop_unwatched_after": 1.0}}
    owner, _ = await replicas(unwatched)
    _, linked = await replicas(unwatched)
    run = owner.start(RunRequest(prompt=words(4000)))  # ~10 s
    reader = Reader(linked.follow, run.id)
    await asyncio.sleep(1.8)  # well past the limit, with no reader in the owner's process
    assert not run.done and run.readers == 0
    reader.task.cancel()  # the follower goes away…
    await asyncio.gather(reader.task, return_exceptions=True)
    await redis.delete(watched_key(run.id))  # …and its mark expires (MARK_TTL, shortened here)
    began = asyncio.get_running_loop().time()
    ending = await asyncio.wait_for(run.wait(), timeout=5)
    assert ending.kind == "stopped" and len(reader.seen) > 50  # stopped within the limit and a look
    assert asyncio.get_running_loop().time() - began < 1 + RECHECK + 0.5


async def test_a_redis_that_does_not_answer_fails_no_run(replicas) -> None:
    """Redis down at start (or later): runs stream and are kept as without Redis; the publisher says why."""
    owner, published = await replicas(url=f"redis://127.0.0.1:{_free_port()}/0")
    run = owner.start(RunRequest(prompt=words(30)))
    assert (await run.wait()).kind == "completed"
    await published.publisher.flush()
    assert published.problem is not None and "Redis" in published.problem
    record = await owner.record(run.id)
    assert record is not None  # kept in the store all the same
