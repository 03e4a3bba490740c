"""A run's event log as Server-Sent Events: `id: N` (the 0-based position), `event: kind`, `data: JSON`.

    frames = event_frames(service, run_id, start=5)     # async bytes: position 5 on, until the terminal event

A comment line goes out when nothing was sent for `KEEP_ALIVE` seconds (proxies close idle streams).
Readers only read: a reader going away closes its generator, never the run. A run another process
is running is followed through the store until its terminal event is written.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import cast

from llmtool.events import RunEvent, is_terminal
from llmtool.service import LLMService

KEEP_ALIVE = 15.0
STORE_POLL = 0.5  # how often a run of another process is looked up again
KEEP_ALIVE_FRAME = b": keep-alive\n\n"


def frame(position: int, event: RunEvent) -> bytes:
    return f"id: {position}\nevent: {event.kind}\ndata: {event.model_dump_json()}\n\n".encode()


async def _events(service: LLMService, run_id: str, start: int) -> AsyncGenerator[RunEvent, None]:
    """Live from memory, else from the store; a run still running elsewhere is polled until it ends."""
    position = start
    while True:
        ended = False
        replay = cast(AsyncGenerator[RunEvent, None], service.replay(run_id, position))  # an async generator
        async with contextlib.aclosing(replay) as events:
            async for event in events:
                position += 1
                ended = is_terminal(event)
                yield event
        if ended or service.store is None:
            return
        record = await service.record(run_id)
        if record is None or (record.ended and record.event_count <= position):
            return
        if service.get(run_id) is None and not record.ended:
            await asyncio.sleep(STORE_POLL)


async def event_frames(service: LLMService, run_id: str, start: int,
                       keep_alive: float = KEEP_ALIVE) -> AsyncIterator[bytes]:
    position = start
    events = _events(service, run_id, start)
    pending: asyncio.Task[RunEvent] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({pending}, timeout=keep_alive)
            if not done:
                yield KEEP_ALIVE_FRAME  # the same `anext` goes on waiting: the generator is never cancelled mid-step
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield frame(position, event)
            position += 1
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        await events.aclose()
