"""`hermes-bench run` in CI, end to end: set-up errors stop it before any cell with exit 2;
one small real run shows exit 99, thresholds in results.json, JUnit read by a JUnit reader,
options from pyproject.toml, the `latest` link and the file modes."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from hermes_bench.harness.preflight import check_redis
from hermes_bench.results.files import read_results
from hermes_bench.stack.embedded_redis import EmbeddedRedis

pytestmark = pytest.mark.e2e

COMMAND = [sys.executable, "-m", "hermes_bench"]
SECRET = "s3cret-pw"


def _run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if k not in ("HERMES_BENCH_REDIS_URL", "COLUMNS")
    }
    environ.update(env or {})
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, timeout=timeout_s, cwd=cwd, env=environ
    )


def _refused_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port: int = bound.getsockname()[1]
    return port


def _one_setup_error(result: subprocess.CompletedProcess[str], output: Path) -> str:
    """Exit 2, one line on stderr saying it once, nothing on stdout, no run folder made."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stdout == "", result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("hermes-bench run: error: ") and line.endswith("Nothing was run.")
    assert not output.exists(), list(output.rglob("*"))  # no cell ran, no folder half made
    return line


def test_an_unreachable_redis_url_stops_the_run_before_any_cell(tmp_path: Path) -> None:
    output = tmp_path / "out"
    started = time.monotonic()
    result = _run("run", "--redis-url", "redis://127.0.0.1:1/0", "--output", str(output))
    print(f"exit {result.returncode} after {time.monotonic() - started:.1f} s")  # shown, not judged
    line = _one_setup_error(result, output)
    assert "'redis://127.0.0.1:1/0' (--redis-url)" in line and "Connection refused" in line
    assert line.count("redis://127.0.0.1:1/0") == 1
    assert "give no Redis URL and hermes-bench starts a private one" in line


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--redis-url", "nope"], {}, "the Redis URL 'nope' (--redis-url) is not valid"),
        # From the environment, so the password is never in `ps`; redacted when shown.
        ([], {"HERMES_BENCH_REDIS_URL": f"redis://:{SECRET}@127.0.0.1:{{port}}/0"},
         "'redis://:***@127.0.0.1:{port}/0' (HERMES_BENCH_REDIS_URL) cannot be used"),
        (["--target", "notaurl"], {}, "--target 'notaurl' is not a URL"),
        (["--target", "http://127.0.0.1:{port}"], {}, "does not answer (connection refused"),
    ],
)  # fmt: skip
def test_bad_redis_urls_and_targets_are_one_message_and_exit_2(
    tmp_path: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    port = _refused_port()
    output = tmp_path / "out"
    result = _run(
        "run",
        *(a.format(port=port) for a in args),
        "--output",
        str(output),
        env={k: v.format(port=port) for k, v in env.items()},
    )
    line = _one_setup_error(result, output)
    assert expected.format(port=port) in line
    assert SECRET not in result.stdout + result.stderr


def test_a_redis_that_wants_a_password_is_said_so_before_any_cell(tmp_path: Path) -> None:
    with EmbeddedRedis(password=SECRET) as server:
        base = f"redis://127.0.0.1:{server.port}/0"
        without = _run("run", "--redis-url", base, "--output", str(tmp_path / "a"))
        wrong = _run(
            "run",
            "--output",
            str(tmp_path / "b"),
            env={"HERMES_BENCH_REDIS_URL": base.replace("//", "//:not-it@")},
        )
        check_redis(base.replace("//", f"//:{SECRET}@"))  # the right one passes
    assert "wants a password and the URL gives none" in _one_setup_error(without, tmp_path / "a")
    line = _one_setup_error(wrong, tmp_path / "b")
    assert "(HERMES_BENCH_REDIS_URL) refused the user name or password" in line
    assert "not-it" not in wrong.stdout + wrong.stderr


# --- one small real run -----------------------------------------------------------------------

PYPROJECT = """\
[project]
name = "someone-elses-service"

[tool.hermes-bench]
cells = "cache"
backends = ["memory"]
requests = 500          # the command line's --requests wins
output = "ci-out"
threshold = ["memory.hit_rate>1.5", "memory.HIT p(99.9)<60s", "redis.hit_rate>0"]
fail-on = ["inconclusive"]
"""


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The cheapest real run with a threshold no hit rate can pass: the memory backend's cache
    cells, 80 requests each, its options from a pyproject.toml in the current folder."""
    cwd = tmp_path_factory.mktemp("ci-project")
    (cwd / "pyproject.toml").write_text(PYPROJECT)
    result = _run("run", "--requests", "80", "--junit", "junit.xml", cwd=cwd, timeout_s=240)
    return {"cwd": cwd, "result": result, "output": cwd / "ci-out"}


def test_a_failed_threshold_exits_99_and_is_kept_in_results_json(ci_run: dict[str, Any]) -> None:
    result = ci_run["result"]
    # A threshold failed and --fail-on matched: the threshold's 99 wins over --fail-on's 1.
    assert result.returncode == 99, result.stdout + result.stderr
    assert "exit 99: 2 of 3 thresholds not passed: memory.hit_rate>1.5, redis.hit_rate>0" in (
        result.stdout
    )
    (path,) = ci_run["output"].glob("run-*/results.json")
    data = json.loads(path.read_text())
    options = data["run"]["options"]
    # From the file, except --requests, which the command line gave.
    assert options["requests_per_cache_cell"] == 80
    assert options["backends"] == ["memory"] and options["cells"] == ["cache"]
    assert options["fail_on"] == ["inconclusive"]
    hit_rate = read_results(path).first_ok("cache", "memory", single=True)
    assert hit_rate is not None and hit_rate.metrics is not None
    checks = {t["expression"]: t for t in data["thresholds"]}
    assert list(checks) == ["memory.hit_rate>1.5", "memory.HIT p(99.9)<60s", "redis.hit_rate>0"]
    failed = checks["memory.hit_rate>1.5"]
    assert failed["status"] == "failed" and failed["limit"] == 1.5 and failed["unit"] is None
    assert failed["measured"] == hit_rate.metrics.cache.hit_rate_headers
    passed = checks["memory.HIT p(99.9)<60s"]
    assert passed["status"] == "passed" and passed["unit"] == "us" and passed["limit"] == 60e6
    assert 0 < passed["measured"] < 60e6
    unmeasured = checks["redis.hit_rate>0"]
    assert unmeasured["status"] == "unmeasured" and unmeasured["measured"] is None


def test_junit_file_holds_a_case_per_verdict_and_threshold(ci_run: dict[str, Any]) -> None:
    (path,) = ci_run["output"].glob("run-*/results.json")
    data = json.loads(path.read_text())
    junit = ci_run["cwd"] / "junit.xml"
    suites = {suite.name: suite for suite in JUnitXml.fromfile(str(junit))}
    claims, thresholds = suites["hermes-bench.claims"], suites["hermes-bench.thresholds"]
    assert claims.tests == len(data["claims"]) and thresholds.tests == 3
    # --fail-on inconclusive: every inconclusive claim fails, the others pass or are skipped.
    inconclusive = [c["id"] for c in data["claims"] if c["verdict"] == "inconclusive"]
    not_measured = [c["id"] for c in data["claims"] if c["verdict"] == "not measured yet"]
    assert len(inconclusive) >= 8  # C6..C13 have no cell of their own in this run
    assert claims.failures == len(inconclusive) and claims.skipped == len(not_measured)
    assert (thresholds.failures, thresholds.errors, thresholds.skipped) == (1, 1, 0)
    outcomes = {case.name: [type(r) for r in case.result] for case in thresholds}
    assert outcomes == {
        "memory.hit_rate>1.5": [Failure],
        "memory.HIT p(99.9)<60s": [],
        "redis.hit_rate>0": [Error],
    }
    failed = {case.name.split(":")[0] for case in claims if case.result}
    assert failed == set(inconclusive + not_measured)
    for case in claims:
        kinds = [type(r) for r in case.result]
        id_ = case.name.split(":")[0]
        assert kinds == ([Failure] if id_ in inconclusive else [Skipped] if id_ in not_measured
                         else []), case.name  # fmt: skip
    # `report` writes the same file again from results.json alone.
    again = ci_run["cwd"] / "again.xml"
    rerun = _run("report", str(ci_run["output"]), "--junit", str(again), cwd=ci_run["cwd"])
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert again.read_text() == junit.read_text()


def test_latest_links_the_run_and_every_output_has_one_mode(ci_run: dict[str, Any]) -> None:
    output: Path = ci_run["output"]
    (run_dir,) = output.glob("run-*/")
    latest = output / "latest"
    assert latest.is_symlink() and os.readlink(latest) == run_dir.name  # relative: movable
    assert (latest / "results.json").read_text() == (run_dir / "results.json").read_text()
    umask = os.umask(0)
    os.umask(umask)
    files = [run_dir / "results.json", run_dir / "report.html", ci_run["cwd"] / "junit.xml"]
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in files}
    assert set(modes.values()) == {0o666 & ~umask}, modes
    assert f"latest  {Path('ci-out') / 'latest'} -> {run_dir.name}" in ci_run["result"].stdout


def test_claims_table_is_not_wrapped_when_stdout_is_a_pipe(ci_run: dict[str, Any]) -> None:
    (path,) = ci_run["output"].glob("run-*/results.json")
    lines = ci_run["result"].stdout.splitlines()
    for claim in json.loads(path.read_text())["claims"]:
        # Each claim's row on one line, with what the guide says and the summary whole.
        (row,) = [line for line in lines if line.startswith(f"│ {claim['id']} ")]
        assert claim["guide"] in row and claim["summary"] in row, row
