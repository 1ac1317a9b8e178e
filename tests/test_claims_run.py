"""`hermes-bench run` end to end: the quick profile, Ctrl-C in the middle, and `report` again."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from test_eviction_cell import check_eviction_cell
from test_failure_cells import check_memory_and_pool_cells
from test_outage_cell import check_outage_cell
from test_payoff import check_payoff_and_answer

from hermes_bench.results.files import read_results, results_json
from hermes_bench.results.vocabulary import RESULTS_SCHEMA as SCHEMA

pytestmark = pytest.mark.e2e

COMMAND = [sys.executable, "-m", "hermes_bench"]
CLAIM_IDS = ["C1", "C2", "C1-C2", *(f"C{i}" for i in range(3, 14))]


def _results(output: Path) -> tuple[Path, dict[str, Any]]:
    """The run's results.json as JSON, after checking it reads back as Results unchanged."""
    paths = list(output.glob("run-*/results.json"))
    assert len(paths) == 1, paths
    text = paths[0].read_text()
    assert results_json(read_results(paths[0])) == text  # the model round-trips it exactly
    return paths[0], json.loads(text)


@pytest.mark.timeout(420)  # the quick profile's every cell, about two and a half minutes
def test_quick_profile_writes_every_claim_with_figures_from_ground_truth(tmp_path: Path) -> None:
    result = subprocess.run(
        [*COMMAND, "run", "--profile", "quick", "--output", str(tmp_path),
         "--threshold", "redis.HIT p(99)<60s", "--threshold", "memory.hit_rate>=0"],
        capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    path, results = _results(tmp_path)
    assert results["schema"] == SCHEMA and results["run"]["status"] == "complete"
    assert [c["id"] for c in results["claims"]] == CLAIM_IDS
    failed = [c for c in results["cells"] if c["status"] != "ok"]
    assert failed == [], failed
    for cell in results["cells"]:
        if cell["kind"] == "cache":
            cache = cell["metrics"]["cache"]
            # Ground truth: calls avoided = requests - upstream calls, and equals the HIT count.
            assert cache["calls_avoided"] == cache["cache_requests"] - cache["upstream_calls"]
            assert cache["calls_avoided"] == cache["hits"]
            assert cache["cache_requests"] == results["run"]["options"]["requests_per_cache_cell"]
        if cell["kind"] in ("cache", "ratelimit", "outage"):
            # The CPU of every process the run started was sampled while Locust (or the
            # outage cell's own load) ran.
            roles = {"target-0", "upstream", "locust"}
            if cell["backend"] == "redis":
                roles.add("redis")
            assert roles <= set(cell["load"]["processes"]), cell["load"]
            assert cell["load"]["other"]["cpu"]["count"] >= 1 and cell["load"]["unknown"] == []
        else:
            assert "load" not in cell
    verdicts = {c["id"]: c["verdict"] for c in results["claims"]}
    assert verdicts["C10"] not in ("not measured yet", "inconclusive")  # the eviction cell
    # Backends that behave differently by design must show it, whatever the machine.
    assert verdicts["C7"] == verdicts["C8"] == verdicts["C12"] == "holds"
    claims = {c["id"]: c for c in results["claims"]}
    # Redis itself restarted once per persistence: C7 names the one its sessions need.
    assert "only with AOF or RDB snapshots" in claims["C7"]["holds_when"], claims["C7"]
    # C5 reads the HIT's Redis round trip, whatever the limiter makes of it; only the
    # machine's load may leave it open.
    if verdicts["C5"] == "inconclusive":
        assert "busy" in claims["C5"]["summary"] or "saturated" in claims["C5"]["summary"]
    else:
        assert any(k.startswith("app RATELIMIT_CHECK+GET") for k in claims["C5"]["figures"])
    for claim in results["claims"]:
        if claim["verdict"] not in ("not measured yet", "inconclusive"):
            assert claim["figures"] and claim["cells"], claim
    assert results["bounds"]["lru"] and results["bounds"]["ideal_hit_rate"] is not None
    report = path.with_name("report.html")
    page = report.read_text()
    assert all(f'id="claim-{claim_id}"' in page for claim_id in CLAIM_IDS)
    # The failure half's cells, checked on this same run rather than on runs of their own.
    typed = read_results(path)
    check_memory_and_pool_cells(typed, page)
    check_eviction_cell(typed, page)
    check_outage_cell(typed, page, output)
    check_payoff_and_answer(typed, page, output)
    assert "threshold redis.HIT p(99)" in output and "wall time" in output
    # The report renders again from the results alone.
    again = tmp_path / "again.html"
    rerun = subprocess.run([*COMMAND, "report", str(path), "--output", str(again)],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert again.read_text().count("data:image/png") == page.count("data:image/png")


def test_ctrl_c_keeps_the_finished_cells_and_stops_everything(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*COMMAND, "run", "--profile", "quick", "--output", str(tmp_path)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while "cache-redis-1" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 130, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    _, alive = psutil.wait_procs(children, timeout=20)
    assert alive == [], [p.pid for p in alive]
    path, results = _results(tmp_path)
    assert results["run"]["status"] == "interrupted"
    assert results["cells"] and results["cells"][0]["id"] == "cache-redis-1"
    assert [c["id"] for c in results["claims"]] == CLAIM_IDS
    assert path.with_name("report.html").exists()


def test_report_of_a_missing_foreign_or_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = subprocess.run([*COMMAND, "report", str(tmp_path / "nope.json")],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert missing.returncode == 2 and "no such results file" in missing.stderr
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"hello": 1}')
    wrong = subprocess.run([*COMMAND, "report", str(foreign)],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert wrong.returncode == 2 and "schema" in wrong.stderr
    broken = tmp_path / "broken.json"
    data = json.loads(Path(__file__).with_name("data").joinpath("results-quick.json").read_text())
    data["cells"][0]["metrics"]["cache"]["hits"] = "many"
    data["cells"][1]["started_at"] = float("nan")
    broken.write_text(json.dumps(data))
    bad = subprocess.run([*COMMAND, "report", str(broken)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    (line,) = bad.stderr.strip().splitlines()
    assert "is not a valid results file" in line
    assert "cells.0.metrics.cache.hits" in line and "cells.1.started_at" in line
    assert not broken.with_name("report.html").exists()


def test_bad_run_options_are_rejected_before_anything_starts(tmp_path: Path) -> None:
    for args, expected in (
        (["--threshold", "redis.HIT p(101)<5ms"], "p(101)"),
        (["--fail-on", "maybe"], "--fail-on"),
        (["--backends", "mongo"], "--backends"),
        (["--upstream-latency", "soon"], "accepted forms"),
        (["--time-scale", "0"], "--time-scale 0"),
        (["--repeat", "0"], "--repeat 0"),
        (["--hit-header", "X-From-Cache"], "--hit-header is for --target gateways"),
        (["--hit-header", "bad header=1"], "--hit-header 'bad header=1' is not NAME"),
        (["--model", "gpt-9"], "--model 'gpt-9': the price table"),
        (["--prices", str(tmp_path / "none.json")], "no such file"),
        (["--traffic", "-5"], "--traffic -5"),
        (["--completion-tokens", "nan"], "--completion-tokens nan"),
    ):
        result = subprocess.run([*COMMAND, "run", "--output", str(tmp_path), *args],
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert result.returncode == 2, (args, result.stderr)
        assert expected in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("run-*"))


def test_external_targets_are_loaded_without_starting_anything(tmp_path: Path) -> None:
    from hermes_bench.stack.stack import Stack, StackConfig

    config = StackConfig(instances=2, upstream_latency="fixed:20ms")
    with Stack(config) as stack:
        targets = [arg for url in stack.target_urls for arg in ("--target", url)]
        result = subprocess.run(
            [*COMMAND, "run", *targets, "--upstream-url", stack.upstream_url,
             "--requests", "200", "--duration", "3", "--output", str(tmp_path)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
    _, results = _results(tmp_path)
    assert [c["id"] for c in results["cells"]] == ["cache-redis-1", "cache-redis-2",
                                                   "ratelimit-redis-2"]  # fmt: skip
    for cell in results["cells"][:2]:
        cache = cell["metrics"]["cache"]
        assert cache["calls_avoided"] == cache["hits"] > 0  # each cell started cold
        assert cache["hits"] < cache["cache_requests"]
    claims = {c["id"]: c for c in results["claims"]}
    # Nothing of theirs to restart, and no in-memory cell to compare with: said, not guessed.
    assert claims["C7"]["verdict"] == claims["C2"]["verdict"] == "inconclusive"
    assert "no restart cell for redis" in claims["C7"]["summary"]
    assert "no cache cell for memory" in claims["C2"]["summary"]
    assert all(cell["targets"] for cell in results["cells"])  # their /stats were read
    for cell in results["cells"]:  # their processes are not ours to sample: said, not guessed
        assert set(cell["load"]["processes"]) == {"locust"}
        assert cell["load"]["unknown"] == [
            "upstream (not started by this run)",
            "targets (not started by this run)",
        ]
    unreachable = subprocess.run(
        [*COMMAND, "run", "--target", "http://127.0.0.1:1", "--output", str(tmp_path / "x")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert unreachable.returncode == 2 and "does not answer" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
    assert not (tmp_path / "x").exists()  # checked before anything: no run folder


def test_a_streamed_run_records_the_first_token_and_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        [*COMMAND, "run", "--cells", "cache", "--backends", "memory", "--requests", "80",
         "--stream", "--output", str(tmp_path)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    _, data = _results(tmp_path)
    assert data["run"]["options"]["stream"] is True
    (cell,) = [c for c in data["cells"] if c["id"] == "cache-memory-1"]
    scenarios = cell["metrics"]["metrics"]["scenarios"]
    first, whole = scenarios["_ttft"]["outcomes"], scenarios["cache"]["outcomes"]
    assert first["HIT"]["service"]["count"] == whole["HIT"]["service"]["count"] > 0
    assert cell["metrics"]["cache"]["calls_avoided"] == cell["metrics"]["cache"]["hits"]
    # The upstream timed the first piece of every answer it streamed, and no later than its end.
    cache = cell["metrics"]["cache"]
    assert cache["upstream_first_token"]["count"] == cache["upstream_calls"] > 0
    assert cache["upstream_first_token"]["p50_us"] <= cache["upstream_served"]["p50_us"]
