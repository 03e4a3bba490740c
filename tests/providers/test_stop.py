"""Stop closes the provider connection at once; a reader leaving does not stop anything."""

from __future__ import annotations

import asyncio
import time

from llmtool.events import Stopped, TextDelta
from llmtool.loopback import Scenario
from tests.providers.conftest import PROTOCOL_MODELS, service_for


async def test_stop_closes_the_upstream_connection_within_200_ms(protocol: str, server) -> None:
    server.enqueue(Scenario(tokens_per_second=20))
    service = service_for(server)
    run = service.start({"model": PROTOCOL_MODELS[protocol], "prompt": "hi"})
    seen = []
    async for event in run.events():
        if isinstance(event, TextDelta):
            seen.append(event.text)
            if len(seen) == 3:
                stopped_at = time.monotonic()
                run.cancel()
    record = await asyncio.to_thread(server.wait_closed, 0, 2)
    await service.aclose()

    assert record.closed_by_client
    assert record.closed_at - stopped_at < 0.2
    assert record.deltas_sent < 20  # the server stopped writing, not streamed on to the end
    stopped = run.terminal
    assert isinstance(stopped, Stopped) and stopped.text == "".join(seen)


async def test_stop_while_waiting_for_the_first_token_closes_upstream(protocol: str, server) -> None:
    server.enqueue(Scenario(kind="stall_before_first_token", stall_seconds=10))
    service = service_for(server)
    run = service.start({"model": PROTOCOL_MODELS[protocol], "prompt": "hi"})
    await asyncio.to_thread(server.wait_for_requests, 1, 2)
    stopped_at = time.monotonic()
    run.cancel()
    stopped = await run.wait()
    record = await asyncio.to_thread(server.wait_closed, 0, 2)
    await service.aclose()
    assert stopped.kind == "stopped" and stopped.text == ""
    assert record.closed_by_client and record.closed_at - stopped_at < 0.2


async def test_a_reader_that_leaves_does_not_stop_the_run(protocol: str, server) -> None:
    server.enqueue(Scenario(tokens_per_second=400))
    service = service_for(server)
    run = service.start({"model": PROTOCOL_MODELS[protocol], "prompt": "hi"})
    async for event in run.events():
        if isinstance(event, TextDelta):
            break
    completed = await run.wait()
    await service.aclose()
    assert completed.kind == "completed"
    assert server.requests[0].closed_by_client is False
