"""One user's burst against another user's short answer, through the browser tool's Gradio queue.

`bench_fairness.py` measures the service's fair scheduler alone. Here the same burst goes through the
whole app, logged in, the way a browser sends it (`/gradio_api/queue/join`, then the SSE stream of
`/gradio_api/queue/data`): user ann starts a burst of chat runs at once (the paced demo model: 0.35 s
to the first token, then --rate tokens/s: 20, ~8 s an answer of 160 tokens); once all of them are in
the queue, bob asks for a 2-token answer. Measured: bob's wait from asking to the first update that
shows his answer streaming (or done).

The rate is lower than `bench_fairness.py`'s 60 tokens/s on purpose: through Gradio every streaming
answer costs the server CPU on each page update, and 56 answers at 60 tokens/s keep one process busy
enough that the joins of the burst alone take ~3 s, by which time ann's first answers are ending. At
20 tokens/s ann's burst holds its slots while bob asks, which is the case being measured.

Modes, each its own app process on 127.0.0.1 (runs.max_concurrent 64, user_headroom 8, a member's
line long enough for the whole burst):

- `gradio-limit`: before this change. The run events have Gradio's per-event limit (`ui.concurrency`,
  64, one first-come-first-served group) and Gradio's cap of active events is `ui.max_threads` (64):
  bob's event waits in Gradio's queue behind ann's, before the service's scheduler ever sees it;
- `service-queue`: with logins the run events have no Gradio limit and the cap is raised
  (`llmtool/ui/fairness.py`): bob's run reaches the scheduler at once and takes a headroom slot;
- `idle`: bob alone, for the queue's normal latency.

    python bench/bench_gradio_fairness.py [--burst 70] [--repeats 3] [--rate 20] [--tokens 0]

Measured (a 2-core machine, client and server on it; 70 runs, median of 3, in seconds):

    ann's answers              gradio-limit   service-queue   idle
    160 tokens at 20 tok/s         8.29           1.93        0.42
    40 tokens at 5 tok/s           8.84           2.88        0.42

gradio-limit is bob waiting for ann's first answers to end. What service-queue still adds over idle
is the server being busy, not a queue: while ann's 56 answers stream the app process uses 0.5–0.95
of a core (every page update costs Gradio a post-process, a diff and an SSE message per stream, and
70 logged-in joins take ~2–4 s to be answered), so every event of anyone waits for the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from support import serve_app, stop

USERS = {"ann": "ann's long password", "bob": "bob's long password"}
BURST_PROMPT = "Write a short story about a lighthouse"
MODES = ("gradio-limit", "service-queue", "idle")
SETTLE = 2.0  # seconds between repeats, once the server has no run left (they outlive their readers)


def serve(args: argparse.Namespace) -> None:
    """The app with logins, in `args.mode` (run in a subprocess of the benchmark)."""
    from llmtool.settings import load_settings
    from llmtool.web.app import create_app

    if args.mode == "gradio-limit":  # how blocks.py wired the run events before fairness.py
        import llmtool.ui.blocks as blocks

        blocks.run_limit = lambda context: context.settings.ui.concurrency
        blocks.thread_cap = lambda settings, limit: settings.ui.max_threads
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{args.folder}/runs-{args.mode}.db", default_model="demo:assistant",
        prompts_dir=args.folder, ui={"users_file": f"{args.folder}/users.txt", "concurrency": 64, "max_threads": 64},
        demo={"first_token_delay": 0.35, "tokens_per_second": args.rate},
        runs={"max_concurrent": 64, "user_headroom": 8, "max_waiting_per_user": 1000},
    )
    serve_app(create_app(settings), args.mode)


class App:
    def __init__(self, mode: str, folder: str, rate: float) -> None:
        self.process = subprocess.Popen([sys.executable, __file__, "serve", "--mode", mode, "--folder", folder,
                                         "--rate", str(rate)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the app did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def close(self) -> None:
        stop(self.process)


def log_in(url: str, user: str) -> str:
    import re

    with httpx.Client(base_url=url, timeout=30) as browser:
        form = browser.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        answer = browser.post("/login", data={"csrf_token": token.group(1), "username": user,
                                              "password": USERS[user], "next": "/"})
        assert answer.status_code == 303, answer.text
        return str(answer.cookies["llmtool_session"])


async def chat(http: httpx.AsyncClient, url: str, fn_index: int, prompt: str, model: str, max_tokens: int,
               started: asyncio.Event | None = None) -> float | None:
    """One /chat the way the browser sends it, read to its end; seconds from asking to the first
    update showing the answer streaming or done (None if none came)."""
    session = uuid.uuid4().hex
    began = time.monotonic()
    seen: float | None = None
    joined = await http.post(f"{url}/gradio_api/queue/join", json={
        "data": [prompt, model, "", "", max_tokens, "stream", False, 0, "", None], "fn_index": fn_index,
        "session_hash": session, "event_data": None, "trigger_id": None,
    })
    joined.raise_for_status()
    if started is not None:
        started.set()
    async with http.stream("GET", f"{url}/gradio_api/queue/data", params={"session_hash": session}) as stream:
        async for line in stream.aiter_lines():
            if not line.startswith("data:"):
                continue
            if seen is None and ("Streaming ·" in line or "Done ·" in line):
                seen = time.monotonic() - began
            if json.loads(line[5:]).get("msg") == "process_completed":
                break
    return seen


async def measure(url: str, burst: int, tokens: int) -> float:
    cookies = {user: log_in(url, user) for user in USERS}
    limits = httpx.Limits(max_connections=burst + 20, max_keepalive_connections=burst + 20)
    async with httpx.AsyncClient(timeout=120, limits=limits, cookies={"llmtool_session": cookies["ann"]}) as ann, \
            httpx.AsyncClient(timeout=120, cookies={"llmtool_session": cookies["bob"]}) as bob:
        config = (await bob.get(f"{url}/config")).json()
        fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "chat")
        joined = [asyncio.Event() for _ in range(burst)]
        tasks = [asyncio.create_task(chat(ann, url, fn_index, BURST_PROMPT, "demo:assistant", tokens, joined[i]))
                 for i in range(burst)]
        await asyncio.gather(*(event.wait() for event in joined))
        if burst:
            await asyncio.sleep(0.5)  # ann's runs are streaming or waiting
        waited = await chat(bob, url, fn_index, "Hi there", "demo:echo", 2)
        await asyncio.gather(*tasks)  # ann's answers end: the next repeat starts on an idle server
    if waited is None:
        raise RuntimeError("bob's answer never streamed")
    return waited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    serving = sub.add_parser("serve")
    serving.add_argument("--mode", choices=MODES, required=True)
    serving.add_argument("--folder", required=True)
    serving.add_argument("--rate", type=float, required=True)
    parser.add_argument("--burst", type=int, default=70, help="runs in ann's burst (default 70)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rate", type=float, default=20, help="the demo model's tokens per second (default 20)")
    parser.add_argument("--tokens", type=int, default=0,
                        help="the length of ann's answers in tokens (default 0: the whole answer, 160)")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args)
        return
    from pwdlib.hashers.argon2 import Argon2Hasher

    hasher = Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1)  # cheap: logins are not measured
    folder = tempfile.mkdtemp(prefix="bench-gradio-fairness-")
    users = Path(folder) / "users.txt"
    users.write_text("".join(f"{user}:{hasher.hash(password)}\n" for user, password in USERS.items()))
    users.chmod(0o600)
    tokens = args.tokens or 160
    print(f"bob's time to first token (2-token answer) through the Gradio queue while ann has a burst of "
          f"{args.burst} chat runs (demo: 0.35 s to first token, then {tokens} tokens at {args.rate:g} tok/s, "
          f"~{0.35 + tokens / args.rate:.0f} s a run); median of {args.repeats}")
    for mode in MODES:
        app = App(mode, folder, args.rate)
        try:
            times = []
            for repeat in range(args.repeats):
                if repeat:
                    time.sleep(SETTLE)
                times.append(asyncio.run(measure(app.url, 0 if mode == "idle" else args.burst, args.tokens)))
        finally:
            app.close()
        print(f"  {mode:<14} {statistics.median(times):6.2f} s   (runs: {', '.join(f'{t:.2f}' for t in times)})",
              flush=True)


if __name__ == "__main__":
    main()
