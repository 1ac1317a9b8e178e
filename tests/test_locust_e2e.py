"""Real Locust runs of locustfile.py: the metrics written agree with the upstream's ground truth."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from locust_processes import processes
from locust_runs import LOCUSTFILE, run_locust

from hermes_bench.results.vocabulary import COUNT_PREFIX, STEP_PREFIX, TTFT_SCENARIO
from hermes_bench.stack.stack import Stack, StackConfig

pytestmark = pytest.mark.e2e


def _outcomes(document: dict[str, Any], scenario: str) -> dict[str, int]:
    outcomes = document["metrics"]["scenarios"].get(scenario, {}).get("outcomes", {})
    return {name: data["service"]["count"] for name, data in outcomes.items()}


def _assert_exact(cache: dict[str, Any]) -> None:
    """requests - upstream calls = calls avoided = HIT responses, to the request."""
    assert cache["ground_truth"] is True
    assert cache["cut_at_stop"] == 0
    assert cache["cache_requests"] - cache["upstream_calls"] == cache["calls_avoided"]
    assert cache["calls_avoided"] == cache["hits"] > 0


@pytest.mark.parametrize("backend", ["redis", "memory"])
def test_run_on_the_embedded_stack_agrees_with_ground_truth(tmp_path: Path, backend: str) -> None:
    code, output, document = run_locust(
        tmp_path, "-u", "8", "-r", "8", "-t", "90s",
        "--hermes-backend", backend, "--hermes-requests", "400",
    )  # fmt: skip
    assert document, output
    cache = document["cache"]
    _assert_exact(cache)
    assert cache["cache_requests"] >= 400  # rate-limit probes come on top of the 400 drawn
    # The upstream's call log tells each request's HIT or MISS as the X-Cache header does (two
    # in-memory instances may each call for a prompt the other answers at the same moment).
    looked_up = sum(n for o, n in _outcomes(document, "cache").items() if o in ("HIT", "MISS"))
    assert cache["outcome_source"] == "header" and cache["log_compared"] == looked_up > 0
    assert cache["log_agreement"] == 1.0 if backend == "redis" else cache["log_agreement"] >= 0.98
    assert "wrong_answers" not in document["metrics"]["counters"]
    assert _outcomes(document, "ratelimit").get("429", 0) > 0  # the limiter did refuse
    sessions = _outcomes(document, "session")
    if backend == "redis":
        assert code == 0, output
        assert set(sessions) == {"ok"}
    else:
        # Two in-memory instances behind a non-sticky balancer lose sessions: reported, failed.
        assert sessions.get("lost", 0) > 0 and code != 0
    assert document["run"]["embedded_stack"] is True and document["run"]["backend"] == backend
    assert "hit rate (X-Cache headers)" in output and "calls avoided" in output
    _assert_steps_recorded(document, output)


def _assert_steps_recorded(document: dict[str, Any], output: str) -> None:
    """Each step of the target's Server-Timing has a µs histogram per outcome, kept out of the
    totals and the per-second series."""
    metrics = document["metrics"]
    steps = {
        scenario.removeprefix(STEP_PREFIX): set(outcomes)
        for scenario, outcomes in metrics["histograms"]["service"].items()
        if scenario.startswith(STEP_PREFIX)
    }
    # On Redis the fixed window's check and the cache read are one round trip, one step.
    redis = document["run"]["backend"] == "redis"
    lookup = ("ratelimit+cache-read",) if redis else ("ratelimit", "cache-read")
    for step in (*lookup, "total"):
        assert {"HIT", "MISS"} <= steps[step], steps
    assert "HIT" not in steps["upstream"] and "MISS" in steps["upstream"]
    assert "HIT" not in steps["cache-write"] and "MISS" in steps["cache-write"]
    assert "server_timing_malformed" not in metrics["counters"]
    hit_total = metrics["scenarios"][STEP_PREFIX + "total"]["outcomes"]["HIT"]["service"]
    hits = sum(
        data["outcomes"].get("HIT", {}).get("service", {}).get("count", 0)
        for name, data in metrics["scenarios"].items()
        if not name.startswith(COUNT_PREFIX)
    )
    assert hit_total["count"] == hits  # one timing per HIT response, whichever user sent it
    responses = sum(
        data["total"]["service"]["count"]
        for name, data in metrics["scenarios"].items()
        if not name.startswith(COUNT_PREFIX)
    )
    assert metrics["total"]["service"]["count"] == responses
    assert sum(row["requests"] for row in metrics["series"]) == responses
    assert "steps in the target (Server-Timing), p50 ms, HIT: ratelimit" in output


def test_master_and_two_workers_merge_to_the_upstream_count(tmp_path: Path) -> None:
    code, output, document = run_locust(
        tmp_path, *processes(2), "-u", "6", "-r", "6", "-t", "90s",
        "--hermes-requests", "500", "CacheUser",
    )  # fmt: skip
    assert code == 0, output
    assert document["run"]["workers"] == 2
    cache = document["cache"]
    _assert_exact(cache)
    assert cache["cache_requests"] == 500
    assert sum(_outcomes(document, "cache").values()) == 500
    # The step histograms travel from the workers too: one total per response.
    assert sum(_outcomes(document, STEP_PREFIX + "total").values()) == 500
    per_process = document["load_generator"]["per_process"]
    assert len(per_process) == 3  # the master's own readings and each worker's


def _write_trace(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_trace_replay_sends_every_line_once(tmp_path: Path) -> None:
    prompts = [f"trace question {i % 7}" for i in range(40)]
    rows = [{"prompt": p, "offset_s": round(i * 0.02, 3)} for i, p in enumerate(prompts)]
    trace = _write_trace(tmp_path / "trace.jsonl", rows)
    code, output, document = run_locust(
        tmp_path, "-u", "2", "-r", "2", "-t", "90s", "CacheUser",
        "--hermes-workload", "trace", "--hermes-trace", str(trace),
    )  # fmt: skip
    assert code == 0, output
    cache = document["cache"]
    _assert_exact(cache)
    assert cache["cache_requests"] == 40
    assert cache["upstream_distinct_requests"] == 7
    assert document["run"]["workload"]["kind"] == "trace"


def test_malformed_trace_is_rejected_before_any_load(tmp_path: Path) -> None:
    trace = tmp_path / "bad.jsonl"
    trace.write_text('{"prompt": "a", "offset_s": 0}\n{"prompt": "b", "offset_s": 1}\n'
                     '{"prompt": "c", "offset_s": "soon"}\n')  # fmt: skip
    code, output, document = run_locust(
        tmp_path, "-u", "1", "-t", "30s", "--hermes-workload", "trace", "--hermes-trace", str(trace)
    )
    assert code == 2
    assert "bad.jsonl line 3" in output and "offset_s" in output
    assert "starting the embedded stack" not in output and not document


def test_help_describes_every_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hermes_bench", "locust-options"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0
    options = ["--hermes-backend", "--hermes-targets", "--hermes-trace", "--hermes-arrival-rate"]
    for option in [*options, "--hermes-requests", "--hermes-metrics-json"]:
        assert option in result.stdout
    assert "[env LOCUST_HERMES_BACKEND]" in result.stdout  # each option has its variable


def test_arrival_rate_mode_keeps_both_latencies(tmp_path: Path) -> None:
    code, output, document = run_locust(
        tmp_path, "-u", "4", "-r", "4", "-t", "90s", "CacheUser",
        "--hermes-arrival-rate", "80", "--hermes-requests", "160",
    )  # fmt: skip
    assert code == 0, output
    for outcome in document["metrics"]["scenarios"]["cache"]["outcomes"].values():
        service, intended = outcome["service"], outcome["intended"]
        assert intended["count"] == service["count"]
        assert intended["p50_us"] >= service["p50_us"] * 0.99  # never earlier than the send
    series = document["metrics"]["series"]
    assert len(series) >= 2  # 160 requests at 80/s span about two seconds


@pytest.fixture(scope="module")
def memory_stack() -> Iterator[Stack]:
    config = StackConfig(
        backend="memory", upstream_latency="fixed:5ms", target_env={"RATE_LIMIT": "none"}
    )
    with Stack(config) as stack:
        yield stack


def test_latencies_are_kept_in_microseconds_not_rounded_to_milliseconds(
    tmp_path: Path, memory_stack: Stack
) -> None:
    """Locust's own statistics round to whole ms below 100 ms; ours keep the µs."""
    _, _, document = run_locust(
        tmp_path, "-u", "1", "-r", "1", "-t", "60s", "CacheUser",
        "--host", memory_stack.target_urls[0],
        "--hermes-upstream-url", memory_stack.upstream_url,
        "--hermes-requests", "120", "--hermes-one-off-share", "0.5",
    )  # fmt: skip
    outcomes = document["metrics"]["scenarios"]["cache"]["outcomes"]
    values = {
        summary[k]
        for summary in (outcomes["HIT"]["service"], outcomes["MISS"]["service"])
        for k in ("min_us", "p50_us", "p90_us", "max_us")
    }
    assert any(value % 1000 for value in values), values


@pytest.mark.parametrize("forked", [False, True], ids=["one process", "workers forked"])
def test_ctrl_c_keeps_the_metrics_and_stops_every_process(tmp_path: Path, forked: bool) -> None:
    metrics = tmp_path / "metrics.json"
    command = [
        sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless", "-u", "4", "-r", "4",
        "-t", "120s", "--hermes-metrics-json", str(metrics), *(processes(2) if forked else []),
    ]  # fmt: skip
    log = tmp_path / "locust.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "All users spawned" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 4, log.read_text()  # redis, upstream, two targets
        if forked:
            os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches every worker too
        else:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"Locust went on after Ctrl-C:\n{log.read_text()[-4000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    _, alive = psutil.wait_procs(children, timeout=15)
    assert alive == []
    text = log.read_text()
    assert "Traceback" not in text  # Ctrl-C is a way to stop, not an error
    # Every worker's last figures reached the master before it wrote them: the counts agree
    # with the upstream's, up to the requests a stop cut off (reported as such).
    assert "sent no final metrics" not in text
    cache = json.loads(metrics.read_text())["cache"]
    assert cache["ground_truth"] is True and cache["hits"] > 0
    assert abs(cache["hits_minus_calls_avoided"]) <= cache["cut_at_stop"], cache


def test_streamed_requests_record_the_first_token_per_outcome(tmp_path: Path) -> None:
    code, output, document = run_locust(
        tmp_path, "-u", "4", "-r", "4", "-t", "60s", "--hermes-requests", "150",
        "--hermes-stream", "on", "CacheUser",
    )  # fmt: skip
    assert code == 0 and document, output
    cache = document["cache"]
    _assert_exact(cache)  # a streamed answer is cached and counted like a whole one
    assert "wrong_answers" not in document["metrics"]["counters"]
    whole = document["metrics"]["scenarios"]["cache"]["outcomes"]
    first = document["metrics"]["scenarios"][TTFT_SCENARIO]["outcomes"]
    for outcome in ("HIT", "MISS"):
        # Every answered request has its first token's time, and it came before the end.
        assert first[outcome]["service"]["count"] == whole[outcome]["service"]["count"]
        assert first[outcome]["service"]["p50_us"] <= whole[outcome]["service"]["p50_us"]
    # The first token of a MISS waits on the upstream's latency; the rest of the answer on its
    # token rate, so the whole answer takes longer than its first token.
    assert first["MISS"]["service"]["p50_us"] < whole["MISS"]["service"]["p50_us"]
