"""Login throttling: password guesses slowed down, then refused for a while, per user name and per
client address (`accounts.throttle` in the settings).

    keys = throttle_keys("ann", "203.0.113.9")
    refused = await throttle.refusal(keys)        # before any hashing: None, or how long to wait
    verdict = await throttle.failure(keys)        # a wrong password: how long to hold the answer, locked?
    await throttle.success(keys)                  # the right one: the user's failures are forgotten

After `free_failures` failures in `window_minutes` each further failure is answered `delay` seconds
later than the one before (1 s, 2 s, 3 s…) and the next attempt is refused until then (so parallel
guesses do not get around it); at `lock_after` failures the key is locked for `lock_minutes`, during
which even the right password is refused. A success forgets the user name's failures, not the
address's (a second account of the attacker's must not wash them away).

`Throttle` is the interface; `MemoryThrottle` keeps the counts in this process's memory (a
deployment of several processes would multiply the allowance by their number: with Redis configured
they share `llmtool/replicas/throttle.py`'s instead).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from llmtool.settings import LoginThrottle

MAX_DELAY = 60.0
MAX_KEYS = 100_000


@dataclass(frozen=True)
class Refusal:
    """Not now: `retry_after` seconds; `locked` when the lock-out (not the slowing down) says so."""

    retry_after: float
    locked: bool

    @property
    def seconds(self) -> int:
        """For a Retry-After header: whole seconds, at least 1."""
        return max(1, math.ceil(self.retry_after))

    @property
    def message(self) -> str:
        if self.locked:
            return ("Too many failed logins for this user name or from this address: logging in is locked "
                    f"for {_duration(self.retry_after)}. Try again then, or ask an administrator.")
        return (f"Too many failed logins for this user name or from this address: wait {_duration(self.retry_after)} "
                "and try again.")


@dataclass(frozen=True)
class Verdict:
    """What a failure brought: hold the answer `delay` seconds; `locked` when it began a lock-out."""

    delay: float = 0.0
    locked: Refusal | None = None


def throttle_keys(user: str, address: str | None) -> list[str]:
    keys = ["user:" + user.strip().casefold()[:200]]
    if address:
        keys.append("address:" + address)
    return keys


class Throttle(Protocol):
    async def refusal(self, keys: Sequence[str]) -> Refusal | None:
        """None when an attempt may be checked now, else why not and for how long (the longest)."""

    async def failure(self, keys: Sequence[str]) -> Verdict:
        """Count a wrong password against every key."""

    async def success(self, keys: Sequence[str]) -> None:
        """The right password: forget the user name's failures (`keys[0]`)."""

    async def clear(self) -> None:
        """Forget everything (an administrator's reset; tests)."""


@dataclass
class _State:
    failures: deque[float] = field(default_factory=deque)
    next_try: float = 0.0  # no attempt before this time (slowing down)
    locked_until: float = 0.0


class MemoryThrottle:
    """The counts in this process's memory; `clock` is monotonic seconds (tests move it)."""

    def __init__(self, settings: LoginThrottle, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self._states: dict[str, _State] = {}

    async def refusal(self, keys: Sequence[str]) -> Refusal | None:
        now = self.clock()
        worst: Refusal | None = None
        for key in keys:
            state = self._states.get(key)
            if state is None:
                continue
            if state.locked_until > now:
                found = Refusal(state.locked_until - now, locked=True)
            elif state.next_try > now:
                found = Refusal(state.next_try - now, locked=False)
            else:
                continue
            if worst is None or (found.locked, found.retry_after) > (worst.locked, worst.retry_after):
                worst = found
        return worst

    async def failure(self, keys: Sequence[str]) -> Verdict:
        now = self.clock()
        window = self.settings.window_minutes * 60
        delay, locked = 0.0, None
        for key in keys:
            state = self._state(key, now)
            while state.failures and state.failures[0] <= now - window:
                state.failures.popleft()
            state.failures.append(now)
            count = len(state.failures)
            if count >= self.settings.lock_after:
                state.locked_until = now + self.settings.lock_minutes * 60
                state.failures.clear()  # after the lock-out the free failures are free again
                locked = Refusal(state.locked_until - now, locked=True)
            elif count > self.settings.free_failures:
                wait = min(self.settings.delay * (count - self.settings.free_failures), MAX_DELAY)
                state.next_try = max(state.next_try, now + wait)
                delay = max(delay, wait)
        return Verdict(delay=0.0 if locked else delay, locked=locked)

    async def success(self, keys: Sequence[str]) -> None:
        if keys:
            state = self._states.get(keys[0])
            if state is not None and state.locked_until <= self.clock():
                del self._states[keys[0]]

    async def clear(self) -> None:
        self._states.clear()

    def _state(self, key: str, now: float) -> _State:
        state = self._states.get(key)
        if state is None:
            if len(self._states) >= MAX_KEYS:
                self._forget_idle(now)
            state = self._states[key] = _State()
        return state

    def _forget_idle(self, now: float) -> None:
        """Drop the keys with nothing to remember (no lock, no recent failure); if that is not
        enough, the oldest half (a flood of made-up user names must not exhaust memory)."""
        window = self.settings.window_minutes * 60
        for key in [k for k, s in self._states.items()
                    if s.locked_until <= now and (not s.failures or s.failures[-1] <= now - window)]:
            del self._states[key]
        if len(self._states) >= MAX_KEYS:
            for key in list(self._states)[: MAX_KEYS // 2]:
                del self._states[key]


def _duration(seconds: float) -> str:
    whole = max(1, math.ceil(seconds))
    if whole < 60:
        return f"{whole} second{'s' if whole != 1 else ''}"
    minutes = math.ceil(whole / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
