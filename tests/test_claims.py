"""Verdicts from results: each follows the figures, and missing or doubtful data is inconclusive."""

from __future__ import annotations

import copy
import random
from typing import Any

from results_builders import RUN, results

from hermes_bench.reports.claims import (
    BETTER,
    BORDERLINE,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_MEASURED,
    evaluate_claims,
)
from hermes_bench.scenarios.metrics import RunMetrics
from hermes_bench.scenarios.summary import build_document
from hermes_bench.upstream.ground_truth import GroundTruth

# The real upstream the test runs stand for, and the scale their fake upstream ran at: a MISS
# measured at miss_ms is the upstream's (miss_ms - OVERHEAD_MS) plus the target's overhead.
REAL_UPSTREAM = "fixed:300ms"
TIME_SCALE = 0.1
OVERHEAD_MS = 1.0


def _document(
    hit_ms: float,
    miss_ms: float,
    hits: int,
    misses: int,
    calls: int,
    *,
    upstream_clock: bool = True,
    seed: int = 1,
) -> dict[str, Any]:
    rng = random.Random(seed)
    metrics = RunMetrics()
    upstream = GroundTruth()
    for outcome, ms, n in (("HIT", hit_ms, hits), ("MISS", miss_ms, misses)):
        for _ in range(n):
            jitter = rng.uniform(0.9, 1.1)
            metrics.record("cache", outcome, int(ms * 1000 * jitter), at_s=1.0)
            if outcome == "MISS":
                upstream.served((ms - OVERHEAD_MS) * 1000 * jitter)
    truth = {"calls": calls, "distinct_requests": misses}
    if upstream_clock:
        snapshot = upstream.snapshot()
        truth |= {key: snapshot[key] for key in ("served_us", "served_histogram")}
    return build_document(snapshot=metrics.snapshot(), ground_truth=truth, cpu={}, run={})


def _cache(backend: str, instances: int, repeat: int = 1, **figures: Any) -> dict[str, Any]:
    suffix = "" if repeat == 1 else f"-r{repeat}"
    return {
        "id": f"cache-{backend}-{instances}{suffix}",
        "kind": "cache",
        "backend": backend,
        "instances": instances,
        "repeat": repeat,
        "status": "ok",
        "metrics": _document(**figures),
        "targets": [],
        "extra": {},
    }


def _by_id(
    data: dict[str, Any], upstream: str = REAL_UPSTREAM, time_scale: float = TIME_SCALE
) -> dict[str, dict[str, Any]]:
    run = copy.deepcopy(RUN)
    run["options"] |= {"upstream_latency": upstream, "time_scale": time_scale}
    claims = evaluate_claims(results(data["cells"], run=run))
    return {claim.id: claim.model_dump() for claim in claims}


def _scaled(ms: float, time_scale: float = TIME_SCALE) -> float:
    """What a MISS measures when the real upstream takes `ms` and ran at `time_scale`."""
    return ms * time_scale + OVERHEAD_MS


def test_response_time_is_judged_at_the_real_upstream_from_the_measured_parts() -> None:
    # 900 hits at 2 ms, 100 misses at a 300 ms upstream + 1 ms: about 32 ms, inside 10-50 ms,
    # although the cell measured its misses at 31 ms (upstream x0.1).
    cell = _cache("redis", 1, hit_ms=2, miss_ms=_scaled(300), hits=900, misses=100, calls=100)
    claim = _by_id({"cells": [cell]})["C1"]
    assert claim["verdict"] == HOLDS
    assert 30 < claim["figures"]["mean at the real upstream (ms)"] < 34
    assert claim["figures"]["as run: mean (ms)"] < 6
    # (301 - 50) / (301 - 2): the hit rate where the mean falls to 50 ms.
    assert claim["figures"]["hit rate for 50 ms"] == "83.9%"
    assert claim["holds_when"].startswith("10-50 ms holds when the hit rate is from 83.9% to ")
    faster = _cache("redis", 1, hit_ms=1, miss_ms=_scaled(30), hits=900, misses=100, calls=100)
    assert _by_id({"cells": [faster]}, upstream="fixed:30ms")["C1"]["verdict"] == BETTER
    slower = _cache("redis", 1, hit_ms=2, miss_ms=_scaled(300), hits=500, misses=500, calls=500)
    assert _by_id({"cells": [slower]})["C1"]["verdict"] == FAILS


def test_verdicts_and_break_even_do_not_depend_on_the_time_scale() -> None:
    seen = []
    for scale in (0.05, 0.2, 1.0):
        cells = [
            _cache(backend, 1, hit_ms=hit, miss_ms=_scaled(300, scale), hits=900, misses=100,
                   calls=100)
            for backend, hit in (("redis", 2), ("memory", 1))
        ]  # fmt: skip
        claims = _by_id({"cells": cells}, time_scale=scale)
        seen.append(
            [(claims[c]["verdict"], claims[c]["holds_when"]) for c in ("C1", "C2", "C4")]
            + [round(claims["C1"]["figures"]["mean at the real upstream (ms)"])]
        )
    assert seen[0] == seen[1] == seen[2], seen


def test_repeats_that_disagree_across_the_bound_are_borderline() -> None:
    # Repeats at 80% and 88% hits: about 62 and 38 ms, on both sides of 50 ms.
    cells = [
        _cache("redis", 1, repeat=k, hit_ms=2, miss_ms=_scaled(300), hits=hits,
               misses=1000 - hits, calls=1000 - hits, seed=k)
        for k, hits in ((1, 800), (2, 880))
    ]  # fmt: skip
    claim = _by_id({"cells": cells})["C1"]
    assert claim["verdict"] == BORDERLINE, claim["figures"]
    low, high = (float(x) for x in claim["figures"]["its 95% interval (ms)"].split(" to "))
    assert low < 50 < high
    one = _by_id({"cells": cells[:1]})["C1"]  # one run alone: its hit rate is the condition
    assert one["verdict"] == FAILS


def test_repeats_are_pooled_and_counted() -> None:
    cells = [
        _cache("redis", 1, repeat=k, hit_ms=2, miss_ms=_scaled(300), hits=900, misses=100,
               calls=100, seed=k)
        for k in (1, 2, 3)
    ]  # fmt: skip
    claim = _by_id({"cells": cells})["C1"]
    assert claim["figures"]["repeats"] == 3 and claim["figures"]["requests"] == 3000
    assert claim["cells"] == ["cache-redis-1", "cache-redis-1-r2", "cache-redis-1-r3"]
    assert "Interval: 95% bootstrap over 3 repeats and their requests." in claim["notes"]


def test_the_upstream_step_of_server_timing_stands_in_for_the_upstream_clock() -> None:
    cell = _cache("redis", 1, hit_ms=2, miss_ms=_scaled(300), hits=900, misses=100, calls=100,
                  upstream_clock=False)  # fmt: skip
    claim = _by_id({"cells": [cell]})["C1"]
    assert claim["verdict"] == INCONCLUSIVE
    assert "cannot tell the upstream's time from the target's" in claim["summary"]
    metrics = RunMetrics()
    for _ in range(100):
        metrics.record("_step:upstream", "MISS", 30_000, at_s=1.0)
    steps = build_document(snapshot=metrics.snapshot(), ground_truth=None, cpu={}, run={})
    histograms = cell["metrics"]["metrics"]["histograms"]["service"]
    histograms["_step:upstream"] = steps["metrics"]["histograms"]["service"]["_step:upstream"]
    claim = _by_id({"cells": [cell]})["C1"]
    assert claim["verdict"] == HOLDS
    assert any("Server-Timing upstream step" in note for note in claim["notes"])


def _streamed(hit_ttft_ms: float, time_scale: float, upstream_clock: bool = True) -> dict[str, Any]:
    """A streamed cache cell: the real upstream's first token after 300 ms and its last 200 ms
    later, both run at `time_scale`; the target adds OVERHEAD_MS to a MISS; 900 HITs."""
    rng = random.Random(7)
    metrics, upstream = RunMetrics(), GroundTruth()
    first_ms, tail_ms = 300 * time_scale, 200 * time_scale
    for outcome, n in (("HIT", 900), ("MISS", 100)):
        for _ in range(n):
            jitter = rng.uniform(0.95, 1.05)
            ttft = hit_ttft_ms if outcome == "HIT" else first_ms + OVERHEAD_MS
            whole = hit_ttft_ms + 0.5 if outcome == "HIT" else first_ms + tail_ms + OVERHEAD_MS
            metrics.record("_ttft", outcome, int(ttft * 1000 * jitter), at_s=1.0)
            metrics.record("cache", outcome, int(whole * 1000 * jitter), at_s=1.0)
            if outcome == "MISS":
                upstream.first_token(first_ms * 1000 * jitter)
                upstream.served((first_ms + tail_ms) * 1000 * jitter)
    snapshot = upstream.snapshot()
    keys = ["served_us", "served_histogram"]
    keys += ["first_token_us", "first_token_histogram"] if upstream_clock else []
    truth = {"calls": 100, "distinct_requests": 100} | {key: snapshot[key] for key in keys}
    cell = _cache("redis", 1, hit_ms=1, miss_ms=1, hits=1, misses=1, calls=1)
    cell["metrics"] = build_document(
        snapshot=metrics.snapshot(), ground_truth=truth, cpu={}, run={}
    )
    return cell


def _streamed_claims(cell: dict[str, Any], time_scale: float) -> dict[str, dict[str, Any]]:
    run = copy.deepcopy(RUN)
    run["options"] |= {"upstream_latency": REAL_UPSTREAM, "time_scale": time_scale, "stream": True}
    claims = evaluate_claims(results([cell], run=run))
    return {claim.id: claim.model_dump() for claim in claims}


def test_a_streamed_run_judges_the_first_token_at_the_real_upstream() -> None:
    seen = []
    for scale in (0.05, 0.2, 1.0):
        claims = _streamed_claims(_streamed(hit_ttft_ms=2, time_scale=scale), scale)
        c4, c1 = claims["C4"], claims["C1"]
        # 1 - 2 / (300 + 1): the first token of a repeat against a first-seen prompt's.
        assert c4["verdict"] == BETTER, c4
        assert 0.992 < c4["figures"]["faster to the first token by, at the real upstream"] < 0.994
        assert "first tokens came" in c4["summary"]
        # The whole answers' mean counts the real upstream's 200 ms of streaming too:
        # 0.9 x 2.5 + 0.1 x (300 + 200 + 1) = 52.35 ms.
        assert 51 < c1["figures"]["mean at the real upstream (ms)"] < 54, c1["figures"]
        seen.append((c4["holds_when"], c1["verdict"], c1["holds_when"]))
    assert seen[0] == seen[1] == seen[2], seen
    slow = _streamed_claims(_streamed(hit_ttft_ms=120, time_scale=0.1), 0.1)["C4"]
    # 1 - 120 / 301 is 60%; 70% needs an upstream whose first token takes 120 / 0.3 - 1 = 399 ms.
    assert slow["verdict"] == FAILS
    start = (
        "70% faster to the first token holds when the upstream's median time to first token "
        "is at least "
    )
    assert slow["holds_when"].startswith(start), slow["holds_when"]
    needed_ms = float(slow["holds_when"][len(start) :].split(" ms")[0])
    assert 390 < needed_ms < 405, slow["holds_when"]  # p50s of jittered samples


def test_a_streamed_run_without_the_upstreams_first_token_clock_is_inconclusive() -> None:
    claims = _streamed_claims(_streamed(2, 0.1, upstream_clock=False), 0.1)
    assert claims["C4"]["verdict"] == INCONCLUSIVE
    assert "timed no streamed call" in claims["C4"]["summary"]
    assert claims["C1"]["verdict"] == INCONCLUSIVE
    assert "did not time both its first tokens and its whole answers" in claims["C1"]["summary"]


def test_redis_against_memory_gains_with_instances_and_not_on_one() -> None:
    one = {"hits": 900, "misses": 100, "calls": 100, "miss_ms": _scaled(300)}
    cells = [
        _cache("redis", 1, hit_ms=3, **one),
        _cache("memory", 1, hit_ms=1, **one),
        # Three instances: Redis keeps its hit rate, each in-memory cache starts cold.
        _cache("redis", 3, hit_ms=3, **one),
        _cache("memory", 3, hit_ms=1, hits=700, misses=300, calls=300, miss_ms=_scaled(300)),
    ]
    claim = _by_id({"cells": cells})["C1-C2"]
    assert claim["verdict"] == HOLDS, claim
    assert claim["figures"]["redis / memory, 1 instance(s)"] > 1
    assert claim["figures"]["redis / memory, 3 instance(s)"] < 0.5
    assert claim["holds_when"].startswith("Redis is faster than in-memory when 3 instances")
    assert "On one instance a hit costs 2.0" in claim["holds_when"]


def test_duplicate_calls_reduction_comes_from_ground_truth() -> None:
    # 1000 requests, 100 distinct: a perfect cache makes 100 calls; 280 calls avoid 80%.
    holds = _cache("redis", 2, hit_ms=2, miss_ms=300, hits=720, misses=280, calls=280)
    holds["metrics"]["cache"]["upstream_distinct_requests"] = 100
    claim = _by_id({"cells": [holds]})["C3"]
    assert claim["verdict"] == HOLDS
    assert claim["figures"]["reduction of duplicate calls (redis, N)"] == 0.8
    worse = _cache("redis", 2, hit_ms=2, miss_ms=300, hits=500, misses=500, calls=500)
    worse["metrics"]["cache"]["upstream_distinct_requests"] = 100
    assert _by_id({"cells": [worse]})["C3"]["verdict"] == FAILS


def test_failed_missing_saturated_or_thin_data_is_inconclusive() -> None:
    failed = {"id": "cache-redis-1", "kind": "cache", "backend": "redis", "instances": 1,
              "status": "failed", "error": "Locust wrote no metrics", "metrics": None}  # fmt: skip
    claims = _by_id({"cells": [failed]})
    assert (
        claims["C1"]["verdict"] == INCONCLUSIVE
        and "Locust wrote no metrics" in claims["C1"]["summary"]
    )
    assert claims["C2"]["verdict"] == INCONCLUSIVE  # no memory cell at all
    saturated = _cache("redis", 1, hit_ms=2, miss_ms=300, hits=900, misses=100, calls=100)
    saturated["metrics"]["load_generator"] = {"saturated": True}
    assert _by_id({"cells": [saturated]})["C1"]["verdict"] == INCONCLUSIVE
    thin = _cache("redis", 1, hit_ms=2, miss_ms=300, hits=5, misses=5, calls=5)
    assert _by_id({"cells": [thin]})["C1"]["verdict"] == INCONCLUSIVE


def test_restart_and_rate_limit_claims_need_both_backends_to_behave_as_described() -> None:
    def restart(backend: str, after: int) -> dict[str, Any]:
        extra = {"sessions": 40, "intact_before": 40, "intact_after": after,
                 "warm_prompts": 40, "hits_after_restart": after,
                 "hit_rate_after_restart": after / 40}  # fmt: skip
        return {"id": f"restart-{backend}-2", "kind": "restart", "backend": backend,
                "instances": 2, "status": "ok", "metrics": None, "extra": extra}  # fmt: skip

    claims = _by_id({"cells": [restart("redis", 40), restart("memory", 0)]})
    assert claims["C7"]["verdict"] == HOLDS and claims["C9"]["verdict"] == HOLDS
    claims = _by_id({"cells": [restart("redis", 30), restart("memory", 0)]})
    assert claims["C7"]["verdict"] == FAILS


def test_restart_claims_name_the_persistence_a_restart_of_redis_needs() -> None:
    def restart(backend: str, after: int, redis_restart: dict[str, Any]) -> dict[str, Any]:
        extra = {"sessions": 40, "intact_before": 40, "intact_after": after,
                 "warm_prompts": 40, "hits_after_restart": after,
                 "hit_rate_after_restart": after / 40, "redis_restart": redis_restart}  # fmt: skip
        return {"id": f"restart-{backend}-2", "kind": "restart", "backend": backend,
                "instances": 2, "status": "ok", "metrics": None, "extra": extra}  # fmt: skip

    def kept(n: int, errors: int = 0) -> dict[str, int]:
        return {"sessions": 40, "intact_after": n, "warm_prompts": 40, "hits_after_restart": n,
                "errors_after_restart": errors}  # fmt: skip

    modes = {"none": kept(0), "aof": kept(40), "rdb": kept(40, errors=1)}
    claims = _by_id({"cells": [restart("redis", 40, modes), restart("memory", 0, {})]})
    c7, c9 = claims["C7"], claims["C9"]
    assert c7["verdict"] == HOLDS and c9["verdict"] == HOLDS
    assert c7["holds_when"].startswith(
        "Sessions survive a restart of Redis itself only with AOF or RDB snapshots (with no "
        "persistence: 0% kept)."
    )
    assert c9["holds_when"].startswith("Cached answers survive a restart of Redis itself only")
    assert c7["figures"]["redis restarted, none: sessions intact"] == 0
    assert any("1 requests failed right after Redis restarted (rdb)" in n for n in c7["notes"])
    # No persistence keeps them over Redis's own restart: "survives restarts" does not hold.
    lost = {"none": kept(0), "aof": kept(30), "rdb": kept(10)}
    claims = _by_id({"cells": [restart("redis", 40, lost), restart("memory", 0, {})]})
    assert claims["C7"]["verdict"] == claims["C9"]["verdict"] == FAILS
    assert claims["C7"]["holds_when"] == (
        "Sessions do not survive a restart of Redis itself with any persistence tried."
    )


def _with_redis_ops(cell: dict[str, Any], ops: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """`cell` with one target whose /stats timed each Redis op (count, p50 µs)."""
    timings = {op: {"count": count, "p50_us": p50, "p99_us": 2 * p50}
               for op, (count, p50) in ops.items()}  # fmt: skip
    return {**cell, "targets": [{"instance": "target-0", "redis_op_latency_us": timings}]}


def test_c5_judges_the_round_trip_that_reads_the_cache_whatever_it_is_named() -> None:
    cell = _cache("redis", 1, hit_ms=2, miss_ms=_scaled(300), hits=900, misses=100, calls=100)
    # The default fixed window on Redis: the HIT's one round trip is the count with the GET.
    one_trip = _with_redis_ops(cell, {"RATELIMIT_CHECK+GET": (1000, 250), "SET": (100, 270)})
    c5 = _by_id({"cells": [one_trip]})["C5"]
    assert c5["verdict"] == BETTER
    assert c5["summary"].startswith("The cache's Redis round trip (RATELIMIT_CHECK+GET) took 0.25")
    assert c5["figures"]["app RATELIMIT_CHECK+GET p99 (ms)"] == 0.5
    # A plain GET (another limiter, or none) is judged as before; the busiest read wins.
    plain = _with_redis_ops(cell, {"GET": (1000, 6000), "RATELIMIT_CHECK+GET": (10, 100)})
    c5 = _by_id({"cells": [plain]})["C5"]
    assert c5["verdict"] == HOLDS and c5["summary"].startswith("A Redis GET took 6.0 ms")
    thin = _with_redis_ops(cell, {"GET": (5, 250), "SET": (1000, 250)})
    assert _by_id({"cells": [thin]})["C5"]["verdict"] == INCONCLUSIVE


def test_a_figure_the_cell_did_not_measure_is_inconclusive_naming_it() -> None:
    cell = _cache("redis", 2, hit_ms=2, miss_ms=300, hits=720, misses=280, calls=280)
    cell["metrics"]["cache"]["upstream_distinct_requests"] = None  # ground truth read in part
    claim = _by_id({"cells": [cell]})["C3"]
    assert claim["verdict"] == INCONCLUSIVE
    assert "cache-redis-2 did not measure distinct requests" in claim["summary"]


def test_claims_without_a_cell_carry_no_figures_and_no_cells() -> None:
    claims = _by_id({"cells": []})
    for claim in claims.values():
        assert claim["verdict"] in (INCONCLUSIVE, NOT_MEASURED), claim
        assert claim["figures"] == {} and claim["cells"] == []
    # Every claim has a cell now: none is left "not measured yet".
    assert [c for c, claim in claims.items() if claim["verdict"] == NOT_MEASURED] == []


def _cpu(saturated: bool = False, threshold_pct: float = 90.0, mean_pct: float = 30.0) -> Any:
    share = 0.3 if saturated else 0.0
    return {"count": 10, "mean_pct": mean_pct, "p90_pct": 97.0 if saturated else 40.0,
            "max_pct": 99.0 if saturated else 50.0, "threshold_pct": threshold_pct,
            "above_threshold_share": share, "saturated": saturated}  # fmt: skip


def _load(*saturated: str, busy: bool = False, unknown: tuple[str, ...] = ()) -> dict[str, Any]:
    """A cell's CellLoad: `saturated` roles saturated, the others fine; `busy`: a hog beside."""
    roles = ("target-0", "redis", "upstream", "locust")
    top = [{"pid": 1234, "name": "python", "mean_pct": 41.0, "max_pct": 60.0}] if busy else []
    return {
        "interval_s": 1.0,
        "processes": {role: _cpu(role in saturated) for role in roles},
        "unknown": list(unknown),
        "other": {"cpu": _cpu(busy, 25.0, 41.0 if busy else 2.0), "top": top},
    }


def _with_load(cell: dict[str, Any], load: dict[str, Any]) -> dict[str, Any]:
    return {**cell, "load": load}


def test_a_busy_machine_makes_latency_claims_inconclusive_naming_the_hog() -> None:
    cell = _cache("redis", 1, hit_ms=2, miss_ms=_scaled(300), hits=900, misses=100, calls=100)
    claims = _by_id({"cells": [_with_load(cell, _load(busy=True))]})
    said = (
        "the machine was busy with other work during cache-redis-1 (30% of samples above 25% of "
        "a core, p90 97%; the largest: pid 1234 python (41% on average))"
    )
    for claim_id in ("C1", "C4", "C5"):
        assert claims[claim_id]["verdict"] == INCONCLUSIVE
        assert claims[claim_id]["summary"] == said, claims[claim_id]
    # The same cell undisturbed carries its verdict, with the machine's load as a condition.
    calm = _by_id({"cells": [_with_load(cell, _load())]})["C1"]
    assert calm["verdict"] == HOLDS
    assert calm["conditions"]["machine's other load"] == (
        "cache-redis-1: 2% of a core on average, p90 40%"
    )


def test_a_saturated_target_redis_or_generator_makes_latency_claims_inconclusive() -> None:
    memory = _cache("memory", 1, hit_ms=1, miss_ms=300, hits=800, misses=200, calls=200)
    c2 = _by_id({"cells": [_with_load(memory, _load("target-0"))]})["C2"]
    assert c2["verdict"] == INCONCLUSIVE
    assert c2["summary"] == (
        "target-0 was saturated in cache-memory-1 (30% of samples above 90% of a core)"
    )
    redis = _cache("redis", 1, hit_ms=2, miss_ms=300, hits=900, misses=100, calls=100)
    c1 = _by_id({"cells": [_with_load(redis, _load("redis", "locust"))]})["C1"]
    assert c1["verdict"] == INCONCLUSIVE
    assert c1["summary"].startswith("Redis was saturated in cache-redis-1")
    assert "the load generator was saturated in cache-redis-1 (30% of samples" in c1["summary"]
    # Locust's own account and the watch's: the load generator is named once.
    redis["metrics"]["load_generator"] = {"saturated": True}
    c1 = _by_id({"cells": [_with_load(redis, _load("locust"))]})["C1"]
    assert c1["summary"] == "the load generator was saturated in cache-redis-1"


def test_counting_claims_keep_their_verdict_and_note_the_load() -> None:
    cell = _cache("redis", 2, hit_ms=2, miss_ms=300, hits=720, misses=280, calls=280)
    cell["metrics"]["cache"]["upstream_distinct_requests"] = 100
    cell["metrics"]["load_generator"] = {"saturated": True}
    claim = _by_id({"cells": [_with_load(cell, _load("target-0", busy=True))]})["C3"]
    assert claim["verdict"] == HOLDS
    assert claim["notes"][0] == (
        "The load generator was saturated in cache-redis-2; target-0 was saturated in "
        "cache-redis-2 (30% of samples above 90% of a core); the machine was busy with other "
        "work during cache-redis-2 (30% of samples above 25% of a core, p90 97%; the largest: pid "
        "1234 python (41% on average)). The counts are exact whatever the load: the verdict "
        "stands."
    )


def test_what_was_not_sampled_is_said_and_old_cells_without_load_still_judge() -> None:
    cell = _cache("redis", 1, hit_ms=2, miss_ms=_scaled(300), hits=900, misses=100, calls=100)
    external = _load(unknown=("redis (not started by this run)",))
    del external["processes"]["redis"]
    claim = _by_id({"cells": [_with_load(cell, external)]})["C1"]
    assert claim["verdict"] == HOLDS
    assert (
        "Not sampled in cache-redis-1, so not known to be unsaturated: redis (not started by "
        "this run)." in claim["notes"]
    )
    old = _by_id({"cells": [cell]})["C1"]  # a results.json from before load was sampled
    assert old["verdict"] == HOLDS and "machine's other load" not in old["conditions"]
