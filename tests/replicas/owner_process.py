"""A replica in a process of its own, for the tests that kill it: it runs one long demo run on the
shared store and Redis, says `run ID` once the run is stored and streaming, and waits to be killed.

    python -m tests.replicas.owner_process DATABASE_URL REDIS_URL
"""

from __future__ import annotations

import asyncio
import sys

from llmtool.replicas import connect
from llmtool.service import LLMService, RunRequest
from tests.replicas.conftest import replica_settings, words


async def main(database_url: str, redis_url: str) -> None:
    settings = replica_settings(database_url, redis_url)
    service = await LLMService.open(settings)
    await connect(service, redis_url)
    run = service.start(RunRequest(prompt=words(20_000)))  # ~50 s: it is killed long before
    async for _ in run.events():
        if len(run.log) >= 20:
            break
    assert service.recorder is not None
    await service.recorder.flush()
    print(f"run {run.id}", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
