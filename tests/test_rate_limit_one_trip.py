"""The fixed-window limit and the cache read in one Redis round trip, on a real Redis.

The limiter alone (counts exact across clients and beside `limits`' own fixed window, the
window's end on Redis's clock, the script surviving SCRIPT FLUSH and a Redis restart, a refused
count that still reads), then the app in process on a private Redis: one command per HIT,
headers, 429 and Retry-After, a bad body still counted, fail-open and fail-closed on a stopped
Redis.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import limits
import openai
import pytest
import redis
import redis.asyncio as aioredis

from hermes_bench.app.backends import backends_from_settings
from hermes_bench.app.counters import Counters, OpTimings
from hermes_bench.app.rate_limit import redis_rate_limiter
from hermes_bench.app.redis_client import RedisCommandError, create_pool
from hermes_bench.app.redis_fixed_window import RedisFixedWindowLimiter
from hermes_bench.app.redis_guard import RedisGuard
from hermes_bench.app.settings import TargetSettings
from hermes_bench.app.web import TargetState, create_app
from hermes_bench.stack.embedded_redis import EmbeddedRedis

pytestmark = pytest.mark.redis

LIMIT = 5
ITEM = limits.parse(f"{LIMIT}/minute")


def _limiter(url: str, prefix: str) -> RedisFixedWindowLimiter:
    """A limiter on a pool of its own, built as the app builds it: one per simulated instance."""
    client = aioredis.Redis(connection_pool=create_pool(TargetSettings(redis_url=url)))
    return RedisFixedWindowLimiter(client, url, ITEM, prefix, lambda key: f"{prefix}:cache:{key}")


async def _close(*limiters: RedisFixedWindowLimiter) -> None:
    for limiter in limiters:
        await limiter._client.aclose()


async def test_two_instances_admit_exactly_the_limit_and_agree_on_the_window(
    redis_url: str, key_prefix: str
) -> None:
    a, b = _limiter(redis_url, key_prefix), _limiter(redis_url, key_prefix)
    try:
        decisions = [await (a if i % 2 else b).hit("owner") for i in range(3 * LIMIT)]
    finally:
        await _close(a, b)
    assert [d.allowed for d in decisions] == [True] * LIMIT + [False] * (2 * LIMIT)
    assert [d.remaining for d in decisions] == [*range(LIMIT - 1, -1, -1), *[0] * (2 * LIMIT)]
    # One window, one end, read on Redis's clock to the millisecond by both instances.
    ends = [d.reset_at for d in decisions]
    assert max(ends) - min(ends) <= 0.001 + 1e-9
    assert all(d.limit == LIMIT for d in decisions)
    with redis.Redis.from_url(redis_url) as client:
        server_s, server_us = client.time()
        pttl_ms = client.pttl(f"{key_prefix}:ratelimit:{ITEM.key_for('owner')}")
    server_now = server_s + server_us / 1e6
    assert 0 < decisions[0].reset_at - server_now <= 60.001
    assert abs(decisions[0].reset_at - (server_now + pttl_ms / 1000)) < 0.05


async def test_the_count_is_shared_with_limits_own_fixed_window(
    redis_url: str, key_prefix: str
) -> None:
    """An instance still on `limits`' path (a rolling upgrade) counts on the same key."""
    one_trip = _limiter(redis_url, key_prefix)
    client = aioredis.Redis.from_url(redis_url)
    by_limits = redis_rate_limiter(
        client, redis_url, f"{LIMIT}/minute", "fixed-window", key_prefix, OpTimings()
    )
    try:
        allowed = [
            (await (one_trip if i % 2 else by_limits).hit("owner")).allowed
            for i in range(2 * LIMIT)
        ]
    finally:
        await _close(one_trip)
        await client.aclose()
    assert allowed == [True] * LIMIT + [False] * LIMIT


async def test_the_cache_is_read_only_for_an_admitted_request(
    redis_url: str, key_prefix: str
) -> None:
    limiter = _limiter(redis_url, key_prefix)
    with redis.Redis.from_url(redis_url) as client:
        client.set(f"{key_prefix}:cache:answer", b'{"cached": true}')
    try:
        missing = await limiter.hit_and_read("owner", "absent")
        found = [await limiter.hit_and_read("owner", "answer") for _ in range(LIMIT)]
    finally:
        await _close(limiter)
    assert missing.decision is not None and missing.decision.allowed and missing.cached is None
    assert [f.decision.allowed for f in found if f.decision] == [True] * (LIMIT - 1) + [False]
    assert [f.cached for f in found[:-1]] == [b'{"cached": true}'] * (LIMIT - 1)
    assert found[-1].cached is None  # refused: the entry is not read


async def test_the_script_is_loaded_again_after_script_flush(
    redis_url: str, key_prefix: str
) -> None:
    limiter = _limiter(redis_url, key_prefix)
    try:
        first = await limiter.hit("owner")
        with redis.Redis.from_url(redis_url) as client:
            client.script_flush()
        second = await limiter.hit("owner")
    finally:
        await _close(limiter)
    # Counted once each: the NOSCRIPT reply ran nothing, the reload ran the script once.
    assert (first.remaining, second.remaining) == (LIMIT - 1, LIMIT - 2)


async def test_the_script_survives_a_redis_restart(key_prefix: str) -> None:
    with EmbeddedRedis() as server:
        limiter = _limiter(server.url, key_prefix)
        try:
            assert (await limiter.hit("owner")).remaining == LIMIT - 1
            server.restart()  # no persistence: the script cache and the count are gone
            # The pooled connection is dead: one retry on a fresh one, then NOSCRIPT, a reload.
            after = await limiter.hit("owner")
        finally:
            await _close(limiter)
    assert after.allowed and after.remaining == LIMIT - 1


async def test_a_refused_count_still_reads_the_cache(key_prefix: str) -> None:
    """Redis full under noeviction refuses the INCR; the GET still answers: Redis is up."""
    with EmbeddedRedis(maxmemory_policy="noeviction") as server:
        with redis.Redis.from_url(server.url) as client:
            client.set(f"{key_prefix}:cache:answer", b"cached")
            client.config_set("maxmemory", "1")  # below what it holds: every write is refused
        limiter = _limiter(server.url, key_prefix)
        try:
            lookup = await limiter.hit_and_read("owner", "answer")
            with pytest.raises(RedisCommandError) as refused:
                await limiter.hit("owner")
        finally:
            await _close(limiter)
    assert lookup.decision is None and lookup.cached == b"cached"
    assert isinstance(lookup.limiter_error, RedisCommandError)
    assert lookup.limiter_error.code == "OOM" and refused.value.code == "OOM"


# --- the app in process, on a private Redis ------------------------------------------------


def _upstream(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    answer = {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": body["messages"][-1]["content"]},
            }
        ],
    }
    return httpx.Response(200, json=answer)


@pytest.fixture(scope="module")
def private_redis() -> Iterator[EmbeddedRedis]:
    """A Redis of this module's own: its command counts and its stop are nobody else's."""
    with EmbeddedRedis() as server:
        yield server


class App:
    """The app in process on a real Redis, its upstream a mock; `server` is its Redis."""

    def __init__(self, client: httpx.AsyncClient, state: TargetState, server: EmbeddedRedis):
        self.client, self.state, self.server = client, state, server
        self.key = f"sk-{secrets.token_hex(6)}"
        self.round_trips = 0  # connections taken from the app's pool: one per command sent
        pool = state.backends.redis.connection_pool if state.backends.redis else None
        if pool is not None:
            take = pool.get_connection

            async def counted(*args: Any, **kwargs: Any) -> Any:
                self.round_trips += 1
                return await take(*args, **kwargs)

            pool.get_connection = counted  # type: ignore[method-assign]

    async def chat(self, body: Any = None, **headers: str) -> httpx.Response:
        body = body or {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
        return await self.client.post(
            "/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {self.key}", **headers},
        )

    async def stats(self) -> dict[str, Any]:
        return dict((await self.client.get("/stats")).json())

    def command_calls(self) -> dict[str, int]:
        """Top-level calls per command since the Redis started (INFO commandstats)."""
        with redis.Redis.from_url(self.server.url) as client:
            stats = client.info("commandstats")
        return {name.removeprefix("cmdstat_"): v["calls"] for name, v in stats.items()}


async def _app(server: EmbeddedRedis, prefix: str, **settings: Any) -> AsyncIterator[App]:
    config = TargetSettings(
        redis_url=server.url,
        key_prefix=prefix,
        rate_limit=f"{LIMIT}/minute",
        redis_timeout_s=1.0,
        instance_id="t",
        **settings,
    )
    counters = Counters()
    backends = backends_from_settings(config, counters.op_timings)
    upstream = openai.AsyncOpenAI(
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-fake",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(_upstream)),
    )
    guard = RedisGuard.from_settings(config, backends.redis, counters)
    state = TargetState(config, backends, counters, upstream, guard)
    app = create_app(config)
    app.state.target = state  # the lifespan is not run: the mock upstream replaces its client
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://target") as client:
        yield App(client, state, server)
    await upstream.close()
    await backends.close()


@pytest.fixture
async def app(private_redis: EmbeddedRedis, key_prefix: str) -> AsyncIterator[App]:
    async for running in _app(private_redis, key_prefix):
        yield running


async def test_a_hit_is_one_redis_command_with_every_header(app: App) -> None:
    miss = await app.chat()
    before, trips = app.command_calls(), app.round_trips
    hit = await app.chat()
    after = app.command_calls()
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    assert hit.content == miss.content
    assert app.round_trips - trips == 1
    assert after["evalsha"] - before["evalsha"] == 1
    assert hit.headers["x-ratelimit-limit"] == str(LIMIT)
    assert hit.headers["x-ratelimit-remaining"] == str(LIMIT - 2)
    assert hit.headers["x-ratelimit-reset"] == miss.headers["x-ratelimit-reset"]
    assert hit.headers["server-timing"].startswith("ratelimit+cache-read;dur=")
    assert "x-ratelimit-status" not in hit.headers
    stats = await app.stats()
    assert stats["redis_op_latency_us"]["RATELIMIT_CHECK+GET"]["count"] == 2
    assert "GET" not in stats["redis_op_latency_us"]


async def test_past_the_limit_a_429_with_retry_after_and_no_cache_read(app: App) -> None:
    answers = [await app.chat() for _ in range(LIMIT + 1)]
    assert [a.status_code for a in answers] == [200] * LIMIT + [429]
    refused = answers[-1]
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["server-timing"].startswith("ratelimit;dur=")
    assert refused.json()["error"]["type"] == "rate_limit_exceeded"
    stats = await app.stats()
    assert stats["rate_limited"] == 1 and stats["hits"] == LIMIT - 1


async def test_a_bad_body_is_counted_and_a_refusal_wins_over_it(app: App) -> None:
    bad = {"model": "m", "messages": []}
    answers = [await app.chat(bad) for _ in range(LIMIT + 1)]
    assert [a.status_code for a in answers] == [422] * LIMIT + [429]
    assert (await app.chat()).status_code == 429  # the bad bodies used the window up


async def test_no_cache_asks_the_limiter_alone(app: App) -> None:
    await app.chat()
    trips = app.round_trips
    bypass = await app.chat(**{"Cache-Control": "no-cache"})
    assert bypass.headers["x-cache"] == "BYPASS"
    assert bypass.headers["server-timing"].startswith("ratelimit;dur=")
    assert app.round_trips - trips == 1


async def test_a_stopped_redis_fails_open_once_per_request(key_prefix: str) -> None:
    with EmbeddedRedis() as server:
        async for app in _app(server, key_prefix):
            assert (await app.chat()).headers["x-cache"] == "MISS"
            server.kill()
            answer = await app.chat()
            assert answer.status_code == 200 and answer.headers["x-cache"] == "BYPASS"
            assert answer.headers["x-ratelimit-status"] == "fail-open"
            assert "x-ratelimit-limit" not in answer.headers
            assert answer.headers["server-timing"].startswith("ratelimit+cache-read;dur=")
            stats = await app.stats()
            # One call for both, failed once: counted as the limiter's; the write is skipped.
            assert stats["rate_limit_errors"] == 1 and stats["cache_errors"] == 0
            assert stats["rate_limit_fail_open"] == 1 and stats["bypasses"] == 1
            assert stats["cache_write_skips"] == 0  # a BYPASS is not written


async def test_a_stopped_redis_fails_closed_when_asked(key_prefix: str) -> None:
    with EmbeddedRedis() as server:
        async for app in _app(server, key_prefix, rate_limit_on_redis_error="closed"):
            server.kill()
            answer = await app.chat()
            assert answer.status_code == 503 and "retry-after" not in answer.headers
            assert answer.headers["x-ratelimit-status"] == "fail-closed"
            assert answer.json()["error"]["type"] == "rate_limiter_unavailable"
            assert (await app.stats())["upstream_calls"] == 0


async def test_a_deliberately_slowed_cache_is_read_apart(
    private_redis: EmbeddedRedis, key_prefix: str
) -> None:
    """HERMES_FAULT_CACHE_* wraps the cache object: reads must go through it."""
    async for app in _app(private_redis, key_prefix, fault_cache_delay_ms=1.0):
        assert app.state.backends.limit_and_read is None
        await app.chat()
        hit = await app.chat()
        assert hit.headers["x-cache"] == "HIT"
        assert hit.headers["server-timing"].startswith("ratelimit;dur=")
        assert ", cache-read;dur=" in hit.headers["server-timing"]


def test_other_strategies_keep_limits_path(redis_url: str, key_prefix: str) -> None:
    for strategy in ("moving-window", "sliding-window-counter"):
        settings = TargetSettings(
            redis_url=redis_url, key_prefix=key_prefix, rate_limit_strategy=strategy
        )
        backends = backends_from_settings(settings, OpTimings())
        assert backends.limit_and_read is None and backends.limiter is not None
