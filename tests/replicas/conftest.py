"""Replicas sharing one run store and one Redis (`redis_server` and `postgres_server` come from
tests/conftest.py): two `LLMService`s on one loop act as two replicas, as two processes would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from llmtool.replicas import connect
from llmtool.replicas.hub import Replicas
from llmtool.service import LLMService
from llmtool.settings import Settings, load_settings
from tests.servers.redis import RedisServer

Replica = tuple[LLMService, Replicas]
# Followers ask the store after this long without a word from Redis; owners look for missed Stops this often.
BLOCK, RECHECK = 0.3, 0.2


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.new_url()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def replica_settings(database_url: str, redis_url: str | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "default_model": "demo:echo",
        "demo": {"first_token_delay": 0.0, "tokens_per_second": 400},
        "store": {"flush_interval": 0.1, "heartbeat_interval": 0.2, "stale_after": 2.0},
    }
    return load_settings(**(values | overrides))


@pytest.fixture
async def replicas(tmp_path, redis_url: str) -> AsyncIterator[Callable[..., Awaitable[Replica]]]:
    """`await replicas(settings_overrides, **connect_options)`: one more replica on the shared SQLite store
    and Redis."""
    made: list[Replica] = []
    database = f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}"

    async def make(settings_overrides: dict[str, Any] | None = None, url: str | None = None, **options: Any) -> Replica:
        settings = replica_settings(database, url or redis_url, **(settings_overrides or {}))
        service = await LLMService.open(settings)
        assert settings.redis_url is not None
        replica = (service, await connect(service, settings.redis_url, **({"block": BLOCK, "recheck": RECHECK} | options)))
        made.append(replica)
        return replica

    yield make
    for service, linked in made:
        await service.aclose()
        await linked.aclose()


def words(count: int) -> str:
    """A prompt demo:echo answers with `count` text events."""
    return " ".join(f"w{i}" for i in range(count))
