"""Per-instance counters, Redis operation latencies and waits for a pooled connection, as
served by GET /stats."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

from hdrh.histogram import HdrHistogram

from hermes_bench.histograms import clamp_us, latency_summary, new_histogram, record_values


class OpTimings:
    """Round-trip time of each Redis operation as the app sees it, one histogram per op name."""

    def __init__(self) -> None:
        self._hists: dict[str, HdrHistogram] = {}

    def record_ns(self, op: str, elapsed_ns: int) -> None:
        """Record one operation's duration given in nanoseconds."""
        hist = self._hists.get(op)
        if hist is None:
            hist = self._hists[op] = new_histogram()
        hist.record_value(clamp_us(elapsed_ns // 1000))

    @contextmanager
    def measure(self, op: str) -> Iterator[None]:
        """Time the enclosed block (an awaited Redis call) as one `op`, failures included."""
        start = time.perf_counter_ns()
        try:
            yield
        finally:
            self.record_ns(op, time.perf_counter_ns() - start)

    def snapshot(self) -> dict[str, dict[str, float | int]]:
        """Summary per op name."""
        return {op: latency_summary(h) for op, h in sorted(self._hists.items())}

    def reset(self) -> None:
        """Forget every recorded value."""
        self._hists.clear()


class PoolWaits:
    """Time from asking the Redis pool for a connection to having one or being refused, and
    the refusals: every connection busy (the plain pool) or none freed within the blocking
    pool's timeout."""

    def __init__(self) -> None:
        self._hist = new_histogram()
        # Recorded in batches: one numpy pass costs ~0.1 µs a value, hdrh's own ~1 µs, and
        # this runs for every Redis command.
        self._pending: list[int] = []
        self.refusals = 0

    def record_ns(self, elapsed_ns: int) -> None:
        """Record one acquisition's duration given in nanoseconds."""
        self._pending.append(elapsed_ns // 1000)
        if len(self._pending) >= _WAIT_BATCH:
            self._flush()

    def _flush(self) -> None:
        record_values(self._hist, self._pending)
        self._pending.clear()

    def snapshot(self) -> dict[str, float | int]:
        """Summary of every wait recorded, refusals included."""
        self._flush()
        return latency_summary(self._hist)

    def reset(self) -> None:
        """Forget every wait and refusal."""
        self._hist.reset()
        self._pending.clear()
        self.refusals = 0


_WAIT_BATCH = 256


@dataclass
class Counters:
    """Event counts of one target instance since start or the last reset.

    `*_errors` count Redis calls made that failed; skips count calls not made (breaker open,
    or an earlier call of the same request failed): `redis_errors` is the sum of the former.
    """

    requests: int = 0
    hits: int = 0
    misses: int = 0
    bypasses: int = 0
    upstream_calls: int = 0
    upstream_errors: int = 0
    rate_limited: int = 0
    cache_errors: int = 0
    cache_write_errors: int = 0  # of cache_errors: answers sent with X-Cache-Write: failed
    cache_write_skips: int = 0  # writes not tried (X-Cache-Write: skipped)
    rate_limit_errors: int = 0
    rate_limit_fail_open: int = 0  # admitted without a limiter decision (X-RateLimit-Status)
    rate_limit_fail_closed: int = 0  # refused with 503 for want of one
    breaker_open_skips: int = 0
    breaker_opens: int = 0
    redis_budget_skips: int = 0
    sessions_created: int = 0
    session_errors: int = 0
    session_conflicts: int = 0  # conditional writes refused with 412 (If-Match)
    bad_requests: int = 0
    # The last Redis failure, for operators (names the Redis, password redacted); None if none.
    redis_last_error: str | None = None
    op_timings: OpTimings = field(default_factory=OpTimings)
    pool_waits: PoolWaits = field(default_factory=PoolWaits)

    def snapshot(self) -> dict[str, Any]:
        """All counts plus Redis op latency and pool wait summaries, JSON-ready."""
        counts: dict[str, Any] = {name: getattr(self, name) for name in self._count_names()}
        # Every backend failure is a Redis failure: the memory backend cannot fail.
        counts["redis_errors"] = self.cache_errors + self.rate_limit_errors + self.session_errors
        counts["redis_last_error"] = self.redis_last_error
        counts["redis_op_latency_us"] = self.op_timings.snapshot()
        # Apart from the op latencies: a wait for a connection is not a Redis command.
        counts["redis_pool_wait_us"] = self.pool_waits.snapshot()
        counts["redis_pool_refusals"] = self.pool_waits.refusals
        return counts

    def reset(self) -> None:
        """Zero every count and histogram."""
        for name in self._count_names():
            setattr(self, name, 0)
        self.redis_last_error = None
        self.op_timings.reset()
        self.pool_waits.reset()

    def _count_names(self) -> list[str]:
        return [f.name for f in fields(self) if f.name not in _NOT_COUNTS]


_NOT_COUNTS = ("op_timings", "pool_waits", "redis_last_error")
