"""Fair scheduling: which login's run talks to its provider next, so one user's burst starves nobody.

    scheduler = FairScheduler(capacity=64, headroom=8, max_waiting=64)
    ticket = scheduler.submit("ann", limit=2)   # TooManyRunsError when ann already has 64 waiting
    try:
        await ticket.wait()                     # at once when a slot is free, else in ann's own line
        ...                                     # the run talks to its provider
    finally:
        ticket.release()                        # the slot goes to whoever is next (or the wait ends)

- **Capacity**: at most `capacity` runs stream at once in this process (`runs.max_concurrent`).
- **Per user**: a user holds at most `capacity − headroom` slots, fewer when the role's
  `max_concurrent_runs` says so. The headroom is what makes "a second user's run starts at once while
  the first user has runs queued": one user's burst never fills the last `headroom` slots.
- **Lines**: a run that cannot start waits in its own user's line (first come, first served within
  it), at most `max_waiting` per user (more are refused with 429: bounded memory, and a client that
  loops gets told). Over-limit runs queue rather than fail: a chat or an evaluation cell just starts a
  little later, saying so.
- **Whose turn**: when a slot frees, the user with the fewest runs streaming among those waiting gets
  it (ties: the longest-waiting run): max-min fairness, so ten users with queued runs share the slots
  evenly however many each queued.

All of it is synchronous and on the event loop, so there is no race between deciding and counting.
Counts are per process; with several replicas each keeps its own lines and slots, and a login's runs
on the other replicas come off its cap first (`limits.py`, `shared.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from dataclasses import dataclass
from typing import Literal

from llmtool.errors import TooManyRunsError

WAITING_RETRY_AFTER = 5.0  # seconds a refused "too many waiting" suggests

TicketState = Literal["waiting", "running", "done"]


class Ticket:
    """One run's place: waiting in its user's line, running (holding a slot), or done."""

    def __init__(self, scheduler: FairScheduler, user: str, cap: int, seq: int) -> None:
        self.scheduler = scheduler
        self.user = user
        self.cap = cap
        self.seq = seq
        self.state: TicketState = "waiting"
        self._granted: asyncio.Future[None] | None = None

    @property
    def granted(self) -> bool:
        return self.state == "running"

    async def wait(self) -> None:
        """Until the run holds a slot. Cancelling it leaves the line (call `release` anyway)."""
        if self.state != "waiting":
            return
        if self._granted is None:
            self._granted = asyncio.get_running_loop().create_future()
        await self._granted

    def _grant(self) -> None:
        self.state = "running"
        if self._granted is not None and not self._granted.done():
            self._granted.set_result(None)

    def release(self) -> None:
        """The run ended (or gave up waiting): its slot, or its place in line, goes. Idempotent."""
        self.scheduler._release(self)


@dataclass(frozen=True)
class QueueState:
    """What a waiting run can tell its user."""

    ahead: int  # the user's own runs before this one in their line
    running: int  # the user's runs streaming now
    cap: int  # the most the user may stream at once
    busy: bool  # the server's slots are all taken


class FairScheduler:
    def __init__(self, capacity: int, headroom: int = 0, max_waiting: int = 64) -> None:
        self.capacity = capacity
        self.headroom = headroom
        self.max_waiting = max_waiting
        self.total = 0
        self.running: dict[str, int] = {}
        self.lines: dict[str, deque[Ticket]] = {}
        self._seq = itertools.count()

    def cap_for(self, limit: int | None) -> int:
        """The most one user may stream at once: the role's limit, within capacity − headroom."""
        share = max(1, self.capacity - self.headroom)
        return share if limit is None else max(1, min(limit, share))

    def waiting(self, user: str) -> int:
        return len(self.lines.get(user, ()))

    def would_wait(self, user: str, cap: int) -> bool:
        return bool(self.lines.get(user)) or self.running.get(user, 0) >= cap or self.total >= self.capacity

    def refusal(self, user: str, limit: int | None = None) -> TooManyRunsError | None:
        """The refusal `submit` would raise now, or None."""
        waiting = self.waiting(user)
        if waiting < self.max_waiting or not self.would_wait(user, self.cap_for(limit)):
            return None
        return TooManyRunsError(
            f"You have {waiting} run{'s' if waiting != 1 else ''} waiting for a free slot, the most you may "
            "have waiting: let some finish, or stop them, before starting more",
            retry_after=WAITING_RETRY_AFTER,
        )

    def submit(self, user: str, limit: int | None = None) -> Ticket:
        """A ticket for one run of `user` (`limit`: the role's max_concurrent_runs): running at once
        when the user is under their cap, nobody of theirs waits and a slot is free; else waiting in
        their line. `TooManyRunsError` when that line is full."""
        ticket = Ticket(self, user, self.cap_for(limit), next(self._seq))
        if not self.would_wait(user, ticket.cap):
            self._start(ticket)
            return ticket
        refusal = self.refusal(user, limit)
        if refusal is not None:
            raise refusal
        self.lines.setdefault(user, deque()).append(ticket)
        return ticket

    def state_of(self, ticket: Ticket) -> QueueState:
        line = self.lines.get(ticket.user, deque())
        ahead = next((i for i, t in enumerate(line) if t is ticket), len(line))
        return QueueState(ahead=ahead, running=self.running.get(ticket.user, 0), cap=ticket.cap,
                          busy=self.total >= self.capacity)

    def _start(self, ticket: Ticket) -> None:
        self.total += 1
        self.running[ticket.user] = self.running.get(ticket.user, 0) + 1
        ticket._grant()

    def _release(self, ticket: Ticket) -> None:
        state, ticket.state = ticket.state, "done"
        if state == "waiting":
            line = self.lines.get(ticket.user)
            if line is not None:
                with contextlib.suppress(ValueError):
                    line.remove(ticket)
                if not line:
                    del self.lines[ticket.user]
            # Its leaving may unblock nothing else (slots are unchanged) but keeps the lines honest.
            return
        if state != "running":
            return
        self.total -= 1
        left = self.running[ticket.user] - 1
        if left:
            self.running[ticket.user] = left
        else:
            del self.running[ticket.user]
        self._dispatch()

    def _dispatch(self) -> None:
        """Fill free slots: each to the waiting user with the fewest runs streaming (then the oldest
        waiting run), skipping users at their cap."""
        while self.total < self.capacity and self.lines:
            best: Ticket | None = None
            best_key: tuple[int, int] | None = None
            for user, line in self.lines.items():
                head = line[0]
                running = self.running.get(user, 0)
                if running >= head.cap:
                    continue
                key = (running, head.seq)
                if best_key is None or key < best_key:
                    best, best_key = head, key
            if best is None:
                return
            line = self.lines[best.user]
            line.popleft()
            if not line:
                del self.lines[best.user]
            self._start(best)
