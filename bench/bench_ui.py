"""Benchmark the browser tool's streaming path (Gradio API), against the loopback provider.

    python bench/bench_ui.py                          # the default run, about 2–3 minutes
    python bench/bench_ui.py --tokens 600 --users 10 --no-browser     # a quick look

What it measures, each mode served by its own app process on 127.0.0.1:

1. One long answer (--tokens at --rate tok/s) through the Gradio API: how long after the provider
   finished sending the answer the client has its last token, and the CPU seconds the app process
   used. With --browser (default when /usr/bin/chromium exists) also how long until the page
   shows the last token.
2. --users concurrent users, each streaming a short answer: the time to first token the app adds
   on top of the provider's (median and p99).

Modes, compared in the same run:
- coalesced: llmtool's settings (one update per 50 ms, concurrency 64, 64 threads);
- every-token: one page update per token (update_interval = 0), otherwise the same;
- gradio-default: coalesced, but Gradio's default concurrency (1 per event, 40 threads).

The API client is a minimal async reader of Gradio's SSE queue protocol (it only looks for marker
words in the raw messages), so the client's own parsing does not blur the server's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from support import cpu_seconds, stop

from llmtool.loopback import LoopbackServer, Scenario

FIRST = "Firstmarker"
LAST = "Lastmarker"
CHROMIUM = Path("/usr/bin/chromium")


@dataclass(frozen=True)
class Mode:
    name: str
    interval: float
    concurrency: int
    max_threads: int


MODES = {
    "coalesced": Mode("coalesced", 0.05, 64, 64),
    "every-token": Mode("every-token", 0.0, 64, 64),
    "gradio-default": Mode("gradio-default", 0.05, 1, 40),
}


# -- the app under test, in its own process ------------------------------------------------------
def serve(args: argparse.Namespace) -> None:
    from llmtool.settings import load_settings
    from llmtool.web.app import create_app
    from llmtool.web.serve import BackgroundServer

    settings = load_settings(
        endpoints={"local": {"base_url": args.provider, "models": ["m"]}},
        default_model="local:m",
        timeouts={"first_token": 600, "idle": 600, "total": 3600},
        ui={"update_interval": args.interval, "concurrency": args.concurrency,
            "max_threads": args.max_threads, "queue_size": 10_000},
    )
    with BackgroundServer(create_app(settings)) as server:
        print(f"PORT {server.port}", flush=True)
        sys.stdin.read()  # until the benchmark closes our stdin


class App:
    """One app process in one mode."""

    def __init__(self, mode: Mode, provider_url: str) -> None:
        self.mode = mode
        self.process = subprocess.Popen(
            [sys.executable, __file__, "serve", "--provider", provider_url,
             "--interval", str(mode.interval), "--concurrency", str(mode.concurrency),
             "--max-threads", str(mode.max_threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the app did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        self.fn_index = self._chat_fn_index()

    def _chat_fn_index(self) -> int:
        config = httpx.get(f"{self.url}/config", timeout=30).json()
        return next(d["id"] for d in config["dependencies"] if d.get("api_name") == "chat")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def close(self) -> None:
        stop(self.process)


# -- a minimal Gradio API client -----------------------------------------------------------------
@dataclass
class Seen:
    submitted: float
    first: float | None = None
    last: float | None = None


async def chat(http: httpx.AsyncClient, app: App, prompt: str) -> Seen:
    """Submit one prompt the way the browser does; note when the marker words arrive."""
    session = uuid.uuid4().hex
    seen = Seen(time.monotonic())
    data = [prompt, "local:m", "", "", 0, "stream", False, 0, "", None]  # None: the turns state
    response = await http.post(f"{app.url}/gradio_api/queue/join", json={
        "data": data, "fn_index": app.fn_index, "session_hash": session,
        "event_data": None, "trigger_id": None,
    })
    response.raise_for_status()
    async with http.stream("GET", f"{app.url}/gradio_api/queue/data",
                           params={"session_hash": session}) as stream:
        async for line in stream.aiter_lines():
            if not line.startswith("data:"):
                continue
            now = time.monotonic()
            if seen.first is None and FIRST in line:
                seen.first = now
            if seen.last is None and LAST in line:
                seen.last = now
            if '"process_completed"' in line:
                break
    return seen


def answer_text(tokens: int) -> str:
    words = [FIRST] + [f"w{i % 100}" for i in range(tokens - 2)] + [LAST]
    return " ".join(words)


# -- the measurements ----------------------------------------------------------------------------
def long_answer_api(app: App, provider: LoopbackServer, tokens: int, rate: float) -> dict[str, float]:
    provider.reset()
    provider.enqueue(Scenario(text=answer_text(tokens), tokens_per_second=rate))
    cpu = app.cpu_seconds()

    async def go() -> Seen:
        async with httpx.AsyncClient(timeout=None) as http:
            return await chat(http, app, "long answer please")

    seen = asyncio.run(go())
    cpu = app.cpu_seconds() - cpu
    record = provider.wait_closed(0, timeout=30)
    assert seen.last is not None and record.closed_at is not None
    return {"lag": seen.last - record.closed_at, "cpu": cpu,
            "stream": record.closed_at - record.received_at}


def long_answer_browser(app: App, provider: LoopbackServer, tokens: int, rate: float) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    provider.reset()
    provider.enqueue(Scenario(text=answer_text(tokens), tokens_per_second=rate))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(app.url)
        page.wait_for_selector("#prompt textarea")
        cpu = app.cpu_seconds()
        page.fill("#prompt textarea", "long answer please")
        page.press("#prompt textarea", "Enter")
        page.wait_for_function(
            "m => [...document.querySelectorAll('[data-testid=bot]')].pop()?.innerText.includes(m)",
            arg=LAST, timeout=600_000,
        )
        shown = time.monotonic()
        cpu = app.cpu_seconds() - cpu
        browser.close()
    record = provider.wait_closed(0, timeout=30)
    assert record.closed_at is not None
    return {"lag": shown - record.closed_at, "cpu": cpu}


def concurrent_users(app: App, provider: LoopbackServer, users: int, tokens: int, rate: float) -> dict[str, float]:
    provider.reset()
    provider.default = Scenario(text=answer_text(tokens), tokens_per_second=rate)
    provider_ttft = 1.0 / rate  # the loopback sends its first token after one token's pause

    async def go() -> list[Seen]:
        limits = httpx.Limits(max_connections=4 * users, max_keepalive_connections=4 * users)
        async with httpx.AsyncClient(timeout=None, limits=limits) as http:
            await http.get(f"{app.url}/config")  # warm the connection pool
            return await asyncio.gather(*(chat(http, app, f"user {i}") for i in range(users)))

    cpu = app.cpu_seconds()
    started = time.monotonic()
    seen = asyncio.run(go())
    wall = time.monotonic() - started
    cpu = app.cpu_seconds() - cpu
    added = sorted(s.first - s.submitted - provider_ttft for s in seen if s.first is not None)
    assert len(added) == users, "some users never got their first token"
    return {"median": statistics.median(added), "p99": percentile(added, 0.99), "max": added[-1],
            "wall": wall, "cpu": cpu}


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


# -- the report ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    s = sub.add_parser("serve")  # internal: the app process
    s.add_argument("--provider", required=True)
    s.add_argument("--interval", type=float, required=True)
    s.add_argument("--concurrency", type=int, required=True)
    s.add_argument("--max-threads", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=3000, help="long answer length (default 3000)")
    parser.add_argument("--rate", type=float, default=200, help="provider tok/s for it (default 200)")
    parser.add_argument("--users", type=int, default=50, help="concurrent users (default 50)")
    parser.add_argument("--user-tokens", type=int, default=40, help="answer length per user (default 40)")
    parser.add_argument("--user-rate", type=float, default=100, help="provider tok/s per user (default 100)")
    parser.add_argument("--browser", action=argparse.BooleanOptionalAction, default=CHROMIUM.exists(),
                        help="also time the long answer in Chromium (default: when /usr/bin/chromium exists)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args)
        return

    print(f"llmtool UI benchmark · {os.cpu_count()} CPUs · Python {sys.version.split()[0]}")
    with LoopbackServer() as provider:
        results: dict[str, dict[str, dict[str, float]]] = {}
        for mode in MODES.values():
            app = App(mode, provider.openai_base_url)
            try:
                row: dict[str, dict[str, float]] = {}
                if mode.name != "gradio-default":  # one user: concurrency does not matter
                    row["api"] = long_answer_api(app, provider, args.tokens, args.rate)
                    if args.browser:
                        row["browser"] = long_answer_browser(app, provider, args.tokens, args.rate)
                row["users"] = concurrent_users(app, provider, args.users, args.user_tokens, args.user_rate)
                results[mode.name] = row
            finally:
                app.close()
            print(f"  {mode.name}: done", flush=True)

    print(f"\n1. One {args.tokens}-token answer at {args.rate:g} tok/s "
          f"(the provider streams for {args.tokens / args.rate:.0f} s)")
    browser_columns = f" {'browser lag':>12} {'app CPU':>9}" if args.browser else ""
    print(f"   {'mode':<15} {'API client lag':>15} {'app CPU':>9}" + browser_columns)
    for name, row in results.items():
        if "api" not in row:
            continue
        line = f"   {name:<15} {row['api']['lag'] * 1000:>12.0f} ms {row['api']['cpu']:>7.2f} s"
        if "browser" in row:
            line += f" {row['browser']['lag'] * 1000:>9.0f} ms {row['browser']['cpu']:>7.2f} s"
        print(line)
    print("   lag: from the provider's end of stream to the client holding the last token")
    print(f"\n2. {args.users} users streaming at once ({args.user_tokens} tokens at {args.user_rate:g} tok/s each)")
    print(f"   {'mode':<15} {'added TTFT median':>18} {'p99':>9} {'max':>9} {'all done':>9} {'app CPU':>9}")
    for name, row in results.items():
        u = row["users"]
        print(f"   {name:<15} {u['median'] * 1000:>15.0f} ms {u['p99'] * 1000:>6.0f} ms "
              f"{u['max'] * 1000:>6.0f} ms {u['wall']:>7.1f} s {u['cpu']:>7.2f} s")
    print("   added TTFT: submit → first token at the client, minus the provider's own TTFT")


if __name__ == "__main__":
    main()
