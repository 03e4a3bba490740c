"""Redis for the shared limits, guarded: short timeouts, and while Redis does not answer, this replica's
own counts instead.

    client = sync_client(url)                        # for the synchronous start path (LLMService.start)
    aclient = async_client(url)                      # for the awaited calls
    AsyncRedis.from_url(url, **async_options())      # another awaited client (`hub.py`'s): the same policy
    guard = Guard("runs per minute")
    wait = guard.call(lambda: remote_hit(), lambda: local.hit(...))
    refusal = await guard.acall(remote_refusal, local_refusal)

Why a fallback and not a refusal: a deployment whose Redis is down still streams answers (runs are kept
in the store; followers read it), so refusing every run, or every login, until Redis is back would turn
a Redis outage into a full one. Counted by each replica alone, every limit still holds per replica: at
most N times a role's allowance with N replicas, for as long as the outage lasts, and only for the runs
and logins of that time (budgets still count every stored cost). The change is logged both ways.

After a failure Redis is left alone for `retry` seconds, so a Redis that went away costs the event loop
one `SYNC_TIMEOUT` per `retry` seconds, not one per call. A healthy round trip on loopback is ~0.1 ms.

Every client llmtool makes gets its retry policy here, explicitly: one reconnect on a dropped connection
(a Redis restarted), none on a timeout. redis-py's own default depends on how a client is made (8.1:
`Redis(host=…)` retries timeouts 10 times with backoff, `from_url` not at all), and a Redis that hangs
(a stopped process, a full network buffer: connected, never answering) costs one timeout per retry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry

log = logging.getLogger(__name__)
T = TypeVar("T")

SYNC_TIMEOUT = 0.25  # seconds a call on the event loop may block when Redis does not answer
ASYNC_TIMEOUT = 1.0  # seconds an awaited call (a login, a budget) waits for Redis
RETRY = 5.0  # seconds of local counting after a failure before Redis is asked again
POOL = 8  # the synchronous calls come from the event loop's thread: a few connections suffice


def retry_policy() -> Retry:
    """One reconnect on a dropped connection, none on a timeout (the caller would wait twice)."""
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


def async_retry_policy() -> AsyncRetry:
    """`retry_policy` for the asyncio clients."""
    return AsyncRetry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


def async_options(timeout: float = ASYNC_TIMEOUT) -> dict[str, Any]:
    """An awaited client's (or its pool's) connection options: `timeout` seconds for an answer (a
    blocking read needs its block on top), `ASYNC_TIMEOUT` to connect, `async_retry_policy`."""
    return {"socket_timeout": timeout, "socket_connect_timeout": ASYNC_TIMEOUT, "socket_keepalive": True,
            "health_check_interval": 30, "retry": async_retry_policy()}


def sync_client(url: str) -> Redis:
    """A synchronous client for calls on the start path, with `retry_policy`."""
    return Redis.from_url(url, socket_timeout=SYNC_TIMEOUT, socket_connect_timeout=SYNC_TIMEOUT,
                          socket_keepalive=True, health_check_interval=30, max_connections=POOL,
                          retry=retry_policy())


def async_client(url: str) -> AsyncRedis:
    """The awaited calls' client (logins, budgets, renewals): the same, with `ASYNC_TIMEOUT`."""
    return AsyncRedis.from_url(url, **async_options())


class Guard:
    """Redis first; this replica's own answer while Redis fails (and `retry` seconds after each failure)."""

    def __init__(self, what: str, retry: float = RETRY, clock: Callable[[], float] = time.monotonic) -> None:
        self.what = what  # "runs per minute": the log lines say what is counted locally
        self.retry = retry
        self.clock = clock
        self.failing = False
        self._quiet_until = 0.0

    def call(self, remote: Callable[[], T], local: Callable[[], T]) -> T:
        if self.clock() < self._quiet_until:
            return local()
        try:
            answer = remote()
        except RedisError as error:
            self._failed(error)
            return local()
        self._answered()
        return answer

    async def acall(self, remote: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]) -> T:
        if self.clock() < self._quiet_until:
            return await local()
        try:
            answer = await remote()
        except (RedisError, TimeoutError) as error:
            self._failed(error)
            return await local()
        self._answered()
        return answer

    def _failed(self, error: Exception) -> None:
        self._quiet_until = self.clock() + self.retry
        if not self.failing:
            log.error("Redis does not answer (%s): %s are counted by this replica alone until it does",
                      error or type(error).__name__, self.what)
        self.failing = True

    def _answered(self) -> None:
        if self.failing:
            log.warning("Redis answers again: %s are counted across the replicas again", self.what)
        self.failing = False
