"""`Throttle` (login throttling) shared by the replicas: the failures of a user name or an address count
on every replica, and a lock-out holds on all of them.

    throttle = RedisThrottle(Redis.from_url(url), settings.accounts.throttle)
    accounts.throttle = throttle                  # the composition root, when Redis is configured

The same rules as `MemoryThrottle` (`llmtool/accounts/throttle.py`), kept per throttle key in Redis: a
sorted set of failure times (`llmtool:login:{key}:failures`) and a hash with `next` (no attempt before)
and `locked` (locked until), in Redis's clock (seconds). A failure is counted against every key of the
attempt in one Lua script, so failures sent to several replicas at once are each counted. The keys
expire once there is nothing left to remember (the window, or the lock-out, passed).

While Redis does not answer, each replica throttles alone (`MemoryThrottle`, `guard.py`): logins still
work, and guessing is still slowed per replica, rather than nobody being able to log in.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.asyncio import Redis

from llmtool.accounts.throttle import MAX_DELAY, MemoryThrottle, Refusal, Verdict
from llmtool.replicas.guard import ASYNC_TIMEOUT, Guard
from llmtool.replicas.streams import PREFIX
from llmtool.settings import LoginThrottle

T = TypeVar("T")
KEY = f"{PREFIX}:login:"
NOW_S = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) + tonumber(t[2]) / 1000000\n"

# KEYS: per throttle key its state hash, then its failures. ARGV: free_failures, delay, lock_after, lock
# seconds, window seconds, max delay, a member for this failure. Answers per key 'locked' or 'delay' or
# 'free', then the seconds (as text: Lua numbers become integers on the way out).
FAILURE = NOW_S + """
local free, delay, lock_after = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local lock, window, max_delay = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local answer = {}
for i = 1, #KEYS, 2 do
  local state, failures = KEYS[i], KEYS[i + 1]
  redis.call('ZREMRANGEBYSCORE', failures, '-inf', now - window)
  redis.call('ZADD', failures, now, ARGV[7])
  local count = redis.call('ZCARD', failures)
  local verdict, seconds = 'free', 0
  if count >= lock_after then
    redis.call('HSET', state, 'locked', tostring(now + lock))
    redis.call('DEL', failures)
    verdict, seconds = 'locked', lock
  elseif count > free then
    seconds = math.min(delay * (count - free), max_delay)
    local next_try = math.max(tonumber(redis.call('HGET', state, 'next') or '0'), now + seconds)
    redis.call('HSET', state, 'next', tostring(next_try))
    verdict = 'delay'
  end
  redis.call('EXPIRE', state, math.ceil(math.max(window, lock, max_delay)) + 1)
  if verdict ~= 'locked' then redis.call('EXPIRE', failures, math.ceil(window) + 1) end
  table.insert(answer, verdict)
  table.insert(answer, tostring(seconds))
end
return answer
"""

# KEYS: the state hashes. Answers now, then per key its 'locked' and 'next' (as text, '0' when unset).
STATES = NOW_S + """
local answer = {tostring(now)}
for i = 1, #KEYS do
  local locked, next_try = unpack(redis.call('HMGET', KEYS[i], 'locked', 'next'))
  table.insert(answer, locked or '0')
  table.insert(answer, next_try or '0')
end
return answer
"""

# KEYS: a state hash, its failures. Forgets both unless the key is locked now.
SUCCESS = NOW_S + """
local locked = tonumber(redis.call('HGET', KEYS[1], 'locked') or '0')
if locked <= now then redis.call('DEL', KEYS[1], KEYS[2]) end
return 1
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisThrottle:
    """`Throttle` in Redis; `MemoryThrottle` with the same settings while Redis does not answer."""

    def __init__(self, client: Redis, settings: LoginThrottle, guard: Guard | None = None) -> None:
        self.client = client
        self.settings = settings
        self.local = MemoryThrottle(settings)
        self.guard = guard or Guard("failed logins")
        self._failure = client.register_script(FAILURE)
        self._states = client.register_script(STATES)
        self._success = client.register_script(SUCCESS)

    async def _ask(self, call: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]) -> T:
        async def remote() -> T:
            async with asyncio.timeout(ASYNC_TIMEOUT):
                return await call()

        return await self.guard.acall(remote, local)

    async def refusal(self, keys: Sequence[str]) -> Refusal | None:
        async def remote() -> Refusal | None:
            answer = [float(_text(v)) for v in await self._states(keys=[KEY + key for key in keys])]
            now, worst = answer[0], None
            for locked, next_try in zip(answer[1::2], answer[2::2], strict=True):
                if locked > now:
                    found = Refusal(locked - now, locked=True)
                elif next_try > now:
                    found = Refusal(next_try - now, locked=False)
                else:
                    continue
                if worst is None or (found.locked, found.retry_after) > (worst.locked, worst.retry_after):
                    worst = found
            return worst

        return await self._ask(remote, lambda: self.local.refusal(keys))

    async def failure(self, keys: Sequence[str]) -> Verdict:
        settings = self.settings

        async def remote() -> Verdict:
            redis_keys = [name for key in keys for name in (KEY + key, KEY + key + ":failures")]
            args: list[str | float] = [settings.free_failures, settings.delay, settings.lock_after,
                                       settings.lock_minutes * 60, settings.window_minutes * 60, MAX_DELAY,
                                       secrets.token_hex(8)]
            answer = [_text(v) for v in await self._failure(keys=redis_keys, args=args)]
            delay, locked = 0.0, None
            for verdict, seconds in zip(answer[::2], answer[1::2], strict=True):
                if verdict == "locked":
                    locked = Refusal(float(seconds), locked=True)
                elif verdict == "delay":
                    delay = max(delay, float(seconds))
            return Verdict(delay=0.0 if locked else delay, locked=locked)

        return await self._ask(remote, lambda: self.local.failure(keys))

    async def success(self, keys: Sequence[str]) -> None:
        async def remote() -> None:
            if keys:
                await self._success(keys=[KEY + keys[0], KEY + keys[0] + ":failures"])

        await self._ask(remote, lambda: self.local.success(keys))

    async def clear(self) -> None:
        async def remote() -> None:
            names = [name async for name in self.client.scan_iter(match=KEY + "*", count=1000)]
            if names:
                await self.client.delete(*names)

        await self.local.clear()
        await self._ask(remote, self.local.clear)
