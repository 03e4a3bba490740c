"""llmtool's chat path against the leanest Gradio relay, at N concurrent users (issue 7, "Measure").

    python bench/bench_chat_relay.py                        # 20 users, 5 rounds, about 1–2 minutes
    python bench/bench_chat_relay.py --ref HEAD --page-load --profile /tmp/prof   # + py-spy profiles

Two app processes on 127.0.0.1, both streaming from one loopback provider (OpenAI Responses API,
through the `openai` SDK, key and base URL from the same environment):

- llmtool: `llmtool.web.app.create_app(settings)` under uvicorn, its production UI settings
  (one update per 50 ms, concurrency 64, 64 threads), the run store in a temporary directory;
- relay: a gr.Blocks with a Chatbot and a Textbox, an `async def` generator that streams
  `client.responses.create(stream=True)` and yields the chat at most once per 50 ms (the first
  text at once, the last never held back); `queue(default_concurrency_limit=None)`, 256 threads.

Each round sends --users prompts at once to one app, then to the other (the order alternates
round by round, so drift and noise hit both); one unmeasured warm-up round each first. Every
user is a new Gradio session (a new tab); with --page-load the sessions are opened first,
untimed, by the app's page-load event. Two provider scenarios: the loopback's first token after
one token's pause ("fast"), and a realistic
first-token delay (--ttft, default 300 ms). Per app: time to first text (submit → the first SSE
message holding answer text), total time (submit → `process_completed`), the SSE messages and
bytes one user receives, and the app process's CPU seconds per round.

The endpoint is called by api_name with keyword arguments: the parameter names come from
`/gradio_api/info` (what `gradio_client.Client.view_api()` shows), state inputs are sent as None,
so a change in the order of /chat's parameters does not break the benchmark.

--profile DIR: after the measured rounds, one more round per app (and scenario) with
`py-spy record` attached to the app process; the raw (collapsed) stacks and the top
frames (inclusive share of the app's samples) are written to DIR and summarised here.
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
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from profiling import SAMPLE_RATE, Profiler, ours, stacks, top_frames
from support import cpu_seconds, ms, percentile, serve_app, snapshot, stop, with_source

from llmtool.loopback import LoopbackServer, Scenario

FIRST = "Firstmarker"
LAST = "Lastmarker"
MODEL = "gpt-4o-mini"
INTERVAL = 0.05  # both apps: at most one page update per 50 ms
SETTLE = 0.5  # s after each round, before the next app's round
APPS = ("llmtool", "relay")
USER = re.compile(r"user (\d+): say something")


# -- the apps under test, each in its own process ------------------------------------------------
def llmtool_app() -> Any:
    from llmtool.settings import load_settings
    from llmtool.web.app import create_app

    settings = load_settings(  # the key and base URL come from OPENAI_API_KEY / OPENAI_BASE_URL
        default_model=f"openai:{MODEL}",
        timeouts={"first_token": 600, "idle": 600, "total": 3600},
        ui={"update_interval": INTERVAL, "concurrency": 64, "max_threads": 64, "queue_size": 10_000},
    )
    return create_app(settings)


def relay_app() -> Any:
    """The leanest relay: Chatbot + Textbox, one shared SDK client, coalesced async generator."""
    import gradio as gr
    import openai
    from fastapi import FastAPI
    from openai.types.responses import ResponseTextDeltaEvent

    client = openai.AsyncOpenAI(max_retries=0)  # OPENAI_API_KEY / OPENAI_BASE_URL, as llmtool's

    async def respond(message: str, history: list[dict[str, Any]]) -> AsyncIterator[list[dict[str, Any]]]:
        history = [*(history or []), {"role": "user", "content": message}]
        turns: Any = [{"role": m["role"], "content": m["content"]} for m in history]
        stream = await client.responses.create(model=MODEL, input=turns, stream=True, store=False)
        text, last = "", float("-inf")
        loop = asyncio.get_running_loop()
        try:
            async for event in stream:
                if isinstance(event, ResponseTextDeltaEvent):
                    text += event.delta
                    if loop.time() - last >= INTERVAL:
                        last = loop.time()
                        yield [*history, {"role": "assistant", "content": text}]
        finally:
            await stream.close()
        yield [*history, {"role": "assistant", "content": text}]

    with gr.Blocks(analytics_enabled=False) as demo:
        chatbot = gr.Chatbot()
        prompt = gr.Textbox()
        prompt.submit(respond, inputs=[prompt, chatbot], outputs=[chatbot], api_name="chat")
    demo.max_threads = 256
    demo.queue(default_concurrency_limit=None, max_size=None)
    return gr.mount_gradio_app(FastAPI(), demo, path="/", ssr_mode=False)


def serve(which: str) -> None:
    """Internal: build one app, serve it on a free port, print it, run until stdin closes."""
    serve_app(llmtool_app() if which == "llmtool" else relay_app(), which)


class App:
    """One app process; `call` holds the keyword arguments of its `chat` endpoint but the prompt."""

    def __init__(self, name: str, provider_url: str, data_dir: Path, source: Path | None = None) -> None:
        self.name = name
        env = {**os.environ, "OPENAI_API_KEY": "sk-loopback-bench", "OPENAI_BASE_URL": provider_url,
               "XDG_DATA_HOME": str(data_dir), "LLMTOOL_DATABASE_URL": f"sqlite+aiosqlite:///{data_dir}/llmtool.db"}
        env.pop("LLMTOOL_CONFIG", None)
        env = with_source(env, source)  # llmtool as committed (see --ref), ahead of the working tree
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "serve", name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=data_dir,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"{name} did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        self.endpoint = Endpoint.find(self.url, "chat")
        self.load = load_event(self.url)
        self.extra: dict[str, Any] = {"model": f"openai:{MODEL}"} if name == "llmtool" else {"history": []}

    def payload(self, prompt: str) -> list[Any]:
        first = self.endpoint.parameters[0]  # the prompt / message
        return self.endpoint.data({first: prompt, **self.extra})

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def close(self) -> None:
        stop(self.process)


def load_event(url: str) -> tuple[int, int] | None:
    """The page load's queued event, as (fn_index, number of inputs), if the app has one."""
    config = httpx.get(f"{url}/config", timeout=30).json()
    for d in config["dependencies"]:
        if any(t[1] == "load" for t in d.get("targets", [])) and d.get("queue") is not False:
            return d["id"], len(d["inputs"])
    return None


@dataclass
class Endpoint:
    """A named endpoint: its fn_index, its API parameters (as view_api lists them) and defaults,
    and where state inputs (not in the API) go."""

    fn_index: int
    parameters: list[str]
    defaults: dict[str, Any]
    inputs: list[str | None]  # per input component: its parameter name, None for a state

    @classmethod
    def find(cls, url: str, api_name: str) -> Endpoint:
        config = httpx.get(f"{url}/config", timeout=30).json()
        info = httpx.get(f"{url}/gradio_api/info", timeout=30).json()
        dependency = next(d for d in config["dependencies"] if d.get("api_name") == api_name)
        types = {c["id"]: c.get("type") for c in config["components"]}
        params = info["named_endpoints"][f"/{api_name}"]["parameters"]
        names = [p["parameter_name"] for p in params]
        defaults = {p["parameter_name"]: p.get("parameter_default") for p in params if p.get("parameter_has_default")}
        stateful = ("state", "browserstate")
        api_inputs = [i for i in dependency["inputs"] if types.get(i) not in stateful]
        if len(api_inputs) != len(names):
            raise RuntimeError(f"/{api_name}: {len(api_inputs)} API inputs in /config but {len(names)} parameters")
        by_id = dict(zip(api_inputs, names, strict=True))
        return cls(dependency["id"], names, defaults, [by_id.get(i) for i in dependency["inputs"]])

    def data(self, kwargs: dict[str, Any]) -> list[Any]:
        unknown = set(kwargs) - set(self.parameters)
        if unknown:
            raise TypeError(f"no parameter(s) {sorted(unknown)}; the endpoint takes {self.parameters}")
        missing = [n for n in self.parameters if n not in kwargs and n not in self.defaults]
        if missing:
            raise TypeError(f"missing parameter(s) {missing}")
        return [None if name is None else kwargs.get(name, self.defaults.get(name)) for name in self.inputs]


# -- a minimal Gradio API client (as bench_ui.py's) ----------------------------------------------
@dataclass
class Seen:
    submitted: float
    update: float | None = None  # the first output update (any)
    first: float | None = None
    done: float | None = None
    messages: int = 0
    size: int = 0
    error: str | None = None
    received: float | None = None  # the loopback got the provider request (same clock: same process)
    closed: float | None = None  # the loopback ended that response


async def chat(http: httpx.AsyncClient, app: App, prompt: str, session: str,
               fn_index: int | None = None, data: list[Any] | None = None) -> Seen:
    """Submit one prompt the way the browser does; note when the answer's first word arrives."""
    data = app.payload(prompt) if data is None else data
    seen = Seen(time.monotonic())
    response = await http.post(f"{app.url}/gradio_api/queue/join", json={
        "data": data, "fn_index": app.endpoint.fn_index if fn_index is None else fn_index,
        "session_hash": session, "event_data": None, "trigger_id": None,
    })
    response.raise_for_status()
    async with http.stream("GET", f"{app.url}/gradio_api/queue/data", params={"session_hash": session}) as stream:
        async for line in stream.aiter_lines():
            if not line.startswith("data:"):
                continue
            now = time.monotonic()
            seen.messages += 1
            seen.size += len(line)
            if seen.update is None and '"process_generating"' in line:
                seen.update = now
            if seen.first is None and FIRST in line:
                seen.first = now
            if '"process_completed"' in line:
                seen.done = now
                if LAST not in line and '"success":false' in line.replace(" ", ""):
                    seen.error = line[:300]
                break
    return seen


@dataclass
class Round:
    seen: list[Seen]
    cpu: float


def run_round(app: App, provider: LoopbackServer, scenario: Scenario, users: int, page_load: bool = False) -> Round:
    """`users` new sessions send a prompt at once. With `page_load`, each session is opened first
    (untimed) as a browser's page load opens it: the app's load events (llmtool: `restore`) run."""
    provider.reset()
    provider.default = scenario
    sessions = [uuid.uuid4().hex for _ in range(users)]
    limits = httpx.Limits(max_connections=4 * users, max_keepalive_connections=4 * users)

    async def open_sessions() -> None:
        async with httpx.AsyncClient(timeout=None, limits=limits) as http:
            if app.load is not None:
                index, count = app.load
                await asyncio.gather(*(chat(http, app, "", s, index, [None] * count) for s in sessions))

    async def go() -> list[Seen]:
        async with httpx.AsyncClient(timeout=None, limits=limits) as http:
            await asyncio.gather(*(http.get(f"{app.url}/config") for _ in range(min(users, 8))))  # warm the pool
            return await asyncio.gather(*(chat(http, app, f"user {i}: say something", s)
                                          for i, s in enumerate(sessions)))

    if page_load:
        asyncio.run(open_sessions())
        time.sleep(SETTLE)
    cpu = app.cpu_seconds()
    seen = asyncio.run(go())
    time.sleep(SETTLE)  # the app's work after the last answer (e.g. store writes) counts, and ends here
    cpu = app.cpu_seconds() - cpu
    failed = [s for s in seen if s.first is None or s.done is None or s.error]
    if failed:
        raise RuntimeError(f"{app.name}: {len(failed)} of {users} users got no answer: {failed[0]}")
    for record in provider.requests:  # which user's request it was: the prompt names the user
        found = USER.search(json.dumps(record.body))
        if found is not None:
            seen[int(found.group(1))].received, seen[int(found.group(1))].closed = record.received_at, record.closed_at
    return Round(seen, cpu)


def answer_text(tokens: int) -> str:
    return " ".join([FIRST] + [f"w{i % 100}" for i in range(tokens - 2)] + [LAST])


def scenarios(args: argparse.Namespace) -> dict[str, tuple[Scenario, float]]:
    """name → (the loopback's scenario, its own time to first token)."""
    text, rate = answer_text(args.tokens), args.rate
    found = {"fast": (Scenario(text=text, tokens_per_second=rate), 1 / rate)}
    if args.ttft > 1 / rate:
        stall = args.ttft - 1 / rate  # the loopback pauses one token's time before each token
        found[f"ttft{args.ttft * 1000:.0f}ms"] = (
            Scenario(kind="stall_before_first_token", stall_seconds=stall, text=text, tokens_per_second=rate),
            args.ttft,
        )
    return found


# -- profiling (py-spy) --------------------------------------------------------------------------
# Where an app's CPU goes: the first rule whose pattern is in a sample's stack names its bucket
# (so the order matters: what runs inside what comes first).
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("run store (SQLAlchemy, aiosqlite)", ("llmtool/store", "sqlalchemy/", "aiosqlite/")),
    ("provider SDK (openai, httpx)", ("openai/", "httpx", "httpcore")),
    ("Gradio postprocess of outputs", ("postprocess_data",)),
    ("Gradio preprocess of inputs", ("preprocess_data",)),
    ("Gradio session state (queue/join)", ("gradio/state_holder.py",)),
    ("llmtool UI handlers (render, status)", ("llmtool/ui/",)),
    ("llmtool service (runs, executor)", ("llmtool/service/", "llmtool/providers/", "llmtool/redact",
                                          "llmtool/events", "llmtool/tokens", "llmtool/catalog")),
    ("relay handler", ("bench_chat_relay",)),
    ("Gradio queue, SSE, diffs, routes", ("gradio/",)),
    ("HTTP server (uvicorn, Starlette, h11)", ("uvicorn/", "starlette/", "fastapi/", "h11/", "llmtool/web/")),
]
OTHER = "asyncio loop, GC, other"


def buckets(raw: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for frames, count in stacks(raw):
        joined = ";".join(frames)
        counts[next((name for name, patterns in BUCKETS if any(p in joined for p in patterns)), OTHER)] += count
    return counts


def profile(app: App, provider: LoopbackServer, scenario: Scenario, users: int, rounds: int, out: Path,
            page_load: bool) -> Tally:
    tally = Tally()
    with Profiler(app.process.pid, out):
        for _ in range(rounds):
            tally.add(run_round(app, provider, scenario, users, page_load))
    return tally


# -- the report ----------------------------------------------------------------------------------
@dataclass
class Tally:
    first: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    size: list[int] = field(default_factory=list)
    round_first_p50: list[float] = field(default_factory=list)
    to_provider: list[float] = field(default_factory=list)  # submit → the provider request arrives
    to_first: list[float] = field(default_factory=list)  # the provider request arrives → first text at the client
    tail: list[float] = field(default_factory=list)  # the provider's end of stream → process_completed

    def add(self, result: Round) -> None:
        firsts = [s.first - s.submitted for s in result.seen if s.first is not None]
        self.first += firsts
        self.total += [s.done - s.submitted for s in result.seen if s.done is not None]
        self.cpu.append(result.cpu)
        self.messages += [s.messages for s in result.seen]
        self.size += [s.size for s in result.seen]
        self.round_first_p50.append(statistics.median(firsts))
        for x in result.seen:
            if x.received is not None and x.first is not None:
                self.to_provider.append(x.received - x.submitted)
                self.to_first.append(x.first - x.received)
            if x.closed is not None and x.done is not None:
                self.tail.append(x.done - x.closed)


def report(name: str, provider_ttft: float, tallies: dict[str, Tally], args: argparse.Namespace) -> None:
    print(f"\n{name}: provider TTFT {ms(provider_ttft)} ms, {args.tokens} tokens at {args.rate:g} tok/s, "
          f"{args.users} users × {args.rounds} rounds")
    print(f"   {'app':<8} {'first text p50':>15} {'p95':>7} {'added p50':>10} {'total p50':>10} {'p95':>7} "
          f"{'CPU/round':>10} {'msgs/user':>10} {'KB/user':>8}")
    for app_name, t in tallies.items():
        print(f"   {app_name:<8} {ms(statistics.median(t.first)):>12} ms {ms(percentile(t.first, 0.95)):>4} ms "
              f"{ms(statistics.median(t.first) - provider_ttft):>7} ms {ms(statistics.median(t.total)):>7} ms "
              f"{ms(percentile(t.total, 0.95)):>4} ms {statistics.mean(t.cpu):>8.2f} s "
              f"{statistics.mean(t.messages):>10.1f} {statistics.mean(t.size) / 1024:>8.1f}")
    print(f"   {'app':<8} {'submit → provider request p50':>30} {'p95':>7} {'→ first text p50':>17} "
          f"{'end of stream → done p50':>25}")
    for app_name, t in tallies.items():
        print(f"   {app_name:<8} {ms(statistics.median(t.to_provider)):>27} ms "
              f"{ms(percentile(t.to_provider, 0.95)):>4} ms {ms(statistics.median(t.to_first)):>14} ms "
              f"{ms(statistics.median(t.tail)):>22} ms")
    ours, lean = tallies["llmtool"], tallies["relay"]
    ratio = statistics.median(ours.first) / statistics.median(lean.first)
    per_round = [a / b for a, b in zip(ours.round_first_p50, lean.round_first_p50, strict=True)]
    added = (statistics.median(ours.first) - provider_ttft) / max(1e-9, statistics.median(lean.first) - provider_ttft)
    verdict = "meets" if ratio <= 1.1 else "misses"
    print(f"   llmtool / relay first-text p50: {ratio:.2f}× ({verdict} the ≤ 1.10× target); per round "
          f"{', '.join(f'{r:.2f}' for r in per_round)}; added-over-provider {added:.2f}×; "
          f"CPU {statistics.mean(ours.cpu) / statistics.mean(lean.cpu):.2f}×")


def print_profiles(outs: dict[str, Path], cpu: dict[str, float], limit: int) -> None:
    """Per bucket: each app's CPU seconds per round (its samples' share of the measured CPU)."""
    counts = {name: buckets(out) for name, out in outs.items()}
    names = list(outs)
    print(f"   {'CPU s per round, by where it goes':<40}" + "".join(f"{n:>10}" for n in names) + f"{'extra':>9}")
    for bucket in [*(name for name, _ in BUCKETS), OTHER]:
        share = {n: cpu[n] * counts[n][bucket] / max(1, sum(counts[n].values())) for n in names}
        if any(v >= 0.005 for v in share.values()):
            print(f"   {bucket:<40}" + "".join(f"{share[n]:>10.3f}" for n in names)
                  + f"{share[names[0]] - share[names[-1]]:>+9.3f}")
    print(f"   {'total':<40}" + "".join(f"{cpu[n]:>10.3f}" for n in names) + f"{cpu[names[0]] - cpu[names[-1]]:>+9.3f}")
    total, frames = top_frames(outs["llmtool"], limit, ours)
    print(f"   llmtool's own functions, share of llmtool's samples ({total}), inclusive / self:")
    for frame, inclusive, own in frames:
        print(f"     {100 * inclusive / max(1, total):5.1f}% {100 * own / max(1, total):5.1f}%  {frame}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    s = sub.add_parser("serve")  # internal: an app process
    s.add_argument("which", choices=APPS)
    parser.add_argument("--users", type=int, default=20, help="concurrent users per round (default 20)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per app and scenario (default 5)")
    parser.add_argument("--tokens", type=int, default=40, help="answer length per user (default 40)")
    parser.add_argument("--rate", type=float, default=100, help="provider tok/s per user (default 100)")
    parser.add_argument("--ttft", type=float, default=0.3,
                        help="the second scenario's provider time to first token, s (default 0.3; 0: skip it)")
    parser.add_argument("--page-load", action="store_true",
                        help="open each user's session first, untimed, as a browser's page load does (llmtool's "
                             "`restore` event runs): the chat then does not pay for creating the Gradio session")
    parser.add_argument("--ref", default=None,
                        help="benchmark llmtool as committed at this git ref (e.g. HEAD), not the working tree "
                             "(which others may be editing)")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="after measuring, py-spy each app for one more round; stacks and top frames in DIR")
    parser.add_argument("--top", type=int, default=25, help="llmtool functions listed per profile (default 25)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.which)
        return

    print(f"chat path: llmtool vs the lean relay · {os.cpu_count()} CPUs · Python {sys.version.split()[0]}")
    data_dir = Path(tempfile.mkdtemp(prefix="bench-chat-relay-"))
    source = snapshot(args.ref, data_dir / "source") if args.ref else None
    if args.ref:
        print(f"  llmtool as committed at {args.ref}", flush=True)
    if args.page_load:
        print("  sessions opened by a page load first (untimed)", flush=True)
    results: dict[str, dict[str, Tally]] = {}
    with LoopbackServer() as provider:
        apps: dict[str, App] = {}
        try:
            for name in APPS:
                (data_dir / name).mkdir()
                apps[name] = App(name, provider.openai_base_url, data_dir / name, source)
            for name, app in apps.items():
                print(f"  {name} /chat parameters: {', '.join(app.endpoint.parameters)}", flush=True)
            chosen = scenarios(args)
            for scenario_name, (scenario, _) in chosen.items():
                tallies = {name: Tally() for name in APPS}
                for app in apps.values():  # warm-up: imports, the first run's lazy work, pools
                    run_round(app, provider, scenario, args.users, args.page_load)
                for index in range(args.rounds):
                    order = APPS if index % 2 == 0 else APPS[::-1]
                    for name in order:
                        tallies[name].add(run_round(apps[name], provider, scenario, args.users, args.page_load))
                results[scenario_name] = tallies
                print(f"  {scenario_name}: done", flush=True)
            for scenario_name, tallies in results.items():
                report(scenario_name, chosen[scenario_name][1], tallies, args)
            print("   first text: submit → the first SSE message holding answer text; total: → process_completed;"
                  "\n   added: first text minus the provider's own TTFT; CPU: the app process, per round")
            if args.profile is not None:
                if shutil.which("py-spy") is None:
                    raise SystemExit("--profile needs py-spy (pip install py-spy)")
                args.profile.mkdir(parents=True, exist_ok=True)
                print(f"\nprofiles: py-spy at {SAMPLE_RATE} Hz on each app process, all threads, "
                      f"{args.rounds} more rounds of {args.users} users (raw stacks in {args.profile})")
                for scenario_name, (scenario, _) in chosen.items():
                    outs, cpu, line = {}, {}, []
                    for name, app in apps.items():
                        outs[name] = args.profile / f"{name}-{scenario_name}.txt"
                        tally = profile(app, provider, scenario, args.users, args.rounds, outs[name], args.page_load)
                        cpu[name] = statistics.mean(tally.cpu)
                        line.append(f"{name} first text p50 {ms(statistics.median(tally.first))} ms")
                    print(f"  {scenario_name} (profiled: {', '.join(line)})")
                    print_profiles(outs, cpu, args.top)
        finally:
            for app in apps.values():
                app.close()
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
