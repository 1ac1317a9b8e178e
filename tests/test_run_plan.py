"""The cells a claims run plans: every kind per backend, repeats of the statistical ones."""

from __future__ import annotations

import dataclasses

from hermes_bench.harness.claims_run import RunOptions, new_results, plan_cells
from hermes_bench.harness.profiles import PROFILES


def test_repeats_add_the_one_instance_cache_cells_and_the_probe_after_the_rest() -> None:
    profile = dataclasses.replace(PROFILES["quick"], repeat=3)
    plans = plan_cells(RunOptions(profile=profile, backends=("redis",)))
    assert [(p.id, p.repeat) for p in plans] == [
        ("cache-redis-1", 1),
        ("cache-redis-2", 1),
        ("ratelimit-redis-2", 1),
        ("restart-redis-2", 1),
        ("probe-redis-2", 1),
        ("memory-redis-1", 1),
        ("pool-redis-1", 1),
        ("eviction-redis-1", 1),
        ("outage-redis-1", 1),
        ("cache-redis-1-r2", 2),
        ("probe-redis-2-r2", 2),
        ("cache-redis-1-r3", 3),
        ("probe-redis-2-r3", 3),
        ("fallback", 1),
    ]


def test_the_run_records_the_upstream_it_stands_for_and_its_time_scale() -> None:
    for name, profile in PROFILES.items():
        options = new_results(RunOptions(profile=profile), "run-x").run.options
        assert options.upstream_latency == "lognormal:700ms:0.45", name
        assert options.time_scale == profile.time_scale and options.repeat == profile.repeat
    assert PROFILES["standard"].repeat >= 3


def test_a_redis_given_by_url_gets_no_eviction_cell() -> None:
    # C10 sets maxmemory and its policy: only on the Redis the run starts itself.
    plans = plan_cells(RunOptions(profile=PROFILES["quick"], redis_url="redis://cache:6379/0"))
    kinds = {plan.kind for plan in plans}
    assert "eviction" not in kinds and {"memory", "pool"} <= kinds


def test_the_sweep_adds_a_sweep_per_backend_and_the_generators_own_limit() -> None:
    plans = plan_cells(RunOptions(profile=PROFILES["capacity"]))
    sweeps = [(p.id, p.kind, p.backend) for p in plans if p.kind in ("sweep", "generator")]
    assert sweeps == [
        ("sweep-redis-1", "sweep", "redis"),
        ("sweep-memory-1", "sweep", "memory"),
        ("generator", "generator", "memory"),  # /_bare on the stack that adds least to it
    ]
    assert not any(p.kind == "sweep" for p in plan_cells(RunOptions(profile=PROFILES["quick"])))
