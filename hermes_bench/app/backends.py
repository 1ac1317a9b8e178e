"""Builds the cache, rate limiter and session store for a backend URL, chosen by its scheme."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis.asyncio as aioredis

from hermes_bench.app.cache import MemoryCache, RedisCache, ResponseCache
from hermes_bench.app.counters import OpTimings, PoolWaits
from hermes_bench.app.degraded_cache import DegradedCache
from hermes_bench.app.rate_limit import OwnerRateLimiter, memory_rate_limiter, redis_rate_limiter
from hermes_bench.app.redis_client import create_pool
from hermes_bench.app.redis_fixed_window import RedisFixedWindowLimiter
from hermes_bench.app.sessions import MemorySessionStore, RedisSessionStore, SessionStore
from hermes_bench.app.settings import FIXED_WINDOW, TargetSettings, parse_rate_limit
from hermes_bench.errors import UnknownSchemeError
from hermes_bench.redaction import redact_url

log = logging.getLogger("hermes_bench.app")

# The guide's log line, word for word, so a user can grep for it.
FALLBACK_LOG_LINE = "Redis not configured, using in-memory fallback"


@dataclass
class Backends:
    """The three stores of one target instance, plus the Redis client when there is one.

    `limit_and_read` is the limiter again when its check can carry the cache read in the same
    Redis round trip (fixed window on Redis, the cache not wrapped by a deliberate fault).
    """

    name: str
    cache: ResponseCache
    limiter: OwnerRateLimiter | None
    sessions: SessionStore
    redis: aioredis.Redis | None = None

    @property
    def limit_and_read(self) -> RedisFixedWindowLimiter | None:
        """The limiter, when its check can read the cache in the same round trip: a fixed
        window on Redis, over a cache no deliberate fault wraps."""
        if isinstance(self.limiter, RedisFixedWindowLimiter) and isinstance(self.cache, RedisCache):
            return self.limiter
        return None

    async def close(self) -> None:
        """Release the Redis pool, if any."""
        if self.redis is not None:
            await self.redis.aclose()
            await self.redis.connection_pool.disconnect()


def _memory(settings: TargetSettings, timings: OpTimings, waits: PoolWaits) -> Backends:
    if settings.redis_url is None:
        log.info(FALLBACK_LOG_LINE)
    limiter = (
        memory_rate_limiter(settings.rate_limit, settings.rate_limit_strategy)
        if settings.rate_limit_enabled
        else None
    )
    return Backends(
        name="memory",
        cache=MemoryCache(settings.cache_ttl_s or 1, settings.cache_max_entries),
        limiter=limiter,
        sessions=MemorySessionStore(settings.session_ttl_s, settings.session_max_entries),
    )


def _redis(settings: TargetSettings, timings: OpTimings, waits: PoolWaits) -> Backends:
    url = settings.backend_url
    client = aioredis.Redis(connection_pool=create_pool(settings, waits))
    prefix = settings.key_prefix
    log.info(
        "Redis configured at %s (pool of %d, %s, timeout %ss)",
        redact_url(url),
        settings.redis_max_connections,
        settings.redis_pool_mode,
        settings.redis_timeout_s,
    )
    cache = RedisCache(client, url, settings.cache_ttl_s or 1, prefix, timings)
    limiter: OwnerRateLimiter | None = None
    if settings.rate_limit_enabled and settings.rate_limit_strategy == FIXED_WINDOW:
        item = parse_rate_limit(settings.rate_limit)
        limiter = RedisFixedWindowLimiter(client, url, item, prefix, cache.key_of, timings)
    elif settings.rate_limit_enabled:
        # The other strategies keep `limits`' own algorithms (a round trip or two more).
        limiter = redis_rate_limiter(
            client, url, settings.rate_limit, settings.rate_limit_strategy, prefix, timings
        )
    return Backends(
        name="redis",
        cache=cache,
        limiter=limiter,
        sessions=RedisSessionStore(client, url, settings.session_ttl_s, prefix, timings),
        redis=client,
    )


_Builder = Callable[[TargetSettings, OpTimings, PoolWaits], Backends]
_BY_SCHEME: dict[str, _Builder] = {
    "memory": _memory,
    "redis": _redis,
    "rediss": _redis,
    "unix": _redis,
}


def check_scheme(url: str) -> _Builder:
    """The builder for `url`'s scheme; UnknownSchemeError for a scheme nobody serves."""
    build = _BY_SCHEME.get(urlsplit(url).scheme)
    if build is None:
        raise UnknownSchemeError(url, sorted(_BY_SCHEME))
    return build


def backends_from_settings(
    settings: TargetSettings, timings: OpTimings, waits: PoolWaits | None = None
) -> Backends:
    """Backends for settings.backend_url, chosen by its scheme (with any deliberate fault);
    Redis commands timed into `timings`, waits for a pooled connection into `waits`."""
    backends = check_scheme(settings.backend_url)(settings, timings, waits or PoolWaits())
    delay_ms, miss_share = settings.fault_cache_delay_ms, settings.fault_cache_miss_share
    if delay_ms or miss_share:
        log.warning(
            "deliberate cache fault on: +%g ms per lookup, %g of lookups forgotten "
            "(HERMES_FAULT_CACHE_*)",
            delay_ms,
            miss_share,
        )
        # The fault wraps the cache object, so limit_and_read sends reads through it.
        backends.cache = DegradedCache(backends.cache, delay_ms / 1000, miss_share)
    return backends
