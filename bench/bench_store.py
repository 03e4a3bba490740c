"""What the run store costs: stream overhead, history queries over 100,000 runs, and memory.

    python bench/bench_store.py               # the full run, a few minutes on 2 cores
    python bench/bench_store.py --quick       # a smoke run: fewer runs, 10,000 stored runs
    python bench/bench_store.py --postgres    # also the history part on a throwaway PostgreSQL

1. Overhead: one service with the SQLite store and one without, on the same loopback server, runs
   alternating between them (Responses protocol). Time to first token (p50) and process CPU per
   1,000 deltas; a stored run's CPU clock stops once the recorder has written its terminal event,
   so the writer's work is in the figure. The loopback server's thread is in both figures alike.
2. History: 100,000 runs saved in batches (prompts and answers from a Zipf-weighted word list, a
   few rare words, mixed statuses, models, templates and users over 90 days), then history's
   queries (p50/p95), an export of every run to JSONL, and the database's size.
3. Memory: RSS of a fresh process running demo runs with the store open, after 100 and after 1,000
   finished runs (they must leave memory once stored).

Every database lives in a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from llmtool.events import Metrics
from llmtool.loopback import LoopbackServer, Scenario
from llmtool.service import LLMService
from llmtool.settings import Settings, load_settings
from llmtool.store import RunQuery, RunRecord, RunSource, RunStatus, open_store
from llmtool.store.schema import runs
from llmtool.store.sql import SqlRunStore

ROOT = Path(__file__).resolve().parent.parent
RESPONSES_MODEL = "openai:gpt-4.1-mini"
DAY = 86400.0

TTFT_TARGET_MS = 1.0  # extra time to first token the store may add
CPU_TARGET_PCT = 10.0  # extra CPU per delta the store may add
QUERY_TARGET_MS = 100.0  # p95 of a history query on SQLite
MEMORY_TARGET_MB = 50.0  # RSS growth from 100 to 1,000 finished runs


@dataclass(frozen=True)
class Scale:
    overhead_runs: int
    unpaced_deltas: int
    paced_runs: int
    paced_deltas: int
    paced_rate: float  # deltas per second
    history_runs: int
    query_repeats: int
    memory_runs: tuple[int, int, int]  # RSS after each; the target is on the first two


FULL = Scale(overhead_runs=20, unpaced_deltas=2000, paced_runs=15, paced_deltas=200, paced_rate=200.0,
             history_runs=100_000, query_repeats=30, memory_runs=(100, 1000, 2000))
QUICK = Scale(overhead_runs=5, unpaced_deltas=2000, paced_runs=3, paced_deltas=100, paced_rate=400.0,
              history_runs=10_000, query_repeats=10, memory_runs=(20, 200, 400))


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(pct / 100 * len(ordered)) - 1, 0)]


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


# -- 1. overhead -------------------------------------------------------------------------------------


async def wait_stored(service: LLMService, run_id: str, timeout: float = 10.0) -> None:
    """Until the recorder has written the run's terminal event (the run then leaves memory)."""
    deadline = time.monotonic() + timeout
    while service.get(run_id) is not None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} was not stored within {timeout:g} s")
        await asyncio.sleep(0.002)


async def one_run(service: LLMService, deltas: int) -> tuple[float, float]:
    """(TTFT in s, CPU ms per 1,000 deltas) of one run, the store's write of its end included."""
    cpu = time.process_time()
    start = time.perf_counter()
    first: float | None = None
    seen = 0
    run = service.start({"model": RESPONSES_MODEL, "prompt": "hi"})
    async for event in run.events():
        if event.kind == "text":
            seen += 1
            if first is None:
                first = time.perf_counter()
    assert run.status == "completed", run.terminal
    assert first is not None and seen == deltas, (seen, deltas)
    if service.recorder is not None:
        await wait_stored(service, run.id)
    cpu = time.process_time() - cpu
    return first - start, cpu * 1000 / seen * 1000


async def compare(services: dict[str, LLMService], server: LoopbackServer, scenario: Scenario | None,
                  runs_each: int, deltas: int) -> dict[str, list[tuple[float, float]]]:
    """(TTFT ms, CPU ms/1k deltas) of each run per service, interleaved (the order flips each repetition)."""
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in services}
    names = list(services)
    for repetition in range(runs_each):
        for name in names if repetition % 2 == 0 else names[::-1]:
            if scenario is not None:
                server.enqueue(scenario)
            ttft, cpu = await one_run(services[name], deltas)
            results[name].append((ttft * 1000, cpu))
    return results


async def bench_overhead(scale: Scale, folder: Path) -> None:
    unpaced = " ".join(f"word{i}" for i in range(scale.unpaced_deltas))
    paced = Scenario(text=" ".join(f"word{i}" for i in range(scale.paced_deltas)),
                     tokens_per_second=scale.paced_rate)
    with LoopbackServer(default=Scenario(text=unpaced)) as server:
        settings = load_settings(OPENAI_API_KEY="k", OPENAI_BASE_URL=server.openai_base_url,
                                 database_url=sqlite_url(folder / "overhead.db"))
        services = {"off": LLMService(settings), "on": await LLMService.open(settings)}
        try:
            for service in services.values():  # warm up: SDK models, connections, the store's statements
                for _ in range(3):
                    await one_run(service, scale.unpaced_deltas)
            cases = [
                (f"{scale.unpaced_deltas} deltas unpaced", None, scale.overhead_runs, scale.unpaced_deltas),
                (f"{scale.paced_deltas} deltas @ {1000 / scale.paced_rate:g} ms", paced, scale.paced_runs,
                 scale.paced_deltas),
            ]
            print("\n1. Service overhead, SQLite store off vs on (Responses via loopback, runs interleaved)")
            print(f"   {'answer':24} {'runs':>5} {'store':>6} {'TTFT p50':>11} {'CPU ms/1k deltas':>17}")
            for label, scenario, runs_each, deltas in cases:
                results = await compare(services, server, scenario, runs_each, deltas)
                medians = {name: (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows))
                           for name, rows in results.items()}
                for name in ("off", "on"):
                    ttft, cpu = medians[name]
                    print(f"   {label:24} {runs_each:5} {name:>6} {ttft:8.2f} ms {cpu:17.1f}")
                extra_ttft = medians["on"][0] - medians["off"][0]
                extra_cpu = (medians["on"][1] / medians["off"][1] - 1) * 100
                pairs = list(zip(results["off"], results["on"], strict=True))
                paired_ttft = statistics.median(on[0] - off[0] for off, on in pairs)
                paired_cpu = statistics.median((on[1] / off[1] - 1) * 100 for off, on in pairs)
                print(f"   {'':24} store adds {extra_ttft:+.2f} ms TTFT (target ≤ +{TTFT_TARGET_MS:g} ms: "
                      f"{verdict(extra_ttft <= TTFT_TARGET_MS)}), {extra_cpu:+.1f} % CPU "
                      f"(target ≤ +{CPU_TARGET_PCT:g} %: {verdict(extra_cpu <= CPU_TARGET_PCT)})")
                print(f"   {'':24} median of the {len(pairs)} paired differences: {paired_ttft:+.2f} ms TTFT, "
                      f"{paired_cpu:+.1f} % CPU")
            print("   (CPU is the whole process: the service, the SDK, the store's writer and the loopback "
                  "server's thread)")
        finally:
            for service in services.values():
                await service.aclose()


# -- 2. history --------------------------------------------------------------------------------------

VOCABULARY = (
    "the of and to a in is that for it as with be on this are by not or from at your can have an we "
    "will which if more data model you use when one all has each time should also into value answer "
    "request these list table user file text code first other there what output function result "
    "example their new how error some only step used then than make about would same test order "
    "number two like may need name most over set before under each report summary customer service "
    "account payment invoice order shipping return policy question review draft email letter meeting "
    "project plan budget quarter sales market team product feature release version update change "
    "issue bug fix server client database query index cache memory network request response status "
    "config settings option default value field record row column type string integer float date "
    "python script module package library install build deploy docker cluster node pod container "
    "image log metric alert trace latency throughput timeout retry queue worker task job schedule "
    "translate french german spanish english sentence paragraph word tone formal casual friendly short"
)
COMMON = list(dict.fromkeys(VOCABULARY.split()))  # most frequent first (Zipf weights)
RARE = ["quokka", "zanzibar", "kerfuffle", "pamplemousse", "oxbow", "thixotropic", "gazump", "yttrium"]
RARE_RATE = 0.001  # each rare word lands in about this share of runs
MODELS = ["openai:gpt-4.1-mini", "openai:gpt-4.1", "anthropic:claude-haiku-4-5", "anthropic:claude-sonnet-4-5",
          "local:llama3", "demo:assistant"]
STATUSES: list[RunStatus] = ["completed", "failed", "stopped", "interrupted"]
STATUS_WEIGHTS = [85, 8, 5, 2]
TEMPLATES = [None, None, None, "summarize", "translate", "classify", "extract", "reply"]
SOURCES: list[RunSource] = ["chat", "template", "api", "cli", "compare"]
USERS = [None, *(f"user{i}" for i in range(20))]
ZIPF = [1 / (rank + 1) for rank in range(len(COMMON))]


def words(rng: random.Random, low: int, high: int) -> str:
    chosen = rng.choices(COMMON, weights=ZIPF, k=rng.randint(low, high))
    for rare in RARE:
        if rng.random() < RARE_RATE / 2:  # prompt and answer each get half the chance
            chosen.insert(rng.randrange(len(chosen) + 1), rare)
    return " ".join(chosen).capitalize() + "."


def fake_runs(count: int, seed: int = 7) -> list[RunRecord]:
    """`count` ended runs, oldest first, created over the last 90 days."""
    rng = random.Random(seed)
    now = time.time()
    times = sorted(now - rng.random() * 90 * DAY for _ in range(count))
    records = []
    for created in times:
        model = rng.choice(MODELS)
        status = rng.choices(STATUSES, weights=STATUS_WEIGHTS)[0]
        prompt = words(rng, 40, 80)
        text = words(rng, 80, 160) if status != "failed" else ""
        total = rng.uniform(0.5, 20)
        template = rng.choice(TEMPLATES)
        records.append(RunRecord(
            id=f"run_{uuid.UUID(int=rng.getrandbits(128)).hex}",
            user=rng.choice(USERS),
            source="template" if template else rng.choice(SOURCES),
            model=model,
            request={"model": model, "messages": [{"role": "user", "content": prompt}]},
            prompt=prompt,
            template=template,
            template_hash=f"{hash(template) & 0xFFFFFFFF:08x}" if template else None,
            variables={"input": prompt[:40]} if template else None,
            status=status,
            text=text,
            error_kind="rate_limit" if status == "failed" else None,
            error_message="the provider refused: too many requests" if status == "failed" else None,
            metrics=Metrics(time_to_first_token=rng.uniform(0.2, 2), total_time=total,
                            deltas=len(text.split()), input_tokens=len(prompt) // 4,
                            output_tokens=len(text) // 4, cost_usd=rng.uniform(0, 0.01)),
            created_at=created,
            ended_at=created + total,
        ))
    return records


def sqlite_size(sqlite_file: Path) -> str:
    sizes = {suffix: sqlite_file.with_name(sqlite_file.name + suffix) for suffix in ("", "-wal")}
    main, wal = (path.stat().st_size if path.exists() else 0 for path in sizes.values())
    return f"{main / 1e6:.1f} MB (+ {wal / 1e6:.1f} MB WAL)"


async def postgres_size(store: SqlRunStore) -> str:
    async with store.engine.connect() as connection:
        size = (await connection.exec_driver_sql("SELECT pg_database_size(current_database())")).scalar_one()
    return f"{int(size) / 1e6:.1f} MB"


async def query_plan(store: SqlRunStore, query: RunQuery) -> list[str]:
    """How the database runs `list_runs(query)` (the statement rebuilt as the store builds it)."""
    statement = store._filtered(query).order_by(runs.c.seq.desc()).limit(query.limit + 1)
    sql = str(statement.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True}))
    explain = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
    async with store.engine.connect() as connection:
        rows = (await connection.exec_driver_sql(explain + sql)).all()
    return [str(row[-1]) for row in rows]


async def deep_cursor(store: SqlRunStore, depth: int) -> int:
    """The `next_cursor` a reader has after paging `depth` runs back from the newest."""
    async with store.engine.connect() as connection:
        result = await connection.exec_driver_sql(f"SELECT seq FROM runs ORDER BY seq DESC LIMIT 1 OFFSET {depth - 1}")
        return int(result.scalar_one())


async def bench_history(scale: Scale, label: str, url: str, sqlite_file: Path | None, folder: Path,
                        show_plans: bool) -> None:
    store = await open_store(url)
    assert isinstance(store, SqlRunStore)
    try:
        print(f"\n2. History on {label}: {scale.history_runs:,} stored runs")
        started = time.perf_counter()
        records = fake_runs(scale.history_runs)
        built = time.perf_counter() - started
        started = time.perf_counter()
        for first in range(0, len(records), 1000):
            await store.save(records[first:first + 1000], [])
        saved = time.perf_counter() - started
        del records
        gc.collect()
        print(f"   built in {built:.1f} s; saved in batches of 1,000 in {saved:.1f} s "
              f"({scale.history_runs / saved:,.0f} runs/s)")

        common_a, common_b = COMMON[30], COMMON[45]
        rare = RARE[0]
        depth = scale.history_runs // 2
        queries = [
            ("a. first page (50 newest)", RunQuery()),
            (f"b. page at depth {depth:,} (cursor)", RunQuery(before=await deep_cursor(store, depth))),
            ("c. status=failed + model", RunQuery(status="failed", model=MODELS[0])),
            (f"d. search rare '{rare}'", RunQuery(text=rare)),
            (f"e. search '{common_a} {common_b}'", RunQuery(text=f"{common_a} {common_b}")),
            (f"f. search '{common_a}' + failed + model", RunQuery(text=common_a, status="failed", model=MODELS[0])),
        ]
        target = QUERY_TARGET_MS if store.dialect == "sqlite" else None
        shown_target = f"target p95 ≤ {QUERY_TARGET_MS:g} ms" if target else "no target (SQLite's applies)"
        print(f"   {'query (list_runs, 50 per page)':42} {'matches':>8} {'p50 ms':>8} {'p95 ms':>8}   {shown_target}")
        for name, query in queries:
            matches = await store.count_runs(query.model_copy(update={"before": None}))
            await store.list_runs(query)  # warm: the first read of a page pulls it from disk
            times = []
            for _ in range(scale.query_repeats):
                started = time.perf_counter()
                page = await store.list_runs(query)
                times.append((time.perf_counter() - started) * 1000)
            assert len(page.runs) == min(query.limit, matches) or query.before is not None, (name, len(page.runs))
            p95 = percentile(times, 95)
            mark = f"  {verdict(p95 <= target)}" if target else ""
            print(f"   {name:42} {matches:8,} {statistics.median(times):8.1f} {p95:8.1f}{mark}")
            if show_plans or (target is not None and p95 > target):
                for line in await query_plan(store, query):
                    print(f"      plan: {line}")

        export = folder / f"export-{store.dialect}.jsonl"
        started = time.perf_counter()
        exported = 0
        with export.open("w", encoding="utf-8") as out:
            async for record in store.iter_runs(RunQuery()):
                out.write(record.model_dump_json())
                out.write("\n")
                exported += 1
        took = time.perf_counter() - started
        assert exported == scale.history_runs, exported
        print(f"   export of all {exported:,} runs to JSONL: {took:.1f} s, {exported / took:,.0f} rows/s "
              f"({export.stat().st_size / 1e6:.0f} MB)")
        export.unlink()
        size = sqlite_size(sqlite_file) if sqlite_file else await postgres_size(store)
        print(f"   database size: {size} (runs only, no event logs)")
    finally:
        await store.aclose()


@asynccontextmanager
async def postgres_url() -> AsyncIterator[str]:
    sys.path.insert(0, str(ROOT))  # tests/ is not installed
    from tests.servers.postgres import PostgresServer

    server = PostgresServer().start()
    try:
        yield server.new_database()
    finally:
        server.stop()


# -- 3. memory ---------------------------------------------------------------------------------------


def rss_mb() -> float:
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def drained(service: LLMService, timeout: float = 10.0) -> None:
    """Until every finished run is stored and has left memory (or the timeout passes). The recorder's
    own writer does it: calling `recorder.flush()` beside it can remove a run twice (KeyError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.runs():
            return
        await asyncio.sleep(0.01)


async def bench_memory(checkpoints: tuple[int, ...], folder: Path) -> None:
    settings: Settings = load_settings(database_url=sqlite_url(folder / "memory.db"),
                                       demo={"first_token_delay": 0, "tokens_per_second": 100_000})
    service = await LLMService.open(settings)
    at_a_time = 4
    try:
        baseline = rss_mb()
        print(f"\n3. Memory: one process, SQLite store, demo runs {at_a_time} at a time")
        print(f"   {'after':>14} {'RSS':>9} {'runs in memory':>15} {'peak while running':>19}")
        print(f"   {'open, no runs':>14} {baseline:6.1f} MB {len(service.runs()):15}")
        done = 0
        readings: list[float] = []
        for checkpoint in checkpoints:
            peak = 0
            while done < checkpoint:
                batch = [service.start({"model": "demo:assistant", "prompt": f"Summarize report {done + i} "
                                        "for the quarterly budget meeting, in three short bullet points."})
                         for i in range(min(at_a_time, checkpoint - done))]
                for run in batch:
                    await run.wait()
                    assert run.status == "completed", run.terminal
                done += len(batch)
                peak = max(peak, len(service.runs()))
            await drained(service)
            readings.append(rss_mb())
            print(f"   {f'{checkpoint:,} runs':>14} {readings[-1]:6.1f} MB {len(service.runs()):15} {peak:19}")
        growth = readings[1] - readings[0]
        print(f"   growth from {checkpoints[0]:,} to {checkpoints[1]:,} runs: {growth:+.1f} MB "
              f"(target within {MEMORY_TARGET_MB:g} MB: {verdict(abs(growth) <= MEMORY_TARGET_MB)})")
        print(f"   growth from {checkpoints[1]:,} to {checkpoints[2]:,} runs: {readings[2] - readings[1]:+.1f} MB "
              "(a leak keeps growing; a high-water mark of runs waiting for the writer does not)")
        stored = await service.store.count_runs(RunQuery()) if service.store else 0
        assert stored == checkpoints[-1], stored
    finally:
        await service.aclose()


def memory_in_fresh_process(checkpoints: tuple[int, ...], folder: Path) -> None:
    """Parts 1–2 leave this process's heap large; memory is measured where nothing else ran."""
    sys.stdout.flush()
    subprocess.run([sys.executable, __file__, "--memory-child", ",".join(map(str, checkpoints)),
                    "--folder", str(folder)], check=True)


# -- main --------------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    scale = QUICK if args.quick else FULL
    folder = Path(tempfile.mkdtemp(prefix="llmtool-bench-store-"))
    try:
        started = time.perf_counter()
        print(f"bench_store ({'quick' if args.quick else 'full'}), {os.cpu_count()} CPUs, Python "
              f"{sys.version.split()[0]}")
        if not args.skip_overhead:
            await bench_overhead(scale, folder)
        if not args.skip_history:
            db = folder / "history.db"
            await bench_history(scale, "SQLite", sqlite_url(db), db, folder, args.plans)
            if args.postgres:
                async with postgres_url() as url:
                    await bench_history(scale, "PostgreSQL", url, None, folder, args.plans)
        if not args.skip_memory:
            memory_in_fresh_process(scale.memory_runs, folder)
        print(f"\ndone in {time.perf_counter() - started:.0f} s")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (fewer runs, 10,000 stored)")
    parser.add_argument("--postgres", action="store_true", help="also run the history part on PostgreSQL")
    parser.add_argument("--plans", action="store_true", help="print every history query's plan")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-history", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)  # "100,1000,2000": part 3 alone, in this process
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.memory_child:
        counts = tuple(int(n) for n in arguments.memory_child.split(","))
        asyncio.run(bench_memory(counts, arguments.folder or Path(tempfile.gettempdir())))
    else:
        asyncio.run(main(arguments))
