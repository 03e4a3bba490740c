"""A stalled owner that comes back after a survivor marked its run `interrupted` (its heartbeat was late)
cannot overwrite that ending: the store refuses its later progress, and the owner ends the run there
too. Both backends."""

from __future__ import annotations

import asyncio
import logging
import os
import time

import pytest

from llmtool.events import Completed, Metrics, Started, TextDelta
from llmtool.service import LLMService, RunRequest
from llmtool.service.recorder import ENDED_ELSEWHERE
from llmtool.settings import load_settings
from llmtool.store import Owner, RunRecord, RunUpdate, open_store
from llmtool.store.schema import owners
from llmtool.store.sql import INTERRUPTED_MESSAGE, SqlRunStore, this_host


def record(run_id: str, owner: str) -> RunRecord:
    return RunRecord(id=run_id, model="demo:echo", request={}, prompt="hi", owner=owner)


async def miss_heartbeats(store: SqlRunStore, owner_id: str) -> None:
    """As if `owner_id` had not beaten for two minutes."""
    async with store.engine.begin() as connection:
        await connection.execute(owners.update().where(owners.c.id == owner_id).values(heartbeat_at=time.time() - 120))


async def test_the_store_refuses_progress_of_a_run_another_process_ended(store: SqlRunStore) -> None:
    stalled, survivor = (Owner(name, this_host(), os.getpid(), time.time()) for name in ("stalled", "survivor"))
    for owner in (stalled, survivor):
        await store.heartbeat(owner)
    await store.save([record("late", "stalled")],
                     [RunUpdate("late", 0, [Started(run_id="late", model="demo:echo"), TextDelta(text="half ")],
                                {"text": "half "})])
    await miss_heartbeats(store, "stalled")
    assert await store.interrupt_orphans(survivor, 30) == ["late"]
    interrupted = await store.get_run("late")
    assert interrupted is not None and interrupted.status == "interrupted" and interrupted.event_count == 3

    # The stalled process writes again: the end of "late" as it saw it, and a run it started meanwhile.
    metrics = Metrics(total_time=2.0, output_tokens=3)
    ending = {"status": "completed", "text": "half and more", "metrics": metrics, "ended_at": time.time()}
    refused = await store.save(
        [record("fresh", "stalled")],
        [RunUpdate("late", 2, [TextDelta(text="and more"), Completed(finish_reason="stop", text="half and more", metrics=metrics)], ending),
         RunUpdate("fresh", 0, [Started(run_id="fresh", model="demo:echo"), TextDelta(text="x")], {"text": "x"})],
    )
    assert refused == ["late"]
    kept = await store.get_run("late")
    assert kept is not None
    assert (kept.status, kept.text, kept.error_message, kept.event_count) == (
        "interrupted", "half ", INTERRUPTED_MESSAGE, 3)
    assert kept.ended_at == interrupted.ended_at and kept.metrics == interrupted.metrics
    assert [event.kind for event in await store.events("late")] == ["started", "text", "interrupted"]
    fresh = await store.get_run("fresh")  # the rest of the batch is written as ever
    assert fresh is not None and (fresh.status, fresh.text, fresh.event_count) == ("running", "x", 2)
    assert await store.save([], [RunUpdate("late", 4, [TextDelta(text="!")], {"text": "half and more!"})]) == ["late"]
    assert [event.kind for event in await store.events("late")] == ["started", "text", "interrupted"]


async def test_a_stalled_owner_ends_its_run_interrupted_and_leaves_the_stored_ending_alone(
        store_url: str, caplog: pytest.LogCaptureFixture) -> None:
    # Beats only at start (a long interval): its heartbeat "stalls" while its writer keeps writing.
    settings = load_settings(database_url=store_url, demo={"first_token_delay": 0.0, "tokens_per_second": 200},
                             store={"flush_interval": 0.1, "heartbeat_interval": 300})
    service = await LLMService.open(settings)
    survivor_store = await open_store(store_url)
    survivor = Owner("survivor", this_host(), os.getpid(), time.time())
    try:
        assert service.recorder is not None
        run = service.start(RunRequest(model="demo:echo", prompt=" ".join(f"w{i}" for i in range(4000))))  # ~20 s
        deadline = time.monotonic() + 10
        while (stored := await survivor_store.get_run(run.id)) is None or stored.event_count < 10:
            assert time.monotonic() < deadline, stored
            await asyncio.sleep(0.02)

        await survivor_store.heartbeat(survivor)
        await miss_heartbeats(survivor_store, service.recorder.owner.id)
        assert await survivor_store.interrupt_orphans(survivor, 30) == [run.id]
        interrupted = await survivor_store.get_run(run.id)
        assert interrupted is not None and interrupted.status == "interrupted"
        stored_events = await survivor_store.events(run.id)

        with caplog.at_level(logging.WARNING, logger="llmtool.service.recorder"):
            ending = await asyncio.wait_for(run.wait(), timeout=10)  # at the owner's next write, not in ~20 s
            assert ending.kind == "interrupted" and ending.message == ENDED_ELSEWHERE
            assert ending.text == run.text_so_far() and len(ending.text) > len(interrupted.text)
            deadline = time.monotonic() + 5
            while service.get(run.id) is not None:  # let go: the store answers for it
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            await service.recorder.flush()
            await asyncio.sleep(5 * settings.store.flush_interval)  # a few more writes: still nothing

        kept = await survivor_store.get_run(run.id)
        assert kept is not None
        assert (kept.status, kept.text, kept.event_count, kept.ended_at, kept.error_message) == (
            "interrupted", interrupted.text, interrupted.event_count, interrupted.ended_at, INTERRUPTED_MESSAGE)
        assert await survivor_store.events(run.id) == stored_events
        assert [event.kind for event in stored_events].count("interrupted") == 1
        said = [r for r in caplog.records if run.id in r.getMessage() and "another process" in r.getMessage()]
        assert len(said) == 1, [r.getMessage() for r in caplog.records]  # once
    finally:
        await service.aclose()
        await survivor_store.aclose()
