"""The hermes-bench command as a user runs it: real subprocesses, real exit codes and messages."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import redis

from hermes_bench.app.backends import FALLBACK_LOG_LINE
from hermes_bench.harness.check import RATE_LIMIT, RATE_LIMIT_TRIES
from hermes_bench.stack.ports import free_port

COMMAND = [sys.executable, "-m", "hermes_bench"]

pytestmark = pytest.mark.e2e  # every test runs the command as a subprocess


def _run(
    *args: str, timeout_s: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, timeout=timeout_s, env=env
    )


def test_help_lists_every_command() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for command in ("check", "stack", "target", "upstream", "redis"):
        assert command in result.stdout


def test_unknown_backend_scheme_is_a_clear_error_without_the_password() -> None:
    result = _run("target", "--port", "0", "--redis-url", "mongodb://admin:s3cret@db:27017")
    assert result.returncode == 2
    assert "unknown backend URL" in result.stderr and "redis://" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for command in ("target", "upstream"):
            result = _run(
                command, "--port", str(port), "--memory" if command == "target" else "--seed=0"
            )
            assert result.returncode == 2, result.stderr
            assert f"port {port}" in result.stderr and "already in use" in result.stderr


def test_bad_latency_spec_lists_the_accepted_forms() -> None:
    result = _run("upstream", "--port", "0", "--latency", "gaussian:5ms")
    assert result.returncode == 2
    assert "fixed:20ms" in result.stderr and "lognormal" in result.stderr


def test_target_without_redis_url_logs_the_guides_fallback_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    log = tmp_path / "target.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*COMMAND, "target", "--port", "0"], stdout=out, stderr=out, env=env
        )
    try:
        deadline = time.monotonic() + 30
        while "listening on" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
        assert f"[INFO] {FALLBACK_LOG_LINE}" in log.read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


def _private_tmp_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The environment for a run whose temporary directories all land in a fresh TMPDIR,
    so what it leaves behind is exactly what that directory still holds afterwards."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "HERMES_BENCH_REDIS_URL"}
    env["TMPDIR"] = str(tmpdir)
    return env, tmpdir


def _hermes_dirs(tmpdir: Path) -> set[str]:
    return {p.name for p in tmpdir.iterdir() if p.name.startswith("hermes-bench-")}


def _stop_stack_with(sig: signal.Signals, tmp_path: Path, instances: int) -> str:
    """Start `hermes-bench stack`, send `sig` once it is up; check that every process and
    temporary directory it made is gone. Returns its output."""
    env, tmpdir = _private_tmp_env(tmp_path)
    before = _hermes_dirs(tmpdir)
    out_path = tmp_path / "stack.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            [*COMMAND, "stack", "--backend", "redis", "--instances", str(instances)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 60
        while "Press Ctrl-C" not in out_path.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, out_path.read_text()
            time.sleep(0.2)
        children = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        # redis, upstream and the targets
        assert len(children) >= 2 + instances and "redis-server" in names, names
        created = _hermes_dirs(tmpdir) - before
        assert any(n.startswith("hermes-bench-stack-") for n in created), created
        assert any(n.startswith("hermes-bench-redis-") for n in created), created
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []
    assert _hermes_dirs(tmpdir) - before == set()
    return out_path.read_text()


def test_stack_stops_every_process_on_ctrl_c(tmp_path: Path) -> None:
    output = _stop_stack_with(signal.SIGINT, tmp_path, instances=2)
    assert "interrupted" in output
    assert "Traceback" not in output


def test_stack_cleans_up_when_its_terminal_closes(tmp_path: Path) -> None:
    output = _stop_stack_with(signal.SIGHUP, tmp_path, instances=1)
    assert "Traceback" not in output


def _one_error_line(result: subprocess.CompletedProcess[str], command: str) -> str:
    """The single line a failed command printed on stderr, checked for its form."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"hermes-bench {command}: error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["target", "--port", "0", "--rate-limit", "abc"], "RATE_LIMIT='abc'"),
        (["target", "--port", "0", "--redis-url", "redis://:s3cret@localhost:abc"], "REDIS_URL"),
        (["target", "--port", "70000"], "not a TCP port"),
        (["upstream", "--port", "70000"], "not a TCP port"),
        (["redis", "--port", "70000"], "not a TCP port"),
        (["target", "--port", "-1"], "not a TCP port"),
    ],
)
def test_bad_option_is_one_clear_line(args: list[str], expected: str) -> None:
    result = _run(*args)
    assert result.returncode == 2, result.stderr
    line = _one_error_line(result, args[0])
    assert expected in line
    assert "s3cret" not in result.stdout + result.stderr
    assert "listening on" not in result.stdout  # never announced as ready


@pytest.mark.redis
@pytest.mark.parametrize("command", ["stack", "check"])
def test_unreachable_redis_url_is_one_clear_line(command: str, tmp_path: Path) -> None:
    env, tmpdir = _private_tmp_env(tmp_path)
    with socket.socket() as bound:  # bound, not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        url = f"redis://:s3cret@127.0.0.1:{port}/0"
        backend = ["--backend", "redis"]
        result = _run(command, *backend, "--redis-url", url, env=env)
    assert result.returncode == 2, result.stderr  # a set-up error, as for every command
    line = _one_error_line(result, command)
    assert f"127.0.0.1:{port}" in line and "PING" in line
    assert "s3cret" not in result.stdout + result.stderr
    assert _hermes_dirs(tmpdir) == set()


def test_check_shows_what_each_backend_did() -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    result = _run("check", timeout_s=180, env=env)  # stdout piped: no terminal
    assert result.returncode == 0, result.stderr
    # Without a terminal the table keeps its full width: no header cut to "…".
    assert "…" not in result.stdout, result.stdout
    for header in ("same prompt,", "other instance", "OpenAI calls", "(ground truth)",
                   f"admitted of {RATE_LIMIT_TRIES}", f"(limit {RATE_LIMIT}/min)",
                   "session after", "wrong answers"):  # fmt: skip
        assert header in result.stdout, header
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("│ ")}
    redis, memory = rows["redis"].split("│"), rows["memory"].split("│")
    cells = lambda row: [c.strip() for c in row[1:-1]]  # noqa: E731
    assert cells(redis)[1:7] == ["MISS", "HIT", "HIT", "1 of 3", "5", "intact"]
    assert cells(memory)[1:6] == ["MISS", "HIT", "MISS", "2 of 3", "10"]
    assert cells(memory)[6].startswith("lost")


def _serve_redis(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    """`hermes-bench redis ARGS` up to its "Press Ctrl-C"; the process and what it printed."""
    out_path = tmp_path / f"redis-{time.monotonic_ns()}.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen([*COMMAND, "redis", *args], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while "Press Ctrl-C" not in out_path.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, out_path.read_text()
        time.sleep(0.1)
    return proc, out_path.read_text()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.redis
def test_redis_keeps_its_append_only_data_where_data_dir_says(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = str(free_port())
    proc, output = _serve_redis(tmp_path, "--port", port, "--appendonly", "--data-dir", str(data))
    try:
        assert f"data in {data.resolve()} (kept after it stops)" in output, output
        with redis.Redis(port=int(port)) as client:
            client.set("kept", "yes")
    finally:
        _stop(proc)
    assert any(data.rglob("appendonly*")), list(data.iterdir())
    proc, _ = _serve_redis(tmp_path, "--port", port, "--appendonly", "--data-dir", str(data))
    try:
        with redis.Redis(port=int(port)) as client:
            assert client.get("kept") == b"yes"
    finally:
        _stop(proc)
    # Without --data-dir the server says its AOF goes with it.
    proc, output = _serve_redis(tmp_path, "--appendonly")
    _stop(proc)
    assert "removed when it stops" in output and "give --data-dir" in output, output


def test_a_mistyped_threshold_figure_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    env, tmpdir = _private_tmp_env(tmp_path)
    output = tmp_path / "reports"
    result = _run(
        "run", "--threshold", "outage.hungg.during max<2s", "--output", str(output), env=env
    )
    assert result.returncode == 2, result.stderr
    line = _one_error_line(result, "run")
    assert "unknown fault 'hungg'; use slowed, full, hung or killed" in line
    assert not output.exists() and _hermes_dirs(tmpdir) == set()  # nothing was started
