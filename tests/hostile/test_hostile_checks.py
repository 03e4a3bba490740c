"""Checks that run too long are stopped at their time limit, with a sentence; the pool carries on."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path

import pytest

from llmtool.checks import CheckPool, CheckTimedOut, aclose, check_text, set_pool, shared_pool
from llmtool.evaluation import DatasetError, load_dataset_async
from llmtool.templates import load_template
from llmtool.validation import ValidationRules
from tests.helpers import write_template
from tests.hostile.conftest import ticking

RULE = "tests.hostile.validators"


@pytest.mark.parametrize("validator", ["sleeps", "spins"])
async def test_a_check_past_its_time_limit_fails_with_the_reason_and_the_pool_goes_on(
    pool: CheckPool, validator: str
) -> None:
    rules = ValidationRules(required_patterns=["^x"], python=f"{RULE}:{validator}")
    first = await check_text(ValidationRules(python=f"{RULE}:pid"), "warm up", time_limit=30)
    async with ticking() as ticker:
        started = time.perf_counter()
        problems = await check_text(rules, "abc", time_limit=0.5)
        elapsed = time.perf_counter() - started
    assert problems == [
        "required pattern not found: ^x",  # found before the python rule ran: kept
        f"the check of the python rule {RULE}:{validator} took longer than 0.5 s and was stopped",
    ]
    assert 0.5 <= elapsed < 3
    assert ticker.max_lag < 1.0
    # the pool replaced the killed worker: the next checks run, in a live process
    again = await asyncio.gather(*(check_text(ValidationRules(python=f"{RULE}:pid"), "x", time_limit=30)
                                   for _ in range(3)))
    assert all(p[0].startswith("pid ") for p in again)
    assert first != [] and len(pool.workers) <= pool.size


async def test_a_check_whose_process_dies_says_so(pool: CheckPool) -> None:
    problems = await check_text(ValidationRules(python=f"{RULE}:exits"), "x", time_limit=10)
    assert len(problems) == 1
    assert problems[0].startswith(f"the check of the python rule {RULE}:exits stopped unexpectedly")
    assert await check_text(ValidationRules(python=f"{RULE}:passes"), "x", time_limit=10) == []


async def test_more_checks_than_workers_wait_their_turn(pool: CheckPool) -> None:
    rules = ValidationRules(forbidden_patterns=["(a+)+$"], json=True)
    texts = ['"' + "a" * 10_000 + f'{i}"' for i in range(12)]
    async with ticking() as ticker:
        results = await asyncio.gather(*(check_text(rules, text, time_limit=30) for text in texts))
    assert results == [[]] * 12
    assert pool.started == 2  # reused, never more than its size
    assert ticker.max_lag < 1.0


async def test_a_cancelled_check_leaves_the_pool_usable(pool: CheckPool) -> None:
    slow = asyncio.create_task(check_text(ValidationRules(python=f"{RULE}:sleeps"), "x", time_limit=30))
    await asyncio.sleep(1.0)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert await check_text(ValidationRules(python=f"{RULE}:passes"), "x", time_limit=30) == []


async def test_the_generic_task_is_stopped_at_its_limit(pool: CheckPool) -> None:
    assert await pool.run("echo", "hello", time_limit=30) == "hello"
    with pytest.raises(CheckTimedOut, match=r"the check of the echo took longer than 0\.2 s and was stopped"):
        await pool.run("echo", "hello", 10.0, time_limit=0.2)
    assert await pool.run("echo", "again", time_limit=30) == "again"


async def test_the_pool_starts_lazily_and_closes(pool: CheckPool) -> None:
    assert pool.workers == [] and pool.started == 0
    assert await check_text(ValidationRules(max_length=3), "abcd") == ["too long: 4 characters, at most 3 allowed"]
    assert await check_text(ValidationRules(forbidden_patterns=["b"]), "abc") == ["forbidden pattern found: b (matched 'b')"]
    assert pool.started == 0  # cheap checks stay inline
    await check_text(ValidationRules(python=f"{RULE}:passes"), "x")
    [worker] = pool.workers
    await pool.aclose()
    assert pool.workers == []
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(worker, 0)


async def test_the_shared_pool_is_one_per_process_and_aclose_ends_it() -> None:
    previous = set_pool(None)
    try:
        first = shared_pool()
        assert shared_pool() is first
        await check_text(ValidationRules(python=f"{RULE}:passes"), "x")
        assert first.workers
        await aclose()
        assert first.workers == [] and shared_pool() is not first
    finally:
        await aclose()
        set_pool(previous)


async def test_without_processes_checks_run_inline_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sys, "executable", "")
    mine = CheckPool(size=1)
    previous = set_pool(mine)
    try:
        with caplog.at_level(logging.WARNING, logger="llmtool.checks.pool"):
            assert await check_text(ValidationRules(python=f"{RULE}:passes"), "x") == []
        assert mine.inline
        assert "checks run inline" in caplog.text
    finally:
        set_pool(previous)
        await mine.aclose()


async def test_reading_a_dataset_past_its_time_limit_is_a_clear_refusal(tmp_path: Path, pool: CheckPool) -> None:
    template = load_template(write_template(tmp_path, "t", "---\nvariables:\n  word: {}\n---\n{{ word }}\n"))
    path = tmp_path / "slow.csv"
    path.write_text("word,expect_regex\n" + "".join(f"w{i},^w{i}$\n" for i in range(5000)))
    await pool.run("echo", None, time_limit=30)  # a started worker: the limit is the reading's alone
    with pytest.raises(DatasetError, match=r"slow.csv: reading the dataset took longer than 0.01 s and was stopped"):
        await load_dataset_async(path, template, time_limit=0.01)
    dataset = await load_dataset_async(path, template)
    assert len(dataset.cases) == 5000 and dataset.cases[-1].expect.regex == "^w4999$"


async def test_a_worker_that_ended_while_idle_is_replaced(pool: CheckPool) -> None:
    import os
    import signal

    assert await check_text(ValidationRules(python=f"{RULE}:passes"), "x") == []
    [worker] = pool.workers
    os.kill(worker, signal.SIGKILL)
    await asyncio.sleep(0.2)
    problems = await check_text(ValidationRules(python=f"{RULE}:pid"), "x")
    assert problems[0].startswith("pid ") and problems[0] != f"pid {worker}"
