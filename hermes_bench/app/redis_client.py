"""The target's Redis client: one asyncio connection pool per instance, as the guide sets it up."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from hermes_bench.app.counters import OpTimings
from hermes_bench.app.settings import TargetSettings
from hermes_bench.errors import BackendUnavailableError
from hermes_bench.redaction import redact_text, redact_url

_T = TypeVar("_T")

# Errors a Redis call can raise when the server is gone, slow or refuses us.
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


def create_pool(settings: TargetSettings) -> aioredis.ConnectionPool:
    """Pool from REDIS_URL with REDIS_MAX_CONNECTIONS and REDIS_TIMEOUT.

    The guide's pool raises when all connections are busy; an async app would turn that into
    errors under modest concurrency, so the default waits for a free connection (up to
    REDIS_TIMEOUT). REDIS_POOL_MODE=nonblocking restores the guide's behaviour.
    """
    url = settings.backend_url
    options = {
        "max_connections": settings.redis_max_connections,
        "socket_timeout": settings.redis_timeout_s,
        "socket_connect_timeout": settings.redis_timeout_s,
    }
    if settings.redis_pool_mode == "blocking":
        return aioredis.BlockingConnectionPool.from_url(
            url, timeout=settings.redis_timeout_s, **options
        )
    return aioredis.ConnectionPool.from_url(url, **options)


class RedisCommandError(BackendUnavailableError):
    """Redis answered but refused the command (script error, WRONGTYPE, OOM): retrying will not
    help until what it names is fixed, unlike a connection or timeout failure."""


def wrap_failure(exc: BaseException, url: str) -> BackendUnavailableError:
    """The driver error as ours, naming the Redis (password redacted) and the cause.

    RedisCommandError when Redis refused the command, BackendUnavailableError when it could not
    be reached or did not answer in time; both are Redis errors to the caller's counters.
    """
    where = redact_url(url)
    detail = redact_text(str(exc) or type(exc).__name__)
    if isinstance(exc, ResponseError):
        return RedisCommandError(f"Redis at {where} refused the command: {detail}")
    return BackendUnavailableError(f"Redis at {where} failed: {detail}")


async def ping_us(client: aioredis.Redis) -> int:
    """One PING round trip in microseconds; raises the driver's error when Redis is unreachable."""
    start = time.perf_counter_ns()
    await client.ping()
    return (time.perf_counter_ns() - start) // 1000


class RedisStore:
    """Base of the Redis-backed stores: entries with a TTL under `<prefix>:<key_kind>:`, each
    command run timed, with driver errors wrapped."""

    key_kind = ""  # the store's part of the key names: "cache", "session"

    def __init__(
        self, client: aioredis.Redis, url: str, ttl_s: int, prefix: str, timings: OpTimings
    ) -> None:
        self._client = client
        self._url = url
        self._ttl_s = ttl_s
        self._prefix = f"{prefix}:{self.key_kind}:"
        self._timings = timings

    async def _run(self, op: str, command: Awaitable[_T]) -> _T:
        """Await `command`, record its round trip as `op`; BackendUnavailableError on failure."""
        try:
            with self._timings.measure(op):
                return await command
        except REDIS_FAILURES as exc:
            raise wrap_failure(exc, self._url) from exc
