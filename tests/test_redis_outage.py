"""When Redis dies under a running target: cache and limiter fail open, sessions answer 503."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from hermes_bench.stack.embedded_redis import EmbeddedRedis
from hermes_bench.stack.ports import free_port
from hermes_bench.stack.stack import Stack, StackConfig

pytestmark = [pytest.mark.e2e, pytest.mark.redis]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[EmbeddedRedis]:
    # A fixed port, so the server can come back where the target expects it.
    with EmbeddedRedis(port=free_port()) as server:
        yield server


@pytest.fixture(scope="module")
def stack(redis_server: EmbeddedRedis) -> Iterator[Stack]:
    config = StackConfig(
        backend="redis",
        redis_url=redis_server.url,
        upstream_latency="fixed:5ms",
        target_env={"REDIS_TIMEOUT": "1", "RATE_LIMIT": "100/minute"},
    )
    with Stack(config) as running:
        yield running


def test_outage_and_recovery(redis_server: EmbeddedRedis, stack: Stack) -> None:
    url = stack.target_urls[0]
    headers = {"Authorization": f"Bearer sk-{secrets.token_hex(6)}"}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "outage"}]}
    with httpx.Client(timeout=30, trust_env=False) as client:
        assert client.post(url + "/v1/chat/completions", json=body, headers=headers).is_success
        redis_server.stop()
        try:
            answered = client.post(url + "/v1/chat/completions", json=body, headers=headers)
            assert answered.status_code == 200 and answered.headers["x-cache"] == "BYPASS"
            assert "x-ratelimit-limit" not in answered.headers  # limiter failed open

            session = client.post(url + "/v1/sessions", json={"data": {}}, headers=headers)
            assert session.status_code == 503
            error = session.json()["error"]
            assert error["type"] == "session_store_unavailable" and "Redis" in error["message"]

            health = client.get(url + "/healthz").json()
            assert health["status"] == "degraded" and health["redis"]["reachable"] is False
            stats = client.get(url + "/stats").json()
            assert stats["cache_errors"] >= 1 and stats["rate_limit_errors"] >= 1
            assert stats["session_errors"] == 1
            assert stats["redis_errors"] == (
                stats["cache_errors"] + stats["rate_limit_errors"] + stats["session_errors"]
            )
        finally:
            redis_server.start()

        # Back on its feet without a target restart.
        recovered = client.post(url + "/v1/chat/completions", json=body, headers=headers)
        assert recovered.status_code == 200 and recovered.headers["x-cache"] == "MISS"
        assert client.get(url + "/healthz").json()["status"] == "ok"
