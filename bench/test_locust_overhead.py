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
from typing import Any

from bench.conftest import RatioFigure, RatioReport
from hermes_bench.stack.stack import Stack, StackConfig

ROOT = Path(__file__).resolve().parent.parent
THROUGHPUT_GOAL = 0.9
MEMORY_GOAL = 1.1


def _where_it_goes(costs: dict[str, Any]) -> dict[str, Any]:
    """bench/user_costs.py's figures as detail lines: a request's work without network, then
    its pieces, then the ways the same work was done before."""
    whole = costs["without_network_us"]
    lines: dict[str, Any] = {
        "µs per request without network, CacheUser / bare (tight loop)": (
            f"{whole['CacheUser request']} / {whole['bare request']}"
        ),
    }
    lines.update({f"  µs: {name}": us for name, us in costs["pieces_us"].items()})
    lines.update({f"  µs, replaced: {name}": us for name, us in costs["replaced_ways_us"].items()})
    return lines


def test_instrumented_user_against_bare_fasthttpuser(ratio_report: RatioReport) -> None:
    config = StackConfig(
        backend="memory", upstream_latency="zero", target_env={"RATE_LIMIT": "none"}
    )
    with Stack(config) as stack:
        result = subprocess.run(
            [sys.executable, "-m", "bench.locust_overhead", stack.target_urls[0],
             stack.upstream_url],
            cwd=ROOT, capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    rounds = figures["rounds"]
    assert figures["wrong_answers"] == 0
    # Every instrumented request kept its attribution record, as in a run on the embedded stack.
    instrumented = sum(r["instrumented"]["requests"] for r in rounds)
    assert figures["attribution_records"] >= instrumented
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
                "setup": f"4 users, {len(rounds)} alternating rounds of 3000 requests, same "
                "cache-HIT endpoint of one in-memory target; the instrumented user keeps "
                "attribution records (its upstream is known, as on the embedded stack)",
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
                "instrumented client CPU µs per request": [
                    round(r["instrumented"]["client_cpu_us_per_request"], 1) for r in rounds
                ],
                "bare client CPU µs per request": [
                    round(r["bare"]["client_cpu_us_per_request"], 1) for r in rounds
                ],
                "why": "throughput alone hides client cost while the target is the bottleneck",
                **_where_it_goes(figures["costs"]),
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
