"""The delta coalescer, driven by a fake clock: which items go out together, and when."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from itertools import pairwise

import pytest

from llmtool.ui.coalesce import LoopClock, coalesce

INTERVAL = 0.05


class FakeClock:
    """Time moves only when the test says so."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        entry = (self.t + seconds, asyncio.get_running_loop().create_future())
        self.sleepers.append(entry)
        try:
            await entry[1]
        finally:
            self.sleepers.remove(entry)

    async def wait(self, event: asyncio.Event, seconds: float) -> None:
        if event.is_set():
            return
        tasks = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(self.sleep(seconds))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def advance(self, seconds: float) -> None:
        self.t += seconds
        for deadline, future in list(self.sleepers):
            if deadline <= self.t + 1e-9 and not future.done():
                future.set_result(None)
        await settle()


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


class Source:
    """An async iterable the test feeds by hand."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
        self.closed = False

    def put(self, item: object) -> None:
        self.queue.put_nowait(("item", item))

    def end(self) -> None:
        self.queue.put_nowait(("end", None))

    def fail(self, error: Exception) -> None:
        self.queue.put_nowait(("error", error))

    async def __aiter__(self):
        try:
            while True:
                kind, value = await self.queue.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise value  # type: ignore[misc]
                yield value
        finally:
            self.closed = True


class Consumer:
    def __init__(self, source: Source, clock: FakeClock, tick: float | None = None,
                 interval: float | Callable[[], float] = INTERVAL,
                 urgent: Callable[[object], bool] | None = None) -> None:
        self.batches: list[list[object]] = []
        self.times: list[float] = []
        self.clock = clock
        self.iterator = coalesce(source, interval, tick=tick, clock=clock, urgent=urgent)
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for batch in self.iterator:
            self.batches.append(batch)
            self.times.append(self.clock.now())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_first_item_goes_out_at_once(clock: FakeClock) -> None:
    source = Source()
    consumer = Consumer(source, clock)
    source.put("a")
    await settle()
    assert consumer.batches == [["a"]]
    consumer.task.cancel()


async def test_items_within_the_interval_wait_and_go_out_together(clock: FakeClock) -> None:
    source = Source()
    consumer = Consumer(source, clock)
    source.put("a")
    await settle()
    for item in "bcd":
        source.put(item)
        await clock.advance(0.01)
    assert consumer.batches == [["a"]]
    await clock.advance(INTERVAL)
    assert consumer.batches == [["a"], ["b", "c", "d"]]
    consumer.task.cancel()


async def test_the_last_items_are_never_held_back(clock: FakeClock) -> None:
    source = Source()
    consumer = Consumer(source, clock)
    source.put("a")
    await settle()
    source.put("b")
    source.put("c")
    source.end()
    await settle()  # the clock never moves: the end alone flushes
    assert consumer.batches == [["a"], ["b", "c"]]
    assert consumer.task.done() and consumer.task.exception() is None


async def test_updates_never_come_faster_than_the_interval(clock: FakeClock) -> None:
    source = Source()
    consumer = Consumer(source, clock)
    for i in range(200):  # a token every 3 ms
        source.put(i)
        await clock.advance(0.003)
    source.end()
    await settle()
    assert [i for batch in consumer.batches for i in batch] == list(range(200))
    gaps = [b - a for a, b in pairwise(consumer.times[:-1])]
    assert all(gap >= INTERVAL - 1e-9 for gap in gaps)
    assert len(consumer.batches) <= 200 * 0.003 / INTERVAL + 2


async def test_a_tick_reports_that_nothing_happened(clock: FakeClock) -> None:
    source = Source()
    consumer = Consumer(source, clock, tick=0.5)
    await settle()
    await clock.advance(0.3)
    assert consumer.batches == []
    await clock.advance(0.2)
    assert consumer.batches == [[]]
    source.put("a")
    await settle()
    assert consumer.batches == [[], ["a"]]
    consumer.task.cancel()


async def test_ticks_never_come_faster_than_a_long_interval(clock: FakeClock) -> None:
    source = Source()
    consumer = Consumer(source, clock, tick=0.5, interval=2.0)
    for _ in range(100):  # 10 s of nothing
        await clock.advance(0.1)
    assert consumer.batches and all(batch == [] for batch in consumer.batches)
    gaps = [b - a for a, b in pairwise(consumer.times)]
    assert consumer.times[0] >= 2.0 - 1e-9 and all(gap >= 2.0 - 1e-9 for gap in gaps), consumer.times
    consumer.task.cancel()


async def test_ticks_and_items_together_keep_to_a_long_interval(clock: FakeClock) -> None:
    source = Source()
    consumer = Consumer(source, clock, tick=0.5, interval=2.0)
    source.put("first")
    await settle()
    assert consumer.batches == [["first"]]  # at once
    for step in range(100):  # an item now and then over 10 s, ticks in the gaps
        if step % 23 == 0:
            source.put(step)
        await clock.advance(0.1)
    gaps = [b - a for a, b in pairwise(consumer.times)]
    assert gaps and all(gap >= 2.0 - 1e-9 for gap in gaps), consumer.times
    assert [i for batch in consumer.batches for i in batch] == ["first", 0, 23, 46, 69, 92]
    consumer.task.cancel()


async def test_no_tick_means_no_empty_batches(clock: FakeClock) -> None:
    source = Source()
    consumer = Consumer(source, clock)
    await clock.advance(10)
    assert consumer.batches == []
    consumer.task.cancel()


async def test_a_source_error_arrives_after_the_items_before_it(clock: FakeClock) -> None:
    source = Source()
    consumer = Consumer(source, clock)
    source.put("a")
    await settle()
    source.put("b")
    source.fail(ValueError("boom"))
    await settle()
    assert consumer.batches == [["a"], ["b"]]
    with pytest.raises(ValueError, match="boom"):
        await consumer.task


async def test_closing_the_consumer_stops_reading_the_source(clock: FakeClock) -> None:
    source = Source()
    iterator = coalesce(source, INTERVAL, clock=clock)
    source.put("a")
    assert await anext(iterator) == ["a"]
    await iterator.aclose()
    await settle()
    assert source.closed


async def test_cancelling_the_consumer_stops_reading_the_source(clock: FakeClock) -> None:
    source = Source()
    consumer = Consumer(source, clock)
    source.put("a")
    await settle()
    consumer.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer.task
    await settle()
    assert source.closed


# -- a pace that changes while the stream goes on ---------------------------------------------------
async def test_a_wider_interval_applies_from_the_next_wait_and_a_narrower_one_again_after(clock: FakeClock) -> None:
    pace = [INTERVAL]
    source = Source()
    consumer = Consumer(source, clock, interval=lambda: pace[0])
    source.put("a")
    await settle()
    pace[0] = 0.5  # many streams now
    for item in "bcdef":
        source.put(item)
        await clock.advance(0.1)
    assert consumer.batches == [["a"], ["b", "c", "d", "e", "f"]]  # one update after 0.5 s, not five
    pace[0] = INTERVAL  # they ended
    source.put("g")
    await clock.advance(INTERVAL)
    source.put("h")
    await clock.advance(INTERVAL)
    assert consumer.batches[2:] == [["g"], ["h"]]
    assert [round(b - a, 6) for a, b in pairwise(consumer.times)] == [0.5, INTERVAL, INTERVAL]
    consumer.task.cancel()


async def test_while_items_come_an_update_comes_within_the_widest_interval(clock: FakeClock) -> None:
    widest = 1.0
    pace = [INTERVAL]
    source = Source()
    consumer = Consumer(source, clock, tick=0.5, interval=lambda: pace[0])
    for step in range(300):  # a token every 10 ms for 3 s, the pace widening to its bound and back
        pace[0] = min(widest, INTERVAL * (1 + step // 20))
        source.put(step)
        await clock.advance(0.01)
    source.end()
    await settle()
    assert [i for batch in consumer.batches for i in batch] == list(range(300))
    gaps = [b - a for a, b in pairwise(consumer.times)]
    assert max(gaps) <= widest + 1e-9, gaps
    assert any(gap > 0.5 for gap in gaps)  # it did widen


# -- urgent: the first text is not held back by a status-only item before it -------------------------
def is_text(item: object) -> bool:
    return isinstance(item, str) and item.startswith("text")


async def test_the_first_urgent_item_goes_out_at_once_with_what_waited_before_it(clock: FakeClock) -> None:
    source = Source()
    consumer = Consumer(source, clock, interval=1.0, urgent=is_text)
    await settle()
    source.put("started")  # the page was just shown: a status change alone waits for the interval
    await clock.advance(0.01)
    assert consumer.batches == []
    source.put("text 1")
    await settle()
    assert consumer.batches == [["started", "text 1"]] and consumer.times == [0.01]
    source.put("text 2")  # later text waits like any
    await clock.advance(0.5)
    assert consumer.batches == [["started", "text 1"]]
    await clock.advance(0.5)
    assert consumer.batches == [["started", "text 1"], ["text 2"]]
    consumer.task.cancel()


async def test_with_urgent_a_status_only_item_goes_out_after_the_interval(clock: FakeClock) -> None:
    source = Source()
    consumer = Consumer(source, clock, interval=1.0, tick=0.5, urgent=is_text)
    await settle()  # (the interval counts from the start)
    source.put("started")
    await clock.advance(0.9)
    assert consumer.batches == []
    await clock.advance(0.1)
    assert consumer.batches == [["started"]]
    source.put("text 1")  # the first text: at once, though the last update was just now
    await settle()
    assert consumer.batches == [["started"], ["text 1"]] and consumer.times == [1.0, 1.0]
    consumer.task.cancel()


async def test_with_urgent_the_end_still_goes_out_at_once(clock: FakeClock) -> None:
    source = Source()
    consumer = Consumer(source, clock, interval=1.0, urgent=is_text)
    source.put("started")
    source.put("failed")
    source.end()
    await settle()
    assert consumer.batches == [["started", "failed"]] and consumer.times == [0.0]
    assert consumer.task.done() and consumer.task.exception() is None


async def test_the_loop_clock_waits_for_the_event_or_the_time_whichever_comes_first() -> None:
    clock, loop = LoopClock(), asyncio.get_running_loop()
    event = asyncio.Event()
    loop.call_later(0.02, event.set)
    started = loop.time()
    await clock.wait(event, 5.0)
    assert event.is_set() and loop.time() - started < 1.0
    started = loop.time()
    await clock.wait(asyncio.Event(), 0.05)  # nothing comes: the time is up
    assert loop.time() - started >= 0.049  # (asyncio may run a timer up to its clock's resolution early)
    waiting = asyncio.create_task(clock.wait(asyncio.Event(), 5.0))
    await asyncio.sleep(0.01)
    waiting.cancel()  # the waiter's own cancellation is not mistaken for the time being up
    with pytest.raises(asyncio.CancelledError):
        await waiting
