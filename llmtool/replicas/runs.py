"""`SharedRuns` in Redis: each login's runs in flight on every replica, for its concurrency and budgets.

    runs = RedisRuns(sync_client(url), Redis.from_url(url), lease=30, renew_every=5)
    runs.report = service.limits.report            # what a run of ours cost so far, and whether it ended
    runs.start()                                   # renews this replica's entries while it lives
    runs.claim("ann", run_id, cap=2, created_at=t) # how many of ann's runs are elsewhere; this one counted if < 2

Per login two keys: `llmtool:inflight:{user}`, a sorted set of run ids scored by when their lease ends
(Redis's clock, in ms), and `…:runs`, a hash of run id → `E|owner|created_at|cost` (E: 1 once the run
ended; its cost counts until the store has it, its slot is free). One Lua script drops the entries whose
lease ran out, counts the login's runs of other owners and, for a claim, adds the new one only while
that count is below the cap: two replicas cannot both take the last slot. The owner renews its entries
(and reports their cost so far) every `renew_every` seconds; one that dies stops, so after `lease`
seconds its runs free their slots (the run store's `stale_after`, when its runs are interrupted too).
A run's entry goes when its end is stored (`release`), or with its lease.

The start path's calls are synchronous with a short timeout; while Redis does not answer, nothing
elsewhere is known and this replica counts its own runs alone (`guard.py`). What it claimed meanwhile
is written at the next renewal that Redis takes: the shared count heals when Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from llmtool.replicas.counters import NOW_MS
from llmtool.replicas.guard import ASYNC_TIMEOUT, Guard
from llmtool.replicas.streams import PREFIX
from llmtool.service.shared import RunElsewhere

log = logging.getLogger(__name__)
KEY = f"{PREFIX}:inflight:"
LEASE = 30.0  # seconds an entry lives without renewal (the default of store.stale_after)
RENEW_EVERY = 5.0  # (store.heartbeat_interval's)

# KEYS: the login's leases, its runs. ARGV: mode, this replica, then for 'claim': run id, cap (-1:
# none), lease (ms), entry. 'peek' and 'claim' answer how many of the login's runs of other owners
# have not ended ('claim' adds the run when that is below the cap); 'others' answers run id, entry, …
# of other owners' runs.
INFLIGHT = NOW_MS + """
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #dead > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('HDEL', KEYS[2], unpack(dead))
end
local mode, me = ARGV[1], ARGV[2]
local entries = redis.call('HGETALL', KEYS[2])
local running, found = 0, {}
for i = 1, #entries, 2 do
  local entry = entries[i + 1]
  if string.match(entry, '^.|([^|]*)|') ~= me then
    if string.sub(entry, 1, 1) == '0' then running = running + 1 end
    table.insert(found, entries[i])
    table.insert(found, entry)
  end
end
if mode == 'others' then return found end
if mode == 'claim' then
  local cap = tonumber(ARGV[4])
  if cap < 0 or running < cap then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]), ARGV[3])
    redis.call('HSET', KEYS[2], ARGV[3], ARGV[6])
    redis.call('PEXPIRE', KEYS[1], ARGV[5])
    redis.call('PEXPIRE', KEYS[2], ARGV[5])
  end
end
return running
"""

# KEYS: the login's leases, its runs. ARGV: run id, lease (ms), entry. Writes the entry and its lease.
RENEW = NOW_MS + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""

# KEYS: the login's leases, its runs. ARGV: run id. Forgets the run (and the keys once empty).
RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[1], KEYS[2]) end
return 1
"""


def keys_of(user: str) -> list[str]:
    return [KEY + user, KEY + user + ":runs"]


def replica_id() -> str:
    """This replica among the others (host, pid and a random part: a pid is reused after a restart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}".replace("|", "/")


def entry(owner: str, created_at: float, cost: float, ended: bool) -> str:
    return f"{int(ended)}|{owner}|{created_at!r}|{cost!r}"


def parse_entry(run_id: str, value: str) -> RunElsewhere:
    _, _, created_at, cost = value.rsplit("|", 3)  # (an owner id has no "|")
    return RunElsewhere(run_id=run_id, created_at=float(created_at), cost=float(cost))


class RedisRuns:
    """`SharedRuns` in Redis (`client` for the synchronous calls, `aclient` for the awaited ones)."""

    def __init__(self, client: Redis, aclient: AsyncRedis, *, lease: float = LEASE,
                 renew_every: float = RENEW_EVERY, owner: str | None = None, guard: Guard | None = None) -> None:
        self.client = client
        self.aclient = aclient
        self.lease_ms = max(1, round(lease * 1000))
        self.renew_every = renew_every
        self.owner = owner or replica_id()
        self.guard = guard or Guard("logins' runs in flight (concurrency, budgets)")
        # What a run of ours cost so far and whether it ended; None once forgotten (Limits.report).
        self.report: Callable[[str], tuple[float, bool] | None] = lambda run_id: None
        self._mine: dict[str, tuple[str, float]] = {}  # run id → (user, created_at): claimed here
        self._inflight = client.register_script(INFLIGHT)
        self._renew = client.register_script(RENEW)
        self._release = client.register_script(RELEASE)
        self._ainflight = aclient.register_script(INFLIGHT)
        self._arenew = aclient.register_script(RENEW)
        self._task: asyncio.Task[None] | None = None

    # -- SharedRuns -----------------------------------------------------------------------------------
    def elsewhere(self, user: str) -> int:
        return self.guard.call(lambda: int(self._inflight(keys=keys_of(user), args=["peek", self.owner])),
                               lambda: 0)

    def claim(self, user: str, run_id: str, cap: int | None, created_at: float) -> int:
        args: list[str | int] = ["claim", self.owner, run_id, -1 if cap is None else cap, self.lease_ms,
                entry(self.owner, created_at, 0.0, False)]
        elsewhere = self.guard.call(lambda: int(self._inflight(keys=keys_of(user), args=args)), lambda: 0)
        if cap is None or elsewhere < cap:
            self._mine[run_id] = (user, created_at)  # (renewed into Redis later if it could not be written now)
        return elsewhere

    def ended(self, user: str, run_id: str, cost: float) -> None:
        mine = self._mine.get(run_id)
        if mine is not None:
            value = entry(self.owner, mine[1], cost, True)
            self.guard.call(lambda: self._renew(keys=keys_of(user), args=[run_id, self.lease_ms, value]),
                            lambda: None)

    def release(self, user: str, run_id: str) -> None:
        if self._mine.pop(run_id, None) is not None:
            self.guard.call(lambda: self._release(keys=keys_of(user), args=[run_id]), lambda: None)

    async def others(self, user: str) -> list[RunElsewhere]:
        async def remote() -> list[RunElsewhere]:
            async with asyncio.timeout(ASYNC_TIMEOUT):
                found: list[Any] = await self._ainflight(keys=keys_of(user), args=["others", self.owner])
            pairs = [value.decode() if isinstance(value, bytes) else str(value) for value in found]
            return [parse_entry(run_id, value) for run_id, value in zip(pairs[::2], pairs[1::2], strict=True)]

        async def nothing() -> list[RunElsewhere]:
            return []

        return await self.guard.acall(remote, nothing)

    # -- renewing this replica's entries ------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._renew_periodically(), name="redis-inflight")

    async def renew(self) -> None:
        """Renew the lease of every run claimed here, with its cost so far; forget those no longer tracked."""
        pending = []
        for run_id, (user, created_at) in list(self._mine.items()):
            state = self.report(run_id)
            if state is None:  # forgotten without a release (cannot happen through Limits): let it go
                self._mine.pop(run_id, None)
                continue
            pending.append((user, run_id, entry(self.owner, created_at, state[0], state[1])))
        if not pending:
            return
        async with self.aclient.pipeline(transaction=False) as pipe:
            for user, run_id, value in pending:
                await self._arenew(keys=keys_of(user), args=[run_id, self.lease_ms, value], client=pipe)
            await pipe.execute()

    async def _renew_periodically(self) -> None:
        async def nothing() -> None:
            return None

        while True:
            await asyncio.sleep(self.renew_every)
            try:
                await self.guard.acall(self.renew, nothing)
            except Exception:  # a renewal that fails otherwise must not end the next ones
                log.warning("could not renew this replica's runs in flight in Redis", exc_info=True)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
