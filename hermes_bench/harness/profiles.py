"""Run profiles: how much load each cell of a claims run gets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from hermes_bench.errors import ConfigError
from hermes_bench.latency_spec import DEFAULT_LATENCY
from hermes_bench.results.vocabulary import OUTAGE_FAULTS


@dataclass(frozen=True)
class Profile:
    """Sizes of one claims run; every cell uses the same workload and seed."""

    name: str
    users: int
    cache_requests: int  # chat requests per cache cell
    ratelimit_seconds: int
    instances: int  # N of the multi-instance cells
    upstream_latency: str  # the real upstream the run stands for
    time_scale: float  # the fake upstream sleeps upstream_latency x this, to keep runs short
    repeat: int  # times each one-instance cache cell and the probe run, for intervals
    catalogue_size: int
    zipf_alpha: float
    one_off_share: float
    rate_limit: str
    probe_ops: int
    # The pool cell: requests in flight at each step (the run's `users` is added), and requests
    # per step (at least 2 per connection, so that every connection is reused).
    pool_in_flight: tuple[int, ...]
    pool_requests: int
    # The eviction cell: chat requests of its workload per maxmemory-policy.
    eviction_requests: int
    # The outage cell: each fault lasts outage_fault_s (at least REDIS_TIMEOUT + 1 s), with
    # outage_calm_s of load before and at least as much after.
    outage_fault_s: float = 2.0
    outage_calm_s: float = 1.0
    outage_faults: tuple[str, ...] = OUTAGE_FAULTS
    # The capacity sweep (--sweep, or the capacity profile): arrival rates tried in turn, each
    # for sweep_step_s, on one target per backend and against /_bare.
    sweep: bool = False
    # The cache cells ask with stream: true and record the time to the first token (--stream).
    stream: bool = False
    sweep_rates: tuple[float, ...] = (25, 50, 100, 200, 400, 800, 1600, 3200)
    sweep_step_s: float = 5.0


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick", users=8, cache_requests=600, ratelimit_seconds=4, instances=2,
        upstream_latency=DEFAULT_LATENCY, time_scale=0.1, repeat=1,
        catalogue_size=200, zipf_alpha=1.0, one_off_share=0.1, rate_limit="10/second",
        probe_ops=2000, pool_in_flight=(5, 10, 20, 50, 100), pool_requests=200,
        eviction_requests=800,
    ),
    "standard": Profile(
        name="standard", users=16, cache_requests=4000, ratelimit_seconds=12, instances=3,
        upstream_latency=DEFAULT_LATENCY, time_scale=0.4, repeat=3,
        catalogue_size=1000, zipf_alpha=1.0, one_off_share=0.1, rate_limit="10/second",
        probe_ops=10000, pool_in_flight=(5, 10, 20, 50, 100, 200), pool_requests=1000,
        eviction_requests=3000, outage_fault_s=5.0, outage_calm_s=3.0,
    ),
    "full": Profile(
        name="full", users=32, cache_requests=20000, ratelimit_seconds=30, instances=4,
        upstream_latency=DEFAULT_LATENCY, time_scale=1.0, repeat=3,
        catalogue_size=5000, zipf_alpha=1.0, one_off_share=0.1, rate_limit="10/second",
        probe_ops=50000, pool_in_flight=(5, 10, 20, 50, 100, 200, 500), pool_requests=3000,
        eviction_requests=10000, outage_fault_s=10.0, outage_calm_s=5.0,
    ),
}  # fmt: skip
# The quick profile's cells and, first of all, the capacity sweep.
PROFILES["capacity"] = dataclasses.replace(PROFILES["quick"], name="capacity", sweep=True)


def profile_named(name: str) -> Profile:
    """The profile called `name`; ConfigError lists the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(
            f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}"
        ) from None
