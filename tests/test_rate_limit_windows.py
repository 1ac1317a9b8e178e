"""Admitted requests per rate-limit window, the window as the target reports it (X-RateLimit-Reset).

Pure units of the grouping, then real Locust runs through three instances with two worker
processes: Redis admits exactly the limit per window, in-memory instances about three times it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from locust_processes import processes

from hermes_bench.scenarios.rate_windows import (
    KeyWindows,
    RateResponse,
    WindowCount,
    count_windows,
    header_int,
)

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 10


def _burst(*runs: tuple[int, int, int]) -> list[RateResponse]:
    """(reset, admitted, refused) runs, in the order a burst would see them."""
    responses = []
    for reset_s, admitted, refused in runs:
        responses += [RateResponse(True, LIMIT, reset_s)] * admitted
        responses += [RateResponse(False, LIMIT, reset_s)] * refused
    return responses


def test_a_burst_straddling_a_boundary_is_two_windows_at_the_limit() -> None:
    """The old count (one burst, one window) read 20 of 10 here: over, though nothing was."""
    counted = count_windows(_burst((100, 10, 5), (101, 10, 3)))
    assert counted == KeyWindows(
        (WindowCount(100, LIMIT, 10, 5), WindowCount(101, LIMIT, 10, 3)), 0
    )
    assert not any(w.over_limit for w in counted.windows)
    assert all(w.filled for w in counted.windows)


def test_instances_with_windows_of_their_own_share_one_reset_and_read_over() -> None:
    """Three in-memory instances, windows begun within one burst: one group, 3x the limit."""
    counted = count_windows(_burst((100, 12, 1), (100, 9, 2), (100, 9, 6)))
    (window,) = counted.windows
    assert (window.admitted, window.refused, window.limit) == (30, 9, LIMIT)
    assert window.filled and window.over_limit


def test_a_window_the_burst_did_not_fill_says_nothing_about_the_limiter() -> None:
    counted = count_windows(_burst((100, 10, 4), (101, 3, 0)))
    assert [w.filled for w in counted.windows] == [True, False]
    # Past the limit counts even when nothing was refused.
    (over,) = count_windows(_burst((100, 11, 0))).windows
    assert over.filled and over.over_limit


def test_admitted_without_a_window_are_set_apart() -> None:
    responses = [
        RateResponse(True, LIMIT, None),  # no Reset: the limiter failed open, say
        RateResponse(True, None, 200),  # a window whose limit nobody told
        RateResponse(False, None, 200),
        RateResponse(True, LIMIT, 100),
    ]
    counted = count_windows(responses)
    assert counted.unattributed == 2
    assert counted.windows == (WindowCount(100, LIMIT, 1, 0),)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("10", 10), (" 1796160266 ", 1796160266), (None, None), ("", None), ("1.5", None),
     ("-3", None), ("²", None), ("ten", None)],
)  # fmt: skip
def test_header_int(value: str | None, expected: int | None) -> None:
    assert header_int(value) == expected


# --- real runs ------------------------------------------------------------------------------


def _run(tmp_path: Path, backend: str) -> tuple[str, dict[str, Any]]:
    """RateLimitUser through 3 instances of `backend`, master and 2 workers, 9 s."""
    metrics = tmp_path / "metrics.json"
    command = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless",
        "--only-summary", *processes(2), "-u", "6", "-r", "6", "-t", "9s",
        "--hermes-backend", backend, "--hermes-instances", "3",
        "--hermes-rate-limit", f"{LIMIT}/second", "--hermes-metrics-json", str(metrics),
        "RateLimitUser",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=150)
    output = done.stdout + done.stderr
    assert metrics.exists(), output
    return output, json.loads(metrics.read_text())


@pytest.mark.e2e
def test_redis_admits_the_limit_per_window_under_two_workers(tmp_path: Path) -> None:
    output, document = _run(tmp_path, "redis")
    counters = document["metrics"]["counters"]
    assert document["run"]["workers"] == 2
    assert counters["ratelimit_bursts"] >= 20, output
    assert counters.get("ratelimit_over_limit_bursts", 0) == 0, output
    ratio = counters["ratelimit_admitted"] / counters["ratelimit_limit_sum"]
    assert round(ratio, 2) == 1.0, output
    assert "1.00 x the limit admitted per window" in output


@pytest.mark.e2e
def test_memory_instances_admit_about_n_times_the_limit(tmp_path: Path) -> None:
    output, document = _run(tmp_path, "memory")
    counters = document["metrics"]["counters"]
    assert counters["ratelimit_bursts"] >= 20, output
    assert counters["ratelimit_admitted"] / counters["ratelimit_limit_sum"] > 1.5, output
    assert counters["ratelimit_over_limit_bursts"] > counters["ratelimit_bursts"] // 2
