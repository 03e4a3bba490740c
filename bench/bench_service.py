"""What llmtool's service adds over reading the SDK stream directly, side by side in one run.

For each protocol, alternating direct-SDK and service runs against the loopback server:
- time to first token (request start → first text in hand), median over runs;
- per-delta cost: wall time per delta while streaming unpaced (the server sends as fast as it can);
- CPU seconds per 1,000 deltas.

    python bench/bench_service.py [--runs 15] [--tokens 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import anthropic
import openai

from llmtool.loopback import LoopbackServer, Scenario
from llmtool.service import LLMService
from llmtool.settings import load_settings

MODELS = {"responses": "openai:gpt-4.1-mini", "chat": "local:m", "messages": "anthropic:claude-haiku-4-5"}


def clients(server: LoopbackServer) -> dict[str, object]:
    """One client per protocol, reused across runs, as the service reuses its own."""
    oai = openai.AsyncOpenAI(api_key="k", base_url=server.openai_base_url, max_retries=0)
    return {
        "responses": oai,
        "chat": oai,
        "messages": anthropic.AsyncAnthropic(api_key="k", base_url=server.anthropic_base_url, max_retries=0),
    }


async def direct(protocol: str, client) -> tuple[float, float, int]:
    start = time.perf_counter()
    first = None
    deltas = 0
    if protocol == "messages":
        stream = await client.messages.create(
            model="claude-haiku-4-5", max_tokens=100_000, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        async for event in stream:
            if event.type == "content_block_delta":
                deltas += 1
                first = first or time.perf_counter()
    else:
        if protocol == "responses":
            stream = await client.responses.create(model="gpt-4.1-mini", input="hi", stream=True)
            async for event in stream:
                if event.type == "response.output_text.delta":
                    deltas += 1
                    first = first or time.perf_counter()
        else:
            stream = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True,
                stream_options={"include_usage": True},
            )
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    deltas += 1
                    first = first or time.perf_counter()
    assert first is not None, "no text arrived"
    return first - start, time.perf_counter() - first, deltas


async def through_service(protocol: str, service: LLMService) -> tuple[float, float, int]:
    start = time.perf_counter()
    first = None
    deltas = 0
    run = service.start({"model": MODELS[protocol], "prompt": "hi"})
    async for event in run.events():
        if event.kind == "text":
            deltas += 1
            first = first or time.perf_counter()
    assert run.status == "completed", run.terminal
    assert first is not None, "no text arrived"
    return first - start, time.perf_counter() - first, deltas


async def main(runs: int, tokens: int) -> None:
    text = " ".join(f"word{i}" for i in range(tokens))
    with LoopbackServer(default=Scenario(text=text)) as server:
        service = LLMService(load_settings(
            OPENAI_API_KEY="k", OPENAI_BASE_URL=server.openai_base_url,
            ANTHROPIC_API_KEY="k", ANTHROPIC_BASE_URL=server.anthropic_base_url,
            endpoints={"local": {"base_url": server.openai_base_url, "models": ["m"]}},
        ))
        sdk = clients(server)
        print(f"{tokens} deltas per answer, {runs} runs per path, unpaced loopback stream\n")
        print(f"{'protocol':10} {'path':8} {'TTFT med':>10} {'µs/delta':>10} {'CPU ms/1k deltas':>17}")
        for protocol in MODELS:
            await direct(protocol, sdk[protocol])  # warm up: the SDKs build their models on first use
            await through_service(protocol, service)
            results: dict[str, list[tuple[float, float, float]]] = {"direct": [], "service": []}
            for _ in range(runs):
                for path in ("direct", "service"):
                    cpu = time.process_time()
                    if path == "direct":
                        ttft, streaming, deltas = await direct(protocol, sdk[protocol])
                    else:
                        ttft, streaming, deltas = await through_service(protocol, service)
                    cpu = time.process_time() - cpu
                    assert deltas == tokens, (path, deltas)
                    results[path].append((ttft, streaming / deltas, cpu / deltas * 1000))
            for path, rows in results.items():
                ttft = statistics.median(r[0] for r in rows) * 1000
                per_delta = statistics.median(r[1] for r in rows) * 1e6
                cpu = statistics.median(r[2] for r in rows) * 1000
                print(f"{protocol:10} {path:8} {ttft:8.2f}ms {per_delta:10.1f} {cpu:17.1f}")
        await service.aclose()
        # Both paths run in this process, so the server thread's own CPU is in both figures alike.


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--tokens", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.tokens))
