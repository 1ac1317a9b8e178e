"""The app's waits for a pooled Redis connection: timed per acquisition, refusals counted,
served in /stats, and read by the pool cell step by step."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError

from hermes_bench.app.counters import Counters, PoolWaits
from hermes_bench.app.redis_client import (
    TimedBlockingPool,
    TimedPool,
    create_pool,
    is_refusal,
)
from hermes_bench.app.settings import TargetSettings
from hermes_bench.harness.failure_cells import (
    measure_pool_step,
    open_pool,
    pool_bodies,
    warm_pool_cache,
)
from hermes_bench.results.model import PoolStep
from hermes_bench.stack.stack import Stack, StackConfig


def test_waits_are_summarised_across_batches_and_reset() -> None:
    waits = PoolWaits()
    for n in range(300):  # past one batch, and a part of the next
        waits.record_ns((n + 1) * 1000)
    waits.refusals = 4
    summary = waits.snapshot()
    assert summary["count"] == 300 and summary["min_us"] == 1 and summary["max_us"] == 300
    waits.record_ns(0)  # below a µs: kept, as 1 µs
    assert waits.snapshot()["count"] == 301
    waits.reset()
    assert waits.snapshot() == {"count": 0} and waits.refusals == 0


def test_stats_serve_the_waits_apart_from_the_redis_commands() -> None:
    counters = Counters()
    counters.pool_waits.record_ns(2_000_000)
    counters.pool_waits.refusals = 1
    counters.op_timings.record_ns("GET", 100_000)
    stats = counters.snapshot()
    assert stats["redis_pool_wait_us"]["count"] == 1 and stats["redis_pool_refusals"] == 1
    assert list(stats["redis_op_latency_us"]) == ["GET"]  # a wait is not a Redis command
    counters.reset()
    stats = counters.snapshot()
    assert stats["redis_pool_wait_us"] == {"count": 0} and stats["redis_pool_refusals"] == 0


def test_a_refusal_is_the_pool_giving_no_connection_not_redis_failing() -> None:
    assert is_refusal(MaxConnectionsError("Too many connections"))
    timed_out = RedisConnectionError("No connection available.")
    timed_out.__cause__ = TimeoutError()
    assert is_refusal(timed_out)
    refused = RedisConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")
    refused.__cause__ = ConnectionRefusedError()
    assert not is_refusal(refused)
    assert not is_refusal(OSError("unreachable"))


def test_each_pool_mode_is_timed() -> None:
    url = "redis://127.0.0.1:1/0"  # nothing connects: the pool is only built
    plain = create_pool(TargetSettings(redis_url=url, redis_pool_mode="nonblocking"))
    blocking = create_pool(TargetSettings(redis_url=url, redis_pool_mode="blocking"))
    assert type(plain) is TimedPool and isinstance(plain, aioredis.ConnectionPool)
    assert type(blocking) is TimedBlockingPool
    assert isinstance(blocking, aioredis.BlockingConnectionPool)
    waits = PoolWaits()
    assert create_pool(TargetSettings(redis_url=url), waits).waits is waits


@pytest.mark.redis
def test_the_plain_pool_times_its_refusals_and_the_blocking_one_its_waits(
    redis_url: str,
) -> None:
    async def plain() -> PoolWaits:
        waits = PoolWaits()
        settings = TargetSettings(
            redis_url=redis_url, redis_pool_mode="nonblocking", redis_max_connections=2
        )
        pool = create_pool(settings, waits)
        held = [await pool.get_connection(), await pool.get_connection()]
        with pytest.raises(MaxConnectionsError):
            await pool.get_connection()
        for connection in held:
            await pool.release(connection)
        await pool.disconnect()
        return waits

    async def blocking() -> tuple[PoolWaits, float]:
        waits = PoolWaits()
        settings = TargetSettings(
            redis_url=redis_url,
            redis_pool_mode="blocking",
            redis_max_connections=1,
            redis_timeout_s=0.2,
        )
        pool = create_pool(settings, waits)
        held = await pool.get_connection()
        with pytest.raises(RedisConnectionError):  # none freed within REDIS_TIMEOUT
            await pool.get_connection()
        timed_out_us = waits.snapshot()["max_us"]
        # The app's own deadline (one REDIS_TIMEOUT per request) cancels the wait first:
        # a refusal all the same.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pool.get_connection(), 0.05)

        async def release_later() -> None:
            await asyncio.sleep(0.1)
            await pool.release(held)

        releasing = asyncio.create_task(release_later())
        await pool.release(await pool.get_connection())  # waits for the one held
        await releasing
        await pool.disconnect()
        return waits, timed_out_us

    plain_waits = asyncio.run(plain())
    assert plain_waits.snapshot()["count"] == 3 and plain_waits.refusals == 1
    blocking_waits, timed_out_us = asyncio.run(blocking())
    summary = blocking_waits.snapshot()
    assert summary["count"] == 4 and blocking_waits.refusals == 2
    # Lower bounds only: a wait lasts at least as long as what it waited for.
    assert timed_out_us >= 190_000
    # Waits of ~0, 0.2 s (timed out), 0.05 s (cancelled) and ~0.1 s (the released connection).
    assert summary["p50_us"] >= 45_000


# --- the pool cell's steps, through a real target ----------------------------------------------

POOL_SIZE = 2
IN_FLIGHT = 20
REQUESTS = 200


@pytest.fixture(scope="module")
def pool_stacks(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Stack]]:
    """One target per pool mode on the session's Redis with a pool of 2, sharing one cache
    with the prompts in it (warmed through the blocking pool, which refuses none)."""
    prefix = f"hermes-bench-test:poolwait-{secrets.token_hex(4)}"
    stacks: dict[str, Stack] = {}
    try:
        for mode in ("blocking", "nonblocking"):
            target_env = {
                "REDIS_MAX_CONNECTIONS": str(POOL_SIZE),
                "REDIS_POOL_MODE": mode,
                "RATE_LIMIT": "1000000/minute",  # every request counted, none refused
                "HERMES_KEY_PREFIX": prefix,
            }
            config = StackConfig(
                redis_url=redis_url,
                time_scale=0.1,
                target_env=target_env,
                run_dir=tmp_path_factory.mktemp(mode),
            )
            stacks[mode] = Stack(config).start()
        warm_pool_cache(stacks["blocking"].target_urls[0], pool_bodies())
        for mode, stack in stacks.items():
            open_pool(stack.target_urls[0], pool_bodies(), POOL_SIZE, mode)
        yield stacks
    finally:
        for stack in stacks.values():
            stack.stop()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
        client.close()


def _step(stack: Stack, mode: str, in_flight: int) -> PoolStep:
    return measure_pool_step(stack, stack, mode, in_flight, REQUESTS, pool_bodies())


@pytest.mark.redis
def test_the_blocking_pool_waits_longer_past_its_size_and_each_step_counts_its_own(
    pool_stacks: dict[str, Stack],
) -> None:
    stack = pool_stacks["blocking"]
    alone, crowded = _step(stack, "blocking", 1), _step(stack, "blocking", IN_FLIGHT)
    for step in (alone, crowded):
        assert step.statuses == {"200": REQUESTS} and step.served_by_redis == REQUESTS
        wait = step.connection_wait
        assert wait is not None and step.connection_refusals == 0
        # A cached HIT with the fixed window is one Redis command: one connection each, and
        # the counters were reset before the step, so the warm-up and the other step are out.
        assert wait.count == REQUESTS == step.app_counters["requests"]
    assert alone.connection_wait is not None and crowded.connection_wait is not None
    # Past the pool's size requests queue for its 2 connections (the waits' tail: ~40 ms here,
    # a fresh request may take a freed connection before one already waiting); one request
    # alone never waits for another's round trip (~30 µs).
    assert (crowded.connection_wait.p99_us or 0) > (alone.connection_wait.p99_us or 0)


@pytest.mark.redis
def test_the_plain_pool_past_its_size_records_its_refusals_as_waits(
    pool_stacks: dict[str, Stack],
) -> None:
    step = _step(pool_stacks["nonblocking"], "nonblocking", IN_FLIGHT)
    wait = step.connection_wait
    assert wait is not None and step.connection_refusals is not None
    # Every request asks once; each refusal fails that request's one Redis command.
    assert wait.count == REQUESTS and 0 < step.connection_refusals <= REQUESTS
    assert step.served_by_redis == REQUESTS - step.connection_refusals
    assert step.app_warnings.get("Too many connections", 0) >= step.connection_refusals
