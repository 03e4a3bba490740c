"""Stop from any replica: shared state plus a notification, so a missed message loses nothing.

    await relay.request(run_id)     # any replica: SET llmtool:cancel:{id}, PUBLISH llmtool:cancel {id}

The request is first a key (`llmtool:cancel:{id}`, kept `ttl` seconds), then a message on one channel
every replica listens to. The owner cancels the run on the message at once; and every `recheck`
seconds (and whenever it subscribes again after Redis went away) it looks up the keys of all its
running runs in one `MGET`, so a message published while it was not listening still stops the run.
Cancelling closes the provider connection and ends the run with `stopped`, as a local Stop does.

The same look reads which of its runs other replicas follow (`watch.py` marks them): such a run counts
as watched, so `runs.stop_unwatched_after` does not stop a run someone follows elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from llmtool.replicas.streams import PREFIX
from llmtool.replicas.watch import watched_key

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from llmtool.service import LLMService

log = logging.getLogger(__name__)

CHANNEL = f"{PREFIX}:cancel"
RECHECK = 1.0  # seconds between looks at the cancel keys of this replica's running runs
TTL = 86_400  # seconds a cancel request is kept (a run never outlives its total timeout by that much)
RESUBSCRIBE = 1.0  # seconds before listening again after Redis went away


def cancel_key(run_id: str) -> str:
    return f"{PREFIX}:cancel:{run_id}"


class CancelRelay:
    def __init__(self, client: Redis, service: LLMService, *, recheck: float = RECHECK, ttl: int = TTL) -> None:
        self.client = client
        self.service = service
        self.recheck = recheck
        self.ttl = ttl
        self.cancelled = 0  # runs of this replica stopped on another's request (tests, diagnostics)
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set while subscribed

    async def request(self, run_id: str) -> None:
        """Ask the run's owner, whichever replica it is, to stop it (RedisError when Redis is down)."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.set(cancel_key(run_id), b"1", ex=self.ttl)
            pipe.publish(CHANNEL, run_id)
            await pipe.execute()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._listen(), name="redis-cancels")

    def _cancel_here(self, run_id: str) -> None:
        run = self.service.get(run_id)
        if run is not None and run.cancel():
            self.cancelled += 1
            log.info("run %s stopped: another replica asked", run_id)

    async def _listen(self) -> None:
        failing = False
        while True:
            try:
                async with self.client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self.listening.set()
                    if failing:
                        log.warning("listening to Stop requests from other replicas again")
                    failing = False
                    next_check = 0.0  # at once: what was asked while we were not listening
                    while True:
                        message = await pubsub.get_message(timeout=self.recheck)
                        if message is not None and message.get("type") == "message":
                            data = message["data"]
                            self._cancel_here(data.decode() if isinstance(data, bytes) else str(data))
                        if time.monotonic() >= next_check:
                            await self._check_keys()
                            next_check = time.monotonic() + self.recheck
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis went away: listen again, then look at the keys
                self.listening.clear()
                if not failing:
                    log.error("cannot hear Stop requests from other replicas (%s); trying again", error)
                failing = True
                await asyncio.sleep(RESUBSCRIBE)

    async def _check_keys(self) -> None:
        """Stop requests not heard, and which runs other replicas follow (one MGET for both)."""
        running = self.service.running()
        if not running:
            return
        flags = await self.client.mget([cancel_key(run.id) for run in running] +
                                       [watched_key(run.id) for run in running])
        for run, cancel, watched in zip(running, flags[:len(running)], flags[len(running):], strict=True):
            if cancel is not None:
                self._cancel_here(run.id)
            elif run.readers == 0:
                # Followed on another replica: watched, for `runs.stop_unwatched_after`, as a reader here is.
                if watched is not None:
                    run.unwatched_since = None
                elif run.unwatched_since is None:
                    run.unwatched_since = time.monotonic()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.listening.clear()
