"""A run killed with SIGKILL: `report` finds its process gone, marks it killed and concludes it
from the cells it wrote; the next start removes the temporary folders it left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from results_builders import RUN, results

from hermes_bench.harness.killed_run import is_killed

COMMAND = [sys.executable, "-m", "hermes_bench"]


def _running(**process: object) -> object:
    run = {**RUN, "status": "running", **process}
    return results([], run=run)


def test_only_a_running_run_of_this_host_whose_process_is_gone_is_killed() -> None:
    mine = {"host": "here", "pid": 4242, "process_started_at": 1.0}
    assert is_killed(_running(**mine), host="here", alive=lambda pid, at: False)  # type: ignore[arg-type]
    assert not is_killed(_running(**mine), host="here", alive=lambda pid, at: True)  # type: ignore[arg-type]
    assert not is_killed(_running(**mine), host="elsewhere", alive=lambda pid, at: False)  # type: ignore[arg-type]
    assert not is_killed(_running(), host="here", alive=lambda pid, at: False)  # type: ignore[arg-type]


@pytest.mark.e2e
def test_report_finishes_a_run_killed_after_its_first_cell(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("HERMES_BENCH_REDIS_URL", None)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [*COMMAND, "run", "--cells", "cache", "--backends", "redis", "--requests", "300",
         "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    results_path = out / "latest" / "results.json"
    try:
        for _ in range(1200):  # until the first cell is written
            if results_path.exists() and json.loads(results_path.read_text())["cells"]:
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.1)
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # The processes it started die with it; its private Redis's folder stays behind.
    psutil.wait_procs(children, timeout=30)
    left = [p for p in tmp_path.iterdir() if p.name.startswith("hermes-bench-")]
    assert left, list(tmp_path.iterdir())
    written = json.loads(results_path.read_text())
    assert written["run"]["status"] == "running" and written["claims"] == []

    report = subprocess.run(
        [*COMMAND, "report", str(out)], capture_output=True, text=True, timeout=120, env=env
    )
    assert report.returncode == 0, report.stderr
    assert "was killed" in report.stdout
    finished = json.loads(results_path.read_text())
    assert finished["run"]["status"] == "killed"
    assert len(finished["cells"]) == len(written["cells"]) >= 1
    assert {c["id"] for c in finished["claims"]} >= {"C1", "C3"}
    assert (out / "latest" / "report.html").exists()
    # This next start of hermes-bench removed the folders of the killed process.
    assert not any(p.exists() for p in left)
    page = (out / "latest" / "report.html").read_text()
    assert "This run was killed" in page
