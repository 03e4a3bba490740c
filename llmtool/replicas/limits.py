"""Limits counted across the replicas: the composition root's one call when Redis is configured.

    shared = share_limits(service, accounts, settings.redis_url)   # AppContext.start, after `connect`
    ...
    await shared.aclose()                                          # after the service closed

It gives the service's `Limits` Redis implementations of the protocols they already use: runs per
minute (`counters.py`), each login's runs in flight with their cost so far, for `max_concurrent_runs`
and budgets (`runs.py`), and the accounts the login throttle (`throttle.py`). The service learns
nothing about Redis. A run's entry lives `settings.store.stale_after` seconds without renewal and is
renewed every `store.heartbeat_interval`: a replica that dies frees its logins' slots when the run
store's survivors interrupt its runs. Without Redis none of this is made: one process counts alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmtool.replicas.counters import RedisCounters
from llmtool.replicas.guard import async_client, sync_client
from llmtool.replicas.runs import RedisRuns
from llmtool.replicas.throttle import RedisThrottle

if TYPE_CHECKING:
    from redis import Redis
    from redis.asyncio import Redis as AsyncRedis

    from llmtool.accounts import Accounts
    from llmtool.service import LLMService


class SharedLimits:
    def __init__(self, client: Redis, aclient: AsyncRedis, runs: RedisRuns, counters: RedisCounters,
                 throttle: RedisThrottle | None) -> None:
        self.client = client  # synchronous: the start path
        self.aclient = aclient  # logins, budgets, renewals
        self.runs = runs
        self.counters = counters
        self.throttle = throttle

    async def aclose(self) -> None:
        await self.runs.aclose()
        await self.aclient.aclose()
        self.client.close()


def share_limits(service: LLMService, accounts: Accounts | None, url: str, *, lease: float | None = None,
                 renew_every: float | None = None) -> SharedLimits:
    """Count `service`'s limits (and `accounts`' failed logins) in the Redis at `url` from now on; on the
    running loop. `lease`, `renew_every`: the runs' entries (default: the store's stale_after and
    heartbeat_interval)."""
    store = service.settings.store
    client = sync_client(url)
    aclient = async_client(url)
    runs = RedisRuns(client, aclient, lease=store.stale_after if lease is None else lease,
                     renew_every=store.heartbeat_interval if renew_every is None else renew_every)
    runs.report = service.limits.report
    counters = RedisCounters(client)
    service.limits.shared = runs
    service.limits.counters = counters
    throttle = None
    if accounts is not None:
        throttle = RedisThrottle(aclient, accounts.settings.accounts.throttle)
        accounts.throttle = throttle
    runs.start()
    return SharedLimits(client, aclient, runs, counters, throttle)
