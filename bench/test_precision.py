"""Precision of the µs histograms against a known upstream delay, printed as a figure.

Upstream at 10 ms then 30 ms on one stack, three rounds each: the MISS p50 should move by the
20 ms the upstream added. The floor (everything but the upstream's wait) is measured at 10 ms
rather than at zero: with no idle gap the processes never sleep, and waking from an idle wait
costs the machine a little on every hop, at 10 ms as at 30 ms. A busy machine moves this, so it
is a benchmark figure, never a test assertion.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.conftest import RatioFigure, RatioReport
from hermes_bench.http_json import request_json
from hermes_bench.stack.stack import Stack, StackConfig

LOCUSTFILE = str(Path(__file__).resolve().parent.parent / "locustfile.py")
PRECISION_GOAL = 0.02  # relative error of the MISS p50 at 30 ms
SPECS = ("fixed:10ms", "fixed:30ms")
ROUNDS = 3


def _miss_and_hit(tmp_path: Path, stack: Stack, seed: int) -> tuple[int, int]:
    """One bounded Locust run: (MISS p50, HIT min) in µs."""
    metrics = tmp_path / f"metrics-{seed}.json"
    subprocess.run(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless", "--only-summary",
         "-u", "1", "-r", "1", "-t", "90s", "CacheUser", "--host", stack.target_urls[0],
         "--hermes-upstream-url", stack.upstream_url, "--hermes-requests", "240",
         "--hermes-one-off-share", "0.5", "--hermes-seed", str(seed),
         "--hermes-metrics-json", str(metrics)],
        cwd=tmp_path, capture_output=True, text=True, timeout=150, check=True,
    )  # fmt: skip
    outcomes = json.loads(metrics.read_text())["metrics"]["scenarios"]["cache"]["outcomes"]
    return outcomes["MISS"]["service"]["p50_us"], outcomes["HIT"]["service"]["min_us"]


def test_miss_p50_tracks_the_upstream_delay(tmp_path: Path, ratio_report: RatioReport) -> None:
    config = StackConfig(
        backend="memory", upstream_latency="fixed:5ms", target_env={"RATE_LIMIT": "none"}
    )
    p50: dict[str, list[int]] = {spec: [] for spec in SPECS}
    hit_min: list[int] = []
    with Stack(config) as stack:
        for round_index, spec in enumerate(SPECS * ROUNDS):
            request_json("PUT", stack.upstream_url + "/latency", {"spec": spec})
            miss_us, hit_us = _miss_and_hit(tmp_path, stack, 100 + round_index)
            p50[spec].append(miss_us)
            hit_min.append(hit_us)
    floor_us = sum(p50["fixed:10ms"]) / ROUNDS - 10_000
    expected_us = 30_000 + floor_us
    error = abs(sum(p50["fixed:30ms"]) / ROUNDS - expected_us) / expected_us
    ratio_report.add(
        RatioFigure(
            name="MISS p50 at a 30 ms upstream: relative error against floor + 30 ms",
            value=error,
            goal_op="<=",
            goal=PRECISION_GOAL,
            details={
                "MISS p50 µs per round": p50,
                "floor µs": round(floor_us),
                "HIT min µs (below 1000: sub-ms hits resolved)": min(hit_min),
            },
        )
    )
