"""Merging several event streams (Compare's columns) and batching them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from llmtool.ui.streams import Pace, Streams, batches, merge


async def items(*values: object, gate: asyncio.Event | None = None, closed: list[str] | None = None,
                name: str = "") -> AsyncIterator[object]:
    try:
        for value in values:
            if gate is not None:
                await gate.wait()
            yield value
    finally:
        if closed is not None:
            closed.append(name)


async def test_merge_tags_items_with_their_source_and_keeps_each_sources_order() -> None:
    merged = [pair async for pair in merge([items("a1", "a2", "a3"), items("b1", "b2")])]
    assert sorted(merged) == [(0, "a1"), (0, "a2"), (0, "a3"), (1, "b1"), (1, "b2")]
    assert [v for i, v in merged if i == 0] == ["a1", "a2", "a3"]


async def test_a_slow_source_does_not_hold_back_a_fast_one() -> None:
    gate = asyncio.Event()
    merged = merge([items("slow", gate=gate), items("fast")])
    assert await anext(merged) == (1, "fast")
    gate.set()
    assert await anext(merged) == (0, "slow")
    with pytest.raises(StopAsyncIteration):
        await anext(merged)


async def test_closing_the_merge_closes_every_source() -> None:
    closed: list[str] = []
    gate = asyncio.Event()  # never set: both sources wait forever
    merged = merge([items("x", gate=gate, closed=closed, name="a"), items("y", gate=gate, closed=closed, name="b")])
    task = asyncio.ensure_future(anext(merged))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await merged.aclose()
    assert sorted(closed) == ["a", "b"]


async def test_a_failing_source_raises_after_the_items_before_it() -> None:
    async def failing() -> AsyncIterator[str]:
        yield "ok"
        raise RuntimeError("boom")

    seen = []
    with pytest.raises(RuntimeError, match="boom"):
        async for pair in merge([failing()]):
            seen.append(pair)
    assert seen == [(0, "ok")]


async def test_batches_without_an_interval_are_one_item_each() -> None:
    assert [b async for b in batches(items(1, 2, 3), 0)] == [[1], [2], [3]]


async def test_batches_with_an_interval_lose_nothing() -> None:
    got = [b async for b in batches(items(*range(50)), 0.05)]
    assert [x for batch in got for x in batch] == list(range(50))


# -- the pace: wider while many stream, back once they end ----------------------------------------
def test_the_pace_is_the_interval_while_few_stream_and_each_ones_share_past_the_budget() -> None:
    pace = Pace(interval=0.05, per_second=400, longest=1.0)
    assert [pace.at(n) for n in (0, 1, 20)] == [0.05, 0.05, 0.05]  # 20 × 20 updates/s: within 400/s
    assert pace.at(100) == pytest.approx(0.25)  # 100 streams share 400 updates/s: 4 each
    assert pace.at(200) == pytest.approx(0.5)
    assert pace.at(10_000) == 1.0  # never further apart than `longest`
    assert Pace(interval=0).at(1000) == 0.0  # interval 0: every event, however many
    assert Pace(interval=2.0, per_second=400, longest=1.0).at(1000) == 2.0  # a wider setting stays


def test_the_pace_comes_from_the_settings() -> None:
    from llmtool.settings import load_settings

    pace = Pace.of(load_settings(ui={"update_interval": 0.1, "updates_per_second": 50}))
    assert (pace.interval, pace.per_second) == (0.1, 50)
    assert Pace.of(load_settings()).at(100) == pytest.approx(0.25)  # the defaults: 50 ms, 400/s


async def test_every_batched_stream_counts_until_it_is_closed_or_cancelled() -> None:
    streams = Streams()
    gate, never = asyncio.Event(), asyncio.Event()

    async def endless() -> AsyncIterator[str]:
        yield "a"
        await never.wait()
        yield "b"

    first = batches(endless(), 0.01, streams=streams)
    second = batches(items("c", gate=gate), 0.01, streams=streams)
    assert streams.active == 0  # not before the first batch is asked for
    waiting = [asyncio.ensure_future(anext(first)), asyncio.ensure_future(anext(second))]
    await asyncio.sleep(0.01)
    assert streams.active == 2
    gate.set()
    assert await waiting[0] == ["a"] and await waiting[1] == ["c"]
    assert [b async for b in second] == [] and streams.active == 1  # the second ended
    task = asyncio.ensure_future(anext(first))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await first.aclose()
    assert streams.active == 0


async def test_the_interval_widens_with_the_streams_of_the_process() -> None:
    streams = Streams()
    pace = Pace(interval=0.01, per_second=100, longest=1.0)  # past 1 stream, each one's share
    gates = [asyncio.Event() for _ in range(20)]
    open_ = [batches(items("x", gate=gate), pace, streams=streams) for gate in gates]
    waiting = [asyncio.ensure_future(anext(b)) for b in open_]
    await asyncio.sleep(0.01)
    assert streams.active == 20 and pace.at(streams.active) == pytest.approx(0.2)
    for gate in gates:
        gate.set()
    await asyncio.gather(*waiting)
    for b in open_:
        await b.aclose()
    assert streams.active == 0 and pace.at(streams.active) == 0.01  # back to the setting
