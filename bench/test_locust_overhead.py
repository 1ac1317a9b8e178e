"""Instrumented Locust user against a bare FastHttpUser, and memory as requests grow tenfold.

The measurement runs in a subprocess (bench/locust_overhead.py): Locust's gevent patching must
not reach the asyncio benchmarks of this session.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from bench.conftest import RatioFigure, RatioReport
from hermes_bench.stack.stack import Stack, StackConfig

SCRIPT = Path(__file__).with_name("locust_overhead.py")
THROUGHPUT_GOAL = 0.9
MEMORY_GOAL = 1.1


def test_instrumented_user_against_bare_fasthttpuser(ratio_report: RatioReport) -> None:
    config = StackConfig(
        backend="memory", upstream_latency="zero", target_env={"RATE_LIMIT": "none"}
    )
    with Stack(config) as stack:
        result = subprocess.run(
            [sys.executable, str(SCRIPT), stack.target_urls[0]],
            capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    rounds = figures["rounds"]
    assert figures["wrong_answers"] == 0
    assert all(r["instrumented"]["failures"] == 0 and r["bare"]["failures"] == 0 for r in rounds)
    ratios = [r["instrumented"]["rps"] / r["bare"]["rps"] for r in rounds]
    cpu = [
        r["instrumented"]["client_cpu_us_per_request"] - r["bare"]["client_cpu_us_per_request"]
        for r in rounds
    ]
    ratio_report.add(
        RatioFigure(
            name="instrumented CacheUser throughput / bare FastHttpUser",
            value=statistics.median(ratios),
            goal_op=">=",
            goal=THROUGHPUT_GOAL,
            details={
                "ratio per round": [round(r, 3) for r in ratios],
                "instrumented req/s per round": [round(r["instrumented"]["rps"]) for r in rounds],
                "bare req/s per round": [round(r["bare"]["rps"]) for r in rounds],
                "extra client CPU µs per request (median)": round(statistics.median(cpu), 1),
                "setup": "4 users, alternating rounds of 3000 requests, same cache-HIT endpoint "
                "of one in-memory target",
            },
        )
    )
    memory = figures["memory"]
    assert memory["recorded"] >= 11 * memory["n"]  # users stop a few requests past the count
    cpu_ratios = [
        r["bare"]["client_cpu_us_per_request"] / r["instrumented"]["client_cpu_us_per_request"]
        for r in rounds
    ]
    ratio_report.add(
        RatioFigure(
            name="load generator capacity: bare / instrumented client CPU per request",
            value=statistics.median(cpu_ratios),
            goal_op=">=",
            goal=THROUGHPUT_GOAL,
            details={
                "ratio per round": [round(r, 3) for r in cpu_ratios],
                "why": "throughput alone hides client cost while the target is the bottleneck",
            },
        )
    )
    ratio_report.add(
        RatioFigure(
            name="load generator RSS after 11N / after N requests",
            value=memory["rss_after_11n_mb"] / memory["rss_after_n_mb"],
            goal_op="<=",
            goal=MEMORY_GOAL,
            details=memory,
        )
    )
