"""One replica's link to the others: the Redis client, the event publisher, the Stop relay.

Made by `llmtool.replicas.connect` (the composition root calls it when `settings.redis_url` is set).
A Redis that does not answer at start is logged, not fatal: runs still stream and are kept, followers
on other replicas read the store until Redis answers, and Stop from elsewhere waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncGenerator
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from llmtool.events import RunEvent, TerminalEvent, is_terminal
from llmtool.replicas import RedisUnavailable, detach
from llmtool.replicas.cancels import RECHECK, CancelRelay
from llmtool.replicas.follow import BLOCK, follow
from llmtool.replicas.guard import ASYNC_TIMEOUT, async_options
from llmtool.replicas.streams import LIVE_TTL, MAXLEN, TTL, EventPublisher, position_of, stream_key
from llmtool.replicas.watch import StreamWatcher
from llmtool.service import LLMService

log = logging.getLogger(__name__)
STORED_WAIT = 0.02  # seconds between looks at the store for an ending Redis already showed
# Connections for quick commands (batches, reads of a stream, Stop): followers wait on the watcher's
# one blocking connection, not in the pool, so a few suffice; a burst beyond waits for one.
POOL = 32


class Replicas:
    def __init__(self, service: LLMService, client: Redis, reader: Redis, *, maxlen: int = MAXLEN,
                 ttl: float = TTL, live_ttl: float = LIVE_TTL, block: float = BLOCK, recheck: float = RECHECK) -> None:
        self.service = service
        self.client = client  # a pool for quick commands
        self.reader = reader  # the watcher's own connection, blocked in XREAD
        self.block = block
        self.publisher = EventPublisher(client, maxlen=maxlen, ttl=ttl, live_ttl=live_ttl)
        self.cancels = CancelRelay(client, service, recheck=recheck)
        self.watcher = StreamWatcher(client, reader, block)

    @classmethod
    async def connect(cls, service: LLMService, url: str, *, maxlen: int = MAXLEN, ttl: float = TTL,
                      live_ttl: float = LIVE_TTL, block: float = BLOCK, recheck: float = RECHECK) -> Replicas:
        """Publish every run `service` records from now on and hear Stop requests for its runs. Needs the
        run store (it answers for what Redis does not hold). `maxlen`, `ttl`, `live_ttl`: the streams
        (`streams.py`); `block`: how long a follower waits on Redis before asking the store; `recheck`: how
        often the owner looks for Stop requests it did not hear."""
        if service.recorder is None:
            raise ValueError("replicas need the run store: attach it before connecting to Redis")
        # Quick commands answer within ASYNC_TIMEOUT, the watcher's XREAD BLOCK within `block` and that: a Redis
        # that hangs (connected, never answering) costs a Stop, a follower's look or a batch one such wait,
        # not one per retry (`guard.py`: one reconnect on a dropped connection, none on a timeout).
        # A burst beyond the pool waits for a connection (the plain pool would raise "Too many connections").
        client = Redis.from_pool(BlockingConnectionPool.from_url(url, max_connections=POOL, timeout=block + 10,
                                                                 **async_options()))
        reader = Redis.from_url(url, **async_options(block + ASYNC_TIMEOUT))
        replicas = cls(service, client, reader, maxlen=maxlen, ttl=ttl, live_ttl=live_ttl, block=block,
                       recheck=recheck)
        try:
            await client.ping()
        except RedisError as error:
            log.error("Redis at %s does not answer (%s): other replicas follow this one's runs through the "
                      "store, and Stop from them waits, until it does", redacted(url), error)
        service.recorder.observe(replicas.publisher.on_event)
        replicas.publisher.start()
        replicas.cancels.start()
        replicas.watcher.start()
        return replicas

    @property
    def problem(self) -> str | None:
        """A sentence while Redis fails to take live events; None when all is well."""
        return self.publisher.problem

    def follow(self, run_id: str, start: int = 0) -> AsyncGenerator[RunEvent, None]:
        """A run of any replica, from position `start` on, live until its terminal event."""
        return follow(self.service, self.watcher, run_id, start, self.block)

    async def request_cancel(self, run_id: str, wait: float = 2.0) -> TerminalEvent | None:
        """Stop the run wherever it runs (its owner closes the provider connection), then wait up to
        `wait` seconds for its end: the terminal event once the run ended (`stopped`, or how it ended
        first) and the store says so too, None when it has not ended by then. `RedisUnavailable` when
        Redis cannot pass the request on."""
        local = self.service.get(run_id)
        if local is not None:
            local.cancel()
        try:
            await self.cancels.request(run_id)
        except RedisError as error:
            if local is None:
                raise RedisUnavailable(f"the run is running on another replica and Redis, which passes the "
                                       f"Stop on, does not answer ({error}); try again shortly") from None
        if wait <= 0:
            return None
        ending: TerminalEvent | None = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                ending = await self._ending(run_id)
                while True:  # the owner writes an ending at once: let status answers agree with it
                    record = await self.service.record(run_id)
                    if record is None or record.ended:
                        break
                    await asyncio.sleep(STORED_WAIT)
        return ending

    async def _ending(self, run_id: str) -> TerminalEvent | None:
        start = 0
        with contextlib.suppress(RedisError):
            last: Any = await self.client.xrevrange(stream_key(run_id), count=1)
            start = position_of(last[0][0]) if last else 0
        async with contextlib.aclosing(self.follow(run_id, start)) as events:
            async for event in events:
                if is_terminal(event):
                    return event  # type: ignore[return-value]  # is_terminal: one of TerminalEvent
        return None

    async def aclose(self) -> None:
        """Send the last events (after the service stopped its runs), stop listening, close the client."""
        detach(self.service)
        await self.cancels.aclose()
        await self.watcher.aclose()
        await self.publisher.aclose()
        await self.reader.aclose()
        await self.client.aclose()


def redacted(url: str) -> str:
    """The URL without its password, for a log line."""
    return re.sub(r"//[^@/]*@", "//***@", url)
