"""`Counters` (runs per minute) shared by the replicas: one sorted set per key in Redis.

    counters = RedisCounters(sync_client(url))
    wait = counters.hit("starts:ann", limit=10, window=60)   # as MemoryCounters: 0.0, or seconds to wait

Each key is a sorted set of events scored by their time in milliseconds. One Lua script drops the events
older than the window, counts the rest and adds the new one when it fits: check-and-count in one step,
so two replicas cannot both count the 10th start of a minute. The time is Redis's own (`TIME`), so the
replicas' clocks need not agree. The key expires a window after its last event.

Calls are synchronous (`LLMService.start` is) with a short timeout; while Redis does not answer, this
replica counts alone (`guard.py`), and says so in the log.
"""

from __future__ import annotations

import secrets

from redis import Redis

from llmtool.replicas.guard import Guard
from llmtool.replicas.streams import PREFIX
from llmtool.service.counters import MemoryCounters

KEY = f"{PREFIX}:count:"
NOW_MS = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000\n"

# KEYS[1]: the events. ARGV: limit, window (ms), mode ('hit', 'peek', 'count'), a new event's member.
# Answers the count ('count'), else 0 when one more fits (counted when 'hit'), else the milliseconds
# until one would.
WINDOW = NOW_MS + """
local limit, window, mode = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if mode == 'count' then return n end
if n < limit then
  if mode == 'hit' then
    redis.call('ZADD', KEYS[1], now, ARGV[4])
    redis.call('PEXPIRE', KEYS[1], math.ceil(window))
  end
  return 0
end
if limit < 1 then return math.ceil(window) end
local oldest = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
return math.max(math.ceil(tonumber(oldest[2]) + window - now), 1)
"""


class RedisCounters:
    """`Counters` in Redis, this replica's own (`MemoryCounters`) while Redis does not answer."""

    def __init__(self, client: Redis, guard: Guard | None = None) -> None:
        self.client = client
        self.local = MemoryCounters()
        self.guard = guard or Guard("runs per minute")
        self._script = client.register_script(WINDOW)

    def _ask(self, key: str, limit: int, window: float, mode: str) -> int:
        member = secrets.token_hex(8)  # events of one millisecond stay distinct
        return int(self._script(keys=[KEY + key], args=[limit, window * 1000, mode, member]))

    def hit(self, key: str, limit: int, window: float) -> float:
        return self.guard.call(lambda: self._ask(key, limit, window, "hit") / 1000,
                               lambda: self.local.hit(key, limit, window))

    def peek(self, key: str, limit: int, window: float) -> float:
        return self.guard.call(lambda: self._ask(key, limit, window, "peek") / 1000,
                               lambda: self.local.peek(key, limit, window))

    def count(self, key: str, window: float) -> int:
        return self.guard.call(lambda: self._ask(key, 0, window, "count"),
                               lambda: self.local.count(key, window))
