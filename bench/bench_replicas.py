"""What publishing every event to Redis costs the replica that runs the run, and how late a follower on
another replica sees it.

    python bench/bench_replicas.py              # ~1 min on 2 cores; starts its own redis-server
    python bench/bench_replicas.py --quick      # a smoke run
    python bench/bench_replicas.py --redis-url redis://127.0.0.1:6379/5   # an existing Redis (its db is flushed)

1. The hot path: what `Run.append` pays per event for the publisher (`EventPublisher.on_event`: append
   to a list, wake the sender), the only Redis work a run's task does.
2. The sender: CPU per event of the task that sends the batches (JSON, the pipeline, the answers), by
   batch size, and redis-server's own CPU per event.
3. The owner's CPU: the same runs (demo:echo, the run store on, paced like a real model and unpaced)
   with and without Redis, rounds alternating; the process's CPU per 1,000 events and the
   difference, and the batches the publisher made (events per round trip).
4. Following: a second replica in a process of its own follows every run through Redis; the delay
   from the owner's append to the follower's event (one clock: CLOCK_MONOTONIC), p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from support import cpu_seconds, percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis  # noqa: E402

from llmtool.events import RunEvent, TextDelta  # noqa: E402
from llmtool.replicas import connect  # noqa: E402
from llmtool.replicas.streams import EventPublisher  # noqa: E402
from llmtool.service import LLMService, Run, RunRequest  # noqa: E402
from llmtool.settings import load_settings  # noqa: E402
from tests.servers.redis import RedisServer  # noqa: E402

HOT_PATH_TARGET_US = 2.0  # what a run's task may pay per event for Redis
# Extra process CPU per event, end to end, with many streams (where round trips are shared). Against
# demo:echo's ~15–35 µs per event it shows as a large share; a real provider's event costs several times that.
CPU_TARGET_US = 10.0


def words(count: int) -> str:
    return " ".join(f"w{i}" for i in range(count))


class FakeRun:
    """Just what `on_event` reads of a run."""

    def __init__(self) -> None:
        self.id = "bench"
        self.log: list[RunEvent] = []


# -- 1. the hot path --------------------------------------------------------------------------------
async def hot_path(client: Redis, events: int) -> float:
    publisher = EventPublisher(client)  # not started: only what the run's task pays is timed
    run, event = FakeRun(), TextDelta(text=" token")
    run.log.append(event)
    began = time.perf_counter()
    for _ in range(events):
        publisher.on_event(run, event)  # type: ignore[arg-type]
        if len(publisher._batch) >= 10_000:
            publisher._batch.clear()
    return (time.perf_counter() - began) / events * 1e6


# -- 2. the sender ----------------------------------------------------------------------------------
async def sender(client: Redis, redis_pid: int | None, events: int, batch: int) -> tuple[float, float, float]:
    """CPU µs per event of this process, of redis-server, and wall µs per event, sending `events` in
    pipelines of `batch`."""
    publisher = EventPublisher(client)
    runs = [FakeRun() for _ in range(max(batch // 20, 1))]  # ~20 events per run per batch, like 100 streams
    for index, run in enumerate(runs):
        run.id = f"bench-{batch}-{index}"
    await client.delete(*[f"llmtool:run:{run.id}" for run in runs])
    event = TextDelta(text=" token")
    position = 0
    cpu, redis_cpu, wall = time.process_time(), cpu_seconds(redis_pid) if redis_pid else 0.0, time.perf_counter()
    sent = 0
    while sent < events:
        chunk = []
        for i in range(batch):
            run = runs[i % len(runs)]
            chunk.append((run.id, position, event))
            if i % len(runs) == len(runs) - 1:
                position += 1
        await publisher._send(chunk)  # type: ignore[arg-type]
        sent += batch
    cpu = time.process_time() - cpu
    redis_cpu = (cpu_seconds(redis_pid) if redis_pid else 0.0) - redis_cpu
    wall = time.perf_counter() - wall
    await client.delete(*[f"llmtool:run:{run.id}" for run in runs])
    return cpu / sent * 1e6, redis_cpu / sent * 1e6, wall / sent * 1e6


# -- 3. end to end: the owner's CPU ------------------------------------------------------------------
async def runs_once(service: LLMService, concurrent: int, tokens: int,
                    started_ids: list[str] | None = None) -> tuple[int, dict[tuple[str, int], float]]:
    """`concurrent` runs of `tokens` text events at once, to their end and stored. Returns how many
    events they made and when each was appended (perf_counter: CLOCK_MONOTONIC, one clock for every
    process of the machine)."""
    appended: dict[tuple[str, int], float] = {}

    def note(run: Run, event: RunEvent) -> None:
        appended[(run.id, len(run.log) - 1)] = time.perf_counter()

    started = []
    for _ in range(concurrent):
        run = service.start(RunRequest(model="demo:echo", prompt=words(tokens)))
        run.listeners.append(note)
        started.append(run)
        if started_ids is not None:
            started_ids.append(run.id)
    for run in started:
        await run.wait()
    assert service.recorder is not None
    await service.recorder.flush()
    return sum(len(run.log) for run in started), appended


def open_settings(folder: Path, rate: float) -> Any:
    """Settings with a store of its own for one scenario."""
    database = folder / f"runs-{time.monotonic_ns()}.db"
    return load_settings(database_url=f"sqlite+aiosqlite:///{database}",
                         demo={"first_token_delay": 0.0, "tokens_per_second": rate})


async def owner_cpu(redis_url: str, folder: Path, concurrent: int, tokens: int, rate: float,
                    rounds: int) -> dict[str, Any]:
    """Process CPU per 1,000 events of the same runs without and with Redis, rounds alternating."""
    settings = open_settings(folder, rate)
    plain = await LLMService.open(settings)
    published = await LLMService.open(settings)
    replicas = await connect(published, redis_url)
    cpu = {"without": 0.0, "with": 0.0}
    events = {"without": 0, "with": 0}
    try:
        await runs_once(plain, 2, 50)  # warm both paths once
        await runs_once(published, 2, 50)
        batches, sent = replicas.publisher.batches, replicas.publisher.sent
        for _ in range(rounds):
            for name, service in (("without", plain), ("with", published)):
                gc.collect()  # as the app does after start-up (app.py): what lives long stays out of the collector
                gc.freeze()
                began = time.process_time()
                events[name] += (await runs_once(service, concurrent, tokens))[0]
                cpu[name] += time.process_time() - began
        await replicas.publisher.flush()
        batches, sent = replicas.publisher.batches - batches, replicas.publisher.sent - sent
    finally:
        for service in (plain, published):
            await service.aclose()
        await replicas.aclose()
    per_k = {name: cpu[name] / events[name] * 1000 for name in cpu}
    return {"per_k": per_k, "added_us": (per_k["with"] - per_k["without"]) * 1000,
            "added_pct": (per_k["with"] / per_k["without"] - 1) * 100, "per_batch": sent / max(batches, 1)}


# -- 4. following from another process ---------------------------------------------------------------
async def follower_process(database_url: str, redis_url: str) -> None:
    """`follow` mode: follow every run id read from stdin on a replica of our own, from position 0; at
    end of input, print when each event arrived (JSON: [[run_id, position, perf_counter], ...])."""
    service = await LLMService.open(load_settings(database_url=database_url))
    replicas = await connect(service, redis_url)
    arrived: list[tuple[str, int, float]] = []

    async def follow(run_id: str) -> None:
        position = 0
        async with contextlib.aclosing(replicas.follow(run_id, 0)) as events:
            async for _ in events:
                arrived.append((run_id, position, time.perf_counter()))
                position += 1

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    gc.collect()  # as the app does after start-up
    gc.freeze()
    print("READY", flush=True)
    tasks = []
    while line := (await reader.readline()).decode().strip():
        tasks.append(asyncio.create_task(follow(line)))
    async with asyncio.timeout(60):
        await asyncio.gather(*tasks)
    print(json.dumps(arrived), flush=True)
    await service.aclose()
    await replicas.aclose()


async def local_reader(run: Run, arrived: list[tuple[str, int, float]]) -> None:
    """A follower in the owner's own process (from memory, as its SSE streams read): for comparison."""
    position = 0
    async with contextlib.aclosing(run.events()) as events:
        async for _ in events:
            arrived.append((run.id, position, time.perf_counter()))
            position += 1


async def follower_delays(redis_url: str, folder: Path, concurrent: int, tokens: int,
                          rate: float) -> dict[str, tuple[float, float]]:
    """Runs on this replica followed from another process through Redis, and from memory here: the
    delay append → arrival of each, p50 and p99."""
    settings = open_settings(folder, rate)
    service = await LLMService.open(settings)
    replicas = await connect(service, redis_url)
    process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "follow", str(settings.database_url), redis_url,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 28,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        assert (await process.stdout.readline()).strip() == b"READY"
        gc.collect()
        gc.freeze()
        ids: list[str] = []
        runs = asyncio.create_task(runs_once(service, concurrent, tokens, ids))
        await asyncio.sleep(0)  # the runs have started (and have ids)
        process.stdin.write("".join(f"{run_id}\n" for run_id in ids).encode() + b"\n")
        await process.stdin.drain()
        here: list[tuple[str, int, float]] = []
        readers = [asyncio.create_task(local_reader(run, here)) for run in map(service.get, ids) if run is not None]
        _, appended = await runs
        await asyncio.gather(*readers)
        arrived = json.loads(await process.stdout.readline())
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        await service.aclose()
        await replicas.aclose()
    figures = {}
    for name, seen in (("redis", arrived), ("memory", here)):
        delays = [at - appended[(run_id, position)] for run_id, position, at in seen if (run_id, position) in appended]
        figures[name] = (percentile(delays, 0.5), percentile(delays, 0.99))
    return figures


async def main(args: argparse.Namespace) -> None:
    server: RedisServer | None = None
    if args.redis_url:
        url, redis_pid = args.redis_url, None
    else:
        server = RedisServer().start()
        url, redis_pid = server.url(5), server.process.pid if server.process else None
    client = Redis.from_url(url)
    folder = Path(tempfile.mkdtemp(prefix="llmtool-bench-replicas-"))
    try:
        await client.flushdb()
        quick = args.quick
        print(f"llmtool replicas benchmark (Redis {'given' if args.redis_url else 'started here'}; "
              f"{os.cpu_count()} CPUs; {'quick' if quick else 'full'})\n")

        us = statistics.median([await hot_path(client, 200_000) for _ in range(5)])
        verdict = "ok" if us <= HOT_PATH_TARGET_US else "OVER"
        print(f"1. hot path (Run.append → publisher.on_event): {us:.2f} µs per event "
              f"[target ≤ {HOT_PATH_TARGET_US:g} µs: {verdict}]\n")

        print("2. the sender task, per event (CPU of this process | of redis-server | wall):")
        for batch in (1, 10, 100, 1000):
            count = 2_000 if batch == 1 else (20_000 if quick else 100_000)
            mine, theirs, wall = await sender(client, redis_pid, count, batch)
            print(f"   batches of {batch:>4}: {mine:6.1f} µs | {theirs:6.1f} µs | {wall:6.1f} µs")
        print()

        rounds = 1 if quick else 3
        print("3. the owner's CPU, demo:echo with the run store on, without → with Redis, rounds alternating:")
        for concurrent, tokens, rate in ((1, 300, 100.0), (100, 200, 100.0), (1, 5000, 100_000), (20, 1000, 100_000)):
            if quick:
                tokens //= 4
            figures = await owner_cpu(url, folder, concurrent, tokens, rate, rounds)
            per_k = figures["per_k"]
            paced = "unpaced" if rate >= 100_000 else f"{rate:g} tok/s"
            if concurrent > 1:
                verdict = "ok" if figures["added_us"] <= CPU_TARGET_US else "OVER"
                verdict = f"[target ≤ +{CPU_TARGET_US:g} µs: {verdict}]"
            else:
                verdict = "[one stream: a round trip per few events]"
            print(f"   {concurrent:>3} runs × {tokens:>4} events, {paced:>11}: {per_k['without'] * 1000:6.1f} → "
                  f"{per_k['with'] * 1000:6.1f} ms CPU per 1,000 events ({figures['added_us']:+.1f} µs, "
                  f"{figures['added_pct']:+.0f}% per event) {verdict}; "
                  f"{figures['per_batch']:.0f} events per round trip")
        print()
        print("4. a follower on another replica (its own process), delay from the owner's append to its event:")
        for concurrent, tokens, rate in ((1, 300, 100.0), (100, 200, 100.0)):
            if quick:
                tokens //= 4
            delays = await follower_delays(url, folder, concurrent, tokens, rate)
            (p50, p99), (here50, here99) = delays["redis"], delays["memory"]
            print(f"   {concurrent:>3} runs × {tokens:>4} events at {rate:g} tok/s: p50 {p50 * 1000:.1f} ms, "
                  f"p99 {p99 * 1000:.1f} ms (a reader in the owner's process, from memory: p50 "
                  f"{here50 * 1000:.1f} ms, p99 {here99 * 1000:.1f} ms)")
    finally:
        await client.aclose()
        shutil.rmtree(folder, ignore_errors=True)
        if server is not None:
            server.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["follow"]:
        asyncio.run(follower_process(sys.argv[2], sys.argv[3]))
        raise SystemExit
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--redis-url", help="an existing Redis to use (its database is flushed); else one is started")
    asyncio.run(main(parser.parse_args()))
