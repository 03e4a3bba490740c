"""One user's burst against another user's short answer: the second user's time to first token.

User ann starts a burst of runs at once (the paced demo model: 0.35 s to the first token, 60 tokens/s,
~3 s an answer); a moment later bob asks for a 2-token answer. Measured: bob's wait from asking to his
first token, per way of admitting runs:

- `fifo-64`: before this change — one first-come-first-served queue of 64 slots for everyone (Gradio's
  `concurrency_limit` per event): bob's run waits behind every run of ann's burst that is queued;
- `fair`: the service's fair scheduler as configured by default (64 slots, a user holds at most
  64 − 8): bob's run starts at once;
- `fair-no-headroom`: the fair scheduler with `user_headroom = 0`: ann may fill all 64 slots; bob's run
  takes the first slot that frees, before ann's queued runs;
- `idle`: bob alone, for the queue's normal latency.

    python bench/bench_fairness.py [--burst 70] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from llmtool.accounts.principal import Principal
from llmtool.events import TextDelta
from llmtool.service import LLMService, Run, RunOrigin, RunRequest
from llmtool.settings import Settings, load_settings

BURST_PROMPT = "Write a short story about a lighthouse"
QUICK = RunRequest(model="demo:echo", prompt="Hi there", max_output_tokens=2)


def settings(headroom: int) -> Settings:
    return load_settings(demo={"first_token_delay": 0.35, "tokens_per_second": 60},
                         runs={"max_concurrent": 64, "user_headroom": headroom, "max_waiting_per_user": 1000})


def members(config: Settings) -> Callable[[str], Principal]:
    return lambda user: Principal(user=user, role="member", policy=config.roles["member"])


async def first_token(run: Run, began: float) -> float:
    async for event in run.events():
        if isinstance(event, TextDelta):
            return time.monotonic() - began
    raise RuntimeError(f"run {run.id} gave no text: {run.terminal}")


async def fifo(burst: int) -> float:
    """Before: every request waits for one of 64 slots, first come first served, for its whole run."""
    service = LLMService(settings(0))
    slots = asyncio.Semaphore(64)

    async def request(run_request: RunRequest, user: str, began: float | None = None) -> float:
        async with slots:
            run = service.start(run_request, RunOrigin(user=user))
            waited = await first_token(run, began) if began is not None else 0.0
            await run.wait()
            return waited

    try:
        burst_tasks = [asyncio.create_task(request(RunRequest(model="demo:assistant", prompt=BURST_PROMPT), "ann"))
                       for _ in range(burst)]
        await asyncio.sleep(0.2)
        waited = await request(QUICK, "bob", time.monotonic())
        for task in burst_tasks:
            task.cancel()
        await asyncio.gather(*burst_tasks, return_exceptions=True)
        return waited
    finally:
        await service.aclose()


async def fair(burst: int, headroom: int) -> float:
    """The service's scheduler: every run is started at once and waits, if it must, in its user's line."""
    config = settings(headroom)
    service = LLMService(config, principals=members(config))
    try:
        runs = [service.start(RunRequest(model="demo:assistant", prompt=BURST_PROMPT), RunOrigin(user="ann"))
                for _ in range(burst)]
        await asyncio.sleep(0.2)
        began = time.monotonic()
        waited = await first_token(service.start(QUICK, RunOrigin(user="bob")), began)
        for run in runs:
            run.cancel()
        return waited
    finally:
        await service.aclose()


async def idle(_: int) -> float:
    config = settings(8)
    service = LLMService(config, principals=members(config))
    try:
        began = time.monotonic()
        return await first_token(service.start(QUICK, RunOrigin(user="bob")), began)
    finally:
        await service.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burst", type=int, default=70, help="runs in ann's burst (default 70)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    modes: dict[str, Callable[[int], Awaitable[float]]] = {
        "fifo-64": fifo,
        "fair": lambda n: fair(n, 8),
        "fair-no-headroom": lambda n: fair(n, 0),
        "idle": idle,
    }
    print(f"bob's time to first token (2-token answer) while ann has a burst of {args.burst} runs "
          f"(demo: 0.35 s to first token, 60 tok/s, ~3 s a run); median of {args.repeats}")
    for name, measure in modes.items():
        times = [await measure(args.burst) for _ in range(args.repeats)]
        print(f"  {name:<18} {statistics.median(times):6.2f} s   (runs: {', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    asyncio.run(main())
