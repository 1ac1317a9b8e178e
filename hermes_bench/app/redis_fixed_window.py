"""The fixed-window limit and the cache read of one request in one Redis round trip.

`limits`' fixed window on Redis costs three round trips per check (its INCR script, a GET of
the count for the remaining figure, our TIME + PTTL for the window's end), and the cache read a
fourth. One Lua script does all of it: INCR the window's counter (PEXPIRE when it starts the
window), read the window's end on Redis's clock to the millisecond, and GET the cached answer
only when the request is admitted. It counts on the very key `limits` uses
(`<prefix>:ratelimit:LIMITER/<owner>/<amount>/<multiples>/<granularity>`), with the same expiry,
so instances on either path share one count.

The script's effects are the same whatever order of other clients: INCR is atomic and the
script runs alone, so the admitted count per window stays exact across instances, and the
remaining figure is this request's own (no second read that another request could overtake).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import limits
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from hermes_bench.app.counters import OpTimings
from hermes_bench.app.rate_limit import RATE_LIMIT_CHECK_OP, RateDecision
from hermes_bench.app.redis_client import REDIS_FAILURES, RedisCommandError, wrap_failure

# The /stats op name of the check with the cache read: one round trip, not a GET nor a check.
RATE_LIMIT_CHECK_GET_OP = "RATELIMIT_CHECK+GET"

# Redis 6 puts where in the script an error came from before its reply: "@user_script: 2: -OOM ..."
_SCRIPT_PLACE = re.compile(r"^@\w+:\s*\d+:\s*-?")

# KEYS[1]: the window's counter; KEYS[2]: the cache entry, or "" for none.
# ARGV[1]: the window in ms; ARGV[2]: the limit.
# Reply: {count, window end in ms on Redis's clock, cached value or false, read error or false};
# when the count itself fails (OOM under noeviction) its error text takes the count's place and
# the cache is still read: Redis is up, and a read may hit while writes are refused.
# TIME and PTTL are read next to each other: the end they add up to moves by at most a
# millisecond between the requests of one window (when a millisecond ticks between the two).
# replicate_commands: effects replication, the default since Redis 5 (a no-op in 7), which a
# script that writes after TIME needs on older servers.
FIXED_WINDOW_LUA = """
redis.replicate_commands()
local count = redis.pcall('INCR', KEYS[1])
local ends_ms = 0
local admitted = true
if type(count) == 'table' then
  count = count.err
else
  if count == 1 or redis.call('PTTL', KEYS[1]) < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
  end
  local now = redis.call('TIME')
  local ttl_ms = redis.call('PTTL', KEYS[1])
  ends_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + ttl_ms
  admitted = count <= tonumber(ARGV[2])
end
local value, read_error = false, false
if admitted and KEYS[2] ~= '' then
  value = redis.pcall('GET', KEYS[2])
  if type(value) == 'table' then
    read_error, value = value.err, false
  end
end
return {count, ends_ms, value, read_error}
"""


@dataclass(frozen=True)
class Lookup:
    """What one round trip decided: the limiter's decision (None when its count failed, then
    `limiter_error` says why) and the cached answer (None on a miss, a refusal or `read_error`)."""

    decision: RateDecision | None
    cached: bytes | None
    limiter_error: RedisCommandError | None = None
    read_error: RedisCommandError | None = None


class RedisFixedWindowLimiter:
    """Fixed-window limiter on Redis whose check can carry the request's cache read."""

    backend = "redis"

    def __init__(
        self,
        client: aioredis.Redis,
        url: str,
        item: limits.RateLimitItem,
        prefix: str,
        cache_key: Callable[[str], str],
        timings: OpTimings | None = None,
    ) -> None:
        self._client = client
        self._url = url
        self._item = item
        self._counter_prefix = f"{prefix}:ratelimit:"
        self._cache_key = cache_key
        self._timings = timings
        self._window_ms = item.get_expiry() * 1000
        # redis-py's Script: EVALSHA, and SCRIPT LOAD again after NOSCRIPT (a restart, a flush).
        self._script = client.register_script(FIXED_WINDOW_LUA)

    def counter_key(self, owner: str) -> str:
        """The Redis key of `owner`'s window: the one `limits`' fixed window uses."""
        return self._counter_prefix + self._item.key_for(owner)

    async def hit(self, owner: str) -> RateDecision:
        """Count one request of `owner`; RedisUnavailableError when Redis fails."""
        lookup = await self._lookup(owner, None, RATE_LIMIT_CHECK_OP)
        if lookup.decision is None:
            assert lookup.limiter_error is not None
            raise lookup.limiter_error
        return lookup.decision

    async def hit_and_read(self, owner: str, key: str) -> Lookup:
        """Count one request of `owner` and, when admitted, read the cache entry `key`."""
        return await self._lookup(owner, key, RATE_LIMIT_CHECK_GET_OP)

    async def _lookup(self, owner: str, key: str | None, op: str) -> Lookup:
        keys = (self.counter_key(owner), "" if key is None else self._cache_key(key))
        try:
            if self._timings is None:
                reply = await self._run(keys)
            else:
                with self._timings.measure(op):
                    reply = await self._run(keys)
        except REDIS_FAILURES as exc:
            raise wrap_failure(exc, self._url) from exc
        return self._read_reply(reply)

    async def _run(self, keys: tuple[str, str]) -> Any:
        return await self._script(keys=list(keys), args=[self._window_ms, self._item.amount])

    def _read_reply(self, reply: list[Any]) -> Lookup:
        count, ends_ms, value, read_error = reply
        cached = value if isinstance(value, bytes) else None
        read_failure = self._refusal(read_error) if read_error else None
        if not isinstance(count, int):
            return Lookup(None, cached, self._refusal(count), read_failure)
        amount = self._item.amount
        decision = RateDecision(count <= amount, amount, max(0, amount - count), ends_ms / 1000)
        return Lookup(decision, cached, None, read_failure)

    def _refusal(self, text: bytes | str) -> RedisCommandError:
        """A command the script ran that Redis refused (OOM, WRONGTYPE), as the app's error."""
        message = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        message = _SCRIPT_PLACE.sub("", message)
        failure = wrap_failure(ResponseError(message), self._url)
        assert isinstance(failure, RedisCommandError)
        return failure
