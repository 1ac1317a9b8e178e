"""Verdicts from results: each follows the figures, and missing or doubtful data is inconclusive."""

from __future__ import annotations

import random
from typing import Any

from results_builders import results

from hermes_bench.reports.claims import (
    BETTER,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_MEASURED,
    evaluate_claims,
)
from hermes_bench.scenarios.metrics import RunMetrics
from hermes_bench.scenarios.summary import build_document


def _document(hit_ms: float, miss_ms: float, hits: int, misses: int, calls: int) -> dict[str, Any]:
    rng = random.Random(1)
    metrics = RunMetrics()
    for outcome, ms, n in (("HIT", hit_ms, hits), ("MISS", miss_ms, misses)):
        for _ in range(n):
            metrics.record("cache", outcome, int(ms * 1000 * rng.uniform(0.9, 1.1)), at_s=1.0)
    truth = {"calls": calls, "distinct_requests": misses}
    return build_document(snapshot=metrics.snapshot(), ground_truth=truth, cpu={}, run={})


def _cache(backend: str, instances: int, **figures: Any) -> dict[str, Any]:
    return {
        "id": f"cache-{backend}-{instances}",
        "kind": "cache",
        "backend": backend,
        "instances": instances,
        "status": "ok",
        "metrics": _document(**figures),
        "targets": [],
        "extra": {},
    }


def _by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    claims = evaluate_claims(results(data["cells"]))
    return {claim.id: claim.model_dump() for claim in claims}


def test_response_time_is_judged_on_the_mean_against_the_range() -> None:
    # 900 hits at 2 ms and 100 misses at 300 ms: mean about 32 ms, inside 10-50 ms.
    cell = _cache("redis", 1, hit_ms=2, miss_ms=300, hits=900, misses=100, calls=100)
    claim = _by_id({"cells": [cell]})["C1"]
    assert claim["verdict"] == HOLDS
    assert 25 < claim["figures"]["blended mean (ms)"] < 40
    faster = _cache("redis", 1, hit_ms=1, miss_ms=30, hits=900, misses=100, calls=100)
    assert _by_id({"cells": [faster]})["C1"]["verdict"] == BETTER
    slower = _cache("redis", 1, hit_ms=2, miss_ms=900, hits=500, misses=500, calls=500)
    assert _by_id({"cells": [slower]})["C1"]["verdict"] == FAILS


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
    assert [c for c, claim in claims.items() if claim["verdict"] == NOT_MEASURED] == [
        "C10",
        "C11",
        "C13",
    ]
