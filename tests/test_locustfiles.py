"""The runnable locustfiles of scenarios/: one user class each, and all four from the folder."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hermes_bench.results.vocabulary import STEP_PREFIX

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
USERS = ROOT / "hermes_bench" / "scenarios" / "users.py"
PLUGIN = "hermes_bench.scenarios.plugin"
# Locustfile -> (its user class, the metrics scenarios a run of it records).
LOCUSTFILES = {
    "cache.py": ("CacheUser", {"cache"}),
    "rate_limit.py": ("RateLimitUser", {"ratelimit", "_ratelimit_window"}),
    "sessions.py": ("SessionUser", {"session"}),
    "mixed.py": ("MixedUser", {"mixed", "session"}),
}
STACK_STARTED = "starting the embedded stack"


def _imports(tree: ast.Module) -> tuple[list[str], list[tuple[str, str]]]:
    modules = [a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names]
    names = [
        (n.module or "", a.name)
        for n in tree.body
        if isinstance(n, ast.ImportFrom)
        for a in n.names
    ]
    return modules, names


def test_the_folder_holds_exactly_the_four_locustfiles() -> None:
    # Locust loads every .py of a folder not starting with "_": nothing else may sit there.
    found = {p.name for p in SCENARIOS.rglob("*.py") if not p.name.startswith("_")}
    assert found == set(LOCUSTFILES)
    assert (SCENARIOS / "README.md").is_file()


@pytest.mark.parametrize("name", sorted(LOCUSTFILES))
def test_each_locustfile_is_thin(name: str) -> None:
    user_class, _ = LOCUSTFILES[name]
    tree = ast.parse((SCENARIOS / name).read_text(encoding="utf-8"))
    assert f"locust -f scenarios/{name}" in (ast.get_docstring(tree) or "")
    modules, names = _imports(tree)
    assert modules == [PLUGIN]
    assert names == [("hermes_bench.scenarios.users", user_class)]
    # Only the docstring, the imports and __all__: no class defined here, so loading the folder
    # never sees one class from two files.
    kinds = {type(node).__name__ for node in tree.body[1:]}
    assert kinds <= {"Import", "ImportFrom", "Assign"}
    users = ast.parse(USERS.read_text(encoding="utf-8"))
    assert user_class in {n.name for n in users.body if isinstance(n, ast.ClassDef)}


def _locust(
    tmp_path: Path, locustfile: Path, *args: str, metrics: Path | None
) -> tuple[int, str, dict[str, Any]]:
    """A bounded headless run in tmp_path; (exit code, output, the metrics document)."""
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless"]
    command += ["--only-summary", *args]
    if metrics is not None:
        command += ["--hermes-metrics-json", str(metrics)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERMES_", "LOCUST_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ left in scenarios/
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=110
    )
    output = result.stdout + result.stderr
    # Without --hermes-metrics-json: a folder of the run's own under reports/.
    found = list(tmp_path.glob("reports/locust-*/hermes-metrics.json"))
    written = metrics or (found[0] if len(found) == 1 else tmp_path / "none")
    document = json.loads(written.read_text()) if written.exists() else {}
    return result.returncode, output, document


@pytest.mark.e2e
@pytest.mark.parametrize("name", sorted(LOCUSTFILES))
def test_each_locustfile_runs_its_one_user(tmp_path: Path, name: str) -> None:
    _, scenarios = LOCUSTFILES[name]
    code, output, document = _locust(
        tmp_path, SCENARIOS / name, "-u", "2", "-r", "2", "-t", "4s",
        "--hermes-requests", "30", metrics=tmp_path / "metrics.json",
    )  # fmt: skip
    assert code == 0, output
    assert _user_scenarios(document) == scenarios
    assert output.count(STACK_STARTED) == 1
    assert document["run"]["embedded_stack"] is True


def _user_scenarios(document: dict[str, Any]) -> set[str]:
    """The scenarios the users recorded, without the app's step timings (Server-Timing)."""
    return {s for s in document["metrics"]["scenarios"] if not s.startswith(STEP_PREFIX)}


@pytest.mark.e2e
def test_the_folder_loads_all_four_once(tmp_path: Path) -> None:
    # No --hermes-metrics-json: the default lands in reports/locust-<date>-<time>-<id>/.
    code, output, document = _locust(
        tmp_path, SCENARIOS, "-u", "6", "-r", "6", "-t", "5s", "--hermes-requests", "60",
        metrics=None,
    )  # fmt: skip
    assert code == 0, output
    assert "Duplicate" not in output and "conflicting option" not in output
    assert output.count(STACK_STARTED) == 1  # the plugin's listeners are registered once
    recorded = _user_scenarios(document)
    assert recorded == set().union(*(s for _, s in LOCUSTFILES.values()))
    assert [p.name for p in tmp_path.iterdir()] == ["reports"]  # nothing else in the folder
    (run_folder,) = (tmp_path / "reports").iterdir()
    assert sorted(p.name for p in run_folder.iterdir()) == [
        "hermes-metrics.json",
        "hermes.csv",
        "hermes_cache.csv",
    ]
