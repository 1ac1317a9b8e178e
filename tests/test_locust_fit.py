"""Plain Locust as Locust users know it: the hermes figures in its --html and --csv, the
metrics at every test stop, options from its variables and config file, bad values and dead
targets refused before any load."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from locust_processes import processes
from test_locust_outputs import figures_in

from hermes_bench.errors import ConfigError
from hermes_bench.http_json import HttpJsonError, get_json
from hermes_bench.scenarios.hermes_tables import ALL_OUTCOMES
from hermes_bench.scenarios.report_section import BEGIN
from hermes_bench.scenarios.workload import ZipfWorkload
from hermes_bench.stack.ports import free_port
from hermes_bench.stack.stack import Stack, StackConfig

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = str(ROOT / "locustfile.py")
STACK_STARTED = "starting the embedded stack"
# A small, exact run: one memory instance, so every HIT is a call avoided, to the request.
SMALL = ("--hermes-backend", "memory", "--hermes-instances", "1", "--hermes-catalogue-size", "20")


def _env(**extra: str) -> dict[str, str]:
    """This environment without any HERMES_* or LOCUST_* setting of the machine's, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERMES_", "LOCUST_"))}
    return {**env, **extra}


def _locust(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "locust", "-f", LOCUSTFILE, *args]
    return subprocess.run(
        command, cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=150
    )


def _csv(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def _assert_exact(cache: dict[str, Any]) -> None:
    assert cache["ground_truth"] is True and cache["cut_at_stop"] == 0
    assert cache["calls_avoided"] == cache["cache_requests"] - cache["upstream_calls"]
    assert cache["calls_avoided"] == cache["hits"] > 0


def test_locusts_html_and_csv_carry_the_figures_of_the_metrics_document(tmp_path: Path) -> None:
    result = _locust(
        tmp_path, "--headless", "--only-summary", "-u", "3", "-r", "3", "-t", "60s",
        "--hermes-requests", "120", *SMALL, "--html", "r.html", "--csv", "r", "CacheUser",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # Beside Locust's own files, under their name: nothing anywhere else.
    hermes = {"r_hermes_metrics.json", "r_hermes.csv", "r_hermes_cache.csv"}
    locust = {"r.html", "r_stats.csv", "r_stats_history.csv", "r_failures.csv"}
    assert hermes | locust <= {p.name for p in tmp_path.iterdir()}
    assert not (tmp_path / "reports").exists()
    document = json.loads((tmp_path / "r_hermes_metrics.json").read_text())
    cache = document["cache"]
    _assert_exact(cache)
    assert cache["cache_requests"] == 120
    # The cache figures CSV and the report's section say what the document says, unrounded.
    figures = {row["figure"]: row["value"] for row in _csv(tmp_path / "r_hermes_cache.csv")}
    page = (tmp_path / "r.html").read_text()
    in_report = figures_in(page)
    for name, key in (("hit_rate", "hit_rate_headers"), ("calls_avoided", "calls_avoided")):
        assert float(figures[name]) == float(in_report[name]) == cache[key]
    assert int(figures["upstream_calls"]) == int(in_report["upstream_calls"])
    assert int(figures["upstream_calls"]) == cache["upstream_calls"]
    # Locust's own report is still there, below the section.
    assert page.index(BEGIN) < page.rindex('<div id="root">') < page.rindex("window.templateArgs")
    # One row per outcome (and all of them) with its count and µs percentiles.
    rows = {(r["scenario"], r["outcome"]): r for r in _csv(tmp_path / "r_hermes.csv")}
    outcomes = document["metrics"]["scenarios"]["cache"]["outcomes"]
    assert {"HIT", "MISS"} <= set(outcomes)
    for outcome, families in outcomes.items():
        row = rows[("cache", outcome)]
        assert int(row["count"]) == families["service"]["count"]
        assert int(row["p99_us"]) == families["service"]["p99_us"]
    assert int(rows[("cache", ALL_OUTCOMES)]["count"]) == 120
    assert "hermes-bench figures added to r.html" in result.stderr


def _post(url: str, form: dict[str, str] | None = None) -> dict[str, Any]:
    data = urllib.parse.urlencode(form or {}).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as answer:
        return dict(json.loads(answer.read()))


def _wait_for(check: Callable[[], Any], what: str, log: Path, timeout_s: float = 60) -> Any:
    """Poll `check` until it gives something true; fail with the log if it never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            found = check()
        except (OSError, ValueError, HttpJsonError):
            found = None
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"no {what}:\n{log.read_text()[-3000:]}")


def test_stop_in_the_web_ui_writes_the_metrics_and_a_new_test_starts_from_zero(
    tmp_path: Path,
) -> None:
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    out = tmp_path / "out"
    metrics = out / "hermes-metrics.json"
    command = [
        sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--autostart", "-u", "2", "-r", "2",
        "--web-host", "127.0.0.1", "--web-port", str(port), *SMALL, "CacheUser",
        "--hermes-output", str(out), "--html", str(out / "r.html"),
    ]  # fmt: skip
    log = tmp_path / "locust.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen(command, cwd=tmp_path, env=_env(), stdout=sink, stderr=sink)
    try:

        def requests_made() -> bool:
            # "running" only once the swarm has spawned, its stats cleared: a read just after
            # /swarm would otherwise see the last test's counts and stop this one mid-spawn.
            stats = get_json(web + "/stats/requests", timeout_s=5)
            return stats["state"] == "running" and any(
                s["num_requests"] >= 30 for s in stats["stats"] if s["name"] != "Total"
            )

        documents = []
        for test in range(2):
            if test:
                _post(web + "/swarm", {"user_count": "2", "spawn_rate": "2"})
            _wait_for(requests_made, f"requests in test {test + 1}", log)
            _post(web + "/stop")
            # Written at the stop itself: the process keeps running, the web UI with it.
            document = _wait_for(
                lambda: (
                    (d := json.loads(metrics.read_text()))["run"]["started_at"]
                    > (documents[-1]["run"]["ended_at"] if documents else 0)
                    and d
                ),
                f"metrics of test {test + 1}",
                log,
            )
            assert proc.poll() is None
            # A user starts the next test once Locust says this one stopped: a swarm sent while
            # it still stops would mix the two.
            _wait_for(
                lambda: get_json(web + "/stats/requests", timeout_s=5)["state"] == "stopped",
                f"the end of test {test + 1}",
                log,
            )
            # The test's own requests against the upstream's count since its start: exact.
            _assert_exact(document["cache"])
            documents.append(document)
        with urllib.request.urlopen(web + "/stats/report", timeout=30) as answer:
            downloaded = answer.read().decode()
        assert (
            float(figures_in(downloaded)["calls_avoided"]) == documents[1]["cache"]["calls_avoided"]
        )
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    # Quitting wrote Locust's report; the last test's figures are in it.
    report = figures_in((out / "r.html").read_text())
    assert int(report["calls_avoided"]) == documents[1]["cache"]["calls_avoided"]
    assert json.loads(metrics.read_text()) == documents[1]  # quitting did not write a third


def test_master_and_workers_stopped_by_run_time_lose_no_request(tmp_path: Path) -> None:
    """Locust tells its workers to quit only after the master's test_stop: their last
    requests still reach the metrics (a message of their own), to the request."""
    result = _locust(
        tmp_path, "--headless", "--only-summary", *processes(2), "-u", "4", "-r", "4",
        "-t", "4s", *SMALL, "--hermes-metrics-json", "m.json", "CacheUser",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "sent no final metrics" not in result.stderr
    document = json.loads((tmp_path / "m.json").read_text())
    assert document["run"]["workers"] == 2
    _assert_exact(document["cache"])


def test_locust_variables_config_file_and_old_names_set_the_options(tmp_path: Path) -> None:
    (tmp_path / "locust.conf").write_text("hermes-requests = 30\nhermes-instances = 1\n")
    env = _env(LOCUST_HERMES_BACKEND="memory", HERMES_CATALOGUE_SIZE="7")
    result = _locust(
        tmp_path, "--headless", "--only-summary", "-u", "2", "-r", "2", "-t", "60s",
        "--hermes-metrics-json", "m.json", "CacheUser", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"{STACK_STARTED}: memory backend, 1 target instance(s)" in result.stderr
    document = json.loads((tmp_path / "m.json").read_text())
    assert document["run"]["backend"] == "memory"  # LOCUST_HERMES_BACKEND
    assert document["cache"]["cache_requests"] == 30  # hermes-requests in locust.conf
    assert document["run"]["workload"]["catalogue_size"] == 7  # HERMES_CATALOGUE_SIZE


def test_hermes_help_lists_every_option_the_locust_way(tmp_path: Path) -> None:
    result = _locust(tmp_path, "--hermes-help")
    assert result.returncode == 0, result.stderr
    for option in ("--hermes-backend", "--hermes-output", "--hermes-metrics-json"):
        assert option in result.stdout
    assert "[env LOCUST_HERMES_BACKEND]" in result.stdout
    assert "hermes-backend = memory in locust.conf" in result.stdout
    assert not list(tmp_path.iterdir())


def _run_says(*args: str) -> str:
    """What `hermes-bench run` prints for these options (it stops before any cell)."""
    result = subprocess.run(
        [sys.executable, "-m", "hermes_bench", "run", *args],
        capture_output=True, text=True, timeout=60, env=_env(),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    return result.stderr.strip().rpartition("error: ")[2]


@pytest.mark.parametrize("how", ["flag", "variable", "processes"])
def test_a_bad_value_stops_locust_before_anything_starts(tmp_path: Path, how: str) -> None:
    args = ["--headless", "-t", "30s"]
    env = _env()
    if how == "variable":
        env["LOCUST_HERMES_ZIPF_ALPHA"] = "-2"
    else:
        args += ["--hermes-zipf-alpha", "-2"]
    if how == "processes":
        args += processes(2)
    result = _locust(tmp_path, *args, env=env)
    assert result.returncode == 2
    output = result.stdout + result.stderr
    # One line, the sentence hermes-bench run says for the same value, and nothing started.
    with pytest.raises(ConfigError) as built:
        ZipfWorkload(alpha=-2.0)
    sentence = str(built.value)
    assert _run_says("--zipf-alpha", "-2") == sentence
    (line,) = output.strip().splitlines()
    assert line.endswith(f": error: argument --hermes-zipf-alpha: {sentence}")  # locust: ...
    assert not list(tmp_path.iterdir())


class _ClosingServer:
    """Answers GET with a 404 (a gateway without /healthz is alive) and drops every other
    request without an answer, resetting the connection."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    @staticmethod
    def _answer(connection: socket.socket) -> None:
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                request += chunk
            if request.startswith(b"GET "):
                connection.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                return
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def closing_server() -> Iterator[_ClosingServer]:
    server = _ClosingServer()
    yield server
    server.close()


@pytest.mark.parametrize("dead", ["target", "upstream", "target, workers forked"])
def test_a_dead_target_stops_locust_before_any_load(
    tmp_path: Path, closing_server: _ClosingServer, dead: str
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    if dead == "upstream":
        args = ["--host", closing_server.url, "--hermes-upstream-url", nobody]
    else:
        args = ["--host", nobody]
    if dead.endswith("forked"):
        args += processes(2)
    result = _locust(tmp_path, "--headless", "-t", "30s", "--hermes-metrics-json", "m.json", *args)
    assert result.returncode == 2
    role = "upstream (--hermes-upstream-url)" if dead == "upstream" else "target"
    error = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert error == [
        f"hermes-bench: error: {role} {nobody} does not answer: connection refused (nothing "
        "listens on that port). Check the URL and that it runs; no load was sent"
    ]
    assert "Ramping" not in result.stderr and STACK_STARTED not in result.stderr
    assert not (tmp_path / "m.json").exists()
    # Forked workers are stopped with the master, not left to time out waiting for it.
    assert "heartbeat" not in result.stderr


def test_a_request_without_an_answer_fails_with_its_reason(
    tmp_path: Path, closing_server: _ClosingServer
) -> None:
    result = _locust(
        tmp_path, "--headless", "--only-summary", "-u", "1", "-r", "1", "-t", "60s",
        "--host", closing_server.url, "--hermes-requests", "10",
        "--hermes-metrics-json", "m.json", "CacheUser",
    )  # fmt: skip
    assert result.returncode == 1  # failed requests: Locust's own exit code for them
    output = result.stdout + result.stderr
    assert "HTTP 0" not in output
    # Locust's error report: every request, under one reason that names the target.
    failure = f"POST cache: chat: no answer from {closing_server.url}: connection closed before"
    assert re.search(rf"^10\s+{re.escape(failure)} an answer", output, re.MULTILINE), output
    document = json.loads((tmp_path / "m.json").read_text())
    assert document["metrics"]["counters"]["no_answer"] == 10


@pytest.fixture(scope="module")
def listed_keys_target() -> Iterator[Stack]:
    """A reference target that accepts only two keys (its HERMES_API_KEYS)."""
    config = StackConfig(
        backend="memory",
        upstream_latency="fixed:2ms",
        target_env={"HERMES_API_KEYS": "sk-listed-a,sk-listed-b", "RATE_LIMIT": "none"},
    )
    with Stack(config) as stack:
        yield stack


@pytest.mark.parametrize("keys", ["sk-listed-a,sk-listed-b", "10"])
def test_api_keys_are_a_number_to_make_up_or_the_keys_a_target_accepts(
    tmp_path: Path, listed_keys_target: Stack, keys: str
) -> None:
    result = _locust(
        tmp_path, "--headless", "--only-summary", "-u", "2", "-r", "2", "-t", "60s",
        "--host", listed_keys_target.target_urls[0],
        "--hermes-upstream-url", listed_keys_target.upstream_url,
        "--hermes-requests", "20", "--hermes-api-keys", keys,
        "--hermes-metrics-json", "m.json", "CacheUser", "SessionUser",
    )  # fmt: skip
    metrics = json.loads((tmp_path / "m.json").read_text())["metrics"]
    counters = metrics["counters"]
    if keys == "10":  # made up: sk-hermes-bench-0..9, which this target refuses
        assert result.returncode == 1 and counters.get("status_401", 0) > 0
        assert counters.get("sessions_error", 0) > 0
    else:
        assert result.returncode == 0, result.stderr
        assert not {"status_401", "sessions_error"} & set(counters)
        assert metrics["scenarios"]["session"]["outcomes"]["ok"]["service"]["count"] > 0
    assert "sk-listed" not in (tmp_path / "m.json").read_text()
