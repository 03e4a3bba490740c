"""What llmtool's HTTP API adds: N concurrent users, one 200-token answer each at 10 ms per token
from the loopback provider (OpenAI Responses protocol), every server in its own process.

    python bench/bench_api.py --ref HEAD                        # 20 and 100 users, 3 rounds per mode
    python bench/bench_api.py --ref HEAD --profile /tmp/prof    # + one py-spy round per app and user count

Processes, all on 127.0.0.1:

- loopback: the fake provider (`llmtool.loopback.LoopbackServer`, its default scenario the 200-token answer
  paced at 100 tok/s), alone in a process, so its pacing does not share a GIL with anything measured;
- llmtool:  `llmtool.web.app.create_app(settings)` under uvicorn, the run store (SQLite) in a temporary
  `XDG_DATA_HOME` / `LLMTOOL_DATABASE_URL`, the key and base URL from OPENAI_API_KEY / OPENAI_BASE_URL;
- relay:    a bare FastAPI app under uvicorn, one `openai.AsyncOpenAI(max_retries=0)` shared by all
  requests, `GET /relay` relaying the SDK stream's text deltas as SSE frames through a StreamingResponse;
- this process, the client (httpx, a minimal SSE reader), and "direct": the SDK's stream consumed here,
  the baseline for the total time.

Modes, per user: direct (`responses.create(stream=True)` here), relay (`GET /relay`), api (`POST /api/runs`,
then `GET {Location}/events`). Each round sends --users requests at once in one mode; the modes alternate
within each round (and their order rotates round by round), so drift and noise hit all. One unmeasured warm-up
round per mode first. Times are from the moment the client starts asking: first text (the first text delta or
`event: text` frame), last text (the last one, before the terminal event). The loopback records when each
provider request arrived and when its stream ended (time.monotonic, one clock for all processes), which splits
the time into: start → provider request, and the provider's end of stream → last text at the client.
Targets: api first text p50 ≤ 1.2× relay, api last text p50 ≤ 1.05× direct.

--ref REF: llmtool (the app and the loopback) as committed at REF (git archive), not the working tree, which
others may be editing. --profile DIR: after measuring, `py-spy record` on the llmtool and relay processes for
one more round per user count; raw stacks in DIR, CPU by where it goes and llmtool's top functions printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import openai
from light_http import Connection
from profiling import SAMPLE_RATE, Profiler, ours, stacks, top_frames
from support import (
    cpu_seconds,
    machine_busy_seconds,
    ms,
    percentile,
    serve_app,
    snapshot,
    stop,
    waited_seconds,
    with_source,
)

TOKENS = 200
RATE = 100.0  # tok/s: 10 ms per token
TEXT = " ".join(f"tok{i}" for i in range(TOKENS))
MODEL = "gpt-4.1-mini"
KEY = "sk-loopback-bench"
SETTLE = 0.5  # s after each round: the app's work after the last answer (store writes) counts, then ends
MODES = ("direct", "relay", "api")
CLIENTS = ("light", "httpx", "httpx-shared")
APPS = ("llmtool", "relay")
USER = re.compile(r"user (\d+):")
TERMINAL = ("completed", "failed", "stopped", "interrupted")


# -- the servers, each in its own process (`bench_api.py serve WHICH`) -----------------------------
def llmtool_app() -> Any:
    from llmtool.settings import load_settings
    from llmtool.web.app import create_app

    settings = load_settings(  # key, base URL and database URL from the environment
        default_model=f"openai:{MODEL}",
        timeouts={"first_token": 600, "idle": 600, "total": 3600},
        ui={"queue_size": 10_000},
    )
    return create_app(settings)


def relay_app() -> Any:
    """The leanest relay: one shared SDK client, each text delta one SSE frame."""
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse

    app = FastAPI()
    client = openai.AsyncOpenAI(max_retries=0)  # OPENAI_API_KEY / OPENAI_BASE_URL, as llmtool's

    @app.get("/relay")
    async def relay_endpoint(prompt: str = "hi") -> StreamingResponse:
        stream = await client.responses.create(model=MODEL, input=prompt, stream=True)

        async def relay_frames() -> AsyncIterator[bytes]:
            n = 0
            try:
                async for event in stream:
                    if event.type == "response.output_text.delta":
                        yield f"id: {n}\nevent: text\ndata: {json.dumps({'text': event.delta})}\n\n".encode()
                        n += 1
            finally:
                await stream.close()
            yield f"id: {n}\nevent: completed\ndata: {{}}\n\n".encode()

        return StreamingResponse(relay_frames(), media_type="text/event-stream")

    return app


def serve(which: str) -> None:
    """Internal: start one server on a free port, print `PORT n`, run until stdin closes."""
    if which == "loopback":
        from llmtool.loopback import LoopbackServer, Scenario

        provider = LoopbackServer(default=Scenario(text=TEXT, tokens_per_second=RATE)).start()
        print(f"PORT {provider.port}", flush=True)
        sys.stdin.read()
        provider.stop()
        return
    serve_app(llmtool_app() if which == "llmtool" else relay_app(), which)


class Server:
    """One server process started by `serve`."""

    def __init__(self, which: str, env: dict[str, str], cwd: Path) -> None:
        self.name = which
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "serve", which],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=cwd,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.close()
            raise RuntimeError(f"{which} did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def close(self) -> None:
        stop(self.process)


# -- the client ------------------------------------------------------------------------------------
@dataclass
class Seen:
    start: float  # time.monotonic(), as the loopback's records
    first: float | None = None
    last: float | None = None
    accepted: float | None = None  # api: the POST's 202 arrived
    received: float | None = None  # the loopback got this user's provider request
    closed: float | None = None  # the loopback ended that response


async def direct(client: openai.AsyncOpenAI, user: int) -> Seen:
    seen = Seen(time.monotonic())
    stream = await client.responses.create(model=MODEL, input=f"user {user}: hi", stream=True)
    async for event in stream:
        if event.type == "response.output_text.delta":
            seen.last = time.monotonic()
            seen.first = seen.first or seen.last
    return seen


async def read_sse(status: int, lines: AsyncIterator[str], seen: Seen) -> Seen:
    """A minimal SSE reader: note each `event: text` line; stop at the terminal event."""
    if status != 200:
        raise RuntimeError(f"events: HTTP {status}")
    async for line in lines:
        if line == "event: text":
            seen.last = time.monotonic()
            seen.first = seen.first or seen.last
        elif line.startswith("event: ") and line[7:] in TERMINAL:
            if line[7:] != "completed":
                raise RuntimeError(f"the run ended {line[7:]}")
            break
    return seen


def run_body(user: int) -> dict[str, str]:
    return {"model": f"openai:{MODEL}", "prompt": f"user {user}: hi"}


async def relay(http: httpx.AsyncClient, url: str, user: int) -> Seen:
    seen = Seen(time.monotonic())
    async with http.stream("GET", f"{url}/relay", params={"prompt": f"user {user}: hi"}) as response:
        return await read_sse(response.status_code, response.aiter_lines(), seen)


async def api(http: httpx.AsyncClient, url: str, user: int) -> Seen:
    seen = Seen(time.monotonic())
    created = await http.post(f"{url}/api/runs", json=run_body(user))
    if created.status_code != 202:
        raise RuntimeError(f"POST /api/runs: HTTP {created.status_code} {created.text[:300]}")
    seen.accepted = time.monotonic()
    async with http.stream("GET", f"{url}{created.headers['location']}/events") as response:
        return await read_sse(response.status_code, response.aiter_lines(), seen)


async def relay_light(url: str, user: int) -> Seen:
    seen = Seen(time.monotonic())
    connection = await Connection.open(*address(url))
    try:
        path = f"/relay?{urlencode({'prompt': f'user {user}: hi'})}"
        async with connection.stream("GET", path) as (status, _, lines):
            return await read_sse(status, lines, seen)
    finally:
        await connection.close()


async def api_light(url: str, user: int) -> Seen:
    seen = Seen(time.monotonic())
    connection = await Connection.open(*address(url))
    try:
        status, headers, body = await connection.request("POST", "/api/runs", run_body(user))
        if status != 202:
            raise RuntimeError(f"POST /api/runs: HTTP {status} {body[:300]!r}")
        seen.accepted = time.monotonic()
        async with connection.stream("GET", f"{headers['location']}/events") as (status, _, lines):
            return await read_sse(status, lines, seen)
    finally:
        await connection.close()


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


@dataclass
class Round:
    seen: list[Seen]
    cpu: dict[str, float]  # process name → CPU seconds in the round
    wait: dict[str, float]  # process name → seconds its threads waited for a CPU (all CPUs busy)


class Bench:
    def __init__(self, servers: dict[str, Server], client: str = "light") -> None:
        self.servers = servers
        self.client = client
        self.provider = httpx.Client(base_url=servers["loopback"].url, timeout=30)

    def one_round(self, mode: str, users: int) -> Round:
        self.provider.post("/_loopback/reset").raise_for_status()
        pids = {name: s.process.pid for name, s in self.servers.items()} | {"client": os.getpid()}
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        waited = {name: waited_seconds(pid) for name, pid in pids.items()}
        busy = machine_busy_seconds()
        seen = asyncio.run(self.crowd(mode, users))
        time.sleep(SETTLE)
        cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        cpu["others"] = machine_busy_seconds() - busy - sum(cpu.values())  # what else ran on this machine
        wait = {name: waited_seconds(pid) - waited[name] for name, pid in pids.items()}
        missing = [i for i, s in enumerate(seen) if s.first is None or s.last is None]
        if missing:
            raise RuntimeError(f"{mode}: {len(missing)} of {users} users got no text")
        for record in self.provider.get("/_loopback/requests").json():
            found = USER.search(json.dumps(record.get("body")))
            if found is not None and int(found.group(1)) < users:
                seen[int(found.group(1))].received = record["received_at"]
                seen[int(found.group(1))].closed = record["closed_at"]
        return Round(seen, cpu, wait)

    async def crowd(self, mode: str, users: int) -> list[Seen]:
        """`users` requests at once, each user with its own client (`--client`): by default the light
        one (bench/light_http.py: one connection per user, tens of µs of this process's CPU per request,
        as users on their own machines); `httpx`: an httpx client per user (~1 ms of CPU per request
        here, which the api mode's two requests pay twice); `httpx-shared`: one httpx pool for all
        (its O(connections × requests) bookkeeping held the api mode's second request ~1 s at 100 users
        before it left this process). Clients are made before the clock starts; the SDK direct mode
        gives each user its own SDK client except with httpx-shared."""
        one: Callable[[int], Awaitable[Seen]]
        loopback = f"{self.servers['loopback'].url}/v1"
        shared = self.client == "httpx-shared"
        if mode == "direct":
            sdks = [openai.AsyncOpenAI(api_key=KEY, base_url=loopback, max_retries=0)
                    for _ in range(1 if shared else users)]
            try:
                return list(await asyncio.gather(*(direct(sdks[i % len(sdks)], i) for i in range(users))))
            finally:
                for sdk in sdks:
                    await sdk.close()
        url = self.servers["relay" if mode == "relay" else "llmtool"].url
        if self.client == "light":
            one = (lambda i: relay_light(url, i)) if mode == "relay" else (lambda i: api_light(url, i))
            return list(await asyncio.gather(*(one(i) for i in range(users))))
        limits = httpx.Limits(max_connections=users + 8, max_keepalive_connections=users + 8)
        https = [httpx.AsyncClient(timeout=60, limits=limits) for _ in range(1 if shared else users)]
        try:
            one = ((lambda i: relay(https[i % len(https)], url, i)) if mode == "relay"
                   else (lambda i: api(https[i % len(https)], url, i)))
            return list(await asyncio.gather(*(one(i) for i in range(users))))
        finally:
            for http in https:
                await http.aclose()

    def close(self) -> None:
        self.provider.close()


# -- the report ------------------------------------------------------------------------------------
@dataclass
class Tally:
    first: list[float] = field(default_factory=list)
    last: list[float] = field(default_factory=list)
    accepted: list[float] = field(default_factory=list)
    to_provider: list[float] = field(default_factory=list)
    provider_first: list[float] = field(default_factory=list)  # provider request → first text at the client
    tail: list[float] = field(default_factory=list)  # provider's end of stream → last text at the client
    cpu: dict[str, list[float]] = field(default_factory=dict)
    wait: dict[str, list[float]] = field(default_factory=dict)

    def add(self, result: Round) -> None:
        for s in result.seen:
            assert s.first is not None and s.last is not None
            self.first.append(s.first - s.start)
            self.last.append(s.last - s.start)
            if s.accepted is not None:
                self.accepted.append(s.accepted - s.start)
            if s.received is not None:
                self.to_provider.append(s.received - s.start)
                self.provider_first.append(s.first - s.received)
            if s.closed is not None:
                self.tail.append(s.last - s.closed)
        for name, seconds in result.cpu.items():
            self.cpu.setdefault(name, []).append(seconds)
        for name, seconds in result.wait.items():
            self.wait.setdefault(name, []).append(seconds)


def report(users: int, rounds: int, tallies: dict[str, Tally]) -> None:
    print(f"\n{users} concurrent users, {rounds} rounds per mode ({users * rounds} answers each); ms")
    print(f"  {'mode':<7}{'first p50':>10}{'p95':>7}{'last p50':>10}{'p95':>7}{'→ provider p50':>16}{'p95':>6}"
          f"{'provider → first':>18}{'end → last p50':>16}{'POST 202 p50':>14}")
    for mode, t in tallies.items():
        print(f"  {mode:<7}{ms(statistics.median(t.first)):>10}{ms(percentile(t.first, .95)):>7}"
              f"{ms(statistics.median(t.last)):>10}{ms(percentile(t.last, .95)):>7}"
              f"{ms(statistics.median(t.to_provider)) if t.to_provider else '-':>16}"
              f"{ms(percentile(t.to_provider, .95)) if t.to_provider else '-':>6}"
              f"{ms(statistics.median(t.provider_first)) if t.provider_first else '-':>18}"
              f"{ms(statistics.median(t.tail)) if t.tail else '-':>16}"
              f"{ms(statistics.median(t.accepted)) if t.accepted else '-':>14}")
    print(f"  CPU s per round{'':<6}{'llmtool':>9}{'relay':>9}{'loopback':>10}{'client':>9}"
          f"{'others':>9}")
    for mode, t in tallies.items():
        print(f"  {mode + ' round':<21}" + "".join(
            f"{statistics.mean(t.cpu[name]):>{w}.2f}" for name, w in
            (("llmtool", 9), ("relay", 9), ("loopback", 10), ("client", 9), ("others", 9))))
    print(f"  waited for a CPU, s{'':<3}{'llmtool':>9}{'relay':>9}{'loopback':>10}{'client':>9}")
    for mode, t in tallies.items():
        print(f"  {mode + ' round':<21}" + "".join(
            f"{statistics.mean(t.wait[name]):>{w}.2f}" for name, w in
            (("llmtool", 9), ("relay", 9), ("loopback", 10), ("client", 9))))
    first = statistics.median(tallies["api"].first) / statistics.median(tallies["relay"].first)
    last = statistics.median(tallies["api"].last) / statistics.median(tallies["direct"].last)
    relay_last = statistics.median(tallies["relay"].last) / statistics.median(tallies["direct"].last)
    cpu = statistics.mean(tallies["api"].cpu["llmtool"]) / max(1e-9, statistics.mean(tallies["relay"].cpu["relay"]))
    print(f"  api first text p50 = {first:.2f}× relay (target ≤ 1.2): {'met' if first <= 1.2 else 'MISSED'}")
    print(f"  api last text p50 = {last:.3f}× direct (target ≤ 1.05): {'met' if last <= 1.05 else 'MISSED'}"
          f"   (relay: {relay_last:.3f}× direct)")
    print(f"  app CPU per round: llmtool {statistics.mean(tallies['api'].cpu['llmtool']):.2f} s, relay "
          f"{statistics.mean(tallies['relay'].cpu['relay']):.2f} s ({cpu:.2f}×)")


# -- profiling (py-spy) ------------------------------------------------------------------------------
# Where an app's CPU goes. First the subsystems, by any frame in the stack, in this order (what runs
# inside what first: the run store's and the SDK's work counts as theirs whoever called it); a stack in
# none of them goes to the bucket of its innermost framework or server frame (so a socket write from a
# response counts as uvicorn's); what is left, with asyncio frames only, is the event loop's own.
INCLUSIVE: list[tuple[str, tuple[str, ...]]] = [
    ("run store (llmtool/store, SQLAlchemy, aiosqlite)", ("llmtool/store/", "sqlalchemy/", "aiosqlite/")),
    ("provider SDK (openai, httpx, httpcore)", ("openai/", "httpx", "httpcore")),
    ("our API (api.py, sse.py, run_status, api_body)", ("llmtool/web/api", "llmtool/web/sse",
                                                        "llmtool/web/run_status", "llmtool/web/problems")),
    ("service (runs, executor, recorder, events)", ("llmtool/service/", "llmtool/providers/", "llmtool/events",
                                                    "llmtool/redact", "llmtool/tokens", "llmtool/catalog")),
    ("Gradio (the UI mounted at /: its queue loop)", ("gradio/",)),
    ("relay handler", ("relay_endpoint", "relay_frames")),
]
LEAF: list[tuple[str, tuple[str, ...]]] = [
    ("FastAPI/Starlette/pydantic (validation, serialization)", ("fastapi/", "starlette/", "pydantic", "anyio/",
                                                                 "llmtool/web/")),
    ("uvicorn/h11 (+ their socket reads and writes)", ("uvicorn/", "h11/", "httptools/")),
]
LOOP = ("asyncio event loop (select, wakeups, task steps)", ("asyncio/", "selectors"))
OTHER = "other (GC, threads, imports)"


def bucket_of(frames: list[str]) -> str:
    joined = ";".join(frames)
    for name, patterns in INCLUSIVE:
        if any(p in joined for p in patterns):
            return name
    for frame in reversed(frames):
        for name, patterns in LEAF:
            if any(p in frame for p in patterns):
                return name
    return LOOP[0] if any(p in joined for p in LOOP[1]) else OTHER


def print_profile(outs: dict[str, Path], cpu: dict[str, float], limit: int) -> None:
    counts: dict[str, Counter[str]] = {}
    for name, out in outs.items():
        counts[name] = Counter()
        for stack, count in stacks(out):
            counts[name][bucket_of(stack)] += count
    print(f"  {'CPU s per round, by where it goes':<56}{'llmtool':>9}{'relay':>9}{'extra':>9}")
    for bucket in [*(n for n, _ in INCLUSIVE), *(n for n, _ in LEAF), LOOP[0], OTHER]:
        share = {n: cpu[n] * counts[n][bucket] / max(1, sum(counts[n].values())) for n in outs}
        if any(v >= 0.005 for v in share.values()):
            print(f"  {bucket:<56}{share['llmtool']:>9.3f}{share['relay']:>9.3f}"
                  f"{share['llmtool'] - share['relay']:>+9.3f}")
    print(f"  {'total (measured CPU)':<56}{cpu['llmtool']:>9.3f}{cpu['relay']:>9.3f}"
          f"{cpu['llmtool'] - cpu['relay']:>+9.3f}")
    total, frames = top_frames(outs["llmtool"], limit, ours, self_to_next_kept=True)
    print(f"  llmtool's own functions, share of llmtool's samples ({total}); inclusive / self "
          "(self: the function and the library code it calls, to the next llmtool frame):")
    for frame, inclusive, own in frames:
        print(f"    {100 * inclusive / max(1, total):5.1f}% {100 * own / max(1, total):5.1f}%  {frame}")


def profile(bench: Bench, users: list[int], out: Path, limit: int) -> None:
    print(f"\nprofiles: py-spy at {SAMPLE_RATE} Hz, all threads, one more round per app (raw stacks in {out});"
          " a bucket's CPU = its share of the samples × the process's measured CPU")
    for n in users:
        outs, cpu, line = {}, {}, []
        for app, mode in (("llmtool", "api"), ("relay", "relay")):
            outs[app] = out / f"{app}-{n}users.txt"
            with Profiler(bench.servers[app].process.pid, outs[app]):
                result = bench.one_round(mode, n)
            cpu[app] = result.cpu[app]
            firsts = [s.first - s.start for s in result.seen if s.first is not None]
            line.append(f"{mode} first text p50 {ms(statistics.median(firsts))} ms")
        print(f"\n{n} users (profiled round: {', '.join(line)})")
        print_profile(outs, cpu, limit)


# -- main ------------------------------------------------------------------------------------------
def start_servers(data_dir: Path, source: Path | None) -> dict[str, Server]:
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    env.pop("LLMTOOL_CONFIG", None)
    env = with_source(env, source)  # llmtool as committed (see --ref), ahead of the working tree
    servers: dict[str, Server] = {}
    try:
        servers["loopback"] = Server("loopback", env, data_dir)
        env["OPENAI_BASE_URL"] = f"{servers['loopback'].url}/v1"
        for name in APPS:
            (data_dir / name).mkdir()
            servers[name] = Server(name, {**env, "XDG_DATA_HOME": str(data_dir / name),
                                          "LLMTOOL_DATABASE_URL": f"sqlite+aiosqlite:///{data_dir / name}/llmtool.db"},
                                   data_dir / name)
    except BaseException:
        for server in servers.values():
            server.close()
        raise
    return servers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    s = sub.add_parser("serve")  # internal: a server process
    s.add_argument("which", choices=("loopback", *APPS))
    parser.add_argument("--users", type=int, nargs="+", default=[20, 100], help="concurrent users (default 20 100)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per mode and user count (default 3)")
    parser.add_argument("--ref", default=None, help="benchmark llmtool as committed at this git ref (e.g. HEAD), "
                                                    "not the working tree (which others may be editing)")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="after measuring, py-spy the llmtool and relay processes for one more round each")
    parser.add_argument("--client", choices=CLIENTS, default="light",
                        help="how the users ask (default light; see Bench.crowd)")
    parser.add_argument("--top", type=int, default=25, help="llmtool functions listed per profile (default 25)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.which)
        return
    if args.profile is not None and shutil.which("py-spy") is None:
        raise SystemExit("--profile needs py-spy (pip install py-spy)")

    print(f"HTTP API: llmtool vs a bare relay vs the SDK direct · {TOKENS} tokens at {1000 / RATE:g} ms each · "
          f"{os.cpu_count()} CPUs · Python {sys.version.split()[0]}")
    print("  processes: loopback provider, llmtool app, relay app (uvicorn each), this client (+ direct), "
          f"client: {args.client}; "
          f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    data_dir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    try:
        source = snapshot(args.ref, data_dir / "source") if args.ref else None
        if args.ref:
            print(f"  llmtool as committed at {args.ref}", flush=True)
        servers = start_servers(data_dir, source)
        bench = Bench(servers, client=args.client)
        try:
            for mode in MODES:  # warm up: imports, the store, connection pools
                bench.one_round(mode, min(args.users))
            for users in args.users:
                tallies = {mode: Tally() for mode in MODES}
                for index in range(args.rounds):
                    order = MODES[index % len(MODES):] + MODES[:index % len(MODES)]
                    for mode in order:
                        tallies[mode].add(bench.one_round(mode, users))
                report(users, args.rounds, tallies)
            print("\n  first / last: the request's start → the first / last text at the client; → provider: start → "
                  "the loopback got the provider request; provider → first: from then to the first text; end → "
                  "last: the loopback's end of stream → the last text at the client; CPU: per process, per round "
                  f"(+{SETTLE:g} s after it)")
            if args.profile is not None:
                args.profile.mkdir(parents=True, exist_ok=True)
                profile(bench, args.users, args.profile, args.top)
        finally:
            bench.close()
            for server in servers.values():
                server.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
