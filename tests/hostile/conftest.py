"""The event loop's responsiveness while an attack runs, and a checking pool of our own per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from llmtool.checks import CheckPool, set_pool


@dataclass
class Ticker:
    """An unrelated coroutine that wants to run every 10 ms: `max_lag` is how late it ran at worst."""

    lags: list[float] = field(default_factory=list)

    @property
    def max_lag(self) -> float:
        return max(self.lags, default=0.0)


@asynccontextmanager
async def ticking(period: float = 0.01) -> AsyncIterator[Ticker]:
    ticker = Ticker()
    loop = asyncio.get_running_loop()

    async def tick() -> None:
        while True:
            before = loop.time()
            await asyncio.sleep(period)
            ticker.lags.append(loop.time() - before - period)

    task = asyncio.create_task(tick())
    await asyncio.sleep(0)
    try:
        yield ticker
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def pool() -> AsyncIterator[CheckPool]:
    """A pool of two workers for this test alone (the shared one is put back afterwards)."""
    mine = CheckPool(size=2)
    previous = set_pool(mine)
    try:
        yield mine
    finally:
        set_pool(previous)
        await mine.aclose()
