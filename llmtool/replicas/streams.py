"""Where a run's events live in Redis, and how the owner puts them there without slowing the stream.

Each run has a Redis Stream `llmtool:run:{id}`; the event at position N (the SSE `id:` we already
send) is the entry `0-(N+1)` (`XADD` refuses `0-0`), with one field `e`: the event as JSON. Explicit
ids make writing idempotent: an entry written twice (a retried pipeline) is refused the second time,
never duplicated. A stream keeps about `maxlen` entries (older ones come from the store) and expires
`ttl` seconds after its run ended (`live_ttl` while it runs, in case its owner dies).

The publisher is told of each event synchronously by the run store's recorder (`RunRecorder.observe`)
and only appends it to a list: the run never waits for Redis. One task sends whatever collected, for
every run at once, in one pipeline (one round trip); while a round trip is under way the next batch
collects, so under load batches grow instead of round trips multiplying. A batch Redis could not take
is dropped (logged once): followers find the gap and read those events from the store instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from llmtool.events import RunEvent, is_terminal, run_event_adapter

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from llmtool.service.runs import Run

log = logging.getLogger(__name__)

PREFIX = "llmtool"
MAXLEN = 10_000  # entries a run's stream keeps (about: trimmed with MAXLEN ~); older ones: the store
TTL = 3600.0  # seconds a run's stream stays after the run ended
LIVE_TTL = 86_400.0  # while running (refreshed when its owner restarts publishing): a dead owner's stream goes
MAX_BATCH = 100_000  # events waiting while Redis is slow to answer; beyond, the oldest are dropped
FIELD = b"e"


def stream_key(run_id: str) -> str:
    return f"{PREFIX}:run:{run_id}"


def entry_id(position: int) -> str:
    """The stream entry id of the event at `position` (0-based): `0-(position+1)`."""
    return f"0-{position + 1}"


def position_of(entry: bytes | str) -> int:
    """The event position of a stream entry id (`0-(N+1)` → N)."""
    text = entry.decode() if isinstance(entry, bytes) else entry
    return int(text.partition("-")[2]) - 1


def read_event(fields: dict[Any, Any]) -> RunEvent:
    """The event of a stream entry's fields."""
    data = fields.get(FIELD, fields.get("e"))
    if not isinstance(data, (bytes, str)):
        raise ValueError(f"a stream entry without its event: {sorted(map(str, fields))}")
    return run_event_adapter.validate_json(data)


class EventPublisher:
    """Appends every run's events to its Redis Stream, batched (see the module's docstring)."""

    def __init__(self, client: Redis, *, maxlen: int = MAXLEN, ttl: float = TTL, live_ttl: float = LIVE_TTL) -> None:
        self.client = client
        self.maxlen = maxlen
        self.ttl = int(max(ttl, 1))
        self.live_ttl = int(max(live_ttl, ttl, 1))
        self.problem: str | None = None  # the last failure, until a batch goes through again
        self.sent = 0  # events Redis took (for tests and the benchmark)
        self.batches = 0
        self._batch: list[tuple[str, int, RunEvent]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._expiring: set[str] = set()  # runs whose stream has its live expiry set
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._send_loop(), name="redis-publisher")

    # -- told by the recorder, on the run's loop: collect only -------------------------------------
    def on_event(self, run: Run, event: RunEvent) -> None:
        self._batch.append((run.id, len(run.log) - 1, event))  # Run.append has appended it already
        if not self._wake.is_set():
            self._wake.set()
            self._idle.clear()

    # -- the sender --------------------------------------------------------------------------------
    async def _send_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._batch = self._batch, []
            if len(batch) > MAX_BATCH:
                log.error("Redis is too slow: %d events were not published (followers read them from the store)",
                          len(batch) - MAX_BATCH)
                batch = batch[-MAX_BATCH:]
            if batch:
                try:
                    await self._send(batch)
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # Redis down: the store still has every event
                    self._failed(error, len(batch))
            if not self._batch:
                self._idle.set()
                if self._closing:
                    return

    async def _send(self, batch: list[tuple[str, int, RunEvent]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        ends: dict[str, bool] = {}
        for run_id, position, event in batch:
            pipe.xadd(stream_key(run_id), {FIELD: event.model_dump_json()}, id=entry_id(position),
                      maxlen=self.maxlen, approximate=True)
            ends[run_id] = ends.get(run_id, False) or is_terminal(event)
        for run_id, ended in ends.items():
            if ended:
                pipe.expire(stream_key(run_id), self.ttl)
                self._expiring.discard(run_id)
            elif run_id not in self._expiring:
                pipe.expire(stream_key(run_id), self.live_ttl)
                self._expiring.add(run_id)
        results = await pipe.execute(raise_on_error=False)
        refused = [r for r in results[: len(batch)] if isinstance(r, Exception)]
        # An entry already there (a pipeline retried after a lost connection) is refused: it is right.
        unexpected = [r for r in refused if "equal or smaller" not in str(r)]
        if unexpected:
            log.warning("Redis refused %d of %d events (%s); followers read them from the store",
                        len(unexpected), len(batch), unexpected[0])
        self.sent += len(batch) - len(refused)
        self.batches += 1
        if self.problem is not None:
            log.warning("Redis takes live events again")
            self.problem = None

    def _failed(self, error: Exception, count: int) -> None:
        self._expiring.clear()  # a restarted Redis lost the expiries too
        if self.problem is None:
            log.error("could not publish %d events to Redis (%s); followers on other replicas read the store "
                      "until it answers again", count, error)
        self.problem = "live events do not reach the other replicas right now (Redis failed); they follow the store"

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything collected so far has been sent (or dropped)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not self._idle.is_set() or self._batch:
                    self._wake.set()
                    await self._idle.wait()

    async def aclose(self, timeout: float = 5.0) -> None:
        """Send what is left (up to `timeout`), then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            began = time.monotonic()
            await self.flush(timeout)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            if time.monotonic() - began >= timeout:
                log.warning("Redis did not take the last events within %g s", timeout)
