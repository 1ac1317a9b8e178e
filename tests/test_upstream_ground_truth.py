"""The fake upstream's ground truth: calls counted where they arrive."""

from __future__ import annotations

from hermes_bench.upstream.ground_truth import GroundTruth


def test_ground_truth_counts_calls_distinct_and_duplicates() -> None:
    truth = GroundTruth()
    for digest, status in [("a", 200), ("a", 200), ("b", 500), ("c", 429), ("a", 429)]:
        truth.record(digest, status)
    assert truth.snapshot() == {
        "calls": 5,
        "ok_calls": 2,
        "error_calls": 3,
        "error_calls_by_status": {"429": 2, "500": 1},
        "distinct_requests": 3,
        "duplicate_calls": 2,
        "served_us": {"count": 0},
    }
    assert truth.snapshot(per_hash=True)["calls_per_hash"] == {"a": 3, "b": 1, "c": 1}


def test_ground_truth_reset() -> None:
    truth = GroundTruth()
    truth.record("a", 200)
    truth.reset()
    assert truth.snapshot(per_hash=True) == {
        "calls": 0,
        "ok_calls": 0,
        "error_calls": 0,
        "error_calls_by_status": {},
        "distinct_requests": 0,
        "duplicate_calls": 0,
        "served_us": {"count": 0},
        "calls_per_hash": {},
    }


def test_ground_truth_times_the_answered_calls() -> None:
    truth = GroundTruth()
    for duration_us in (1000, 2000, 3000):
        truth.served(duration_us)
    snapshot = truth.snapshot()
    assert snapshot["served_us"]["count"] == 3
    assert 1999 <= snapshot["served_us"]["mean_us"] <= 2001
    assert snapshot["served_histogram"].startswith("HIST")
    truth.reset()
    assert truth.snapshot()["served_us"] == {"count": 0}
