"""What the HTTP API adds, side by side in one run: N concurrent users, one 200-token answer each at
10 ms per token from the loopback server (OpenAI Responses protocol).

- direct: the OpenAI SDK's stream consumed in this process;
- relay:  a bare FastAPI `StreamingResponse` relaying the same SDK stream as SSE (GET, one request);
- api:    llmtool's `POST /api/runs` then `GET /api/runs/{id}/events` (the run kept in a SQLite store).

Time to first text and to last text are measured by the client from the moment it starts asking.
Targets: first text p50 ≤ 1.2× the relay's, last text p50 ≤ 1.05× direct.

    python bench/bench_api.py [--users 20 100] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import openai
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from llmtool.loopback import LoopbackServer, Scenario
from llmtool.settings import load_settings
from llmtool.web.app import create_app
from llmtool.web.context import AppContext
from llmtool.web.serve import BackgroundServer

TOKENS = 200
TEXT = " ".join(f"tok{i}" for i in range(TOKENS))
MODEL = "gpt-4.1-mini"

Timing = tuple[float, float]  # (first text, last text), seconds from the start of the request


def relay_app(base_url: str) -> FastAPI:
    app = FastAPI()
    client = openai.AsyncOpenAI(api_key="k", base_url=base_url, max_retries=0)

    @app.get("/relay")
    async def relay() -> StreamingResponse:
        stream = await client.responses.create(model=MODEL, input="hi", stream=True)

        async def frames() -> AsyncIterator[bytes]:
            n = 0
            async for event in stream:
                if event.type == "response.output_text.delta":
                    yield f"id: {n}\nevent: text\ndata: {event.delta}\n\n".encode()
                    n += 1
            yield b"event: completed\ndata: {}\n\n"

        return StreamingResponse(frames(), media_type="text/event-stream")

    return app


async def direct(client: openai.AsyncOpenAI) -> Timing:
    start = time.perf_counter()
    first = last = None
    stream = await client.responses.create(model=MODEL, input="hi", stream=True)
    async for event in stream:
        if event.type == "response.output_text.delta":
            last = time.perf_counter()
            first = first or last
    assert first is not None and last is not None
    return first - start, last - start


async def read_text_frames(response: httpx.Response, start: float) -> Timing:
    first = last = None
    async for line in response.aiter_lines():
        if line == "event: text":
            last = time.perf_counter()
            first = first or last
        elif line.startswith("event: ") and line != "event: text" and line[7:] in ("completed", "failed", "stopped"):
            break
    assert first is not None and last is not None, "no text arrived"
    return first - start, last - start


async def relay(http: httpx.AsyncClient, url: str) -> Timing:
    start = time.perf_counter()
    async with http.stream("GET", f"{url}/relay") as response:
        return await read_text_frames(response, start)


async def api(http: httpx.AsyncClient, url: str) -> Timing:
    start = time.perf_counter()
    created = await http.post(f"{url}/api/runs", json={"model": f"openai:{MODEL}", "prompt": "hi"})
    assert created.status_code == 202, created.text
    async with http.stream("GET", f"{url}{created.headers['location']}/events") as response:
        return await read_text_frames(response, start)


async def crowd(users: int, one: Callable[[], Awaitable[Timing]]) -> list[Timing]:
    return list(await asyncio.gather(*(one() for _ in range(users))))


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


async def main(user_counts: list[int], rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, \
            LoopbackServer(default=Scenario(text=TEXT, tokens_per_second=1000 / 10)) as loopback:
        settings = load_settings(
            OPENAI_API_KEY="k", OPENAI_BASE_URL=loopback.openai_base_url,
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'runs.db'}",
        )
        with BackgroundServer(create_app(context=AppContext(settings))) as api_server, \
                BackgroundServer(relay_app(loopback.openai_base_url)) as relay_server:
            sdk = openai.AsyncOpenAI(api_key="k", base_url=loopback.openai_base_url, max_retries=0)
            limits = httpx.Limits(max_connections=500, max_keepalive_connections=500, keepalive_expiry=1.0)
            async with httpx.AsyncClient(timeout=60, limits=limits) as http:
                modes: dict[str, Callable[[], Awaitable[Timing]]] = {
                    "direct": lambda: direct(sdk),
                    "relay": lambda: relay(http, relay_server.url),
                    "api": lambda: api(http, api_server.url),
                }
                for mode in modes.values():  # warm up: connections, imports, the store
                    await crowd(3, mode)
                print(f"{TOKENS} tokens at 10 ms each from the loopback server; {rounds} rounds per mode, "
                      "modes alternated; seconds from the request's start")
                for users in user_counts:
                    results: dict[str, list[Timing]] = {name: [] for name in modes}
                    for _ in range(rounds):
                        for name, mode in modes.items():
                            results[name] += await crowd(users, mode)
                    print(f"\n{users} concurrent users")
                    print(f"  {'mode':<8}{'first p50':>11}{'first p95':>11}{'last p50':>10}{'last p95':>10}")
                    medians: dict[str, Timing] = {}
                    for name, timings in results.items():
                        firsts, lasts = [t[0] for t in timings], [t[1] for t in timings]
                        medians[name] = (statistics.median(firsts), statistics.median(lasts))
                        print(f"  {name:<8}{medians[name][0]:>11.4f}{p(firsts, 95):>11.4f}"
                              f"{medians[name][1]:>10.4f}{p(lasts, 95):>10.4f}")
                    first_ratio = medians["api"][0] / medians["relay"][0]
                    last_ratio = medians["api"][1] / medians["direct"][1]
                    print(f"  api first text p50 = {first_ratio:.2f}× relay (target ≤ 1.2): "
                          f"{'met' if first_ratio <= 1.2 else 'MISSED'}")
                    print(f"  api last text p50 = {last_ratio:.3f}× direct (target ≤ 1.05): "
                          f"{'met' if last_ratio <= 1.05 else 'MISSED'}")
            await sdk.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.users, args.rounds))
