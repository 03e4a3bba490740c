"""What every streaming event of the app shares: one concurrency group, batched updates, merging.

    async for batch in batches(merge([a.events(), b.events()]), Pace.of(context.settings)):
        ...   # [(0, event), (1, event), …]: at most one batch per interval, [] on a clock tick

`merge` reads several async iterators at once (Compare streams 2–4 runs side by side) and ends
when all of them have; closing it (or cancelling its reader) stops every source.

**The pace widens under load.** A page update costs the server about the same whatever it carries
(Gradio post-processes the outputs, diffs the chat and sends an SSE message; ~2 ms on the benchmark
machine), so the page-update work of the process is the number of streams times their rate. Every
`batches` of the process counts as one stream (`STREAMS`, process-wide: the CPU is the process's),
and each waits `Pace.interval(streams)` between its updates: `ui.update_interval` while few stream,
widened past `ui.updates_per_second` updates for all of them together (each stream's share), to at
most `Pace.longest`. At 100 streams with the defaults (50 ms, 400/s): 250 ms. The answer's first
text never waits (`urgent`), nor does its end; what widens is the steps in between.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from llmtool.settings import Settings
from llmtool.ui.coalesce import coalesce

T = TypeVar("T")

RUNS = "runs"  # one concurrency group for everything that streams runs (chat, compare, evaluate)
TICK = 0.5  # refresh the clock in status lines this often while no event arrives
LONGEST = 1.0  # s: however many stream, each page gets an update at least this often while events come
_END = object()


class Streams:
    """How many streams are being batched in this process right now (`batches` counts them)."""

    def __init__(self) -> None:
        self.active = 0


STREAMS = Streams()  # the process's


@dataclass(frozen=True)
class Pace:
    """How often a stream may update its page: `interval` seconds apart (`ui.update_interval`; 0:
    every event) while the streams of the process make at most `per_second` updates together
    (`ui.updates_per_second`); past that each stream's interval widens to its share, up to `longest`."""

    interval: float
    per_second: float = math.inf
    longest: float = LONGEST

    @classmethod
    def of(cls, settings: Settings) -> Pace:
        """The pace `settings.ui` sets."""
        return cls(settings.ui.update_interval, settings.ui.updates_per_second)

    def at(self, streams: int) -> float:
        """The interval while `streams` stream at once."""
        if self.interval <= 0:
            return 0.0
        return max(self.interval, min(self.longest, streams / self.per_second))


def streaming_options(outputs: Sequence[Any], concurrency: int) -> dict[str, Any]:
    """The keyword arguments of a streaming event, the same for every tab."""
    return dict(
        outputs=list(outputs),
        concurrency_limit=concurrency,
        concurrency_id=RUNS,
        show_progress="hidden",
        trigger_mode="once",
    )


def batches(
    source: AsyncIterator[T],
    pace: Pace | float,
    *,
    urgent: Callable[[T], bool] | None = None,
    streams: Streams = STREAMS,
) -> AsyncGenerator[list[T], None]:
    """At most one batch per the pace's interval, which widens while many stream (the last never
    held back; the first item `urgent` accepts neither, see `coalesce`); interval 0: one per item.
    Counted in `streams` from the first batch asked for until it is closed."""
    if not isinstance(pace, Pace):
        pace = Pace(pace)
    if pace.interval <= 0:
        return _one_by_one(source)
    return _paced(source, pace, urgent, streams)


async def _paced(source: AsyncIterator[T], pace: Pace, urgent: Callable[[T], bool] | None,
                 streams: Streams) -> AsyncGenerator[list[T], None]:
    streams.active += 1
    try:
        async with aclosing(coalesce(source, lambda: pace.at(streams.active), tick=TICK, urgent=urgent)) as batched:
            async for batch in batched:
                yield batch
    finally:
        streams.active -= 1


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
