"""The recipe of deploy/README.md on one machine: services started as the compose file starts
them, a Locust master that alone carries the --hermes-* options, and workers in folders of their
own that get everything from it. The merged figures equal the upstream's ground truth, read once.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hermes_bench.harness.cli import build_parser
from hermes_bench.scenarios.options import ScenarioOptions, flag
from hermes_bench.stack.ports import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
HERMES_BENCH = [sys.executable, "-m", "hermes_bench"]
LOCUST = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py")]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _service(
    stack: ExitStack, argv: list[str], log: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a process that the stack stops (and waits for) when the test ends."""
    out = stack.enter_context(log.open("wb"))
    proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    stack.callback(_stop, proc)
    return proc


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise AssertionError(f"{url} exited early:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered:\n{log.read_text()}")


@pytest.fixture
def services(tmp_path: Path, redis_url: str) -> Iterator[tuple[list[str], str]]:
    """The fake upstream and two targets on the given Redis, as deploy/compose.yaml runs them."""
    with ExitStack() as stack:
        upstream_port = free_port()
        upstream = f"http://127.0.0.1:{upstream_port}"
        proc = _service(
            stack,
            [*HERMES_BENCH, "upstream", "--port", str(upstream_port), "--latency", "fixed:5ms"],
            tmp_path / "upstream.log",
        )
        _wait_healthy(upstream + "/healthz", proc, tmp_path / "upstream.log")
        targets = []
        for name in ("target-1", "target-2"):
            port = free_port()
            argv = [*HERMES_BENCH, "target", "--port", str(port), "--redis-url", redis_url,
                    "--upstream-url", upstream + "/v1", "--rate-limit", "none",
                    "--instance-id", name]  # fmt: skip
            log = tmp_path / f"{name}.log"
            proc = _service(stack, argv, log)
            _wait_healthy(f"http://127.0.0.1:{port}/healthz", proc, log)
            targets.append(f"http://127.0.0.1:{port}")
        yield targets, upstream


def test_workers_elsewhere_get_the_options_from_the_master(
    tmp_path: Path, services: tuple[list[str], str]
) -> None:
    targets, upstream = services
    master_port = free_port()
    metrics = tmp_path / "master" / "metrics.json"
    metrics.parent.mkdir()
    master = [*LOCUST, "--master", "--master-bind-host", "127.0.0.1",
              "--master-bind-port", str(master_port), "--expect-workers", "2", "--headless",
              "--only-summary", "-u", "6", "-r", "6", "-t", "90s",
              "--hermes-targets", ",".join(targets), "--hermes-upstream-url", upstream,
              "--hermes-requests", "300", "--hermes-prompt-prefix", secrets.token_hex(4),
              "--hermes-metrics-json", str(metrics), "CacheUser"]  # fmt: skip
    with ExitStack() as stack:
        log = tmp_path / "master.log"
        proc = _service(stack, master, log)
        for k in (1, 2):
            # Another host: a folder of its own, no --hermes-* option, only the master's address.
            folder = tmp_path / f"worker-{k}"
            folder.mkdir()
            worker = [*LOCUST, "--worker", "--master-host", "127.0.0.1",
                      "--master-port", str(master_port)]  # fmt: skip
            _service(stack, worker, folder / "worker.log", cwd=folder)
        code = proc.wait(timeout=150)
    output = log.read_text()
    assert code == 0, output
    document: dict[str, Any] = json.loads(metrics.read_text())
    assert document["run"]["workers"] == 2
    cache = document["cache"]
    assert cache["ground_truth"] is True and cache["cut_at_stop"] == 0
    assert cache["cache_requests"] == 300
    assert cache["cache_requests"] - cache["upstream_calls"] == cache["calls_avoided"]
    assert cache["calls_avoided"] == cache["hits"] > 0
    # The workers wrote nothing of their own: the master alone reads and writes.
    for k in (1, 2):
        assert [p.name for p in (tmp_path / f"worker-{k}").iterdir()] == ["worker.log"]


# --- the example files ---------------------------------------------------------------------


def _commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every container command in deploy/compose.yaml and kubernetes.yaml."""
    found = []
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        if "command" in service:
            found.append((f"compose {name}", list(service["command"])))
    for doc in yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text()):
        spec = doc["spec"].get("template", {}).get("spec", {})
        for container in spec.get("containers", []):
            argv = container.get("command") or container.get("args")
            found.append((f"kubernetes {doc['metadata']['name']}", list(argv)))
    return found


def _services() -> set[str]:
    compose = set(yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"])
    kubernetes = {
        doc["metadata"]["name"]
        for doc in yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text())
        if doc["kind"] == "Service"
    }
    return compose | kubernetes


def test_the_example_files_run_commands_that_exist() -> None:
    hermes_flags = {flag(field.name) for field in dataclasses.fields(ScenarioOptions)}
    services = _services()
    commands = _commands()
    assert {where.split()[0] for where, _ in commands} == {"compose", "kubernetes"}
    for where, argv in commands:
        if argv[0] == "hermes-bench":
            build_parser().parse_args(argv[1:])  # exits 2 on an option that does not exist
        elif argv[0] == "locust":
            given = [a for a in argv if a.startswith("--hermes-")]
            assert set(given) <= hermes_flags, (where, given)
            if "--worker" in argv:
                assert not given, f"{where}: a worker gets the options from its master"
                assert argv[argv.index("--master-host") + 1] in services, where
            else:
                targets = argv[argv.index("--hermes-targets") + 1].split(",")
                hosts = {httpx.URL(url).host for url in targets}
                assert hosts <= services, (where, hosts)
        else:
            assert argv[0] == "redis-server", where
