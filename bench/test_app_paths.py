"""The app's HIT and MISS paths as it serves by default (rate limiter on), printed, never asserted.

a. cache-hit throughput / bare endpoint with the rate limiter on (fixed window, a limit never
   reached), per backend, as test_ratios measures it without the limiter;
b. HIT p50 / bare p50 at one connection, per backend: the time face of (a);
c. the MISS overhead over the upstream: MISS p50 at the client less the upstream's own served
   p50 (the fake upstream's clock, reset before each round), per backend, with the steps of
   the app's Server-Timing to say where it goes.
The tests check behaviour (every answer a 200 with the right X-Cache); speed goes to the report.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
import uvloop

from bench.conftest import RatioFigure, RatioReport
from bench.test_ratios import (
    BARE_PATH,
    CHAT_PATH,
    GREENLETS,
    THROUGHPUT_GOAL,
    UPSTREAM_LATENCY,
    Driver,
    _chat_body,
    _spread,
    _warm,
    hit_and_bare_bursts,
    one_instance_stacks,
    throughput_figure,
)
from hermes_bench.app.redis_client import create_pool
from hermes_bench.app.server_timing import LOOKUP_STEPS, parse_server_timing
from hermes_bench.app.settings import TargetSettings
from hermes_bench.http_json import request_json
from hermes_bench.stack.stack import Stack

pytestmark = pytest.mark.e2e

BACKENDS = ("redis", "memory")
# The app's default limiter (fixed window), at a limit no run here reaches.
NEVER_REACHED = "100000000/minute"
ROUNDS = 3
REQUESTS_PER_BURST = 2000
WARMUP_REQUESTS = 300
SEQUENTIAL_REQUESTS = 1000
MISSES_PER_ROUND = 300
MISS_WARMUP = 50
HIT_TIME_GOAL = 2.0  # HIT p50 <= 2 x bare p50: throughput / bare >= 0.5 at one connection
MISS_OVERHEAD_GOAL_MS = 1.5


@pytest.fixture(scope="module")
def limited_stacks(
    redis_url: str, backend_versions: dict[str, str], ratio_report: RatioReport
) -> Iterator[dict[str, Stack]]:
    """A one-instance stack per backend with the default rate limiter on, up together."""
    ratio_report.context["versions"] = backend_versions
    with one_instance_stacks(redis_url, NEVER_REACHED) as running:
        yield running


def command_cpu_us(url: str, count: int = SEQUENTIAL_REQUESTS) -> float:
    """CPU µs of one redis.asyncio GET in a tight loop, on the target's pool type and event
    loop (uvloop): what each Redis command costs the target's one core at the least."""

    async def run() -> float:
        client = aioredis.Redis(connection_pool=create_pool(TargetSettings(redis_url=url)))
        try:
            await client.set("hermes-bench-bench:cpu-probe", b"x" * 550, ex=60)
            for _ in range(WARMUP_REQUESTS):
                await client.get("hermes-bench-bench:cpu-probe")
            started = time.process_time()
            for _ in range(count):
                await client.get("hermes-bench-bench:cpu-probe")
            return 1e6 * (time.process_time() - started) / count
        finally:
            await client.aclose()
            await client.connection_pool.disconnect()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run())


def test_cache_hit_throughput_with_the_limiter_against_bare(
    limited_stacks: dict[str, Stack], ratio_report: RatioReport
) -> None:
    bursts = hit_and_bare_bursts(limited_stacks, ROUNDS)
    redis_url = limited_stacks["redis"].redis_url
    assert redis_url is not None
    command_us = command_cpu_us(redis_url)
    for name in limited_stacks:
        chat, bare = bursts[(name, CHAT_PATH)], bursts[(name, BARE_PATH)]
        bare_cpu_us = statistics.median(1e6 * b.target_cpu_s / b.requests for b in bare)
        # While the target sets the pace, throughput / bare is bare CPU / HIT CPU per request.
        limit = {
            "HIT CPU budget at the goal µs (bare CPU / goal)": round(bare_cpu_us / THROUGHPUT_GOAL),
            "one redis.asyncio GET, CPU µs in a tight loop (target's pool, uvloop)": round(
                command_us, 1
            ),
        }
        ratio_report.add(
            throughput_figure(
                f"cache-hit throughput / bare, rate limiter on ({name})",
                chat,
                bare,
                {
                    "target CPU µs per request (hit)": _spread(
                        [1e6 * c.target_cpu_s / c.requests for c in chat]
                    ),
                    "target CPU µs per request (bare)": _spread(
                        [1e6 * b.target_cpu_s / b.requests for b in bare]
                    ),
                    **(limit if name == "redis" else {}),
                    "setup": (
                        f"RATE_LIMIT={NEVER_REACHED} (fixed window), {ROUNDS} rounds x "
                        f"{REQUESTS_PER_BURST} requests per path, {GREENLETS} greenlets, after "
                        f"{WARMUP_REQUESTS} warm-up requests per path (excluded)"
                    ),
                },
            )
        )


def _timed(driver: Driver, path: str, body: bytes) -> tuple[int, str | None, dict[str, int]]:
    """One request: µs at the client, X-Cache, and the Server-Timing steps in µs."""
    started = time.perf_counter_ns()
    response = driver.client.post(path, body=body, headers=driver.headers)
    try:
        response.read()
    finally:
        response.release()
    elapsed_us = (time.perf_counter_ns() - started) // 1000
    assert response.status_code == 200, response.status_code
    x_cache, timing = response.get("X-Cache"), response.get("Server-Timing")
    steps = parse_server_timing(timing) if isinstance(timing, str) else None
    return elapsed_us, x_cache if isinstance(x_cache, str) else None, steps or {}


def test_hit_time_against_bare_at_one_connection(
    limited_stacks: dict[str, Stack], ratio_report: RatioReport
) -> None:
    for name, stack in limited_stacks.items():
        driver = Driver(stack, concurrency=1)
        body = _chat_body()
        times: dict[str, list[int]] = {CHAT_PATH: [], BARE_PATH: []}
        lookup: list[int] = []
        try:
            _warm(driver, body)
            for index in range(WARMUP_REQUESTS + SEQUENTIAL_REQUESTS):
                # Interleaved one by one, so a slow moment of the machine hits both alike.
                hit_us, x_cache, steps = _timed(driver, CHAT_PATH, body)
                bare_us, _, _ = _timed(driver, BARE_PATH, b"{}")
                assert x_cache == "HIT"
                if index >= WARMUP_REQUESTS:
                    times[CHAT_PATH].append(hit_us)
                    times[BARE_PATH].append(bare_us)
                    lookup.append(sum(us for step, us in steps.items() if step != "total"))
        finally:
            driver.close()
        hit_p50, bare_p50 = (statistics.median(times[p]) for p in (CHAT_PATH, BARE_PATH))
        ratio_report.add(
            RatioFigure(
                name=f"HIT p50 / bare p50 at one connection, rate limiter on ({name})",
                value=hit_p50 / bare_p50,
                goal_op="<=",
                goal=HIT_TIME_GOAL,
                details={
                    "HIT p50 µs": hit_p50,
                    "bare p50 µs": bare_p50,
                    "HIT less bare p50 µs": hit_p50 - bare_p50,
                    "limiter + cache read p50 µs (Server-Timing)": statistics.median(lookup),
                    "setup": (
                        f"{SEQUENTIAL_REQUESTS} HIT and {SEQUENTIAL_REQUESTS} bare requests "
                        f"interleaved, one connection, after {WARMUP_REQUESTS} each (excluded)"
                    ),
                },
            )
        )


def _miss_body() -> bytes:
    prompt = f"What does a MISS cost? ({secrets.token_hex(8)})"
    return json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}
    ).encode()


def _miss_round(stack: Stack, driver: Driver, count: int) -> dict[str, Any]:
    """`count` sequential MISSes after resetting the upstream's clock: p50s in µs."""
    request_json("POST", stack.upstream_url + "/ground-truth/reset", {})
    client_us: list[int] = []
    steps: dict[str, list[int]] = {}
    for _ in range(count):
        elapsed_us, x_cache, timed = _timed(driver, CHAT_PATH, _miss_body())
        assert x_cache == "MISS", x_cache
        client_us.append(elapsed_us)
        for step, us in timed.items():
            steps.setdefault(step, []).append(us)
    served = stack.ground_truth()["served_us"]
    assert served["count"] == count, "every MISS must have reached the upstream once"
    return {
        "client": statistics.median(client_us),
        "served": served["p50_us"],
        **{step: statistics.median(values) for step, values in steps.items()},
    }


def test_miss_overhead_over_the_upstream(
    limited_stacks: dict[str, Stack], ratio_report: RatioReport
) -> None:
    drivers = {name: Driver(stack, concurrency=1) for name, stack in limited_stacks.items()}
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in limited_stacks}
    try:
        for driver in drivers.values():
            for _ in range(MISS_WARMUP):
                assert _timed(driver, CHAT_PATH, _miss_body())[1] == "MISS"
        for _ in range(ROUNDS):
            for name, driver in drivers.items():
                rounds[name].append(_miss_round(limited_stacks[name], driver, MISSES_PER_ROUND))
    finally:
        for driver in drivers.values():
            driver.close()
    for name, measured in rounds.items():
        overheads_ms = [(r["client"] - r["served"]) / 1000 for r in measured]

        def p50(part: str, rows: list[dict[str, Any]] = measured) -> float:
            return statistics.median(r[part] for r in rows if part in r)

        lookup = [s for s in LOOKUP_STEPS if s in measured[0]]
        ratio_report.add(
            RatioFigure(
                name=f"MISS overhead over the upstream, ms ({name})",
                value=statistics.median(overheads_ms),
                goal_op="<=",
                goal=MISS_OVERHEAD_GOAL_MS,
                details={
                    "overhead ms per round": _spread(overheads_ms),
                    "MISS p50 at the client µs": p50("client"),
                    "upstream served p50 µs (its own clock)": p50("served"),
                    # Where it goes, p50 of each part (medians over rounds; they need not sum).
                    "steps p50 µs: " + " + ".join(lookup): sum(p50(s) for s in lookup),
                    "upstream step less served p50 µs (SDK, HTTP to and from the upstream)": (
                        p50("upstream") - p50("served")
                    ),
                    "cache-write p50 µs": p50("cache-write"),
                    "client less app total p50 µs (HTTP to and from the app)": (
                        p50("client") - p50("total")
                    ),
                    "setup": (
                        f"{ROUNDS} rounds x {MISSES_PER_ROUND} sequential MISSes (new prompts), "
                        f"one connection, upstream {UPSTREAM_LATENCY}, after {MISS_WARMUP} "
                        f"warm-up MISSes (excluded); RATE_LIMIT={NEVER_REACHED}"
                    ),
                },
            )
        )
