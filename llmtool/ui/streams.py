"""What every streaming event of the app shares: one concurrency group, batched updates, merging.

    async for batch in batches(merge([a.events(), b.events()]), context.update_interval):
        ...   # [(0, event), (1, event), …]: at most one batch per interval, [] on a clock tick

`merge` reads several async iterators at once (Compare streams 2–4 runs side by side) and ends
when all of them have; closing it (or cancelling its reader) stops every source.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any, TypeVar, cast

from llmtool.ui.coalesce import coalesce

T = TypeVar("T")

RUNS = "runs"  # one concurrency group for everything that streams runs (chat, compare, evaluate)
TICK = 0.5  # refresh the clock in status lines this often while no event arrives
_END = object()


def streaming_options(outputs: Sequence[Any], concurrency: int) -> dict[str, Any]:
    """The keyword arguments of a streaming event, the same for every tab."""
    return dict(
        outputs=list(outputs),
        concurrency_limit=concurrency,
        concurrency_id=RUNS,
        show_progress="hidden",
        trigger_mode="once",
    )


def batches(source: AsyncIterator[T], interval: float) -> AsyncGenerator[list[T], None]:
    """At most one batch per `interval` (the last never held back); interval 0: one per item."""
    if interval <= 0:
        return _one_by_one(source)
    return coalesce(source, interval, tick=TICK)


async def _one_by_one(source: AsyncIterator[T]) -> AsyncGenerator[list[T], None]:
    async for item in source:
        yield [item]


async def merge(sources: Sequence[AsyncIterator[T]]) -> AsyncGenerator[tuple[int, T], None]:
    """Every item of every source as it arrives, with the index of its source.

    An exception in a source is raised here once the items before it were yielded; the other
    sources are then closed.
    """
    queue: asyncio.Queue[tuple[int, object, BaseException | None]] = asyncio.Queue()

    async def pump(index: int, source: AsyncIterator[T]) -> None:
        try:
            if isinstance(source, AsyncGenerator):
                async with aclosing(source):
                    async for item in source:
                        queue.put_nowait((index, item, None))
            else:
                async for item in source:
                    queue.put_nowait((index, item, None))
        except Exception as exc:
            queue.put_nowait((index, _END, exc))
        else:
            queue.put_nowait((index, _END, None))

    tasks = [asyncio.create_task(pump(i, s), name=f"merge-{i}") for i, s in enumerate(sources)]
    try:
        remaining = len(tasks)
        while remaining:
            index, item, error = await queue.get()
            if item is _END:
                remaining -= 1
                if error is not None:
                    raise error
                continue
            yield index, cast(T, item)  # not _END, so one of a source's items
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
