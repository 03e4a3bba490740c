"""The Gradio path under load (issue 12): N users chat through llmtool's Chat handler over Gradio's
queue, each with a light client (raw SSE, as a browser), against a bare FastAPI relay and optionally
a lean Gradio relay; one 200-token answer each at 10 ms per token from the loopback provider.

    python bench/bench_gradio_load.py --ref HEAD                      # 1, 20 and 100 users, 3 rounds per mode
    python bench/bench_gradio_load.py --users 20 --rounds 1           # a quick look
    python bench/bench_gradio_load.py --ref HEAD --users 100 --profile /tmp/prof   # + py-spy, one round per app

Processes, all on 127.0.0.1, started by bench_api.py's helpers (its loopback and its bare relay as they are):

- loopback: the fake provider alone in a process (bench_api.py `serve loopback`), 200 tokens at 100 tok/s;
- llmtool:  `create_app(settings)` under uvicorn (bench_api.py `serve llmtool`: the store in a temporary
  directory, the production UI settings but the queue's size), Gradio's limit of the run events raised to
  --concurrency (LLMTOOL_UI__CONCURRENCY; default 256, so that every user streams at once, as through the
  relays; the production default of 64 would make the 65th user wait for a whole answer);
- relay:    bench_api.py's bare FastAPI relay (`GET /relay`: each SDK text delta one SSE frame);
- gradio-relay (--gradio-relay): bench_chat_relay.py's lean Gradio app (Chatbot + Textbox, one async
  generator yielding the chat at most once per 50 ms, no concurrency limit);
- this process: the clients.

Modes, per user: `relay` (bench_api.py's light client: `GET /relay`), `chat` (llmtool's `/chat` endpoint the way
a browser sends it: `POST /gradio_api/queue/join` with its fn_index and values, then `GET
/gradio_api/queue/data?session_hash=…`, an SSE stream read line by line, no JSON parsed but the end's), and
`gradio-relay` (its `chat` endpoint, the same way). Each user has its own connection (bench/light_http.py) and
its own Gradio session; with --page-load (default) each session is first opened untimed by the app's queued
page-load events (llmtool: restore, the Compare restore, the pickers' refresh…), as a browser's tab does.
The modes alternate within each round (their order rotating), one unmeasured warm-up round per mode first.

Measured from the moment the user asks: first text (the first SSE message holding the answer's first word),
last text (the message holding its last word), the join's answer (`queue/join` → its event id), and from the
loopback's records: start → provider request, provider request → first text, provider's end of stream → last
text; the page updates (process_generating messages) and bytes one user received; CPU per process per round.
Target: chat first text p50 ≤ 3× relay at 100 users.

Measured (2 cores, the client and all servers on them; load average 0.5-1.2; first text p50 / p95, ms; CPU
of the app per round, s; light clients):

                         1 user     20 users              100 users
    bare relay           14         37-41                 146-328 (most runs ~190) / 300-650; CPU 2.4
    llmtool before       67         157 / 175; CPU 2.04   1698 / 3286; CPU 3.33; 6.4 updates per user
    llmtool now          20         109 / 128; CPU 0.87   741-929 (7 runs) / 880-1600; CPU 2.2-3.0; 10
    lean Gradio relay    18         158-186               1641-1692 / 3200; last text 7.9-9.0 s (it falls behind)

Where the time went at 100 users: Gradio built a component for every skipped output on every yield (CPU per
20-user round 1.98 -> 1.17 s without it); every input and output went through a worker thread one after
another (~14 round trips per start, 1-2 per update, each waiting behind the loop's other work: first text
1.28 -> 0.77 s without them); updates were not bounded (26.6 per user without the pace, 10 with it:
CPU 3.11 -> 2.28 s, first text 1.29 -> 0.77 s). What is left is the start of each answer in Gradio: two
HTTP requests (queue/join, queue/data), the queue's task, the first update, ~6 ms of CPU per user against
the relay's ~1.5, and 100 users' starts interleaved on one loop finish together (the p50 user waits for
most of them). --client gradio_client: ~5.1 s before and after, the client process itself using ~6.5 s of
CPU per round (each job polled at 1 kHz) and no page load (each new session's state, ~8 ms, is built at its
first join).

On a slower 2-core machine (2026-12-02; the SDK-consuming relay there used 5.9-6.2 s of CPU per 100-user
round against ~2.4 above): relay 500-1120 ms, chat 3.2-4.4 s (4 single rounds) / 4.0 s (3 rounds), 4-5x; the
llmtool process used 4.0-4.7 s of CPU per round, about one core for the round's whole length, so every
answer's start queued behind everyone's streaming (~45 ms of CPU per answer against the API's ~32). GC
thresholds raised (10000, 10, 10) saved ~0.5 s of CPU per round, within the noise of the first text.

Then, on that machine (3 rounds each, 100 users, first text p50 chat / relay, ms; app CPU per round, s):

    before                                              3979 / 572   6.96x   CPU 4.25
    sessions without a copy of the page's config        2741 / 503   5.45x   CPU 3.72
    ... and no config built at a session's first event  1687 / 380   4.44x   CPU 3.43
    queue estimates once a second (below)               769-1103 / 359-484 (4 runs): 2.14-2.58x; CPU 2.9-3.4
      (A/B, back to back: live estimates 1362 / 265, p95 2219, 29.6 SSE messages per user; once a second
      1072 / 420, p95 1430, 13.9 messages per user)
    the same, all user counts:   1 user 27 / 15 (1.75x), 20 users 200 / 77 (2.59x), 100 users 769 / 359
                                 (2.14x; last text 2984 / 2882; CPU 2.94)
    --client gradio_client, 100 users: 5471 / 254 (21x): the client process used 9.8 s of CPU per round (its
      threads poll each job), and llmtool waited 4.3 s per round for a CPU: it measures the client.

- Every new Gradio session (a tab opening the page) copied the config of all 218 blocks (~1,200 objects,
  ~350 KB), kept until 10,000 sessions: ~8 ms of the loop at its first join, and the collector's full passes
  over those objects stopped the loop 0.2-0.4 s at a time, ~1.4 s per round (timed with gc.callbacks; the
  profile had blamed task creation and aiohttp's timers, where those pauses happened to land).
  `ui/lean_sessions.py` builds configs only for a deep link.
- With the queue's live estimates (status_update_rate="auto"), each event that starts sends its place in
  line to every event still waiting: 100 users asking at once made thousands of estimate messages (each a
  task, JSON and an SSE write) before their first texts. Once a second instead (`ui/blocks.py`).
- Measured and not kept: fewer page updates (ui.updates_per_second 150: 6.3 instead of 10.7 updates per
  user, first text 1687 -> 1375 ms before the estimates change; 200 after it: 7.2 updates, 758 / 366 ms,
  2.07x, CPU 2.84, within the spread of the default's runs), GC thresholds (10000, 20, 50): first text
  and CPU unchanged.

--ref REF: llmtool (the app and the loopback) as committed at REF. --profile DIR: after measuring, py-spy
the llmtool process (and the Gradio relay's) for one more round per user count; the CPU by where it goes and
llmtool's top functions printed, raw stacks in DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from bench_api import (
    MODEL,
    SETTLE,
    TEXT,
    Bench,
    Round,
    Seen,
    Server,
    Tally,
    address,
    relay_light,
    start_servers,
)
from bench_chat_relay import Endpoint
from light_http import Connection
from profiling import SAMPLE_RATE, Profiler, ours, stacks, top_frames
from support import ms, percentile, snapshot, stop, with_source

FIRST, LAST = TEXT.split()[0], TEXT.split()[-1]  # "tok0", "tok199": each in no other word of the answer
MODES = ("relay", "chat", "gradio-relay")
APPS = ("llmtool", "relay", "gradio-relay")
CONCURRENCY = 256


# -- the lean Gradio relay, in its own process (bench_chat_relay.py `serve relay`) ------------------
class ScriptServer(Server):
    """A server process another benchmark script starts (`SCRIPT serve WHICH`, printing `PORT n`)."""

    def __init__(self, name: str, script: str, which: str, env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve().parent / script), "serve", which],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=cwd,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            stop(self.process)
            raise RuntimeError(f"{name} did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"


# -- a light Gradio client: queue/join, then the session's SSE stream -------------------------------
@dataclass
class GradioSeen(Seen):
    updates: int = 0  # process_generating messages
    messages: int = 0  # every SSE message (also the queue's estimates, heartbeats, the start and end)
    size: int = 0  # bytes of the SSE data lines


@dataclass
class Target:
    """One app's chat endpoint: where it is, its fn_index, how to fill its values, its page-load events."""

    url: str
    fn_index: int
    values: dict[str, Any]  # keyword values but the prompt
    endpoint: Endpoint
    loads: list[tuple[int, int]]  # (fn_index, number of inputs) of each queued page-load event

    @classmethod
    def find(cls, url: str, values: dict[str, Any]) -> Target:
        endpoint = Endpoint.find(url, "chat")
        config = httpx.get(f"{url}/config", timeout=30).json()
        loads = [(d["id"], len(d["inputs"])) for d in config["dependencies"]
                 if any(t[1] == "load" for t in d.get("targets", [])) and d.get("queue") is not False]
        return cls(url, endpoint.fn_index, values, endpoint, loads)

    def data(self, prompt: str) -> list[Any]:
        return self.endpoint.data({self.endpoint.parameters[0]: prompt, **self.values})


async def gradio_event(connection: Connection, fn_index: int, data: list[Any], session: str,
                       seen: GradioSeen | None = None) -> GradioSeen:
    """One event the way the browser sends it; notes in `seen` when the answer's first and last words came."""
    seen = seen or GradioSeen(time.monotonic())
    status, _, body = await connection.request("POST", "/gradio_api/queue/join", {
        "data": data, "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None,
    })
    if status != 200:
        raise RuntimeError(f"queue/join: HTTP {status} {body[:300]!r}")
    seen.accepted = time.monotonic()
    async with connection.stream("GET", f"/gradio_api/queue/data?session_hash={session}") as (status, _, lines):
        if status != 200:
            raise RuntimeError(f"queue/data: HTTP {status}")
        async for line in lines:
            if not line.startswith("data:"):
                continue
            now = time.monotonic()
            seen.size += len(line)
            seen.messages += 1
            if '"process_generating"' in line:
                seen.updates += 1
            if seen.first is None and FIRST in line:
                seen.first = now
            if LAST in line:
                seen.last = now
            if '"process_completed"' in line:
                if not json.loads(line[5:]).get("success"):
                    raise RuntimeError(f"the event failed: {line[:300]}")
                break
    return seen


async def chat_light(target: Target, user: int, session: str) -> GradioSeen:
    seen = GradioSeen(time.monotonic())
    connection = await Connection.open(*address(target.url))
    try:
        return await gradio_event(connection, target.fn_index, target.data(f"user {user}: hi"), session, seen)
    finally:
        await connection.close()


def chat_gradio_client(client: Any, target: Target, user: int, deadline: float = 120.0) -> GradioSeen:
    """One user through gradio_client (its own Client, made before the clock), in a thread: what the
    issue measured first. Notes when an output first holds the answer's first word, and its last.
    (The job's outputs are polled every 5 ms: `for output in job` can miss the end and wait forever.)"""
    seen = GradioSeen(time.monotonic())
    job = client.submit(**{target.endpoint.parameters[0]: f"user {user}: hi", **target.values}, api_name="/chat")
    until, count = seen.start + deadline, 0
    while True:
        done = job.done()
        outputs = job.outputs()
        now = time.monotonic()
        for output in outputs[count:]:
            seen.updates += 1
            text = json.dumps(output)
            if seen.first is None and FIRST in text:
                seen.first = now
            if LAST in text:
                seen.last = now
        count = len(outputs)
        if done:
            if seen.last is None and LAST in json.dumps(job.result()):
                seen.last = time.monotonic()
            return seen
        if now > until:
            raise RuntimeError(f"user {user}: no end after {deadline:g} s ({job.status()})")
        time.sleep(0.005)


async def page_load(target: Target, session: str) -> None:
    """Open a session as a browser's tab does: the app's queued page-load events, one after another."""
    connection = await Connection.open(*address(target.url))
    try:
        for fn_index, inputs in target.loads:
            await gradio_event(connection, fn_index, [None] * inputs, session)
            connection = await _reopened(connection, target)
    finally:
        await connection.close()


async def _reopened(connection: Connection, target: Target) -> Connection:
    await connection.close()  # (the event's stream was left at its end: a new connection)
    return await Connection.open(*address(target.url))


# -- the rounds ----------------------------------------------------------------------------------------
class GradioBench(Bench):
    """bench_api.py's rounds (the loopback's records, CPU per process) with the Gradio modes."""

    def __init__(self, servers: dict[str, Server], targets: dict[str, Target], page_loads: bool,
                 client: str = "light") -> None:
        super().__init__(servers)
        self.targets = targets
        self.page_loads = page_loads and client == "light"
        self.gradio_client = client == "gradio_client"
        self.sessions: list[str] = []
        self.clients: dict[str, list[Any]] = {}  # --client gradio_client: mode → one Client per user

    def one_round(self, mode: str, users: int) -> Round:
        self.open_sessions(mode, users)
        return self.measure(mode, users)

    def open_sessions(self, mode: str, users: int) -> None:
        """New sessions for the next round's users, opened (untimed) by a page load with --page-load;
        with gradio_client, a Client per user (a new session each), made here, before the clock."""
        self.sessions = [uuid.uuid4().hex for _ in range(users)]
        if self.gradio_client and mode in self.targets:
            from concurrent.futures import ThreadPoolExecutor

            from gradio_client import Client  # type: ignore[import-untyped]

            def make(_: int) -> Any:
                return Client(self.targets[mode].url, verbose=False, analytics_enabled=False, download_files=False)

            with ThreadPoolExecutor(8) as pool:
                self.clients[mode] = list(pool.map(make, range(users)))
        if mode in self.targets and self.page_loads and self.targets[mode].loads:
            target = self.targets[mode]

            async def open_all() -> None:
                await asyncio.gather(*(page_load(target, s) for s in self.sessions))

            asyncio.run(open_all())
            time.sleep(SETTLE)

    def measure(self, mode: str, users: int) -> Round:
        """The timed round (bench_api.py's: the loopback's records, CPU per process), sessions opened."""
        return super().one_round(mode, users)

    async def crowd(self, mode: str, users: int) -> list[Seen]:
        if mode == "relay":
            url = self.servers["relay"].url
            return list(await asyncio.gather(*(relay_light(url, i) for i in range(users))))
        target = self.targets[mode]
        if self.gradio_client:  # threads, as the first measure
            from concurrent.futures import ThreadPoolExecutor

            loop = asyncio.get_running_loop()
            clients = self.clients.pop(mode)
            with ThreadPoolExecutor(users) as pool:
                return list(await asyncio.gather(*(loop.run_in_executor(pool, chat_gradio_client, clients[i], target, i)
                                                   for i in range(users))))
        return list(await asyncio.gather(*(chat_light(target, i, self.sessions[i]) for i in range(users))))


# -- the report ----------------------------------------------------------------------------------------
@dataclass
class GradioTally(Tally):
    updates: list[int] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    size: list[int] = field(default_factory=list)

    def add(self, result: Round) -> None:
        super().add(result)
        for s in result.seen:
            if isinstance(s, GradioSeen):
                self.updates.append(s.updates)
                self.size.append(s.size)
                if s.messages:  # (gradio_client's users count no messages)
                    self.messages.append(s.messages)


def _p50(values: list[float]) -> str:
    return ms(statistics.median(values)) if values else "-"


def _p95(values: list[float]) -> str:
    return ms(percentile(values, .95)) if values else "-"


def report(users: int, rounds: int, tallies: dict[str, GradioTally], apps: list[str]) -> None:
    print(f"\n{users} concurrent users, {rounds} rounds per mode ({users * rounds} answers each); ms")
    print(f"  {'mode':<13}{'first p50':>10}{'p95':>7}{'last p50':>10}{'p95':>7}{'join p50':>10}{'→ provider p50':>16}"
          f"{'p95':>6}{'provider → first':>18}{'end → last p50':>16}{'updates/user':>14}{'msgs/user':>11}"
          f"{'KB/user':>9}")
    for mode, t in tallies.items():
        print(f"  {mode:<13}{_p50(t.first):>10}{_p95(t.first):>7}{_p50(t.last):>10}{_p95(t.last):>7}"
              f"{_p50(t.accepted):>10}{_p50(t.to_provider):>16}{_p95(t.to_provider):>6}{_p50(t.provider_first):>18}"
              f"{_p50(t.tail):>16}"
              f"{(f'{statistics.mean(t.updates):.1f}' if t.updates else '-'):>14}"
              f"{(f'{statistics.mean(t.messages):.1f}' if t.messages else '-'):>11}"
              f"{(f'{statistics.mean(t.size) / 1024:.1f}' if t.size else '-'):>9}")
    names = [*apps, "loopback", "client", "others"]
    print(f"  {'CPU s per round':<21}" + "".join(f"{n:>13}" for n in names))
    for mode, t in tallies.items():
        print(f"  {mode + ' round':<21}" + "".join(f"{statistics.mean(t.cpu[n]):>13.2f}" for n in names))
    print(f"  {'waited for a CPU, s':<21}" + "".join(f"{n:>13}" for n in names[:-1]))
    for mode, t in tallies.items():
        print(f"  {mode + ' round':<21}" + "".join(f"{statistics.mean(t.wait[n]):>13.2f}" for n in names[:-1]))
    relay = statistics.median(tallies["relay"].first)
    for mode in ("chat", "gradio-relay"):
        if mode in tallies:
            ratio = statistics.median(tallies[mode].first) / relay
            verdict = f" (target ≤ 3: {'met' if ratio <= 3 else 'MISSED'})" if mode == "chat" else ""
            print(f"  {mode} first text p50 = {ratio:.2f}× relay{verdict}")


# -- profiling (py-spy) ----------------------------------------------------------------------------------
# Where the Gradio path's CPU goes: the first rule with a pattern in a sample's stack names its bucket
# (what runs inside what first).
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("run store (llmtool/store, SQLAlchemy, aiosqlite)", ("llmtool/store/", "sqlalchemy/", "aiosqlite/")),
    ("provider SDK (openai, aiohttp, httpx)", ("openai/", "aiohttp/", "httpx", "httpcore")),
    ("Gradio postprocess of outputs", ("postprocess_data",)),
    ("Gradio preprocess of inputs", ("preprocess_data",)),
    ("Gradio diffs of streamed outputs", ("handle_streaming_diffs", "diff (gradio/utils.py)")),
    ("Gradio session state", ("gradio/state_holder.py",)),
    ("llmtool chat handler (render, status)", ("llmtool/ui/",)),
    ("llmtool service (runs, executor, events)", ("llmtool/service/", "llmtool/providers/", "llmtool/redact",
                                                  "llmtool/events", "llmtool/tokens", "llmtool/catalog")),
    ("relay handler", ("bench_chat_relay",)),
    ("Gradio queue/data SSE (messages, JSON)", ("queue_data", "sse_stream", "server_messages", "orjson",
                                                "model_dump")),
    ("Gradio queue loops (start_processing, progress)", ("start_processing", "start_progress_updates",
                                                         "notify_clients")),
    ("Gradio other (process_events, routes)", ("gradio/",)),
    ("HTTP server (uvicorn, Starlette, h11)", ("uvicorn/", "starlette/", "fastapi/", "h11/", "httptools/",
                                               "llmtool/web/")),
    ("asyncio event loop (select, wakeups, task steps)", ("asyncio/", "selectors")),
]
OTHER = "other (GC, threads)"


def buckets(raw: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for frames, count in stacks(raw):
        joined = ";".join(frames)
        counts[next((name for name, patterns in BUCKETS if any(p in joined for p in patterns)), OTHER)] += count
    return counts


def profile(bench: GradioBench, users: list[int], modes: list[str], out: Path, limit: int) -> None:
    print(f"\nprofiles: py-spy at {SAMPLE_RATE} Hz, all threads, one more round per Gradio app (raw stacks in {out});"
          " a bucket's CPU = its share of the samples × the process's measured CPU")
    apps = {"chat": "llmtool", "gradio-relay": "gradio-relay"}
    for n in users:
        outs, cpu, line = {}, {}, []
        for mode in modes:
            if mode not in apps:
                continue
            app = apps[mode]
            outs[app] = out / f"{app}-{n}users.txt"
            bench.open_sessions(mode, n)  # (not profiled)
            with Profiler(bench.servers[app].process.pid, outs[app]):
                result = bench.measure(mode, n)
            cpu[app] = result.cpu[app]
            firsts = [s.first - s.start for s in result.seen if s.first is not None]
            line.append(f"{mode} first text p50 {ms(statistics.median(firsts))} ms")
        print(f"\n{n} users (profiled rounds: {', '.join(line)})")
        counts = {name: buckets(raw) for name, raw in outs.items()}
        print(f"  {'CPU s per round, by where it goes':<52}" + "".join(f"{n:>13}" for n in outs))
        for bucket in [*(name for name, _ in BUCKETS), OTHER]:
            share = {a: cpu[a] * counts[a][bucket] / max(1, sum(counts[a].values())) for a in outs}
            if any(v >= 0.005 for v in share.values()):
                print(f"  {bucket:<52}" + "".join(f"{share[a]:>13.3f}" for a in outs))
        print(f"  {'total (measured CPU)':<52}" + "".join(f"{cpu[a]:>13.3f}" for a in outs))
        if "llmtool" in outs:
            total, frames = top_frames(outs["llmtool"], limit, ours, self_to_next_kept=True)
            print(f"  llmtool's own functions, share of llmtool's samples ({total}); inclusive / self "
                  "(self: the function and the library code it calls, to the next llmtool frame):")
            for frame, inclusive, own in frames:
                print(f"    {100 * inclusive / max(1, total):5.1f}% {100 * own / max(1, total):5.1f}%  {frame}")
            total, frames = top_frames(outs["llmtool"], limit, lambda f: "(gradio/" in f)
            print("  Gradio's functions in llmtool's process, inclusive / self:")
            for frame, inclusive, own in frames:
                print(f"    {100 * inclusive / max(1, total):5.1f}% {100 * own / max(1, total):5.1f}%  {frame}")


# -- main ----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1, 20, 100],
                        help="concurrent users (default 1 20 100)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per mode and user count (default 3)")
    parser.add_argument("--ref", default=None, help="benchmark llmtool as committed at this git ref (e.g. HEAD), "
                                                    "not the working tree (which others may be editing)")
    parser.add_argument("--gradio-relay", action="store_true", help="also the lean Gradio relay (a fourth process)")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY,
                        help=f"llmtool's Gradio limit of run events, ui.concurrency (default {CONCURRENCY})")
    parser.add_argument("--client", choices=("light", "gradio_client"), default="light",
                        help="how the Gradio modes' users ask: light (raw SSE, default) or gradio_client (a Client "
                             "per user, in threads of this process: the issue's first measure)")
    parser.add_argument("--no-page-load", dest="page_load", action="store_false",
                        help="do not open each session by the app's page-load events first")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="after measuring, py-spy the Gradio apps for one more round per user count")
    parser.add_argument("--top", type=int, default=25, help="functions listed per profile (default 25)")
    args = parser.parse_args(argv)
    if args.profile is not None and shutil.which("py-spy") is None:
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    modes = [m for m in MODES if m != "gradio-relay" or args.gradio_relay]
    apps = [a for a in APPS if a != "gradio-relay" or args.gradio_relay]

    lean = " vs a lean Gradio relay" * args.gradio_relay
    print(f"Gradio path: llmtool's Chat over Gradio's queue vs a bare relay{lean} · {len(TEXT.split())}-token answers "
          f"at 10 ms each · {os.cpu_count()} CPUs · Python {sys.version.split()[0]}")
    clients = ("light (one connection and session per user)" if args.client == "light" else
               "gradio_client for the Gradio modes (a Client per user, threads), light for the relay")
    print(f"  clients: {clients}; page load first: {args.page_load and args.client == 'light'}; llmtool "
          f"ui.concurrency {args.concurrency}; load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    data_dir = Path(tempfile.mkdtemp(prefix="bench-gradio-load-"))
    os.environ["LLMTOOL_UI__CONCURRENCY"] = str(args.concurrency)  # (read by the llmtool process's settings)
    try:
        source = snapshot(args.ref, data_dir / "source") if args.ref else None
        if args.ref:
            print(f"  llmtool as committed at {args.ref}", flush=True)
        servers = start_servers(data_dir, source)
        try:
            if args.gradio_relay:
                (data_dir / "gradio-relay").mkdir()
                env = with_source({**os.environ, "OPENAI_API_KEY": "sk-loopback-bench",
                                   "OPENAI_BASE_URL": f"{servers['loopback'].url}/v1"}, source)
                servers["gradio-relay"] = ScriptServer("gradio-relay", "bench_chat_relay.py", "relay", env,
                                                       data_dir / "gradio-relay")
            targets = {"chat": Target.find(servers["llmtool"].url, {"model": f"openai:{MODEL}"})}
            if args.gradio_relay:
                targets["gradio-relay"] = Target.find(servers["gradio-relay"].url, {"history": []})
            bench = GradioBench(servers, targets, args.page_load, args.client)
            try:
                for mode in modes:  # warm up: imports, the store, pools
                    bench.one_round(mode, min(args.users))
                print(f"  load average after the warm-up {' '.join(Path('/proc/loadavg').read_text().split()[:3])}",
                      flush=True)
                for users in args.users:
                    tallies = {mode: GradioTally() for mode in modes}
                    for index in range(args.rounds):
                        order = modes[index % len(modes):] + modes[:index % len(modes)]
                        for mode in order:
                            tallies[mode].add(bench.one_round(mode, users))
                    report(users, args.rounds, tallies, apps)
                    print(f"  load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}", flush=True)
                print("\n  first / last: asking → the first / last text at the client; join: → queue/join's answer; "
                      "→ provider: → the loopback got the provider request; provider → first: from then to the first "
                      "text; end → last: the loopback's end of stream → the last text; updates: process_generating "
                      "messages; msgs: every SSE message the user got; "
                      f"CPU: per process, per round (+{SETTLE:g} s after it)")
                if args.profile is not None:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    profile(bench, args.users, modes, args.profile, args.top)
            finally:
                bench.close()
        finally:
            for server in servers.values():
                server.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
