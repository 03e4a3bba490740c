"""One blocking read for every stream this replica follows, however many followers there are.

    async with watcher.watching(key, position) as watch:
        entries = await watcher.read(watch, position, timeout)   # entries from `position` on, or []

One task keeps one `XREAD BLOCK` on every followed stream from the last entry it saw, and hands what
it read to their followers; a follower caught up with it waits on its stream's `changed` event instead
of holding a connection in its own `XREAD BLOCK` (a pool of 100 connections would cap a replica at 100
followers). A follower that is behind what was handed over (it starts in the middle, or was slow)
reads what it lacks itself, with a quick `XRANGE` on the shared pool. Following a new stream restarts the
blocking read at once: the task's `XREAD` also reads a control stream of its own, which gets an entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from llmtool.replicas.streams import PREFIX, entry_id, position_of

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

READ_COUNT = 1000  # entries per stream per read
RETRY = 0.5  # seconds before the blocking read is tried again after Redis failed
CONTROL_TTL = 3600  # the control stream of a replica that died goes
RUN_PREFIX = f"{PREFIX}:run:"  # (stream_key's)
MARK_EVERY = 1.0  # seconds between marks of the followed runs as watched (for their owner's watchdog)
MARK_TTL = 5  # seconds a mark lasts: a follower gone for that long no longer keeps its run going


def watched_key(run_id: str) -> str:
    """Set while a replica follows the run: its owner counts it as watched (`runs.stop_unwatched_after`)."""
    return f"{PREFIX}:watched:{run_id}"

Entries = list[tuple[bytes, dict[bytes, bytes]]]


@dataclass
class Watch:
    """One followed stream: the last entry the blocking read saw, what it last read, and who follows."""

    key: str
    last: str  # the entry id the blocking read continues after
    users: int = 0
    recent: Entries = field(default_factory=list)  # the entries the last read brought
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # replaced (set) at each arrival

    def arrived(self, entries: Entries) -> None:
        self.recent = entries
        self.last = entries[-1][0].decode()
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()


class StreamWatcher:
    def __init__(self, client: Redis, reader: Redis, block: float) -> None:
        self.client = client  # the shared pool: quick reads, the control stream
        self.reader = reader  # one connection of its own, blocked in XREAD most of the time
        self.block = block
        self.control = f"{PREFIX}:wake:{secrets.token_hex(8)}"
        self._control_last = "0-0"
        self._watches: dict[str, Watch] = {}
        self._task: asyncio.Task[None] | None = None
        self._marking: asyncio.Task[None] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._read_loop(), name="redis-watcher")
        self._marking = loop.create_task(self._mark_loop(), name="redis-watched-marks")

    async def _mark_loop(self) -> None:
        """Mark every run followed here as watched, so an owner that stops unwatched runs lets it be."""
        while True:
            followed = [key.removeprefix(RUN_PREFIX) for key, watch in self._watches.items() if watch.users > 0]
            if followed:
                try:
                    async with self.client.pipeline(transaction=False) as pipe:
                        for run_id in followed:
                            pipe.set(watched_key(run_id), b"1", ex=MARK_TTL)
                        await pipe.execute()
                except RedisError:  # the owner may then stop an unwatched run: as without Redis
                    pass
            await asyncio.sleep(MARK_EVERY)

    @contextlib.asynccontextmanager
    async def watching(self, key: str, position: int) -> AsyncIterator[Watch]:
        """Follow `key` from `position` on (the blocking read includes it while anyone follows it)."""
        watch = self._watches.get(key)
        new = watch is None
        if watch is None:
            watch = self._watches[key] = Watch(key, last=f"0-{max(position, 0)}")
        watch.users += 1
        try:
            if new:
                await self._poke(key)
            yield watch
        finally:
            watch.users -= 1  # (dropped from the blocking read at its next turn)

    async def look(self, key: str, position: int) -> tuple[Entries, bool]:
        """The entries from `position` on now, and whether the stream exists (one round trip)."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.xrange(key, min=entry_id(position), count=READ_COUNT)
            pipe.exists(key)
            entries, exists = await pipe.execute()
        return entries, bool(exists)

    async def read(self, watch: Watch, position: int, timeout: float) -> Entries:
        """The entries from `position` on: what the blocking read handed over, else read now, else
        the next to arrive within `timeout` ([] when none did). Raises RedisError."""
        for attempt in range(2):
            changed = watch.changed
            entries = _from(watch.recent, position)
            if entries is None:
                if position > position_of(watch.last):
                    entries = []  # caught up with the blocking read: it brings whatever comes next
                else:  # behind what was handed over: read it now
                    answer: Any = await self.client.xrange(watch.key, min=entry_id(position), count=READ_COUNT)
                    entries = answer
            if entries or attempt or timeout <= 0 or self._task is None or self._task.done():
                return entries
            try:
                async with asyncio.timeout(timeout):
                    await changed.wait()
            except TimeoutError:
                return []
        return []

    async def _poke(self, key: str | None = None) -> None:
        """Make the blocking read start again now, with the streams followed now."""
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.xadd(self.control, {b"w": b"1"}, maxlen=10, approximate=True)
                pipe.expire(self.control, CONTROL_TTL)
                if key is not None:  # watched from now on, not from the next mark
                    pipe.set(watched_key(key.removeprefix(RUN_PREFIX)), b"1", ex=MARK_TTL)
                await pipe.execute()
        except RedisError:  # the follower reads by itself, then asks the store, until Redis is back
            pass

    async def _read_loop(self) -> None:
        failing = False
        while True:
            for key in [key for key, watch in self._watches.items() if watch.users <= 0]:
                del self._watches[key]
            streams: dict[Any, Any] = {self.control: self._control_last}
            streams.update((key, watch.last) for key, watch in self._watches.items())
            try:
                answer: Any = await self.reader.xread(streams, count=READ_COUNT, block=int(self.block * 1000))
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis down: followers time out and ask the store meanwhile
                if not failing:
                    log.warning("cannot watch the followed runs' streams in Redis (%s); trying again", error)
                failing = True
                await asyncio.sleep(RETRY)
                continue
            if failing:
                log.info("watching the followed runs' streams in Redis again")
                failing = False
            for name, entries in answer or []:
                key = name.decode() if isinstance(name, bytes) else name
                if key == self.control:
                    self._control_last = entries[-1][0].decode()
                    continue
                watch = self._watches.get(key)
                if watch is not None and entries:
                    watch.arrived(entries)

    async def aclose(self) -> None:
        for task in (self._task, self._marking):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._task = self._marking = None
        with contextlib.suppress(RedisError):
            await self.client.delete(self.control)


def _from(recent: Entries, position: int) -> Entries | None:
    """The entries of `recent` from `position` on, when `recent` holds that position; else None."""
    if not recent or not position_of(recent[0][0]) <= position <= position_of(recent[-1][0]):
        return None
    return [entry for entry in recent if position_of(entry[0]) >= position]
