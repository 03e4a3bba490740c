"""Owners across real processes on PostgreSQL: a replica killed with SIGKILL mid-run leaves its run to
the survivors, which mark it `interrupted` exactly once (partial text kept) within the heartbeat
window, and a follower on a survivor gets everything the dead owner published, then that ending."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from llmtool.replicas import connect
from llmtool.service import LLMService
from llmtool.store.schema import owners
from tests.replicas.conftest import BLOCK, RECHECK, replica_settings
from tests.replicas.test_live_events import Reader
from tests.servers.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[2]


async def _owner_run(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    async with asyncio.timeout(30):
        line = (await process.stdout.readline()).decode()
    assert line.startswith("run "), line
    return line.split()[1]


async def test_a_killed_replicas_run_is_interrupted_once_by_the_survivors_and_its_follower_ends(
        postgres_server: PostgresServer, redis_url: str) -> None:
    database = postgres_server.new_database()
    settings = replica_settings(database, redis_url)
    survivors = [await LLMService.open(settings) for _ in range(2)]
    linked = [await connect(service, redis_url, block=BLOCK, recheck=RECHECK) for service in survivors]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.replicas.owner_process", database, redis_url,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        run_id = await _owner_run(process)
        reader = Reader(linked[0].follow, run_id)
        await reader.reached(40)  # live, through Redis, from the other process
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()
        killed_at = time.monotonic()
        seen = await reader.ended(timeout=10)
        assert time.monotonic() - killed_at < settings.store.stale_after + 1
        assert seen[0].kind == "started" and seen[-1].kind == "interrupted"
        assert all(event.kind in ("started", "text") for event in seen[:-1])
        record = await survivors[1].record(run_id)
        assert record is not None and record.status == "interrupted" and record.text
        stored = await survivors[1].store.events(run_id)  # type: ignore[union-attr]
        assert [event.kind for event in stored].count("interrupted") == 1  # by one survivor, once
        assert stored[-1].kind == "interrupted" and len(stored) == record.event_count
        # Both survivors kept beating and looking for orphans meanwhile: still once.
        await asyncio.sleep(3 * settings.store.heartbeat_interval)
        again = await survivors[0].store.events(run_id)  # type: ignore[union-attr]
        assert [event.kind for event in again].count("interrupted") == 1
        async with survivors[0].store.engine.connect() as connection:  # type: ignore[union-attr]
            remaining = {row.pid for row in (await connection.execute(owners.select())).all()}
        assert process.pid not in remaining and remaining == {os.getpid()}  # the dead owner is gone, we stay
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        for service, replicas in zip(survivors, linked, strict=True):
            await service.aclose()
            await replicas.aclose()
