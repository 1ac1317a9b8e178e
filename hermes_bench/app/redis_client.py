"""The target's Redis client: one asyncio connection pool per instance, as the guide sets it up.

Driver errors are wrapped in one of four kinds, because each asks for a different answer:
`RedisUnavailableError` (unreachable, timed out: transient, worth a retry soon),
`RedisConfigError` (bad password, missing ACL permission, TLS handshake: not retryable until
an operator fixes the configuration), `RedisCommandError` (Redis answered but refused, e.g. OOM
under `noeviction`: Redis is up) and `RedisPoolExhaustedError` (every connection of this
instance busy: Redis is not at fault). Their messages name the Redis (password redacted) for
logs and /stats; `public_reason` is the generic phrase API clients get instead: no host, port,
database or key prefix ever reaches a client.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    AuthorizationError,
    ExecAbortError,
    MaxConnectionsError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from hermes_bench.app.counters import OpTimings, PoolWaits
from hermes_bench.app.settings import TargetSettings
from hermes_bench.errors import BackendUnavailableError, causes
from hermes_bench.redaction import redact_text, redact_url

_T = TypeVar("_T")

# Errors a Redis call can raise when the server is gone, slow or refuses us.
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
# redis-py strips these codes from the message it keeps; the class still tells which it was.
_CODE_OF_CLASS: tuple[tuple[type[ResponseError], str], ...] = (
    (OutOfMemoryError, "OOM"),
    (NoScriptError, "NOSCRIPT"),
    (ReadOnlyError, "READONLY"),
    (ExecAbortError, "EXECABORT"),
)
_CONFIG_ERRORS = (
    AuthenticationError,  # WRONGPASS, NOAUTH, invalid password
    AuthorizationError,
    AuthenticationWrongNumberOfArgsError,
    NoPermissionError,  # NOPERM: the ACL user may not run the command
)
_PIPELINE_ERROR = "of pipeline caused error: "
# The error code that starts a Redis error reply (WRONGTYPE, BUSY...), quoted or not.
_CODE = re.compile(r"[(\"' ]*([A-Z][A-Z_]+)\b")
# TLS errors that mean the peer closed the stream, not that the setup is wrong.
_SSL_CLOSURES = (ssl.SSLEOFError, ssl.SSLZeroReturnError)


def create_pool(settings: TargetSettings, waits: PoolWaits | None = None) -> TimedPool:
    """Pool from REDIS_URL with REDIS_MAX_CONNECTIONS and REDIS_TIMEOUT, timing each wait for
    a connection into `waits` (a PoolWaits of its own when none is given).

    The guide's pool raises when all connections are busy; an async app would turn that into
    errors under modest concurrency, so the default waits for a free connection (up to
    REDIS_TIMEOUT). REDIS_POOL_MODE=nonblocking restores the guide's behaviour.

    A command that fails with a connection error (a pooled connection Redis closed when it
    restarted) is sent once more on a fresh connection, at once: one retry, no backoff. Timeouts
    are not retried, so a hung Redis costs one timeout, not two.
    """
    url = settings.backend_url
    options = {
        "max_connections": settings.redis_max_connections,
        "socket_timeout": settings.redis_timeout_s,
        "socket_connect_timeout": settings.redis_timeout_s,
        "retry": Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
        "waits": waits or PoolWaits(),
    }
    if settings.redis_pool_mode == "blocking":
        return TimedBlockingPool.from_url(url, timeout=settings.redis_timeout_s, **options)
    return TimedPool.from_url(url, **options)


class TimedPool(aioredis.ConnectionPool):
    """redis-py's plain pool ("Too many connections" when every connection is busy), timing
    each acquisition into `waits`: from asking to having a connection, or to the refusal."""

    # The blocking pool queues for a free connection; the plain one never waits for one.
    queues = False

    def __init__(self, *args: Any, waits: PoolWaits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waits = waits

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        """A connected connection, as the pool gives it, with the time it took recorded."""
        # A perf_counter pair and a list append: ~1 µs more per Redis command, measured.
        started = time.perf_counter_ns()
        try:
            return await super().get_connection(*args, **kwargs)
        except REDIS_FAILURES as exc:
            if is_refusal(exc):
                self.waits.refusals += 1
            raise
        except asyncio.CancelledError:
            # The request's REDIS_TIMEOUT ran out first (it is the blocking pool's own timeout
            # too, so the pool's refusal never comes): still queueing, it was refused all
            # the same. Cancelled while connecting, with a connection free, it was not.
            if self.queues and not self.can_get_connection():
                self.waits.refusals += 1
            raise
        finally:
            self.waits.record_ns(time.perf_counter_ns() - started)


class TimedBlockingPool(TimedPool, aioredis.BlockingConnectionPool):
    """redis-py's blocking pool (waits up to `timeout` for a free connection), timed as
    TimedPool times the plain one."""

    queues = True


def is_refusal(exc: BaseException) -> bool:
    """True when the pool gave no connection: all busy (the plain pool), or none freed within
    the blocking pool's timeout (redis-py raises ConnectionError from asyncio's TimeoutError);
    False for a failure to reach Redis."""
    if isinstance(exc, MaxConnectionsError):
        return True
    return isinstance(exc, RedisConnectionError) and isinstance(exc.__cause__, TimeoutError)


class RedisUnavailableError(BackendUnavailableError):
    """Redis could not be reached or did not answer in time: worth retrying soon.

    The message (for logs and /stats) names the Redis; `public_reason` is what a client may see.
    """

    public_reason = "its Redis could not be reached or did not answer in time"
    # Counts towards the breaker and ends this request's use of Redis.
    breaks = True


class RedisConfigError(RedisUnavailableError):
    """Redis refused our credentials or permissions, or TLS failed: retrying will not help."""

    public_reason = (
        "the service's Redis rejects its credentials or TLS settings; this is a configuration "
        "error of the service, and retrying will not help until its operator fixes it"
    )


class RedisCommandError(RedisUnavailableError):
    """Redis answered but refused the command (script error, WRONGTYPE, OOM): retrying will not
    help until what it names is fixed, unlike a connection or timeout failure."""

    breaks = False  # Redis is up: no reason to skip it for this request or the next ones

    def __init__(self, message: str, code: str = "ERR") -> None:
        super().__init__(message)
        self.code = code
        # The refusal's Redis error code only (OOM, WRONGTYPE...): never its text or keys.
        self.public_reason = f"its Redis refused the command ({code})"


class RedisPoolExhaustedError(RedisUnavailableError):
    """Every pooled connection of this instance is busy (REDIS_POOL_MODE=nonblocking)."""

    public_reason = "every Redis connection of this instance is busy"
    breaks = False  # a client-side limit: Redis itself is fine


def wrap_failure(exc: BaseException, url: str) -> RedisUnavailableError:
    """The driver error as ours, of the kind that says how to answer it, naming the Redis
    (password redacted) and the cause for the logs."""
    where = redact_url(url)
    detail = redact_text(str(exc) or type(exc).__name__)
    if is_config_failure(exc):
        return RedisConfigError(f"Redis at {where} rejected the configuration: {detail}")
    if isinstance(exc, MaxConnectionsError):
        return RedisPoolExhaustedError(f"Redis pool for {where} is exhausted: {detail}")
    if isinstance(exc, ResponseError):
        code = response_code(exc)
        # Put back the code redis-py strips off (OOM...), so the log shows what Redis said.
        stripped = any(isinstance(exc, kind) for kind, _ in _CODE_OF_CLASS)
        said = f"{code} {detail}" if stripped and not detail.startswith(code) else detail
        return RedisCommandError(f"Redis at {where} refused the command: {said}", code)
    return RedisUnavailableError(f"Redis at {where} failed: {detail}")


def is_config_failure(exc: BaseException) -> bool:
    """True for authentication, permission and TLS set-up failures, wrapped or not."""
    # redis-py chains its ConnectionError to the ssl error.
    return any(
        isinstance(seen, _CONFIG_ERRORS)
        or (isinstance(seen, ssl.SSLError) and not isinstance(seen, _SSL_CLOSURES))
        for seen in causes(exc)
    )


def response_code(exc: ResponseError) -> str:
    """The Redis error code of a refusal (OOM, WRONGTYPE, NOSCRIPT...); ERR when it has none."""
    for kind, class_code in _CODE_OF_CLASS:
        if isinstance(exc, kind):
            return class_code
    # A pipeline's reads "Command # 1 (HGETALL <key>) of pipeline caused error: ('<reply>',)".
    text = str(exc)
    _, annotated, reply = text.partition(_PIPELINE_ERROR)
    found = _CODE.match(reply if annotated else text)
    return found.group(1) if found else "ERR"


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
        """Await `command`, record its round trip as `op`; RedisUnavailableError on failure."""
        try:
            with self._timings.measure(op):
                return await command
        except REDIS_FAILURES as exc:
            raise wrap_failure(exc, self._url) from exc
