"""When Redis fails, in-process and without Redis: the breaker, the request's budget, how each
failure is classified and answered, and the headers and counters of the app."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import httpx
import openai
import pytest
import redis.asyncio as aioredis
from fake_clock import FakeClock
from fastapi import FastAPI
from pydantic import SecretStr
from redis.exceptions import (
    AuthenticationError,
    MaxConnectionsError,
    OutOfMemoryError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hermes_bench.app.backends import Backends
from hermes_bench.app.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from hermes_bench.app.cache import MemoryCache
from hermes_bench.app.counters import Counters
from hermes_bench.app.rate_limit import RateDecision
from hermes_bench.app.redis_client import (
    RedisCommandError,
    RedisConfigError,
    RedisPoolExhaustedError,
    RedisUnavailableError,
    create_pool,
    wrap_failure,
)
from hermes_bench.app.redis_guard import (
    DeadlineError,
    RedisGuard,
    RedisSkippedError,
    RequestBudget,
    fail_closed_answer,
    failure_answer,
    within,
)
from hermes_bench.app.sessions import MemorySessionStore
from hermes_bench.app.settings import TargetSettings
from hermes_bench.app.web import TargetState, create_app
from hermes_bench.wire.stream import DONE, completion_chunks, sse_event

URL = "redis://:hunter2@10.1.2.3:6380/4"
PREFIX = "hermes-secret-prefix"
# Nothing of where Redis is may reach an API client.
WHERE = ("10.1.2.3", "6380", "hunter2", PREFIX, "redis://")


# --- the breaker ----------------------------------------------------------------------------


def _breaker(failures: int = 3, cooldown_s: float = 2.0) -> tuple[CircuitBreaker, FakeClock]:
    clock = FakeClock()
    return CircuitBreaker(failures, cooldown_s, clock), clock


def test_the_breaker_opens_after_n_consecutive_failures_only() -> None:
    breaker, _ = _breaker()
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # not consecutive: starts again
    assert not breaker.record_failure() and not breaker.record_failure()
    assert breaker.state == CLOSED and breaker.allow()
    assert breaker.record_failure()  # the third in a row opens it
    assert breaker.state == OPEN and not breaker.allow()
    assert breaker.opens == 1


def test_an_open_breaker_lets_one_probe_through_after_its_cooldown() -> None:
    breaker, clock = _breaker()
    for _ in range(3):
        breaker.record_failure()
    clock.advance(1.5)
    assert not breaker.allow() and breaker.retry_in_s() == pytest.approx(0.5)
    clock.advance(0.5)
    assert breaker.allow()  # the probe
    assert breaker.state == HALF_OPEN and not breaker.allow()  # one at a time
    assert breaker.record_success()
    assert breaker.state == CLOSED and breaker.allow() and breaker.consecutive_failures == 0


def test_a_failed_probe_opens_the_breaker_for_another_cooldown() -> None:
    breaker, clock = _breaker(cooldown_s=2.0)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(2.0)
    assert breaker.allow()
    assert breaker.record_failure()  # one failure is enough when half-open
    assert breaker.state == OPEN and breaker.retry_in_s() == pytest.approx(2.0)
    assert breaker.opens == 2


def test_a_probe_without_a_verdict_frees_its_slot() -> None:
    breaker, clock = _breaker()
    for _ in range(3):
        breaker.record_failure()
    clock.advance(2.0)
    assert breaker.allow() and not breaker.allow()
    breaker.release()  # e.g. the probing request was cancelled
    assert breaker.allow()


def test_late_failures_do_not_extend_the_cooldown() -> None:
    breaker, clock = _breaker(cooldown_s=2.0)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(1.0)
    assert not breaker.record_failure()  # a call that started before it opened
    assert breaker.retry_in_s() == pytest.approx(1.0)


def test_a_breaker_of_zero_failures_never_opens() -> None:
    breaker, _ = _breaker(failures=0)
    for _ in range(100):
        breaker.record_failure()
    assert breaker.state == CLOSED and breaker.allow()
    assert breaker.snapshot()["consecutive_failures"] == 100


def test_a_budget_is_spent_across_calls_and_ends_at_the_first_failure() -> None:
    budget = RequestBudget(1.0)
    budget.spend(0.4)
    budget.spend(0.4)
    assert budget.usable and budget.left_s == pytest.approx(0.2)
    budget.spend(0.2)
    assert not budget.usable  # spent
    broken = RequestBudget(1.0)
    broken.failure = RedisUnavailableError("down")
    assert not broken.usable and broken.left_s == 1.0


# --- within: a deadline the driver cannot swallow --------------------------------------------


async def test_within_returns_the_result_or_raises_the_calls_error() -> None:
    async def answer() -> int:
        return 42

    async def fail() -> None:
        raise RedisUnavailableError("gone")

    assert await within(5, answer()) == 42
    with pytest.raises(RedisUnavailableError, match="gone"):
        await within(5, fail())


async def test_within_stops_waiting_even_when_the_call_swallows_its_cancellation() -> None:
    # As Python 3.11's asyncio.wait_for does when its inner send has just completed.
    release = asyncio.Event()
    seen_cancel = asyncio.Event()

    async def stubborn() -> str:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                seen_cancel.set()  # and carries on
        return "too late"

    with pytest.raises(DeadlineError):
        await within(0.01, stubborn())
    await asyncio.wait_for(seen_cancel.wait(), 5)
    # The call is still running, cancelled but ignoring it: the caller did not wait for it.
    assert not release.is_set()
    release.set()


# --- the guard: one budget per request, the breaker across requests --------------------------


class FakeRedis:
    """Stands in for the client: /healthz pings it; `ping_gate` unset makes it hang."""

    def __init__(self) -> None:
        self.pings = 0
        self.ping_gate = asyncio.Event()
        self.ping_gate.set()

    async def ping(self) -> bool:
        self.pings += 1
        await self.ping_gate.wait()
        return True


def _guard(
    timeout_s: float = 1.0, failures: int = 3, cooldown_s: float = 2.0
) -> tuple[RedisGuard, Counters, FakeClock, FakeRedis]:
    counters, clock, fake = Counters(), FakeClock(), FakeRedis()
    breaker = CircuitBreaker(failures, cooldown_s, clock)
    client = cast(aioredis.Redis, fake)
    return RedisGuard(client, timeout_s, breaker, counters, URL, clock), counters, clock, fake


def _failing(exc: BaseException) -> Callable[[], Any]:
    async def call() -> None:
        raise exc

    return call


async def _ok() -> str:
    return "ok"


async def test_after_one_failure_the_request_skips_its_other_redis_calls() -> None:
    guard, counters, _, _ = _guard()
    budget = guard.budget()
    with pytest.raises(RedisUnavailableError):
        await guard.run(budget, _failing(RedisUnavailableError("Redis at x failed")))
    with pytest.raises(RedisSkippedError) as info:
        await guard.run(budget, _ok)
    assert not info.value.by_breaker
    assert counters.redis_budget_skips == 1 and counters.breaker_open_skips == 0
    assert await guard.run(guard.budget(), _ok) == "ok"  # the next request tries again


async def test_a_hung_call_costs_the_request_its_budget_once() -> None:
    guard, counters, _, _ = _guard(timeout_s=0.02)
    budget = guard.budget()
    never = asyncio.Event()
    with pytest.raises(RedisUnavailableError, match="did not answer within"):
        await guard.run(budget, never.wait)
    assert budget.failure is not None and not budget.usable
    with pytest.raises(RedisSkippedError):  # the cache read after a hung limiter check
        await guard.run(budget, never.wait)
    assert counters.redis_last_error is not None and "did not answer" in counters.redis_last_error


async def test_calls_of_one_request_share_one_timeout() -> None:
    guard, _, clock, _ = _guard(timeout_s=1.0)
    budget = guard.budget()

    async def slow_but_answered() -> str:
        clock.advance(0.75)
        return "ok"

    await guard.run(budget, slow_but_answered)
    assert budget.left_s == pytest.approx(0.25)
    await guard.run(budget, slow_but_answered)
    with pytest.raises(RedisSkippedError):  # nothing left for a third call
        await guard.run(budget, _ok)


async def test_consecutive_failures_open_the_breaker_and_every_skip_is_counted() -> None:
    guard, counters, clock, _ = _guard(failures=3, cooldown_s=2.0)
    for _ in range(3):
        with pytest.raises(RedisUnavailableError):
            await guard.run(guard.budget(), _failing(RedisUnavailableError("down")))
    assert counters.breaker_opens == 1 and guard.breaker.state == OPEN
    called = []

    async def spy() -> None:
        called.append(1)

    for _ in range(4):
        with pytest.raises(RedisSkippedError) as info:
            await guard.run(guard.budget(), spy)
        assert info.value.by_breaker and info.value.retry_in_s == pytest.approx(2.0)
    assert not called and counters.breaker_open_skips == 4
    clock.advance(2.0)
    assert await guard.run(guard.budget(), _ok) == "ok"  # the probe, which closes it
    assert guard.breaker.state == CLOSED


async def test_a_refused_command_neither_breaks_the_request_nor_counts_for_the_breaker() -> None:
    guard, counters, _, _ = _guard(failures=1)
    budget = guard.budget()
    oom = RedisCommandError("Redis at x refused the command: OOM", "OOM")
    with pytest.raises(RedisCommandError):
        await guard.run(budget, _failing(oom))
    assert budget.usable and guard.breaker.state == CLOSED
    busy = RedisPoolExhaustedError("pool exhausted")
    with pytest.raises(RedisPoolExhaustedError):
        await guard.run(budget, _failing(busy))
    assert guard.breaker.state == CLOSED and counters.breaker_opens == 0
    assert await guard.run(budget, _ok) == "ok"


async def test_a_skip_after_a_bad_password_stays_a_configuration_error() -> None:
    guard, _, _, _ = _guard(failures=1)
    bad_password = wrap_failure(AuthenticationError("WRONGPASS invalid password"), URL)
    with pytest.raises(RedisConfigError):
        await guard.run(guard.budget(), _failing(bad_password))
    with pytest.raises(RedisSkippedError) as info:
        await guard.run(guard.budget(), _ok)
    answer = failure_answer(info.value, "session store", "session_store", retry_after=True)
    assert answer.status == 500 and answer.kind == "session_store_misconfigured"
    assert answer.retry_after_s is None


async def test_without_redis_the_guard_only_awaits() -> None:
    counters = Counters()
    guard = RedisGuard(None, 1.0, CircuitBreaker(1, 1.0), counters)
    assert await guard.run(guard.budget(), _ok) == "ok"
    assert await guard.health() == (True, None)


# --- /healthz's own check --------------------------------------------------------------------


async def test_health_pings_within_its_own_short_timeout() -> None:
    guard, _, _, fake = _guard(timeout_s=0.02)
    healthy, report = await guard.health()
    assert healthy and report is not None and report["reachable"] is True
    fake.ping_gate.clear()  # Redis hangs
    healthy, report = await guard.health()
    assert not healthy and report is not None and report["reachable"] is False
    assert "did not answer PING" in report["error"]
    assert guard.breaker.state == CLOSED  # a health PING alone does not open it


async def test_health_with_an_open_breaker_answers_without_asking_redis() -> None:
    guard, _, clock, fake = _guard(failures=1, cooldown_s=2.0)
    with pytest.raises(RedisUnavailableError):
        await guard.run(guard.budget(), _failing(RedisUnavailableError("down")))
    healthy, report = await guard.health()
    assert not healthy and fake.pings == 0
    assert report is not None and report["breaker"]["state"] == OPEN
    clock.advance(2.0)
    healthy, report = await guard.health()  # after the cool-down the health check probes
    assert healthy and fake.pings == 1 and guard.breaker.state == CLOSED


# --- how failures are classified and answered ------------------------------------------------


def _tls_failure() -> RedisConnectionError:
    try:
        try:
            raise ssl.SSLCertVerificationError(1, "certificate verify failed")
        except OSError as exc:
            raise RedisConnectionError("Error 1 connecting to 10.1.2.3:6380.") from exc
    except RedisConnectionError as wrapped:
        return wrapped


@pytest.mark.parametrize(
    ("driver_error", "kind"),
    [
        (AuthenticationError("invalid username-password pair"), RedisConfigError),
        (_tls_failure(), RedisConfigError),
        (RedisConnectionError("Error 111 connecting to 10.1.2.3:6380."), RedisUnavailableError),
        (RedisTimeoutError("Timeout reading from 10.1.2.3:6380"), RedisUnavailableError),
        (ConnectionResetError(104, "reset"), RedisUnavailableError),
        (MaxConnectionsError("Too many connections"), RedisPoolExhaustedError),
        (
            OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
            RedisCommandError,
        ),
    ],
)
def test_driver_errors_are_told_apart(driver_error: BaseException, kind: type) -> None:
    wrapped = wrap_failure(driver_error, URL)
    assert type(wrapped) is kind
    assert "10.1.2.3:6380" in str(wrapped) and "hunter2" not in str(wrapped)  # for the logs


def test_a_tls_stream_closed_by_the_peer_is_not_a_configuration_error() -> None:
    try:
        raise RedisConnectionError("closed") from ssl.SSLEOFError(8, "EOF occurred")
    except RedisConnectionError as exc:
        assert type(wrap_failure(exc, URL)) is RedisUnavailableError


def test_a_refusal_keeps_only_its_redis_error_code() -> None:
    oom = wrap_failure(OutOfMemoryError("command not allowed"), URL)
    wrongtype = wrap_failure(ResponseError("WRONGTYPE Operation against a key"), URL)
    script = wrap_failure(ResponseError(f"Error running script on {PREFIX}:k"), URL)
    piped = wrap_failure(
        ResponseError(
            f"Command # 1 (HGETALL {PREFIX}:s) of pipeline caused error: ('WRONGTYPE x',)"
        ),
        URL,
    )
    assert isinstance(piped, RedisCommandError) and piped.code == "WRONGTYPE"
    assert isinstance(oom, RedisCommandError) and oom.code == "OOM"
    assert isinstance(wrongtype, RedisCommandError) and wrongtype.code == "WRONGTYPE"
    assert isinstance(script, RedisCommandError) and script.code == "ERR"
    assert PREFIX not in script.public_reason


@pytest.mark.parametrize(
    ("failure", "status", "kind", "retry_after"),
    [
        (RedisUnavailableError(f"Redis at {URL} failed"), 503, "unavailable", 1),
        (RedisConfigError(f"Redis at {URL} rejected"), 500, "misconfigured", None),
        (RedisCommandError(f"Redis at {URL} refused: OOM {PREFIX}", "OOM"), 500, "error", None),
        (RedisSkippedError(f"{URL} skipped", None, by_breaker=True, retry_in_s=1.2), 503, "", 2),
    ],
)
def test_clients_are_told_what_failed_but_not_where(
    failure: RedisUnavailableError, status: int, kind: str, retry_after: int | None
) -> None:
    answer = failure_answer(failure, "session store", "session_store", retry_after=True)
    assert answer.status == status and answer.kind.startswith("session_store_" + kind)
    assert answer.retry_after_s == retry_after
    assert "Redis" in answer.message
    for secret in WHERE:
        assert secret not in answer.message
    limiter = failure_answer(failure, "rate limiter", "rate_limiter", retry_after=False)
    assert limiter.retry_after_s is None  # never a Retry-After that looks like a rate limit


@pytest.mark.parametrize(
    ("driver_error", "status", "kind"),
    [
        (OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), 503, "unavail"),
        (ResponseError("READONLY You can't write against a read only replica."), 503, "unavail"),
        (RedisTimeoutError("Timeout reading from 10.1.2.3:6380"), 503, "unavail"),
        (ResponseError(f"WRONGTYPE Operation against a key holding {PREFIX}:x"), 500, "error"),
        (AuthenticationError("WRONGPASS invalid password"), 500, "misconfigured"),
    ],
)
def test_a_fail_closed_limiter_refuses_with_503_while_redis_takes_no_writes(
    driver_error: BaseException, status: int, kind: str
) -> None:
    # Full or a read-only replica passes as an outage does; a wrong key or password does not.
    answer = fail_closed_answer(wrap_failure(driver_error, URL))
    assert answer.status == status and answer.kind.startswith(f"rate_limiter_{kind}")
    assert answer.retry_after_s is None
    for secret in WHERE:
        assert secret not in answer.message


def test_configuration_errors_say_so() -> None:
    answer = failure_answer(
        RedisConfigError("x"), "session store", "session_store", retry_after=True
    )
    assert "configuration error" in answer.message and "retrying will not help" in answer.message


def test_the_pool_retries_a_connection_error_once_and_a_timeout_never() -> None:
    pool = create_pool(TargetSettings(redis_url=URL, redis_timeout_s=1.0))
    retry = pool.make_connection().retry
    assert retry.get_retries() == 1
    assert RedisConnectionError in retry._supported_errors
    assert RedisTimeoutError not in retry._supported_errors


# --- the app's answers and counters, in process ----------------------------------------------


class FakeCache:
    """A response cache whose reads or writes fail with a given error."""

    backend = "redis"

    def __init__(self) -> None:
        self.store = MemoryCache(60, 100)
        self.read_error: BaseException | None = None
        self.write_error: BaseException | None = None
        self.on_read: Callable[[], object] = lambda: None  # e.g. a clock moved by the read

    async def get(self, key: str) -> bytes | None:
        self.on_read()
        if self.read_error is not None:
            raise self.read_error
        return await self.store.get(key)

    async def set(self, key: str, value: bytes) -> None:
        if self.write_error is not None:
            raise self.write_error
        await self.store.set(key, value)


class FakeLimiter:
    """A limiter that admits everything, or fails with a given error."""

    backend = "redis"

    def __init__(self) -> None:
        self.error: BaseException | None = None

    async def hit(self, key: str) -> RateDecision:
        if self.error is not None:
            raise self.error
        return RateDecision(True, 5, 4, 0.0)


class FakeSessions(MemorySessionStore):
    """In-memory sessions that fail with a given error."""

    backend = "redis"

    def __init__(self) -> None:
        super().__init__(60, 100)
        self.error: BaseException | None = None

    async def create(self, owner: str, data: dict[str, Any]) -> Any:
        if self.error is not None:
            raise self.error
        return await super().create(owner, data)


def _upstream(request: httpx.Request) -> httpx.Response:
    answer = {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "a"}}
        ],
    }
    if json.loads(request.content).get("stream"):
        events = [sse_event(c) for c in completion_chunks(answer, include_usage=False)]
        return httpx.Response(
            200, content=b"".join([*events, DONE]), headers={"content-type": "text/event-stream"}
        )
    return httpx.Response(200, json=answer)


class App:
    """The app in process, with fake stores that fail on demand and a fake upstream."""

    def __init__(self, client: httpx.AsyncClient, state: TargetState, asgi: FastAPI) -> None:
        self.client, self.state, self.asgi = client, state, asgi
        self.cache = cast(FakeCache, state.backends.cache)
        self.limiter = cast(FakeLimiter, state.backends.limiter)
        self.sessions = cast(FakeSessions, state.backends.sessions)

    async def chat(self, prompt: str = "hello", *, stream: bool = False) -> httpx.Response:
        body = {"model": "m", "messages": [{"role": "user", "content": prompt}], "stream": stream}
        return await self.client.post(
            "/v1/chat/completions", json=body, headers={"Authorization": "Bearer sk-t"}
        )

    async def stats(self) -> dict[str, Any]:
        return cast(dict[str, Any], (await self.client.get("/stats")).json())


async def _app(
    on_redis_error: str = "open", failures: int = 3, clock: Callable[[], float] = time.perf_counter
) -> AsyncIterator[App]:
    settings = TargetSettings(
        redis_url=URL,
        key_prefix=PREFIX,
        rate_limit_on_redis_error=on_redis_error,
        redis_breaker_failures=failures,
        instance_id="t",
    )
    counters = Counters()
    backends = Backends("redis", FakeCache(), FakeLimiter(), FakeSessions())  # type: ignore[arg-type]
    upstream_http = httpx.AsyncClient(transport=httpx.MockTransport(_upstream))
    upstream = openai.AsyncOpenAI(
        base_url="http://127.0.0.1:9/v1", api_key="sk-fake", http_client=upstream_http
    )
    guard = RedisGuard(
        cast(aioredis.Redis, FakeRedis()), 1.0, CircuitBreaker(failures, 2.0), counters, URL, clock
    )
    state = TargetState(settings, backends, counters, upstream, guard)
    app = create_app(settings)
    app.state.target = state  # the lifespan, which would connect to Redis, does not run
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://target") as client:
        yield App(client, state, app)
    await upstream.close()


@pytest.fixture
async def app() -> AsyncIterator[App]:
    async for running in _app():
        yield running


@pytest.fixture
async def closed_app() -> AsyncIterator[App]:
    async for running in _app(on_redis_error="closed"):
        yield running


def _no_where(response: httpx.Response) -> None:
    for secret in WHERE:
        assert secret not in response.text


async def test_a_failed_cache_write_is_a_miss_that_says_so(app: App) -> None:
    app.cache.write_error = wrap_failure(OutOfMemoryError("command not allowed"), URL)
    response = await app.chat()
    assert response.status_code == 200
    assert response.headers["x-cache"] == "MISS" and response.headers["x-cache-write"] == "failed"
    stats = await app.stats()
    assert stats["cache_write_errors"] == 1 and stats["cache_errors"] == 1
    assert "OOM" not in response.text  # the answer is the upstream's, untouched
    app.cache.write_error = None
    stored = await app.chat("stored")
    assert stored.headers["x-cache"] == "MISS" and "x-cache-write" not in stored.headers
    assert (await app.chat("stored")).headers["x-cache"] == "HIT"


async def test_a_streamed_miss_writes_the_cache_within_the_requests_own_budget() -> None:
    clock = FakeClock()
    async for app in _app(clock=clock):
        streamed = await app.chat("whole", stream=True)
        assert streamed.status_code == 200 and streamed.text.endswith(DONE.decode())
        assert (await app.chat("whole")).headers["x-cache"] == "HIT"  # written once it ended
        # The cache read uses up the request's REDIS_TIMEOUT: the write after the stream has
        # none left, so a hung Redis cannot hold the stream open for another timeout.
        app.cache.on_read = lambda: clock.advance(1.0)
        late = await app.chat("late", stream=True)
        assert late.status_code == 200 and late.headers["x-cache"] == "MISS"
        assert late.text.endswith(DONE.decode())
        stats = await app.stats()
        assert stats["cache_write_skips"] == 1 and stats["redis_budget_skips"] == 1
        app.cache.on_read = lambda: None
        assert (await app.chat("late")).headers["x-cache"] == "MISS"  # it was not written


async def test_the_limiter_fails_open_visibly(app: App) -> None:
    app.limiter.error = wrap_failure(RedisConnectionError("Error 111 connecting"), URL)
    response = await app.chat()
    assert response.status_code == 200 and response.headers["x-ratelimit-status"] == "fail-open"
    assert "x-ratelimit-limit" not in response.headers  # no figures it does not have
    # The cache read of the same request is skipped, not tried: it fails open too.
    assert response.headers["x-cache"] == "BYPASS"
    stats = await app.stats()
    assert stats["rate_limit_fail_open"] == 1 and stats["rate_limit_errors"] == 1
    assert stats["redis_budget_skips"] == 1 and stats["cache_errors"] == 0
    assert (
        "10.1.2.3:6380" in stats["redis_last_error"] and "hunter2" not in stats["redis_last_error"]
    )
    app.limiter.error = None
    assert "x-ratelimit-status" not in (await app.chat()).headers


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (RedisTimeoutError("Timeout reading from x"), "did not answer in time"),  # hung
        (OutOfMemoryError("command not allowed"), "(OOM)"),  # full: refused as an outage is
    ],
)
async def test_the_limiter_can_fail_closed_without_pretending_to_rate_limit(
    closed_app: App, failure: Exception, said: str
) -> None:
    closed_app.limiter.error = wrap_failure(failure, URL)
    response = await closed_app.chat()
    assert response.status_code == 503 and "retry-after" not in response.headers
    assert response.headers["x-ratelimit-status"] == "fail-closed"
    error = response.json()["error"]
    assert error["type"] == "rate_limiter_unavailable" and error["code"] == 503
    assert said in error["message"], error
    _no_where(response)
    stats = await closed_app.stats()
    assert stats["rate_limit_fail_closed"] == 1 and stats["rate_limit_errors"] == 1
    assert stats["upstream_calls"] == 0


async def test_a_bad_password_is_answered_as_a_configuration_error(closed_app: App) -> None:
    bad_password = wrap_failure(AuthenticationError("WRONGPASS invalid password"), URL)
    closed_app.limiter.error = bad_password
    closed_app.sessions.error = bad_password
    chat = await closed_app.chat()
    assert chat.status_code == 500 and "retry-after" not in chat.headers
    assert chat.json()["error"]["type"] == "rate_limiter_misconfigured"
    session = await closed_app.client.post(
        "/v1/sessions", json={"data": {}}, headers={"Authorization": "Bearer sk-t"}
    )
    assert session.status_code == 500 and "retry-after" not in session.headers
    error = session.json()["error"]
    assert error["type"] == "session_store_misconfigured"
    assert "configuration error" in error["message"]
    for response in (chat, session):
        _no_where(response)


async def test_an_open_breaker_answers_at_once_and_healthz_says_degraded(app: App) -> None:
    app.sessions.error = wrap_failure(RedisConnectionError("Error 111 connecting"), URL)
    headers = {"Authorization": "Bearer sk-t"}
    for _ in range(3):  # three failed session writes open the breaker
        failed = await app.client.post("/v1/sessions", json={"data": {}}, headers=headers)
        assert failed.status_code == 503 and failed.headers["retry-after"] == "1"
        _no_where(failed)
    health = await app.client.get("/healthz")
    assert health.status_code == 503 and health.json()["status"] == "degraded"
    assert health.json()["redis"]["breaker"]["state"] == OPEN
    app.sessions.error = None  # Redis is back, but the breaker does not know yet
    skipped = await app.client.post("/v1/sessions", json={"data": {}}, headers=headers)
    assert skipped.status_code == 503 and skipped.json()["error"]["type"] == (
        "session_store_unavailable"
    )
    assert int(skipped.headers["retry-after"]) in (1, 2)  # the cool-down left, rounded up
    chat = await app.chat()
    assert chat.status_code == 200 and chat.headers["x-cache"] == "BYPASS"
    assert chat.headers["x-ratelimit-status"] == "fail-open"
    stats = await app.stats()
    assert stats["breaker_opens"] == 1 and stats["session_errors"] == 3
    assert stats["breaker_open_skips"] == 3  # the session, the limiter check, the cache read


async def test_where_redis_is_shows_only_to_this_machine_or_the_admin_key(app: App) -> None:
    app.sessions.error = wrap_failure(RedisConnectionError("Error 111 connecting"), URL)
    for _ in range(3):  # three failed session writes: a last error, and the breaker open
        await app.client.post(
            "/v1/sessions", json={"data": {}}, headers={"Authorization": "Bearer sk-t"}
        )
    outside = httpx.ASGITransport(app=app.asgi, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=outside, base_url="http://target") as client:
        health, stats = await client.get("/healthz"), await client.get("/stats")
    # A load balancer elsewhere still reads the state: degraded, unreachable, the breaker open.
    assert health.status_code == 503 and health.json()["status"] == "degraded"
    assert health.json()["redis"]["reachable"] is False
    assert health.json()["redis"]["breaker"]["state"] == OPEN
    assert stats.json()["session_errors"] == 3 and stats.json()["redis_last_error"].startswith(
        "hidden"
    )
    for response in (health, stats):
        _no_where(response)
    # The machine's own callers (the harness, an operator's curl) see where and what.
    assert "10.1.2.3:6380" in (await app.client.get("/healthz")).text
    assert "10.1.2.3:6380" in (await app.client.get("/stats")).text
    # With HERMES_ADMIN_KEY set they still do (only a reset needs the key from them); a caller
    # elsewhere sees them with the key only.
    app.state.settings = app.state.settings.model_copy(update={"admin_key": SecretStr("adm-9")})
    assert "10.1.2.3:6380" in (await app.client.get("/healthz")).text
    async with httpx.AsyncClient(transport=outside, base_url="http://target") as client:
        assert "10.1.2.3:6380" not in (await client.get("/healthz")).text
        keyed = await client.get("/healthz", headers={"Authorization": "Bearer adm-9"})
    assert "10.1.2.3:6380" in keyed.text


async def test_a_memory_target_is_healthy() -> None:
    settings = TargetSettings(instance_id="m")
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://target") as client,
    ):
        health = await client.get("/healthz")
    assert health.status_code == 200
    assert json.loads(health.text)["status"] == "ok" and health.json()["redis"] is None
