"""The runs each login has in flight on the *other* replicas of a deployment, so that its concurrency
limit and its budgets count them too (`limits.py` asks; one process has nothing elsewhere).

    shared = LocalOnly()                                      # one process: the default
    elsewhere = shared.claim("ann", run.id, cap=2, created_at=run.created_at)
    # how many of ann's runs run on other replicas; this one is counted only when that is below `cap`
    shared.ended("ann", run.id, cost=0.12)                    # it stopped running; its cost still counts
    shared.release("ann", run.id)                             # its cost is in the store now: forget it
    costs = await shared.others("ann")                        # [RunElsewhere(run_id, created_at, cost)]

`claim` is check-and-count in one step (two replicas cannot both take a login's last slot), and it and
the other calls on `LLMService.start`'s path are synchronous, as `start` is. The Redis implementation
(`llmtool/replicas/runs.py`) keeps this replica's entries alive while it lives: a replica that dies
stops renewing them, and they expire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from llmtool.errors import TooManyRunsError
from llmtool.service.scheduler import WAITING_RETRY_AFTER

if TYPE_CHECKING:
    from llmtool.accounts.principal import Principal


@dataclass(frozen=True)
class RunElsewhere:
    """A run of the login's in flight on another replica: what it cost so far (as last reported)."""

    run_id: str
    created_at: float  # Unix time
    cost: float


class SharedRuns(Protocol):
    def elsewhere(self, user: str) -> int:
        """How many of `user`'s runs are running or waiting on other replicas."""
        ...

    def claim(self, user: str, run_id: str, cap: int | None, created_at: float) -> int:
        """`elsewhere(user)`, and in the same step, when that is below `cap` (or there is no cap), count
        `run_id` as `user`'s run in flight here."""
        ...

    def ended(self, user: str, run_id: str, cost: float) -> None:
        """The claimed run stopped running (it no longer takes a slot); `cost` is what it cost."""
        ...

    def release(self, user: str, run_id: str) -> None:
        """The claimed run's end and cost are in the store: it counts no more."""
        ...

    async def others(self, user: str) -> list[RunElsewhere]:
        """`user`'s runs on other replicas that are running, or ended and not stored yet."""
        ...


class LocalOnly:
    """`SharedRuns` of a single process: no other replica, nothing elsewhere."""

    def elsewhere(self, user: str) -> int:
        return 0

    def claim(self, user: str, run_id: str, cap: int | None, created_at: float) -> int:
        return 0

    def ended(self, user: str, run_id: str, cost: float) -> None:
        pass

    def release(self, user: str, run_id: str) -> None:
        pass

    async def others(self, user: str) -> list[RunElsewhere]:
        return []


def held_elsewhere(principal: Principal, limit: int, elsewhere: int) -> TooManyRunsError:
    """The refusal of a run whose user's runs on other replicas take all of its concurrency: 429 with a
    Retry-After, not a wait in this replica's line, which no run ending on another replica would wake."""
    return TooManyRunsError(
        f"You have {elsewhere} run{'s' if elsewhere != 1 else ''} in progress on other servers of this "
        f"deployment, and your role ({principal.role}) may run {limit} at a time: wait for one to end (or "
        "stop one), then start this again",
        retry_after=WAITING_RETRY_AFTER,
    )
