"""Merging several event streams (Compare's columns) and batching them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from llmtool.ui.streams import batches, merge


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
