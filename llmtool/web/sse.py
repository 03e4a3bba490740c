"""A run's event log as Server-Sent Events: `id: N` (the 0-based position), `event: kind`, `data: JSON`.

    frames = event_frames(service, run_id, start=5)     # async bytes: position 5 on, until the terminal event

A comment line goes out when nothing was sent for `KEEP_ALIVE` seconds (proxies close idle streams).
Readers only read: a reader going away closes its generator, never the run. A run another process
is running is followed live through its Redis Stream when the replicas share Redis
(`llmtool/replicas`, the store filling what Redis lacks), else through the store until its terminal
event is written.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import cast

from llmtool.events import RunEvent, is_terminal
from llmtool.replicas import replicas_of
from llmtool.service import LLMService

KEEP_ALIVE = 15.0
STORE_POLL = 0.5  # how often a run of another process is looked up again
KEEP_ALIVE_FRAME = b": keep-alive\n\n"


def frame(position: int, event: RunEvent) -> bytes:
    return f"id: {position}\nevent: {event.kind}\ndata: {event.model_dump_json()}\n\n".encode()


async def _events(service: LLMService, run_id: str, start: int) -> AsyncGenerator[RunEvent, None]:
    """Live from memory; a run of another replica live from Redis when there is one; else from the
    store, where a run still running elsewhere is polled until it ends."""
    replicas = replicas_of(service)
    if replicas is not None and service.get(run_id) is None:
        async with contextlib.aclosing(replicas.follow(run_id, start)) as followed:
            async for event in followed:
                yield event
        return
    position = start
    while True:
        ended = False
        replay = cast(AsyncGenerator[RunEvent, None], service.replay(run_id, position))  # an async generator
        async with contextlib.aclosing(replay) as events:
            async for event in events:
                position += 1
                ended = is_terminal(event)
                yield event
        run = service.get(run_id)
        if ended or service.store is None or (run is not None and run.done):
            return  # (a run that ended here has nothing more to give, stored or not yet)
        record = await service.record(run_id)
        if record is None or (record.ended and record.event_count <= position):
            return
        if service.get(run_id) is None and not record.ended:
            await asyncio.sleep(STORE_POLL)


async def event_frames(service: LLMService, run_id: str, start: int,
                       keep_alive: float = KEEP_ALIVE) -> AsyncIterator[bytes]:
    """Frames from `start` on. One task reads the run's events into a queue; each chunk sent is every
    frame ready by then (under load, fewer and larger writes), or a keep-alive comment after a quiet spell."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def read() -> None:
        position = start
        try:
            async with contextlib.aclosing(_events(service, run_id, start)) as events:
                async for event in events:
                    queue.put_nowait(frame(position, event))
                    position += 1
        finally:
            queue.put_nowait(None)

    reader = asyncio.get_running_loop().create_task(read(), name=f"sse-{run_id}")
    try:
        while True:
            if queue.empty():
                try:
                    # asyncio.timeout, not wait_for: no extra task per frame (measurable at 100 streams).
                    async with asyncio.timeout(keep_alive):
                        first = await queue.get()
                except TimeoutError:
                    yield KEEP_ALIVE_FRAME
                    continue
            else:
                first = queue.get_nowait()
            chunk = [first]
            while chunk[-1] is not None and not queue.empty():
                chunk.append(queue.get_nowait())
            ended = chunk[-1] is None
            data = b"".join(c for c in chunk if c is not None)
            if data:
                yield data
            if ended:
                error = reader.exception() if reader.done() and not reader.cancelled() else None
                if error is not None:
                    raise error
                return
    finally:
        if not reader.done():
            reader.cancel()  # the reader only reads: the run goes on
            with contextlib.suppress(asyncio.CancelledError):
                await reader
