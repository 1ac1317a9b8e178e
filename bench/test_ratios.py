"""Two ratios of the target, measured side by side in one run, printed and never asserted.

a. cache-hit throughput of POST /v1/chat/completions against POST /_bare of the same app
   (goal >= 0.5), on each backend, in alternating rounds so drift hits both alike.
b. the target's Redis GET p50 (as it reports it in /stats) against a direct redis-py GET on the
   same Redis (goal <= 1.5).
The tests check behaviour (every answer a 200 HIT with the cached body); speed goes to the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import gevent
import psutil
import pytest
import redis
import redis.asyncio as aioredis
from geventhttpclient import HTTPClient

from bench.conftest import RatioFigure, RatioReport
from hermes_bench.app.counters import OpTimings
from hermes_bench.app.redis_client import create_pool
from hermes_bench.app.settings import TargetSettings
from hermes_bench.stack.stack import Stack, StackConfig
from hermes_bench.wire.chat import request_hash

pytestmark = pytest.mark.e2e

CHAT_PATH = "/v1/chat/completions"
BARE_PATH = "/_bare"
ROUNDS = 5
REQUESTS_PER_BURST = 2000
WARMUP_REQUESTS = 300
# Enough requests in flight to keep the one-process target busy; few enough that the client's
# own CPU stays small on a 2-core machine.
GREENLETS = 8
SEQUENTIAL_REQUESTS = 2000
THROUGHPUT_GOAL = 0.5
GET_P50_GOAL = 1.5
# About what a target at one connection idles between requests (the client's turn).
IDLE_BEFORE_GET_S = 200e-6


@dataclass(frozen=True)
class Burst:
    """One timed burst of requests: wall time and the CPU the client and the target used."""

    requests: int
    wall_s: float
    client_cpu_s: float
    target_cpu_s: float

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.wall_s

    @property
    def client_cpu_share(self) -> float:
        """Client CPU as a share of one core (1.0 = a whole core)."""
        return self.client_cpu_s / self.wall_s

    @property
    def target_cpu_share(self) -> float:
        """Target process CPU as a share of one core."""
        return self.target_cpu_s / self.wall_s


class Driver:
    """POSTs one body to one target instance from GREENLETS greenlets, checking every answer."""

    def __init__(self, stack: Stack, concurrency: int) -> None:
        address = urlsplit(stack.target_urls[0])
        assert address.hostname is not None and stack.targets[0].pid is not None
        self.client = HTTPClient(
            address.hostname, address.port, concurrency=concurrency, network_timeout=30
        )
        self.concurrency = concurrency
        self.target = psutil.Process(stack.targets[0].pid)
        self.headers = {
            "Authorization": f"Bearer sk-bench-{secrets.token_hex(6)}",
            "Content-Type": "application/json",
        }

    def post(self, path: str, body: bytes) -> tuple[int, str | None, bytes]:
        """One request: status, X-Cache header and body."""
        response = self.client.post(path, body=body, headers=self.headers)
        try:
            content = response.read()
        finally:
            response.release()
        x_cache = response.get("X-Cache")
        return response.status_code, x_cache if isinstance(x_cache, str) else None, content

    def burst(self, path: str, body: bytes, count: int, expected: bytes | None) -> Burst:
        """`count` requests; asserts each is a 200 (and a HIT with `expected` body if given)."""
        wrong: list[str] = []

        def worker(share: int) -> None:
            for _ in range(share):
                status, x_cache, content = self.post(path, body)
                if status != 200 or (
                    expected is not None and (x_cache != "HIT" or content != expected)
                ):
                    wrong.append(f"{status} X-Cache={x_cache} {content[:80]!r}")

        shares = [count // self.concurrency] * self.concurrency
        shares[0] += count - sum(shares)
        target_before = sum(self.target.cpu_times()[:2])
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        gevent.joinall([gevent.spawn(worker, share) for share in shares], raise_error=True)
        wall_s = time.perf_counter() - wall_before
        client_cpu_s = time.process_time() - cpu_before
        target_cpu_s = sum(self.target.cpu_times()[:2]) - target_before
        assert not wrong, f"{len(wrong)} of {count} answers on {path} were wrong: {wrong[:3]}"
        return Burst(count, wall_s, client_cpu_s, target_cpu_s)

    def close(self) -> None:
        """Close the pooled connections."""
        self.client.close()


def _chat_body() -> bytes:
    prompt = f"What does maxmemory-policy allkeys-lru do? ({secrets.token_hex(4)})"
    return json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}
    ).encode()


def _warm(driver: Driver, body: bytes) -> bytes:
    """Send `body` until it is a HIT; returns the cached answer."""
    status, x_cache, content = driver.post(CHAT_PATH, body)
    assert status == 200 and x_cache == "MISS", (status, x_cache, content[:200])
    status, x_cache, cached = driver.post(CHAT_PATH, body)
    assert status == 200 and x_cache == "HIT" and cached == content
    return cached


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


UPSTREAM_LATENCY = "fixed:5ms"


@contextlib.contextmanager
def one_instance_stacks(redis_url: str, rate_limit: str) -> Iterator[dict[str, Stack]]:
    """A one-instance stack per backend at `rate_limit`, up together so both are measured in
    the same minute."""
    with ExitStack() as running:
        yield {
            backend: running.enter_context(
                Stack(
                    StackConfig(
                        backend=backend,
                        instances=1,
                        redis_url=redis_url if backend == "redis" else None,
                        upstream_latency=UPSTREAM_LATENCY,
                        target_env={"RATE_LIMIT": rate_limit},
                    )
                )
            )
            for backend in ("redis", "memory")
        }


@pytest.fixture(scope="module")
def stacks(
    redis_url: str, backend_versions: dict[str, str], ratio_report: RatioReport
) -> Iterator[dict[str, Stack]]:
    """A one-instance stack per backend, the limiter off, up together."""
    ratio_report.context["versions"] = backend_versions
    with one_instance_stacks(redis_url, "none") as running:
        yield running


def hit_and_bare_bursts(
    stacks: dict[str, Stack], rounds: int = ROUNDS
) -> dict[tuple[str, str], list[Burst]]:
    """`rounds` bursts of cached chat requests and of /_bare per stack, after a warm-up, the
    two paths alternating which goes first; keyed by (stack name, path)."""
    drivers = {name: Driver(stack, GREENLETS) for name, stack in stacks.items()}
    bodies = {name: _chat_body() for name in stacks}
    bursts: dict[tuple[str, str], list[Burst]] = {}
    try:
        cached = {name: _warm(drivers[name], bodies[name]) for name in stacks}
        for name, driver in drivers.items():
            driver.burst(CHAT_PATH, bodies[name], WARMUP_REQUESTS, cached[name])
            driver.burst(BARE_PATH, b"{}", WARMUP_REQUESTS, None)
        for round_index in range(rounds):
            # Alternate which path goes first, so a slow moment is not always blamed on one.
            paths = [CHAT_PATH, BARE_PATH] if round_index % 2 == 0 else [BARE_PATH, CHAT_PATH]
            for name, driver in drivers.items():
                for path in paths:
                    expected = cached[name] if path == CHAT_PATH else None
                    body = bodies[name] if path == CHAT_PATH else b"{}"
                    burst = driver.burst(path, body, REQUESTS_PER_BURST, expected)
                    bursts.setdefault((name, path), []).append(burst)
    finally:
        for driver in drivers.values():
            driver.close()
    return bursts


def throughput_figure(
    name: str, chat: list[Burst], bare: list[Burst], details: dict[str, Any]
) -> RatioFigure:
    """Cached chat throughput / /_bare's, round by round, against the goal; `details` follow
    the rounds' ratios and rates."""
    ratios = [c.rps / b.rps for c, b in zip(chat, bare, strict=True)]
    return RatioFigure(
        name=name,
        value=statistics.median(ratios),
        goal_op=">=",
        goal=THROUGHPUT_GOAL,
        details={
            "ratio per round": _spread(ratios),
            "cache-hit req/s": _spread([c.rps for c in chat]),
            "bare req/s": _spread([b.rps for b in bare]),
            **details,
        },
    )


def test_cache_hit_throughput_against_bare(
    stacks: dict[str, Stack], ratio_report: RatioReport
) -> None:
    bursts = hit_and_bare_bursts(stacks)
    for name in stacks:
        chat, bare = bursts[(name, CHAT_PATH)], bursts[(name, BARE_PATH)]
        ratio_report.add(
            throughput_figure(
                f"cache-hit throughput / bare ({name})",
                chat,
                bare,
                {
                    # Near 1.0 for the target means it, not the client, set the pace.
                    "target CPU, share of one core (hit)": _spread(
                        [c.target_cpu_share for c in chat]
                    ),
                    "target CPU, share of one core (bare)": _spread(
                        [b.target_cpu_share for b in bare]
                    ),
                    "client CPU, share of one core (hit)": _spread(
                        [c.client_cpu_share for c in chat]
                    ),
                    "client CPU, share of one core (bare)": _spread(
                        [b.client_cpu_share for b in bare]
                    ),
                    "client CPU µs per request": _spread(
                        [1e6 * b.client_cpu_s / b.requests for b in chat + bare]
                    ),
                    "setup": (
                        f"{ROUNDS} rounds x {REQUESTS_PER_BURST} requests per path, "
                        f"{GREENLETS} greenlets, after {WARMUP_REQUESTS} warm-up requests "
                        "per path (excluded)"
                    ),
                },
            )
        )


def _async_get(
    make_client: Callable[[], aioredis.Redis], key: str, count: int, idle_s: float = 0.0
) -> tuple[bytes | None, OpTimings]:
    """`count` sequential redis.asyncio GETs of `key`, timed as the target times its own;
    with `idle_s`, the process sleeps that long before each (as a target idles between
    requests), so the GET pays this machine's wake-up from idle as the target's do."""

    async def run() -> tuple[bytes | None, OpTimings]:
        timings = OpTimings()
        client = make_client()
        try:
            value = await client.get(key)
            for _ in range(WARMUP_REQUESTS):
                await client.get(key)
            for _ in range(count):
                if idle_s:
                    time.sleep(idle_s)  # blocking on purpose: the whole process idles
                with timings.measure("GET"):
                    await client.get(key)
        finally:
            await client.aclose()
            await client.connection_pool.disconnect()
        return value if isinstance(value, bytes) else None, timings

    return asyncio.run(run())


def _direct_sync_get(url: str, key: str, count: int) -> OpTimings:
    """`count` sequential synchronous redis-py GETs of `key`, for reference."""
    timings = OpTimings()
    with redis.Redis.from_url(url) as client:
        for _ in range(WARMUP_REQUESTS):
            client.get(key)
        for _ in range(count):
            with timings.measure("GET"):
                client.get(key)
    return timings


def test_target_redis_get_p50_against_direct(
    stacks: dict[str, Stack], ratio_report: RatioReport
) -> None:
    stack = stacks["redis"]
    assert stack.redis_url is not None
    driver = Driver(stack, concurrency=1)
    body = _chat_body()
    try:
        cached = _warm(driver, body)
        driver.burst(CHAT_PATH, body, WARMUP_REQUESTS, cached)
        # Only the measured requests go into the target's histogram.
        assert driver.post("/stats/reset", b"")[0] == 200
        driver.burst(CHAT_PATH, body, SEQUENTIAL_REQUESTS, cached)
    finally:
        driver.close()
    stats: dict[str, Any] = stack.target_stats()[0]
    assert stats["hits"] == SEQUENTIAL_REQUESTS and stats["misses"] == 0
    target_get = stats["redis_op_latency_us"]["GET"]
    assert target_get["count"] == SEQUENTIAL_REQUESTS

    key = f"{stack.key_prefix}:cache:{request_hash(json.loads(body))}"
    url = stack.redis_url
    value, direct = _async_get(lambda: aioredis.Redis.from_url(url), key, SEQUENTIAL_REQUESTS)
    assert value == cached, "the direct GET must read the very entry the target serves"
    direct_get = direct.snapshot()["GET"]
    # The target's pool type (blocking, 10 connections) separates pool cost from app cost.
    _, pooled = _async_get(
        lambda: aioredis.Redis(connection_pool=create_pool(TargetSettings(redis_url=url))),
        key,
        SEQUENTIAL_REQUESTS,
    )
    pooled_get = pooled.snapshot()["GET"]
    sync_get = _direct_sync_get(url, key, SEQUENTIAL_REQUESTS).snapshot()["GET"]
    _, idle = _async_get(
        lambda: aioredis.Redis.from_url(url), key, SEQUENTIAL_REQUESTS, IDLE_BEFORE_GET_S
    )
    idle_get = idle.snapshot()["GET"]
    ratio_report.add(
        RatioFigure(
            name="target Redis GET p50 / direct redis.asyncio GET p50",
            value=target_get["p50_us"] / direct_get["p50_us"],
            goal_op="<=",
            goal=GET_P50_GOAL,
            details={
                "target GET p50/p99 µs": f"{target_get['p50_us']} / {target_get['p99_us']}",
                "direct redis.asyncio GET p50/p99 µs": (
                    f"{direct_get['p50_us']} / {direct_get['p99_us']}"
                ),
                "direct GET through the target's pool type p50/p99 µs (reference)": (
                    f"{pooled_get['p50_us']} / {pooled_get['p99_us']}"
                ),
                "direct sync redis-py GET p50/p99 µs (reference)": (
                    f"{sync_get['p50_us']} / {sync_get['p99_us']}"
                ),
                f"direct redis.asyncio GET after {IDLE_BEFORE_GET_S * 1e6:.0f} µs idle, "
                "p50/p99 µs (reference: this machine's wake-up cost)": (
                    f"{idle_get['p50_us']} / {idle_get['p99_us']}"
                ),
                "setup": (
                    f"{SEQUENTIAL_REQUESTS} sequential ops each, after {WARMUP_REQUESTS} "
                    "warm-up ops (excluded); target figures from its GET /stats"
                ),
            },
        )
    )
