"""Counters the limits share: sliding windows of events per key (runs started per user per minute).

    counters = MemoryCounters()
    wait = counters.hit("starts:ann", limit=10, window=60)   # 0.0: counted; else seconds until one fits
    wait = counters.peek("starts:ann", limit=10, window=60)  # the same answer, nothing counted

`MemoryCounters` counts for one process. With Redis configured, the replicas share
`llmtool/replicas/counters.py`'s (a sorted set per key, checked and counted in one Lua script). The
calls are synchronous because `LLMService.start` is: the Redis implementation uses a synchronous client
(~0.07 ms a call on loopback) with a short timeout.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Protocol


class Counters(Protocol):
    def hit(self, key: str, limit: int, window: float) -> float:
        """Count one event under `key` when fewer than `limit` happened in the last `window` seconds
        and answer 0.0; else count nothing and answer the seconds until one more would fit."""
        ...

    def peek(self, key: str, limit: int, window: float) -> float:
        """What `hit` would answer, counting nothing."""
        ...

    def count(self, key: str, window: float) -> int:
        """Events under `key` in the last `window` seconds."""
        ...


class MemoryCounters:
    """`Counters` for one process: a deque of event times per key, pruned as it is read."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._events: dict[str, deque[float]] = {}

    def _recent(self, key: str, window: float) -> deque[float]:
        events = self._events.get(key)
        if events is None:
            return deque()
        cutoff = self.clock() - window
        while events and events[0] <= cutoff:
            events.popleft()
        if not events:
            del self._events[key]  # keys of users who went quiet do not pile up
        return events

    def peek(self, key: str, limit: int, window: float) -> float:
        events = self._recent(key, window)
        if len(events) < limit:
            return 0.0
        # The oldest event that must leave the window before one more fits.
        return max(events[len(events) - limit] + window - self.clock(), 0.001)

    def hit(self, key: str, limit: int, window: float) -> float:
        wait = self.peek(key, limit, window)
        if wait == 0.0:
            self._events.setdefault(key, deque()).append(self.clock())
        return wait

    def count(self, key: str, window: float) -> int:
        return len(self._recent(key, window))
