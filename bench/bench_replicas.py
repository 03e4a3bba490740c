"""One replica against two behind nginx: N concurrent users through the HTTP API, each one 200-token
answer at 10 ms per token from the loopback provider, on PostgreSQL and Redis as a deployment runs.

    python bench/bench_replicas.py                      # 100 users, 1 and 2 replicas, 3 rounds each
    python bench/bench_replicas.py --users 100 200 --replicas 1 2 3

Processes, all on 127.0.0.1: the loopback provider (alone, as in bench_api.py), PostgreSQL and
redis-server (tests/servers, started here), `llmtool serve --replicas N`'s own ReplicaSet (N app
processes + Debian's nginx: round robin for /api), and this client (bench/light_http.py: one
connection per user, `POST /api/runs` then its events, so with 2 replicas the events are often
followed on the replica that does not run the answer, through Redis).

Per round: first and last text (p50/p99) from each user's start, answers per second (the users over
the round's length), CPU seconds per answer of the replicas and of everything else on the machine
(nginx, PostgreSQL, Redis, the provider, this client), and the replicas' memory at rest (after a
warm-up of two users per replica) and at its highest while all answers stream (Python keeps what it
once held, so the growth is what the streams took). From these: how many concurrent streams one core and one GB of
replica hold, and what 1,000 concurrent users need.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.servers: the PostgreSQL and Redis the test suite starts the same way

from bench_api import KEY, MODEL, TOKENS, Seen, Server, api_light  # noqa: E402
from support import cpu_seconds, machine_busy_seconds, ms, percentile  # noqa: E402

from llmtool.replicas.serve import ReplicaSet, find_nginx  # noqa: E402
from llmtool.settings import load_settings  # noqa: E402
from tests.servers.postgres import PostgresServer  # noqa: E402
from tests.servers.redis import RedisServer  # noqa: E402

SETTLE = 1.0  # s after a round: the replicas' store writes of its last answers count, then end
PEAK_AFTER = 1.0  # s into a round: every answer is streaming; the replicas' memory is read then


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def crowd(url: str, users: int, pids: list[int], peak: list[float]) -> tuple[list[Seen], float]:
    async def read_peak() -> None:
        await asyncio.sleep(PEAK_AFTER)
        peak.append(sum(rss_mb(pid) for pid in pids))

    start = time.monotonic()
    reader = asyncio.get_running_loop().create_task(read_peak())
    seen = list(await asyncio.gather(*(api_light(url, i) for i in range(users))))
    await reader
    return seen, time.monotonic() - start


def measure(replicas: ReplicaSet, users: int, rounds: int) -> dict[str, float]:
    pids = [process.pid for process in replicas.replicas]
    # Warm up with a few users only (imports, pools, the store): Python keeps the memory it once
    # used, so the growth over the first crowded round is what `users` streams at once take.
    asyncio.run(crowd(replicas.url, 2 * len(pids), pids, []))
    time.sleep(SETTLE)
    idle = sum(rss_mb(pid) for pid in pids)
    first: list[float] = []
    last: list[float] = []
    rates, app_cpu, other_cpu, peak = [], [], [], []  # type: ignore[var-annotated]
    for _ in range(rounds):
        app_before = sum(cpu_seconds(pid) for pid in pids)
        busy_before = machine_busy_seconds()
        seen, wall = asyncio.run(crowd(replicas.url, users, pids, peak))
        time.sleep(SETTLE)
        app = sum(cpu_seconds(pid) for pid in pids) - app_before
        app_cpu.append(app / users)
        other_cpu.append((machine_busy_seconds() - busy_before - app) / users)
        rates.append(users / wall)
        if any(s.first is None or s.last is None for s in seen):
            raise RuntimeError("a user got no text")
        first += [s.first - s.start for s in seen if s.first is not None]
        last += [s.last - s.start for s in seen if s.last is not None]
    return {
        "first_p50": statistics.median(first), "first_p99": percentile(first, 0.99),
        "last_p50": statistics.median(last), "last_p99": percentile(last, 0.99),
        "answers_per_s": statistics.median(rates), "app_cpu": statistics.median(app_cpu),
        "other_cpu": statistics.median(other_cpu), "idle_mb": idle,
        "peak_mb": max(peak), "answer_s": statistics.median(last),
    }


def report(users: int, results: dict[int, dict[str, float]]) -> None:
    print(f"\n{users} concurrent users, ms unless said")
    print("  replicas  first p50   p99  last p50   p99  answers/s  CPU s/answer: replicas  others  "
          "replicas' RSS MB: idle  streaming")
    for count, r in results.items():
        print(f"  {count:8d}  {ms(r['first_p50']):>9} {ms(r['first_p99']):>5}  {ms(r['last_p50']):>8} "
              f"{ms(r['last_p99']):>5}  {r['answers_per_s']:9.1f}  {r['app_cpu']:22.4f}  {r['other_cpu']:6.4f}  "
              f"{r['idle_mb']:22.0f}  {r['peak_mb']:9.0f}")
    one = results[min(results)]
    # A stream lasts `answer_s` and costs `app_cpu` of a replica's CPU: one core, fully busy, holds
    # answer_s / app_cpu of them at once. Memory: what the replicas grew by with `users` streaming.
    per_core = one["answer_s"] / one["app_cpu"]
    per_stream_mb = max(one["peak_mb"] - one["idle_mb"], 0.1) / users
    print(f"\n  one replica: {one['app_cpu'] * 1000:.1f} ms CPU per {TOKENS}-token answer "
          f"({one['app_cpu'] / TOKENS * 1e6:.0f} µs per token), {per_stream_mb * 1024:.0f} KB per stream "
          f"beyond {one['idle_mb']:.0f} MB at rest")
    print(f"  → one core holds ~{per_core:.0f} concurrent streams at 100 % (~{per_core * 0.6:.0f} at 60 %, "
          f"the headroom to plan with); one GB holds ~{1024 / per_stream_mb:.0f} streams")
    cores = 1000 / (per_core * 0.6)
    replicas = max(2, round(cores + 0.49))
    memory = replicas * one["idle_mb"] + 1000 * per_stream_mb
    print(f"  → 1,000 concurrent streams: ~{cores:.1f} cores of replicas at 60 %, i.e. {replicas} replicas "
          f"(one process uses one core) with ~{memory / 1024:.1f} GB between them, plus the balancer, "
          "PostgreSQL and Redis (their CPU per answer above, under 'others', with this client and the provider)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[100])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if find_nginx() is None:
        raise SystemExit("nginx is not installed: bash tests/servers/install.sh")
    print(f"Replicas: {TOKENS} tokens at 10 ms each through POST /api/runs + its events · {os.cpu_count()} CPUs · "
          f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as folder, PostgresServer() as postgres, \
            RedisServer() as redis:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLMTOOL_")}
        env.pop("LLMTOOL_CONFIG", None)
        provider = Server("loopback", env, Path(folder))
        try:
            results: dict[int, dict[int, dict[str, float]]] = {users: {} for users in args.users}
            for count in args.replicas:
                os.environ.update({
                    "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": f"{provider.url}/v1",
                    "LLMTOOL_DEFAULT_MODEL": f"openai:{MODEL}",
                    "LLMTOOL_DATABASE_URL": postgres.new_database(), "LLMTOOL_REDIS_URL": redis.new_url(),
                    "LLMTOOL_TIMEOUTS__FIRST_TOKEN": "600", "LLMTOOL_TIMEOUTS__IDLE": "600",
                    "LLMTOOL_TIMEOUTS__TOTAL": "3600", "LLMTOOL_RUNS__DRAIN_SECONDS": "2",
                })
                settings = load_settings()
                with ReplicaSet(settings, replicas=count, host="127.0.0.1", port=0) as replicas:
                    for users in args.users:
                        results[users][count] = measure(replicas, users, args.rounds)
                        print(f"  {count} replica(s), {users} users: done", flush=True)
            for users, by_count in results.items():
                report(users, by_count)
        finally:
            provider.close()


if __name__ == "__main__":
    main()
