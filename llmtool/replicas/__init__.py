"""Several replicas, one deployment: live events and Stop across processes through Redis.

    replicas = await connect(service, settings.redis_url)   # the composition root (AppContext.start)
    replicas_of(service)                                    # the Replicas of that service, or None
    async for event in replicas.follow(run_id, start=8):    # a run of any replica, live, from position 8
    await replicas.request_cancel(run_id, wait=2.0)         # stop it, wherever it runs (RedisUnavailable)
    await replicas.aclose()

Every event of every run this replica runs is appended to the run's Redis Stream (`streams.py`,
batched, never awaited by the run); another replica follows it from there, the store filling what
Redis lacks (`follow.py`); a cancel is a key plus a message the owner hears or finds (`cancels.py`).
The limits (runs per minute, each login's runs in flight and their cost, failed logins) are counted
in Redis too (`limits.py`: `share_limits`, called by the composition root after `connect`).
Without Redis (`settings.redis_url` unset) none of this exists and one process works as before.
Only `hub.py`, `limits.py` and the modules they import need the `redis` package.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmtool.replicas.hub import Replicas
    from llmtool.service import LLMService

__all__ = ["RedisUnavailable", "connect", "replicas_of"]


class RedisUnavailable(Exception):
    """Redis cannot be reached: a request that needs another replica (a Stop) cannot be passed on now."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

_attached: weakref.WeakKeyDictionary[LLMService, Replicas] = weakref.WeakKeyDictionary()


def replicas_of(service: LLMService) -> Replicas | None:
    """The Replicas connected for `service`; None without Redis."""
    return _attached.get(service)


async def connect(service: LLMService, url: str, **options: Any) -> Replicas:
    """Publish `service`'s runs to the Redis at `url`, and hear Stop requests for them (`options`:
    `Replicas.connect`'s)."""
    from llmtool.replicas.hub import Replicas

    replicas = await Replicas.connect(service, url, **options)
    _attached[service] = replicas
    return replicas


def detach(service: LLMService) -> None:
    _attached.pop(service, None)
