"""Follow a run another replica is running: its Redis Stream, with the store filling every gap.

    async for event in follow(service, watcher, run_id, start=8):   # position 8 on, until the end
        ...

The stream and the store number events alike (position N is entry `0-(N+1)`, and the N-th stored
event), so the reader keeps one position and takes each next event from wherever it is:

- from Redis, live, as the owner publishes (`watch.py`: one blocking read per replica for all);
- from the store when Redis lacks it: older than the stream's cap, dropped while Redis was down or
  restarted, or published by an owner without Redis. A gap the store does not hold yet (it is written
  once a second) is waited for;
- when Redis says nothing for `block` seconds, or cannot be reached, the store says whether the run
  moved on or ended: a run whose owner died is ended there (`interrupted`) by a survivor. Its stored log
  may be shorter than what the follower already saw from Redis (the owner published more than it
  wrote): then the stored ending is sent next, after what was seen (a follower that starts at or past
  the stored end of an ended run gets nothing, as the API's 204 says).

Nothing is sent twice and nothing is skipped: each event is sent at exactly its position.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from llmtool.events import RunEvent, is_terminal
from llmtool.replicas.streams import position_of, read_event, stream_key
from llmtool.replicas.watch import Entries, StreamWatcher, Watch

if TYPE_CHECKING:
    from llmtool.service import LLMService

log = logging.getLogger(__name__)

BLOCK = 2.0  # seconds a follower waits for Redis before the store is asked whether the run moved on
GAP_WAIT = 0.1  # seconds between looks at the store for a gap it does not hold yet
REDIS_DOWN_POLL = 0.5  # while Redis cannot be reached: how often the store is asked


async def follow(service: LLMService, watcher: StreamWatcher, run_id: str, start: int = 0,
                 block: float = BLOCK) -> AsyncGenerator[RunEvent, None]:
    """The run's events from position `start` on, until its terminal event (see the module's docstring).
    Ends, after one wait, for a run neither Redis nor the store knows."""
    position = max(start, 0)
    async with (watcher.watching(stream_key(run_id), position) as watch,
                contextlib.aclosing(_follow(service, watcher, watch, run_id, position, block)) as events):
        async for event in events:
            yield event


async def _follow(service: LLMService, watcher: StreamWatcher, watch: Watch, run_id: str, start: int,
                  block: float) -> AsyncGenerator[RunEvent, None]:
    position = start
    redis_down = False
    first_look = True  # does not wait: a run that ended long ago comes from the store at once
    unknown = 0  # looks at the store that found no such run
    while True:
        entries: Entries = []
        at_tail = False  # Redis has the stream and nothing past `position` yet: wait for it, not the store
        try:
            if first_look:
                entries, at_tail = await watcher.look(watch.key, position)
                first_look = False
            else:
                entries = await watcher.read(watch, position, block)
            if redis_down:
                log.info("following run %s through Redis again", run_id)
            redis_down = False
        except RedisError as error:
            if not redis_down:
                log.warning("cannot follow run %s through Redis (%s): following the store", run_id, error)
            redis_down = True
        if entries:
            first = position_of(entries[0][0])
            if first > position:  # a gap: the store has it, or will within a flush
                async for event in _from_store(service, run_id, position, stop=first):
                    yield event
                    position += 1
                    if is_terminal(event):
                        return
                if position < first:
                    record = await service.record(run_id)
                    if record is not None and record.ended:  # the store's log ends before the gap
                        ending = await _stored_ending(service, run_id, record.event_count)
                        if ending is not None and position > start:
                            yield ending
                        return
                    await asyncio.sleep(GAP_WAIT)
                    continue
            for entry, fields in entries:
                at = position_of(entry)
                if at < position:
                    continue
                if at > position:
                    break  # a gap inside the answer: the next read starts there and fills it
                event = read_event(fields)
                yield event
                position += 1
                if is_terminal(event):
                    return
            continue
        if at_tail:
            continue
        # Nothing from Redis for a while (or Redis is down): has the run moved on, or ended, in the store?
        record = await service.record(run_id)
        if record is None:
            unknown += 1
            if redis_down:
                await asyncio.sleep(REDIS_DOWN_POLL)
                continue
            if unknown > 1:
                return  # unknown after a whole wait: no such run (the API answers 404 before this)
            continue  # (just started elsewhere: the owner writes its record at once)
        moved = False
        if record.event_count > position:
            assert service.store is not None
            for event in await service.store.events(run_id, position):
                moved = True
                yield event
                position += 1
                if is_terminal(event):
                    return
        if record.ended:
            if not moved and position > start:  # (asked at or past the stored end: nothing more)
                ending = await _stored_ending(service, run_id, record.event_count)
                if ending is not None:
                    yield ending
            return
        if redis_down:
            await asyncio.sleep(REDIS_DOWN_POLL)


async def _stored_ending(service: LLMService, run_id: str, event_count: int) -> RunEvent | None:
    """The stored terminal event of an ended run whose stored log ends at or before where the follower
    is: a dead owner's run, ended by a survivor after the owner had published more than it wrote."""
    if service.store is None:
        return None
    stored = await service.store.events(run_id, max(event_count - 1, 0))
    return stored[-1] if stored and is_terminal(stored[-1]) else None


async def _from_store(service: LLMService, run_id: str, start: int, stop: int) -> AsyncGenerator[RunEvent, None]:
    """The stored events `start`…`stop - 1` (fewer when the store does not hold them yet)."""
    if service.store is None:
        return
    for event in (await service.store.events(run_id, start))[: stop - start]:
        yield event
