"""Per-API-key rate limiting with the `limits` library, on its memory or Redis storage.

When Redis fails, the limiter fails open by default (RATE_LIMIT_ON_REDIS_ERROR=open): the
request is admitted, counted (`rate_limit_fail_open`) and marked `X-RateLimit-Status: fail-open`.
Refusing every request because the limiter's store is down would turn a cache outage into a
full outage; the guide's HERMES treats Redis as optional, so availability wins by default. A
team whose limit protects a budget sets `closed`: 503 until Redis answers (see web.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import limits
import redis.asyncio as aioredis
from limits.aio import storage as limits_storage
from limits.aio.strategies import STRATEGIES, RateLimiter

from hermes_bench.app.counters import OpTimings
from hermes_bench.app.redis_client import REDIS_FAILURES, wrap_failure
from hermes_bench.app.settings import parse_rate_limit

# The op name of the limiter's timing in /stats: one check, several Redis round trips.
RATE_LIMIT_CHECK_OP = "RATELIMIT_CHECK"


@dataclass(frozen=True)
class RateDecision:
    """Whether one request is admitted, and what the rate-limit headers should say."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # epoch seconds when the window frees capacity

    def retry_after_s(self, now: float) -> int:
        """Whole seconds to wait before retrying (at least 1), for the Retry-After header."""
        return max(1, math.ceil(self.reset_at - now))

    def headers(self, now: float) -> dict[str, str]:
        """X-RateLimit-* headers, plus Retry-After when refused."""
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s(now))
        return headers


class OwnerRateLimiter(Protocol):
    """Counts requests per owner and decides each; `backend` names the storage."""

    backend: str

    async def hit(self, key: str) -> RateDecision:
        """Count one request for `key`; raises BackendUnavailableError when the storage fails."""
        ...


class KeyRateLimiter:
    """Admits at most `item` requests per key and window; `backend` names the storage."""

    def __init__(
        self,
        storage: limits_storage.Storage,
        item: limits.RateLimitItem,
        strategy: str,
        backend: str,
        url: str,
        timings: OpTimings | None = None,
    ) -> None:
        # `limits`' own table: RATE_LIMIT_STRATEGY accepts exactly its names (see settings).
        build: Callable[[limits_storage.Storage], RateLimiter] = STRATEGIES[strategy]
        self._limiter = build(storage)
        self._item = item
        self.backend = backend
        self._url = url
        self._timings = timings

    async def hit(self, key: str) -> RateDecision:
        """Count one request for `key`; raises BackendUnavailableError when the storage fails.

        Timed as one RATELIMIT_CHECK op: a composite of the hit and the window stats, 2-3 Redis
        round trips depending on the strategy, so not comparable with a single GET or SET.
        """
        try:
            if self._timings is None:
                return await self._decide(key)
            with self._timings.measure(RATE_LIMIT_CHECK_OP):
                return await self._decide(key)
        except REDIS_FAILURES as exc:
            raise wrap_failure(exc, self._url) from exc

    async def _decide(self, key: str) -> RateDecision:
        allowed = await self._limiter.hit(self._item, key)
        stats = await self._limiter.get_window_stats(self._item, key)
        return RateDecision(allowed, self._item.amount, stats.remaining, stats.reset_time)


class PttlRedisStorage(limits_storage.RedisStorage):
    """limits' RedisStorage with a window's expiry read to the millisecond (PTTL, not TTL).

    limits reads it with TTL, in whole seconds rounded: X-RateLimit-Reset of one 1-second window
    then takes two values, and a client cannot tell which window a response belongs to. The
    expiry is Redis's own clock plus the PTTL, read together in one MULTI: adding the app's
    clock instead would shift it by the reply's latency, and a loaded machine would then give
    the requests of one window two different Reset seconds.
    """

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        super().__init__(
            "async+redis://",
            implementation="redispy",
            key_prefix=prefix,
            connection_pool=client.connection_pool,  # type: ignore[arg-type]
        )
        self._client = client

    async def get_expiry(self, key: str) -> float:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.time()
            pipe.pttl(self.bridge.prefixed_key(key))
            (seconds, micros), pttl_ms = await pipe.execute()
        # Whole milliseconds on Redis's clock: every request of a window reads the same end.
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        return (now_ms + max(int(pttl_ms), 0)) / 1000


def memory_rate_limiter(spec: str, strategy: str) -> KeyRateLimiter:
    """Limiter whose counts live in this process only (so N instances admit up to N times)."""
    return KeyRateLimiter(
        limits_storage.MemoryStorage(), parse_rate_limit(spec), strategy, "memory", "memory://"
    )


def redis_rate_limiter(
    client: aioredis.Redis,
    url: str,
    spec: str,
    strategy: str,
    prefix: str,
    timings: OpTimings,
) -> KeyRateLimiter:
    """Limiter whose counts live in Redis, shared by every instance, on the app's own pool."""
    # limits wants its own URL form; the pool we hand it decides where it really connects.
    storage = PttlRedisStorage(client, f"{prefix}:ratelimit")
    return KeyRateLimiter(storage, parse_rate_limit(spec), strategy, "redis", url, timings)


def now_s() -> float:
    """Wall-clock seconds, the clock `limits` uses for reset times."""
    return time.time()
