"""Where a run's events live in Redis, and how the owner puts them there without slowing the stream.

Each run has a Redis Stream `llmtool:run:{id}`; the event at position N (the SSE `id:` we already
send) is the entry `0-(N+1)` (`XADD` refuses `0-0`), with one field `e`: the event as JSON. Explicit
ids make writing idempotent: an entry written twice (a retried pipeline) is refused the second time,
never duplicated. A stream keeps about `maxlen` entries (older ones come from the store) and expires
`ttl` seconds after its run ended (`live_ttl` while it runs, in case its owner dies).

The publisher is told of each event synchronously by the run store's recorder (`RunRecorder.observe`)
and only appends it to a list: the run never waits for Redis. One task sends whatever collected, for
every run at once, a few milliseconds after the first of them (`LINGER`), in one call of a small Lua
script (`APPEND`: the XADDs and EXPIREs of the whole batch in one round trip, a few µs of our CPU per
event where a pipeline of XADDs took ~19 µs); while a round trip is under way the next batch
collects, so under load batches grow instead of round trips multiplying. A batch Redis could not take
is dropped (logged once): followers find the gap and read those events from the store instead. (The
script touches several keys: one Redis, not a Cluster.)
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
LIVE_TTL = 86_400.0  # while running (set again at each batch): a dead owner's stream goes too
MAX_BATCH = 100_000  # events waiting while Redis is slow to answer; beyond, the oldest are dropped
FIELD = b"e"
# Seconds the sender waits after the first event of a batch: round trips (~0.1–0.4 ms of CPU each) stay
# under 1/LINGER a second however many runs stream, for at most that much more delay to followers on
# other replicas (the browser tool coalesces its page updates to 50 ms anyway).
LINGER = 0.02
SCRIPT_BATCH = 2000  # events per script call: Redis runs a script alone, so keep each call short

# KEYS: the streams. ARGV: maxlen, then per stream: its entry count, the expiry to set (seconds),
# then id, event JSON for each entry. Returns how many entries Redis refused for another reason than
# "already there" (an id at or below the stream's last one: a batch sent again), and the first such error.
APPEND = """
local maxlen = ARGV[1]
local at = 2
local refused = 0
local first_error = ''
for k = 1, #KEYS do
  local count = tonumber(ARGV[at])
  local expire = tonumber(ARGV[at + 1])
  at = at + 2
  for _ = 1, count do
    local added = redis.pcall('XADD', KEYS[k], 'MAXLEN', '~', maxlen, ARGV[at], 'e', ARGV[at + 1])
    if type(added) == 'table' and added.err and not string.find(added.err, 'equal or smaller', 1, true) then
      refused = refused + 1
      if first_error == '' then first_error = added.err end
    end
    at = at + 2
  end
  if expire > 0 then redis.call('EXPIRE', KEYS[k], expire) end
end
return {refused, first_error}
"""


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

    def __init__(self, client: Redis, *, maxlen: int = MAXLEN, ttl: float = TTL, live_ttl: float = LIVE_TTL,
                 linger: float = LINGER) -> None:
        self.client = client
        self.linger = linger
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
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._append = client.register_script(APPEND)

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
            if self.linger > 0 and not self._closing:
                await asyncio.sleep(self.linger)  # what arrives meanwhile shares the round trip
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
        for at in range(0, len(batch), SCRIPT_BATCH):
            await self._send_part(batch[at:at + SCRIPT_BATCH])
        self.batches += 1
        if self.problem is not None:
            log.warning("Redis takes live events again")
            self.problem = None

    async def _send_part(self, batch: list[tuple[str, int, RunEvent]]) -> None:
        by_run: dict[str, list[tuple[int, RunEvent]]] = {}
        for run_id, position, event in batch:
            by_run.setdefault(run_id, []).append((position, event))
        keys: list[str] = []
        args: list[bytes | str | int] = [self.maxlen]
        for run_id, entries in by_run.items():
            keys.append(stream_key(run_id))
            # Every batch sets it (one EXPIRE per run in the script): a stream Redis lost and made
            # again mid-run (a restart) expires too.
            args += (len(entries), self.ttl if is_terminal(entries[-1][1]) else self.live_ttl)
            for position, event in entries:
                args += (entry_id(position), event.model_dump_json())
        refused, error = await self._append(keys=keys, args=args)
        if refused:
            log.warning("Redis refused %d of %d events (%s); followers read them from the store",
                        refused, len(batch), error.decode() if isinstance(error, bytes) else error)
        self.sent += len(batch) - int(refused)

    def _failed(self, error: Exception, count: int) -> None:
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
