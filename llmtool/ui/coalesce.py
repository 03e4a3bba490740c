"""Coalesce a fast stream into batches: at most one batch per `interval`, the last never held back.

A page update costs about the same whether it carries one token or fifty (Gradio re-sends and
re-renders the whole answer), so a handler should update the page at a steady pace, not per token:

    async for batch in coalesce(run.events(), interval=0.05, tick=0.5):
        ...   # a list of new items; [] on a tick (nothing arrived for `tick` seconds)

- The first item goes out at once: time to first token is what people notice.
- After a batch, new items wait until `interval` has passed since it, then go out together.
- When the source ends, whatever is pending goes out at once, without waiting for the interval.
- `tick` lets the caller refresh a clock ("waiting for first token · 3 s") while nothing happens.
  It is never shorter than `interval`, and once the first batch went out a tick counts as an
  update: at most one update per `interval`, ticks included. (Ticks before the first item do not
  hold it back: time to first token.)
- `interval` may be a function, asked at every wait: the pace can change while a stream goes on
  (`streams.Pace` widens it while many stream at once).
- `urgent`: for a caller that has just shown its page (a status line, an empty answer), what the
  reader waits for is not the first item but the first *text*. With it, the start counts as an
  update (a first status-only item waits for the interval like any), and the first item `urgent`
  accepts goes out at once, with whatever is pending. After it, urgent items wait like any.

The source is read by a helper task, so a slow consumer never blocks the producer and a consumer
that stops iterating (or is cancelled) stops the reading too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> float: ...

    def wait(self, event: asyncio.Event, seconds: float) -> Awaitable[object]:
        """Until `event` is set or `seconds` have passed, whichever comes first."""
        ...


class LoopClock:
    """The running event loop's monotonic clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def wait(self, event: asyncio.Event, seconds: float) -> None:
        # A timer on the waiting task itself, not helper tasks to start, cancel and collect at
        # every batch and tick of every stream (each a few more turns of the event loop).
        if event.is_set():
            return
        try:
            async with asyncio.timeout(seconds):
                await event.wait()
        except TimeoutError:
            pass


async def coalesce(
    source: AsyncIterable[T],
    interval: float | Callable[[], float],
    *,
    tick: float | None = None,
    clock: Clock | None = None,
    urgent: Callable[[T], bool] | None = None,
) -> AsyncGenerator[list[T], None]:
    """Batches of `source`'s items, at most one per `interval` seconds; see the module docstring."""
    clock = clock or LoopClock()
    pace = interval if callable(interval) else (lambda: interval)
    pending: list[T] = []
    arrived = asyncio.Event()
    ended = asyncio.Event()
    awaited = asyncio.Event()  # the first item `urgent` accepts has arrived
    hurry = asyncio.Event()  # a wait for the interval ends now: the source ended, or that item came
    failure: list[BaseException] = []

    async def pump() -> None:
        try:
            async for item in source:
                pending.append(item)
                if urgent is not None and not awaited.is_set() and urgent(item):
                    awaited.set()
                    hurry.set()
                arrived.set()
        except Exception as exc:  # handed to the consumer, after the items before it
            failure.append(exc)
        finally:
            ended.set()
            hurry.set()
            arrived.set()

    reader = asyncio.create_task(pump(), name="coalesce-reader")
    # With `urgent` the caller has just updated its page: the start counts as a batch.
    last_flush: float | None = None if urgent is None else clock.now()
    try:
        while True:
            if not pending and not ended.is_set():
                if tick is None:
                    await arrived.wait()
                else:
                    await clock.wait(arrived, max(tick, pace()))
            if pending and not hurry.is_set() and last_flush is not None:
                remaining = last_flush + pace() - clock.now()
                if remaining > 0:
                    await clock.wait(hurry, remaining)
            arrived.clear()
            batch = pending[:]
            pending.clear()
            finished = ended.is_set() and not pending
            if batch or not finished:
                if not ended.is_set():
                    hurry.clear()  # (the urgent item is in this batch: later ones wait like any)
                yield batch
                # A tick before the first item does not delay it (time to first token); after
                # that, a tick is an update like any other.
                if batch or last_flush is not None:
                    last_flush = clock.now()
            if failure and not pending:
                raise failure[0]
            if finished:
                return
    finally:
        reader.cancel()
        try:
            await reader
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # our own cancellation, not the reader's
