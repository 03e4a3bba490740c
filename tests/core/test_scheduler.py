"""The fair scheduler's decisions and the rate counters, without any run: who gets a freed slot, the
per-user cap below the capacity, bounded lines, leaving a line; sliding windows and when to retry."""

from __future__ import annotations

import asyncio

import pytest

from llmtool.errors import TooManyRunsError
from llmtool.service.counters import MemoryCounters
from llmtool.service.scheduler import FairScheduler, Ticket


def states(tickets: list[Ticket]) -> list[str]:
    return [t.state for t in tickets]


def test_a_freed_slot_goes_to_the_waiting_user_with_the_fewest_running() -> None:
    scheduler = FairScheduler(capacity=4, headroom=0, max_waiting=10)
    ann = [scheduler.submit("ann") for _ in range(6)]
    assert states(ann) == ["running"] * 4 + ["waiting"] * 2
    bob = [scheduler.submit("bob") for _ in range(2)]
    cat = [scheduler.submit("cat")]
    assert states(bob + cat) == ["waiting"] * 3  # the slots are all ann's
    ann[0].release()
    assert bob[0].granted  # bob has none running: he goes before ann's waiting runs
    ann[1].release()
    assert cat[0].granted  # then cat (none running) before bob's second
    ann[2].release()
    assert ann[4].granted  # ann and bob both run one: the longer-waiting run goes first
    bob[0].release()
    assert bob[1].granted and not ann[5].granted  # bob runs none now, ann two
    assert scheduler.total == 4 and scheduler.running == {"ann": 2, "bob": 1, "cat": 1}

def test_headroom_leaves_slots_to_others_and_a_role_limit_caps_lower() -> None:
    scheduler = FairScheduler(capacity=8, headroom=2, max_waiting=10)
    ann = [scheduler.submit("ann") for _ in range(8)]
    assert states(ann).count("running") == 6  # 8 − 2 headroom
    assert scheduler.submit("bob").granted  # a free slot at once
    partner = [scheduler.submit("pat", limit=1) for _ in range(2)]
    assert states(partner) == ["running", "waiting"]
    assert scheduler.cap_for(None) == 6 and scheduler.cap_for(100) == 6 and scheduler.cap_for(1) == 1


def test_a_full_line_refuses_only_runs_that_would_wait() -> None:
    scheduler = FairScheduler(capacity=2, headroom=0, max_waiting=1)
    first = scheduler.submit("ann", limit=1)
    scheduler.submit("ann", limit=1)  # waits: the one place in ann's line
    with pytest.raises(TooManyRunsError, match="You have 1 run waiting for a free slot") as refused:
        scheduler.submit("ann", limit=1)
    assert refused.value.retry_after == 5.0
    assert scheduler.submit("bob").granted  # someone else is not refused
    first.release()
    assert scheduler.waiting("ann") == 0 and scheduler.running["ann"] == 1


async def test_waiting_is_awaited_and_leaving_the_line_gives_up_the_place() -> None:
    scheduler = FairScheduler(capacity=1, headroom=0, max_waiting=5)
    holder = scheduler.submit("ann")
    leaving, staying = scheduler.submit("ann"), scheduler.submit("ann")
    waiter = asyncio.create_task(leaving.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    leaving.release()  # as the run's task does when it is stopped while waiting
    assert scheduler.waiting("ann") == 1
    holder.release()
    await asyncio.wait_for(staying.wait(), 1)
    assert staying.granted and leaving.state == "done"
    staying.release()
    staying.release()  # idempotent
    assert scheduler.total == 0 and not scheduler.running and not scheduler.lines


def test_counters_count_a_sliding_window_and_say_when_one_more_fits() -> None:
    now = [1000.0]
    counters = MemoryCounters(clock=lambda: now[0])
    assert [counters.hit("k", 3, 60) for _ in range(3)] == [0.0, 0.0, 0.0]
    now[0] += 10
    assert counters.peek("k", 3, 60) == pytest.approx(50)
    assert counters.hit("k", 3, 60) == pytest.approx(50) and counters.count("k", 60) == 3  # nothing counted
    now[0] += 50.5
    assert counters.hit("k", 3, 60) == 0.0 and counters.count("k", 60) == 1
    now[0] += 61
    assert counters.count("k", 60) == 0 and "k" not in counters._events  # quiet keys do not pile up
