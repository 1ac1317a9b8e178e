"""pytest-benchmark suites of the target's hot paths, memory and Redis side by side per group.

The stores are async: each benchmark call awaits a batch of OPS_PER_CALL operations on one event
loop kept for the module, so the per-call cost of run_until_complete is spread over the batch.
Divide a reported time by OPS_PER_CALL for one operation.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import redis.asyncio as aioredis
from pytest_benchmark.fixture import BenchmarkFixture

from hermes_bench.app.backends import Backends, backends_from_settings
from hermes_bench.app.counters import OpTimings
from hermes_bench.app.rate_limit import OwnerRateLimiter, memory_rate_limiter, redis_rate_limiter
from hermes_bench.app.redis_client import create_pool
from hermes_bench.app.redis_fixed_window import RedisFixedWindowLimiter
from hermes_bench.app.settings import MEMORY_URL, TargetSettings, parse_rate_limit
from hermes_bench.histograms import new_histogram
from hermes_bench.redaction import redact_text
from hermes_bench.wire.chat import request_hash

T = TypeVar("T")

OPS_PER_CALL = 100
BACKENDS = ["memory", "redis"]
# A cached answer is a chat completion of a few hundred bytes.
CACHED_VALUE = b'{"id":"chatcmpl-1","object":"chat.completion","choices":[' + b"x" * 500 + b"]}"
# High enough that no benchmark ever reaches it: we time the admit path, not the refusal.
UNREACHABLE_LIMIT = "1000000000/hour"
# The deliberate faults (hermes_bench.app.degraded_cache) reach the benchmarked stores, so a slowed
# cache can be shown to trip a baseline comparison; no other target setting is read, so an
# unrelated variable in the shell (CACHE_TTL_S, RATE_LIMIT, ...) cannot change what is timed.
FAULT_VARIABLES = ("HERMES_FAULT_CACHE_DELAY_MS", "HERMES_FAULT_CACHE_MISS_SHARE")
TYPICAL_BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "temperature": 0.2,
    "messages": [
        {"role": "user", "content": "How do I configure a Redis cache for an LLM app?"},
        {"role": "assistant", "content": "Set REDIS_URL, pick a TTL and an eviction policy. " * 4},
        {"role": "user", "content": "Which maxmemory-policy should I use for the cache?"},
    ],
}


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for the whole module, so no benchmark pays for creating one."""
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.fixture(scope="module")
def fault_settings() -> TargetSettings:
    """Defaults plus the HERMES_FAULT_* variables, read and checked by the target's own reader."""
    return TargetSettings.from_env({k: os.environ[k] for k in FAULT_VARIABLES if k in os.environ})


def fault_description(settings: TargetSettings) -> dict[str, float]:
    """The deliberate faults switched on in `settings`; empty for a healthy build."""
    faults = {
        "cache_delay_ms": settings.fault_cache_delay_ms,
        "cache_miss_share": settings.fault_cache_miss_share,
    }
    return {name: value for name, value in faults.items() if value}


@pytest.fixture(params=BACKENDS)
def backends(
    request: pytest.FixtureRequest,
    loop: asyncio.AbstractEventLoop,
    fault_settings: TargetSettings,
) -> Iterator[Backends]:
    """The target's stores for memory:// or the Redis, built by the target's own factory."""
    url = MEMORY_URL if request.param == "memory" else request.getfixturevalue("redis_url")
    prefix = f"hermes-bench-bench:{secrets.token_hex(4)}"
    settings = fault_settings.model_copy(
        update={"redis_url": url, "key_prefix": prefix, "rate_limit": UNREACHABLE_LIMIT}
    )
    built = backends_from_settings(settings, OpTimings())
    yield built
    if built.redis is not None:
        # Only this test's keys: REDIS_URL may point at a Redis others use.
        keys = loop.run_until_complete(_keys_under(built, prefix))
        if keys:
            loop.run_until_complete(built.redis.delete(*keys))
    loop.run_until_complete(built.close())


async def _keys_under(built: Backends, prefix: str) -> list[bytes]:
    assert built.redis is not None
    return [key async for key in built.redis.scan_iter(match=f"{prefix}:*", count=1000)]


@pytest.fixture
def tagged(
    benchmark: BenchmarkFixture,
    backend_versions: dict[str, str],
    fault_settings: TargetSettings,
    request: pytest.FixtureRequest,
) -> BenchmarkFixture:
    """The benchmark fixture with versions, backend, batch size and any fault in its saved JSON."""
    backend = getattr(request.node, "callspec", None)
    name = backend.params.get("backends", "none") if backend else "none"
    benchmark.extra_info.update(backend_versions)
    benchmark.extra_info.update({"backend": name, "ops_per_call": OPS_PER_CALL})
    faults = fault_description(fault_settings)
    if faults and "backends" in request.fixturenames:
        # A saved run must say it timed a deliberately degraded cache, or it could become a
        # baseline that hides the next real regression.
        benchmark.extra_info["deliberate_fault"] = faults
    return benchmark


def run_batches(
    benchmark: BenchmarkFixture,
    loop: asyncio.AbstractEventLoop,
    op: Callable[[int], Awaitable[T]],
) -> list[T]:
    """Benchmark OPS_PER_CALL sequential awaits of op(i); returns the last batch's results."""

    async def batch() -> list[T]:
        return [await op(i) for i in range(OPS_PER_CALL)]

    result: list[T] = benchmark(lambda: loop.run_until_complete(batch()))
    return result


@pytest.mark.benchmark(group="cache-get-hit")
def test_cache_get_hit_x100(
    tagged: BenchmarkFixture, loop: asyncio.AbstractEventLoop, backends: Backends
) -> None:
    loop.run_until_complete(backends.cache.set("hot", CACHED_VALUE))
    values = run_batches(tagged, loop, lambda _: backends.cache.get("hot"))
    assert values == [CACHED_VALUE] * OPS_PER_CALL


@pytest.mark.benchmark(group="cache-get-miss")
def test_cache_get_miss_x100(
    tagged: BenchmarkFixture, loop: asyncio.AbstractEventLoop, backends: Backends
) -> None:
    values = run_batches(tagged, loop, lambda _: backends.cache.get("never-stored"))
    assert values == [None] * OPS_PER_CALL


@pytest.mark.benchmark(group="cache-set")
def test_cache_set_x100(
    tagged: BenchmarkFixture, loop: asyncio.AbstractEventLoop, backends: Backends
) -> None:
    keys = [f"key-{i}" for i in range(OPS_PER_CALL)]
    run_batches(tagged, loop, lambda i: backends.cache.set(keys[i], CACHED_VALUE))
    assert loop.run_until_complete(backends.cache.get(keys[-1])) == CACHED_VALUE


@pytest.mark.benchmark(group="limiter-hit")
def test_limiter_hit_x100(
    tagged: BenchmarkFixture, loop: asyncio.AbstractEventLoop, backends: Backends
) -> None:
    limiter = backends.limiter
    assert limiter is not None
    decisions = run_batches(tagged, loop, lambda _: limiter.hit("owner-1"))
    assert all(d.allowed for d in decisions)
    # Remaining falls by one per hit: every hit was counted in the store.
    assert decisions[0].remaining - decisions[-1].remaining == OPS_PER_CALL - 1


# (strategy, how): `limits`' three strategies on each backend, and on Redis the app's own
# fixed window (one Lua script), alone and carrying the cache read as a HIT does.
LIMITER_VARIANTS = [
    ("memory", "fixed-window", "limits"),
    ("memory", "moving-window", "limits"),
    ("memory", "sliding-window-counter", "limits"),
    ("redis", "fixed-window", "limits"),
    ("redis", "fixed-window", "script"),
    ("redis", "fixed-window", "script+cache-read"),
    ("redis", "moving-window", "limits"),
    ("redis", "sliding-window-counter", "limits"),
]


@pytest.mark.benchmark(group="limiter-strategy")
@pytest.mark.parametrize(
    ("backend", "strategy", "how"),
    LIMITER_VARIANTS,
    ids=[f"{b}-{s}-{h}" for b, s, h in LIMITER_VARIANTS],
)
def test_limiter_strategy_x100(
    tagged: BenchmarkFixture,
    loop: asyncio.AbstractEventLoop,
    request: pytest.FixtureRequest,
    backend: str,
    strategy: str,
    how: str,
) -> None:
    """One admitted check per op (limit never reached), each way the app could count."""
    tagged.extra_info.update({"backend": backend, "strategy": strategy, "how": how})
    prefix = f"hermes-bench-bench:{secrets.token_hex(4)}"
    if backend == "memory":
        limiter: OwnerRateLimiter = memory_rate_limiter(UNREACHABLE_LIMIT, strategy)
        client = None
    else:
        url = request.getfixturevalue("redis_url")
        client = aioredis.Redis(connection_pool=create_pool(TargetSettings(redis_url=url)))
        if how == "limits":
            limiter = redis_rate_limiter(
                client, url, UNREACHABLE_LIMIT, strategy, prefix, OpTimings()
            )
        else:
            limiter = RedisFixedWindowLimiter(
                client, url, parse_rate_limit(UNREACHABLE_LIMIT), prefix, lambda k: k
            )
    try:
        if how == "script+cache-read":
            assert isinstance(limiter, RedisFixedWindowLimiter) and client is not None
            cache_key = f"{prefix}:cache:hot"
            loop.run_until_complete(client.set(cache_key, CACHED_VALUE))
            lookups = run_batches(
                tagged, loop, lambda _: limiter.hit_and_read("owner-1", cache_key)
            )
            assert all(x.decision and x.decision.allowed for x in lookups)
            assert all(x.cached == CACHED_VALUE for x in lookups)
        else:
            decisions = run_batches(tagged, loop, lambda _: limiter.hit("owner-1"))
            assert all(d.allowed for d in decisions)
            if strategy == "fixed-window":  # the others' remaining counts move with time
                assert decisions[0].remaining - decisions[-1].remaining == OPS_PER_CALL - 1
    finally:
        if client is not None:
            loop.run_until_complete(_drop_prefix(client, prefix))
            loop.run_until_complete(client.aclose())
            loop.run_until_complete(client.connection_pool.disconnect())


async def _drop_prefix(client: aioredis.Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)


@pytest.mark.benchmark(group="session-create")
def test_session_create_x100(
    tagged: BenchmarkFixture, loop: asyncio.AbstractEventLoop, backends: Backends
) -> None:
    data = {"cart": [1, 2, 3], "locale": "en"}
    sessions = run_batches(tagged, loop, lambda _: backends.sessions.create("owner-1", data))
    assert len({s.id for s in sessions}) == OPS_PER_CALL
    stored = loop.run_until_complete(backends.sessions.get("owner-1", sessions[-1].id))
    assert stored is not None and stored.data == data


@pytest.mark.benchmark(group="session-get")
def test_session_get_x100(
    tagged: BenchmarkFixture, loop: asyncio.AbstractEventLoop, backends: Backends
) -> None:
    data = {"cart": [1, 2, 3], "locale": "en"}
    session = loop.run_until_complete(backends.sessions.create("owner-1", data))
    found = run_batches(tagged, loop, lambda _: backends.sessions.get("owner-1", session.id))
    assert all(s is not None and s.data == data for s in found)


@pytest.mark.benchmark(group="key-hashing")
def test_request_hash_x100(tagged: BenchmarkFixture) -> None:
    digests = tagged(lambda: [request_hash(TYPICAL_BODY) for _ in range(OPS_PER_CALL)])
    assert len(set(digests)) == 1 and len(digests[0]) == 64


@pytest.mark.benchmark(group="histogram-record")
def test_optimings_record_ns_x100(tagged: BenchmarkFixture) -> None:
    timings = OpTimings()
    # Spread over µs..ms so several histogram buckets are touched, as real latencies do.
    elapsed_ns = [(i * 7919 % 5000 + 50) * 1000 for i in range(OPS_PER_CALL)]

    def record() -> None:
        for value in elapsed_ns:
            timings.record_ns("GET", value)

    tagged(record)
    assert timings.snapshot()["GET"]["count"] % OPS_PER_CALL == 0


@pytest.mark.benchmark(group="histogram-record")
def test_hdrhistogram_record_value_x100(tagged: BenchmarkFixture) -> None:
    histogram = new_histogram()
    values_us = [i * 7919 % 5000 + 50 for i in range(OPS_PER_CALL)]

    def record() -> None:
        for value in values_us:
            histogram.record_value(value)

    tagged(record)
    assert histogram.get_total_count() % OPS_PER_CALL == 0


# Text without a secret in it, of the sizes an error string or a log can reach: a long word
# (the case that used to be quadratic) and ordinary prose with URLs.
_WORD = "a" * 1_000_000
_PROSE = ("connect to redis://cache.internal:6379/0 failed after 5 s; retrying " * 15_000)[
    :1_000_000
]


@pytest.mark.benchmark(group="redaction")
@pytest.mark.parametrize("kind", ["word", "prose"])
def test_redact_text_1mb(tagged: BenchmarkFixture, kind: str) -> None:
    text = _WORD if kind == "word" else _PROSE
    tagged.extra_info["chars"] = len(text)
    assert tagged(redact_text, text) == text
