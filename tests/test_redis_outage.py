"""When Redis dies, hangs, fills up or restarts under a running target.

The cache and the limiter fail open, visibly; sessions answer 503; no request waits on Redis
longer than REDIS_TIMEOUT once; /healthz says degraded; everything recovers without a restart
of the target. The tests share one Redis and one target and each leaves them healthy.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import redis

from hermes_bench.harness.outage_figures import CHAT, Sent, phase_figures
from hermes_bench.stack.embedded_redis import EmbeddedRedis
from hermes_bench.stack.ports import free_port
from hermes_bench.stack.stack import Stack, StackConfig

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

REDIS_TIMEOUT_S = 1
# Generous: what a request may take on a busy 2-core machine and still count as "at once"
# beside the 2-3 × REDIS_TIMEOUT a request used to take.
PROMPT_BOUND_S = 3.0


@pytest.fixture(scope="module")
def redis_server() -> Iterator[EmbeddedRedis]:
    # A fixed port, so the server can come back where the target expects it.
    with EmbeddedRedis(port=free_port()) as server:
        yield server


def _stack_on(server: EmbeddedRedis, **settings: str) -> Stack:
    """A target on `server` with a short REDIS_TIMEOUT, and `settings` on top."""
    env = {"REDIS_TIMEOUT": str(REDIS_TIMEOUT_S), "RATE_LIMIT": "100/minute", **settings}
    return Stack(StackConfig(backend="redis", redis_url=server.url,
                             upstream_latency="fixed:5ms", target_env=env))  # fmt: skip


@pytest.fixture(scope="module")
def stack(redis_server: EmbeddedRedis) -> Iterator[Stack]:
    with _stack_on(redis_server) as running:
        yield running


@pytest.fixture(scope="module")
def closed_stack(redis_server: EmbeddedRedis) -> Iterator[Stack]:
    """A target on the same Redis whose limiter refuses what it cannot count."""
    with _stack_on(redis_server, RATE_LIMIT_ON_REDIS_ERROR="closed") as running:
        yield running


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, trust_env=False) as c:
        yield c


def _headers() -> dict[str, str]:
    return {"Authorization": f"Bearer sk-{secrets.token_hex(6)}"}


def _body(text: str | None = None) -> dict[str, Any]:
    content = text or f"question {secrets.token_hex(6)}"
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}


def _stats(client: httpx.Client, url: str) -> dict[str, Any]:
    stats: dict[str, Any] = client.get(url + "/stats").json()
    return stats


def _wait_healthy(client: httpx.Client, url: str, timeout_s: float = 15.0) -> httpx.Response:
    """/healthz until it says ok: after the breaker's cool-down, each call is a probe."""
    deadline = time.monotonic() + timeout_s
    while True:
        health = client.get(url + "/healthz")
        if health.status_code == 200 or time.monotonic() > deadline:
            return health
        time.sleep(0.2)


def test_outage_and_recovery(redis_server: EmbeddedRedis, stack: Stack) -> None:
    url = stack.target_urls[0]
    headers = _headers()
    body = _body("outage")
    with httpx.Client(timeout=30, trust_env=False) as client:
        assert client.post(url + "/v1/chat/completions", json=body, headers=headers).is_success
        before = _stats(client, url)
        redis_server.stop()
        try:
            answered = client.post(url + "/v1/chat/completions", json=body, headers=headers)
            assert answered.status_code == 200 and answered.headers["x-cache"] == "BYPASS"
            assert "x-ratelimit-limit" not in answered.headers  # limiter failed open...
            assert answered.headers["x-ratelimit-status"] == "fail-open"  # ...and says so

            session = client.post(url + "/v1/sessions", json={"data": {}}, headers=headers)
            assert session.status_code == 503
            error = session.json()["error"]
            assert error["type"] == "session_store_unavailable" and "Redis" in error["message"]
            # Where Redis is stays in the logs and /stats.
            assert f":{redis_server.port}" not in session.text

            health = client.get(url + "/healthz")
            assert health.status_code == 503
            assert health.json()["status"] == "degraded"
            assert health.json()["redis"]["reachable"] is False
            stats = _stats(client, url)
            assert stats["rate_limit_errors"] == before["rate_limit_errors"] + 1
            assert stats["rate_limit_fail_open"] == before["rate_limit_fail_open"] + 1
            # The limiter's check and the cache read are one Redis call (fixed window): it
            # failed once, counted as the limiter's, and left no cache call to skip or fail.
            assert stats["redis_budget_skips"] == before["redis_budget_skips"]
            assert stats["cache_errors"] == before["cache_errors"]
            assert stats["session_errors"] == before["session_errors"] + 1
            assert stats["redis_errors"] == (
                stats["cache_errors"] + stats["rate_limit_errors"] + stats["session_errors"]
            )
            assert f":{redis_server.port}" in stats["redis_last_error"]
        finally:
            redis_server.start()

        # Back on its feet without a target restart.
        recovered = client.post(url + "/v1/chat/completions", json=body, headers=headers)
        assert recovered.status_code == 200 and recovered.headers["x-cache"] == "MISS"
        assert "x-ratelimit-status" not in recovered.headers
        assert _wait_healthy(client, url).json()["status"] == "ok"


def test_a_paused_redis_costs_each_request_one_timeout_at_most(
    redis_server: EmbeddedRedis, stack: Stack, client: httpx.Client
) -> None:
    url = stack.target_urls[0]
    headers = _headers()
    warm = _body()
    assert client.post(url + "/v1/chat/completions", json=warm, headers=headers).is_success
    before = _stats(client, url)

    def chat(_: int) -> tuple[float, httpx.Response]:
        started = time.monotonic()
        response = client.post(url + "/v1/chat/completions", json=_body(), headers=headers)
        return time.monotonic() - started, response

    with redis.Redis.from_url(redis_server.url) as direct:
        direct.client_pause(3000, all=True)  # every client's commands wait for 3 s
    started = time.monotonic()
    health = client.get(url + "/healthz")
    health_s = time.monotonic() - started
    with ThreadPoolExecutor(6) as pool:
        answered = list(pool.map(chat, range(18)))

    assert health.status_code == 503 and health.json()["status"] == "degraded"
    assert health_s < PROMPT_BOUND_S
    assert [r.status_code for _, r in answered] == [200] * 18  # failed open, every one
    assert all(r.headers["x-ratelimit-status"] == "fail-open" for _, r in answered)
    assert all(r.headers["x-cache"] == "BYPASS" for _, r in answered)
    assert max(seconds for seconds, _ in answered) < PROMPT_BOUND_S
    during = _stats(client, url)
    assert during["rate_limit_fail_open"] - before["rate_limit_fail_open"] == 18
    assert during["breaker_opens"] > before["breaker_opens"]  # opened once failures piled up
    assert during["breaker_open_skips"] > before["breaker_open_skips"]  # then skipped Redis

    # Once Redis answers again the breaker closes at the next probe; the data was never lost.
    health = _wait_healthy(client, url)
    assert health.status_code == 200 and health.json()["redis"]["breaker"]["state"] == "closed"
    again = client.post(url + "/v1/chat/completions", json=warm, headers=headers)
    assert again.status_code == 200 and again.headers["x-cache"] == "HIT"
    fresh = client.post(url + "/v1/chat/completions", json=_body(), headers=headers)
    assert fresh.headers["x-cache"] == "MISS" and "x-cache-write" not in fresh.headers


@contextmanager
def _full(server: EmbeddedRedis) -> Iterator[None]:
    """Redis full under noeviction (maxmemory below what it holds: every write is refused),
    its own settings back afterwards."""
    with redis.Redis.from_url(server.url, decode_responses=True) as direct:
        kept = {name: direct.config_get(name)[name] for name in ("maxmemory", "maxmemory-policy")}
        direct.config_set("maxmemory-policy", "noeviction")
        direct.config_set("maxmemory", "1")
        try:
            yield
        finally:
            for name, value in kept.items():
                direct.config_set(name, value)


def test_a_full_redis_is_counted_and_visible(
    redis_server: EmbeddedRedis, stack: Stack, client: httpx.Client
) -> None:
    url = stack.target_urls[0]
    headers = _headers()
    before = _stats(client, url)
    with _full(redis_server):
        full = client.post(url + "/v1/chat/completions", json=_body(), headers=headers)
        session = client.post(url + "/v1/sessions", json={"data": {}}, headers=headers)
        health = client.get(url + "/healthz")
        stats = _stats(client, url)

    # The answer still comes, and says what did not work.
    assert full.status_code == 200 and full.headers["x-cache"] == "MISS"
    assert full.headers["x-cache-write"] == "failed"
    assert full.headers["x-ratelimit-status"] == "fail-open"
    assert stats["cache_write_errors"] == before["cache_write_errors"] + 1
    assert stats["rate_limit_fail_open"] == before["rate_limit_fail_open"] + 1
    # Redis answers, if only to refuse: no breaker, and sessions get a 500 that says why.
    assert stats["breaker_opens"] == before["breaker_opens"]
    assert session.status_code == 500 and "retry-after" not in session.headers
    assert session.json()["error"]["type"] == "session_store_error"
    assert health.status_code == 200 and "OOM" in health.json()["redis"]["last_error"]

    stored = client.post(url + "/v1/chat/completions", json=_body("room again"), headers=headers)
    assert stored.headers["x-cache"] == "MISS" and "x-cache-write" not in stored.headers
    hit = client.post(url + "/v1/chat/completions", json=_body("room again"), headers=headers)
    assert hit.headers["x-cache"] == "HIT"


def test_a_full_redis_is_refused_by_a_fail_closed_limiter_as_configured_and_visibly(
    redis_server: EmbeddedRedis, closed_stack: Stack, client: httpx.Client
) -> None:
    url = closed_stack.target_urls[0]
    headers = _headers()
    before = _stats(client, url)
    with _full(redis_server):
        refused = client.post(url + "/v1/chat/completions", json=_body(), headers=headers)
        stats = _stats(client, url)

    # The limiter cannot count, so it refuses, as RATE_LIMIT_ON_REDIS_ERROR=closed says: the
    # same 503 as when Redis is away, not a 500, and no Retry-After that looks like a limit.
    assert refused.status_code == 503 and "retry-after" not in refused.headers
    assert refused.headers["x-ratelimit-status"] == "fail-closed"
    assert "x-ratelimit-limit" not in refused.headers
    error = refused.json()["error"]
    assert error["type"] == "rate_limiter_unavailable" and error["code"] == 503
    assert "OOM" in error["message"] and f":{redis_server.port}" not in refused.text
    assert stats["rate_limit_fail_closed"] == before["rate_limit_fail_closed"] + 1
    assert stats["rate_limit_errors"] == before["rate_limit_errors"] + 1
    assert stats["upstream_calls"] == before["upstream_calls"]  # refused before the upstream
    # The outage cell reads the same answer as a fail-closed refusal.
    seen = Sent(CHAT, 0.0, 1000, str(refused.status_code), dict(refused.headers.items()))
    phase = phase_figures([seen], 0.0, 1.0)
    assert phase.limiter_failed_closed == 1 and phase.statuses == {"503": 1}

    counted = client.post(url + "/v1/chat/completions", json=_body(), headers=headers)
    assert counted.status_code == 200 and "x-ratelimit-status" not in counted.headers
    assert counted.headers["x-ratelimit-limit"] == "100"


def test_the_first_request_after_a_redis_restart_is_served(
    redis_server: EmbeddedRedis, stack: Stack, client: httpx.Client
) -> None:
    url = stack.target_urls[0]
    headers = _headers()
    # Several pooled connections, all of which the restart leaves stale.
    with ThreadPoolExecutor(4) as pool:
        list(
            pool.map(
                lambda _: client.post(url + "/v1/sessions", json={}, headers=headers), range(8)
            )
        )
    redis_server.stop()
    redis_server.start()
    session = client.post(url + "/v1/sessions", json={"data": {"a": 1}}, headers=headers)
    assert session.status_code == 201
    chat = client.post(url + "/v1/chat/completions", json=_body(), headers=headers)
    assert chat.status_code == 200 and chat.headers["x-cache"] == "MISS"
    assert "x-ratelimit-status" not in chat.headers and "x-cache-write" not in chat.headers
