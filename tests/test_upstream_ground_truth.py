"""The fake upstream's ground truth: calls counted and logged where they arrive."""

from __future__ import annotations

import json
import time

import httpx

from hermes_bench.latency_spec import parse_latency
from hermes_bench.upstream.app import create_upstream_app
from hermes_bench.upstream.config import UpstreamConfig
from hermes_bench.upstream.ground_truth import GroundTruth
from hermes_bench.wire.chat import request_hash


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
        "usage_by_model": {},
    }
    assert truth.snapshot(per_hash=True)["calls_per_hash"] == {"a": 3, "b": 1, "c": 1}


def test_ground_truth_sums_the_usage_it_billed_by_model() -> None:
    truth = GroundTruth()
    truth.billed("gpt-4o-mini", 12, 30)
    truth.billed("gpt-4o-mini", 8, 20)
    truth.billed("gpt-4o", 5, 7)
    assert truth.snapshot()["usage_by_model"] == {
        "gpt-4o": {"calls": 1, "prompt_tokens": 5, "completion_tokens": 7},
        "gpt-4o-mini": {"calls": 2, "prompt_tokens": 20, "completion_tokens": 50},
    }
    truth.reset()
    assert truth.snapshot()["usage_by_model"] == {}


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
        "usage_by_model": {},
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


def test_ground_truth_logs_each_call_with_its_arrival() -> None:
    truth = GroundTruth()
    truth.record("a", 200, at_s=1_700_000_000.25)
    truth.record("b", 500, at_s=1_700_000_000.5)  # a failed call reached the upstream too
    before = time.time()
    truth.record("a", 200)  # stamped now
    snapshot = truth.snapshot(log=True)
    assert snapshot["calls_log"][:2] == [["a", 1_700_000_000.25], ["b", 1_700_000_000.5]]
    digest, at_s = snapshot["calls_log"][2]
    assert digest == "a" and before <= at_s <= time.time()
    assert snapshot["calls_log_dropped"] == 0
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert "calls_log" not in truth.snapshot()  # only when asked: it holds every call


def test_ground_truth_log_stops_at_its_cap_and_counts_the_rest() -> None:
    truth = GroundTruth(max_calls_log=2)
    for i in range(5):
        truth.record(f"h{i}", 200, at_s=float(i))
    snapshot = truth.snapshot(log=True)
    assert snapshot["calls"] == 5  # the counters go on
    assert snapshot["calls_log"] == [["h0", 0.0], ["h1", 1.0]]
    assert snapshot["calls_log_dropped"] == 3
    truth.reset()
    assert truth.snapshot(log=True)["calls_log"] == []
    assert truth.snapshot(log=True)["calls_log_dropped"] == 0


async def test_the_app_serves_the_log_when_asked_and_reset_clears_it() -> None:
    app = create_upstream_app(UpstreamConfig(latency=parse_latency("zero")))
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://upstream") as client:
        before = time.time()
        answer = await client.post(
            "/v1/chat/completions", json=body, headers={"Authorization": "Bearer sk-test"}
        )
        assert answer.status_code == 200
        plain = (await client.get("/ground-truth")).json()
        logged = (await client.get("/ground-truth", params={"log": "1"})).json()
        assert "calls_log" not in plain and plain["calls"] == 1
        [[digest, at_s]] = logged["calls_log"]
        assert digest == request_hash(body) and before <= at_s <= time.time()
        assert logged["calls_log_dropped"] == 0
        await client.post("/ground-truth/reset")
        assert (await client.get("/ground-truth?log=1")).json()["calls_log"] == []
