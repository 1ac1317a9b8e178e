"""How long a request may wait on Redis, and when it should not ask at all.

The limiter check, the cache read and the cache write are each a Redis call. With a hung Redis
each used to wait out REDIS_TIMEOUT, so a request took 2-3 × it. Now:

- **One timeout, once.** A request's Redis calls share one `RequestBudget` of REDIS_TIMEOUT in
  total: each call gets what is left. Once one of them fails (unreachable, timed out, bad
  credentials) the request skips its remaining Redis calls and fails open for what remains, so
  a hung Redis costs a request one REDIS_TIMEOUT at most. A refused command (OOM, WRONGTYPE)
  does not end it: Redis is up, and a cache read may still hit while writes are refused.
- **Breaker.** After REDIS_BREAKER_FAILURES consecutive failures, every request skips Redis for
  REDIS_BREAKER_COOLDOWN_S, then one probe goes through (see `breaker.py`). Skips are counted
  (`breaker_open_skips`, `redis_budget_skips` in /stats); transitions are logged once each.
- **/healthz answers at once**: its PING gets min(REDIS_TIMEOUT, 0.5 s); an open breaker
  answers degraded without asking Redis, and after the cool-down the health check is a probe
  too, so an instance taken out of rotation for a 503 still finds out that Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis

from hermes_bench.app.breaker import CLOSED, CircuitBreaker
from hermes_bench.app.counters import Counters
from hermes_bench.app.redis_client import (
    REDIS_FAILURES,
    RedisCommandError,
    RedisConfigError,
    RedisUnavailableError,
    ping_us,
    wrap_failure,
)
from hermes_bench.app.settings import TargetSettings
from hermes_bench.errors import BackendUnavailableError
from hermes_bench.redaction import redact_url

_T = TypeVar("_T")
log = logging.getLogger("hermes_bench.app")

# /healthz must answer while Redis hangs: its PING waits at most this long (or REDIS_TIMEOUT).
HEALTH_TIMEOUT_S = 0.5
# Refusals that say Redis takes no writes for now (full under noeviction, a read-only replica
# during a failover), not that a command or key is wrong: they pass as an outage does.
WRITES_REFUSED = ("OOM", "READONLY")


class DeadlineError(TimeoutError):
    """A call ran past its deadline and was left behind."""


async def within(timeout_s: float, coro: Coroutine[Any, Any, _T]) -> _T:
    """Await `coro` for at most `timeout_s`; DeadlineError then, whatever the coroutine does.

    It runs as a task of its own that the caller stops waiting for at the deadline. A plain
    asyncio.timeout would wait on whenever the driver swallows the cancellation, and Python
    3.11's asyncio.wait_for, which redis-py puts around every send, does so when the send has
    just completed: measured, 2 of 20 calls to a paused Redis then took 2 × REDIS_TIMEOUT. The
    task left behind is cancelled and its outcome discarded. The task hop costs ~20-40 µs per
    call (a loopback GET took ~180 µs median without it, ~215 µs with it, on a busy 2-core box).
    """
    loop = asyncio.get_running_loop()
    task = loop.create_task(coro)
    woken = loop.create_future()
    task.add_done_callback(lambda _: _wake(woken))
    timer = loop.call_later(timeout_s, _wake, woken)
    try:
        await woken
    except BaseException:
        _abandon(task)  # the request itself was cancelled (client gone, shutdown)
        raise
    finally:
        timer.cancel()
    if not task.done():
        _abandon(task)
        raise DeadlineError(f"no answer within {timeout_s:g} s")
    return task.result()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _abandon(task: asyncio.Task[Any]) -> None:
    task.cancel()
    # Nobody awaits it any more: take its outcome so asyncio does not log it as unretrieved.
    task.add_done_callback(lambda t: t.cancelled() or t.exception())


class RequestBudget:
    """One request's time on Redis: `total_s` for all its calls, and whether one has failed."""

    def __init__(self, total_s: float) -> None:
        self.left_s = total_s
        self.failure: RedisUnavailableError | None = None  # the first call that broke

    @property
    def usable(self) -> bool:
        """True while no call has failed and time is left."""
        return self.failure is None and self.left_s > 0

    def spend(self, elapsed_s: float) -> None:
        """Charge one call's wait."""
        self.left_s -= elapsed_s


class RedisSkippedError(RedisUnavailableError):
    """A Redis call not made: the breaker is open, or this request's budget is spent or broken.

    `cause` is the failure behind the skip, so a skip after a bad password is answered as the
    configuration error it is; `retry_in_s` is the breaker's remaining cool-down.
    """

    breaks = False  # not an attempt: says nothing new about Redis

    def __init__(
        self,
        message: str,
        cause: RedisUnavailableError | None,
        *,
        by_breaker: bool,
        retry_in_s: float = 0.0,
    ) -> None:
        super().__init__(message)
        self.cause = cause
        self.by_breaker = by_breaker
        self.retry_in_s = retry_in_s
        if isinstance(cause, RedisConfigError) or (cause is not None and not by_breaker):
            self.public_reason = cause.public_reason
        elif by_breaker:
            self.public_reason = "its Redis failed repeatedly and is skipped for a few seconds"


class RedisGuard:
    """Runs a request's Redis calls within its budget and through the breaker.

    Without Redis (memory://) it only awaits the call: nothing in memory can hang.
    """

    def __init__(
        self,
        redis: aioredis.Redis | None,
        timeout_s: float,
        breaker: CircuitBreaker,
        counters: Counters,
        url: str = "redis://",
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.redis = redis
        self.timeout_s = timeout_s
        self.breaker = breaker
        self._counters = counters
        self._url = url
        # For logs, and /stats and /healthz to this machine or the admin key: never for API clients.
        self.where = redact_url(url)
        self._clock = clock
        self.last_failure: RedisUnavailableError | None = None

    @classmethod
    def from_settings(
        cls, settings: TargetSettings, redis: aioredis.Redis | None, counters: Counters
    ) -> RedisGuard:
        """The guard of one instance, with REDIS_TIMEOUT and the REDIS_BREAKER_* settings."""
        breaker = CircuitBreaker(settings.redis_breaker_failures, settings.redis_breaker_cooldown_s)
        return cls(redis, settings.redis_timeout_s, breaker, counters, settings.backend_url)

    def budget(self) -> RequestBudget:
        """A fresh budget for one request."""
        return RequestBudget(self.timeout_s)

    async def run(self, budget: RequestBudget, call: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
        """`call()` within what is left of `budget`; RedisSkippedError when it is not made."""
        if self.redis is None:
            return await call()
        if not budget.usable:
            self._counters.redis_budget_skips += 1
            raise RedisSkippedError(
                f"Redis at {self.where} skipped: an earlier Redis call of this request failed "
                "or used up its REDIS_TIMEOUT",
                budget.failure,
                by_breaker=False,
            )
        if not self.breaker.allow():
            self._counters.breaker_open_skips += 1
            retry_in_s = self.breaker.retry_in_s()
            raise RedisSkippedError(
                f"Redis at {self.where} skipped: the breaker is {self.breaker.state} "
                f"({retry_in_s:.1f} s of cool-down left)",
                self.last_failure,
                by_breaker=True,
                retry_in_s=retry_in_s,
            )
        is_probe = self.breaker.state != CLOSED
        started = self._clock()
        try:
            result = await within(budget.left_s, call())
        except DeadlineError as exc:
            failure = RedisUnavailableError(
                f"Redis at {self.where} did not answer within this request's REDIS_TIMEOUT "
                f"of {self.timeout_s:g} s"
            )
            self._failed(failure, budget)
            raise failure from exc
        except RedisUnavailableError as exc:
            self._counters.redis_last_error = str(exc)
            if exc.breaks:
                self._failed(exc, budget)
            elif isinstance(exc, RedisCommandError):
                self._succeeded()  # Redis answered, if only to refuse
            elif is_probe:
                self.breaker.release()
            raise
        except BaseException:
            # Cancelled, or a bug: no verdict on Redis, but the probe's slot must not stay taken.
            if is_probe:
                self.breaker.release()
            raise
        finally:
            budget.spend(self._clock() - started)
        self._succeeded()
        return result

    async def health(self) -> tuple[bool, dict[str, Any] | None]:
        """(healthy, the report's `redis` part), within min(REDIS_TIMEOUT, HEALTH_TIMEOUT_S)."""
        if self.redis is None:
            return True, None
        # The last failure or refusal of any kind (e.g. OOM while Redis is full, which is no
        # reason for a 503: every instance shares this Redis, and all would leave rotation).
        report: dict[str, Any] = {"url": self.where, "last_error": self._counters.redis_last_error}
        if not self.breaker.allow():
            last = f" (last failure: {self.last_failure})" if self.last_failure else ""
            report.update(
                reachable=False, error=f"not asked: the breaker is {self.breaker.state}{last}"
            )
            report["breaker"] = self.breaker.snapshot()
            return False, report
        # Only a probe speaks for the breaker: a health PING's timeout is shorter than a request's.
        is_probe = self.breaker.state != CLOSED
        try:
            report["ping_us"] = await within(
                min(self.timeout_s, HEALTH_TIMEOUT_S), ping_us(self.redis)
            )
        except REDIS_FAILURES as exc:  # DeadlineError is a TimeoutError
            if isinstance(exc, DeadlineError):
                error = RedisUnavailableError(f"Redis at {self.where} did not answer PING in time")
            else:
                error = wrap_failure(exc, self._url)
            report.update(reachable=False, error=str(error))
            if is_probe:
                self._failed(error)
        except BaseException:
            if is_probe:
                self.breaker.release()
            raise
        else:
            report["reachable"] = True
            if is_probe:
                self._succeeded()
        report["breaker"] = self.breaker.snapshot()
        return bool(report["reachable"]), report

    def _failed(self, failure: RedisUnavailableError, budget: RequestBudget | None = None) -> None:
        if budget is not None:
            budget.failure = failure
        self.last_failure = failure
        self._counters.redis_last_error = str(failure)
        if self.breaker.record_failure():
            self._counters.breaker_opens += 1
            log.warning(
                "Redis breaker opened after %d consecutive failures (last: %s): the cache and "
                "the rate limiter fail open and sessions answer 503 for %g s, then one probe",
                self.breaker.consecutive_failures,
                failure,
                self.breaker.cooldown_s,
            )

    def _succeeded(self) -> None:
        if self.breaker.record_success():
            log.warning("Redis breaker closed: Redis answered again")


@dataclass(frozen=True)
class FailureAnswer:
    """What a client is told when a store it needs has failed: nothing of where Redis is."""

    status: int
    kind: str
    message: str
    retry_after_s: int | None  # None: no Retry-After header


def failure_answer(
    exc: BackendUnavailableError, store: str, kind_prefix: str, *, retry_after: bool
) -> FailureAnswer:
    """The answer for `store` ("session store", "rate limiter") failing with `exc`.

    A configuration error (bad password, TLS) or a refused command is a 500 without
    Retry-After: retrying will not help. Anything else is a 503, with Retry-After (the breaker's
    remaining cool-down, at least 1 s) when `retry_after` asks for it.
    """
    reason = getattr(exc, "public_reason", "its Redis failed")
    cause = exc.cause if isinstance(exc, RedisSkippedError) and exc.cause else exc
    if isinstance(cause, RedisConfigError):
        message = f"{store} unavailable: {reason}."
        return FailureAnswer(500, f"{kind_prefix}_misconfigured", message, None)
    if isinstance(exc, RedisCommandError):
        message = (
            f"{store} error: {reason}. Redis is up but refused the command; retrying will not "
            "help until what it names (memory, key type, script) is fixed."
        )
        return FailureAnswer(500, f"{kind_prefix}_error", message, None)
    wait_s = None
    if retry_after:
        retry_in_s = exc.retry_in_s if isinstance(exc, RedisSkippedError) else 0.0
        wait_s = max(1, math.ceil(retry_in_s))
    message = f"{store} unavailable: {reason}. It needs Redis; retry once it answers."
    return FailureAnswer(503, f"{kind_prefix}_unavailable", message, wait_s)


def fail_closed_answer(exc: BackendUnavailableError) -> FailureAnswer:
    """The refusal of a limiter that fails closed (RATE_LIMIT_ON_REDIS_ERROR=closed).

    Whether Redis is away, hung or refusing writes (full under noeviction, a read-only
    replica), the limiter cannot count and the service refuses until it can: 503
    `rate_limiter_unavailable`, without Retry-After (it is not a limit the client could wait
    out). A configuration error, or a refusal that names a defect (WRONGTYPE, a script error),
    stays the 500 of failure_answer: waiting will not mend it.
    """
    if isinstance(exc, RedisCommandError) and exc.code in WRITES_REFUSED:
        message = (
            f"rate limiter unavailable: {exc.public_reason}. It refuses the requests it cannot "
            "count until Redis takes writes again."
        )
        return FailureAnswer(503, "rate_limiter_unavailable", message, None)
    return failure_answer(exc, "rate limiter", "rate_limiter", retry_after=False)
