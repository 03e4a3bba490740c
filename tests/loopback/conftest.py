"""Fixtures: a fresh loopback server per test and real SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anthropic
import httpx2
import openai
import pytest

from llmtool.loopback import LoopbackServer

TIMEOUT = httpx2.Timeout(5.0, connect=2.0)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


@pytest.fixture
async def oai(server: LoopbackServer) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0, timeout=TIMEOUT)
    yield client
    await client.close()


@pytest.fixture
async def ant(server: LoopbackServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(
        base_url=server.anthropic_base_url, api_key="test", max_retries=0, timeout=TIMEOUT
    )
    yield client
    await client.close()
