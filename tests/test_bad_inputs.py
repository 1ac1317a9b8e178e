"""Every bad input the harness reads, fed to it for real: one line, exit 2, no traceback, and
no wait on a FIFO. Results files, traces and request logs, config files and output paths."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
GOOD = json.loads((ROOT / "tests" / "data" / "results-quick.json").read_text())


def _results(change: Callable[[dict[str, Any]], None]) -> str:
    data = copy.deepcopy(GOOD)
    change(data)
    return json.dumps(data)


def _set(section: str, name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda data: data[section].__setitem__(name, value)


# name -> file content (bytes or text); "FIFO" and "DIR" make a named pipe or a folder.
BAD_RESULTS: dict[str, bytes | str] = {
    "not UTF-8": b"\xff\xfe{}",
    "a list": "[]",
    "a field of the wrong type": _results(_set("run", "started_at", "yesterday")),
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "a timestamp of 1e300": _results(_set("run", "started_at", 1e300)),
    "wall_s NaN": _results(_set("run", "wall_s", float("nan"))),
    "wall_s Infinity": _results(_set("run", "wall_s", float("inf"))),
    "a 5000-digit number": '{"schema": "hermes-bench/results/1", "n": 1' + "0" * 5000 + "}",
    "a FIFO": "FIFO",
    "a folder without results": "DIR",
}
BAD_TRACES: dict[str, bytes | str] = {
    "deep nesting": "[" * 100_000 + "]" * 100_000 + "\n",
    "a 5000-digit number": '{"prompt": "a", "offset_s": 1' + "0" * 5000 + "}\n",
    "a key with CR LF": '{"prompt": "a", "key": "sk-1\\r\\nX-Evil: 1"}\n',
    "a FIFO": "FIFO",
    "a folder": "DIR",
}


def _make(path: Path, content: bytes | str) -> Path:
    if content == "FIFO":
        os.mkfifo(path)
    elif content == "DIR":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _one_line_exit_2(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hermes_bench", *args],
        capture_output=True, text=True, timeout=60, cwd=cwd,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("case", BAD_RESULTS)
@pytest.mark.parametrize("command", ["report", "compare"])
def test_a_bad_results_file(tmp_path: Path, command: str, case: str) -> None:
    bad = str(_make(tmp_path / "results.json", BAD_RESULTS[case]))
    args = [bad, "--output", str(tmp_path / "r.html")] if command == "report" else [bad, bad]
    line = _one_line_exit_2(command, *args, cwd=tmp_path)
    assert "results" in line or "results.json" in line


@pytest.mark.parametrize("case", BAD_TRACES)
def test_a_bad_trace_for_trace_stats(tmp_path: Path, case: str) -> None:
    bad = _make(tmp_path / "trace.jsonl", BAD_TRACES[case])
    line = _one_line_exit_2("trace-stats", str(bad), cwd=tmp_path)
    assert "trace.jsonl" in line


@pytest.mark.parametrize("case", ["deep nesting", "a 5000-digit number", "a FIFO"])
def test_a_bad_trace_for_locust(tmp_path: Path, case: str) -> None:
    bad = _make(tmp_path / "trace.jsonl", BAD_TRACES[case])
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless",
         "-u", "1", "-t", "5s", "--hermes-workload", "trace", "--hermes-trace", str(bad)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "trace.jsonl" in done.stderr
    assert "starting the embedded stack" not in done.stderr


def _unwritable(tmp_path: Path) -> list[tuple[str, ...]]:
    results = tmp_path / "good.json"
    results.write_text(json.dumps(GOOD))
    folder = tmp_path / "a-folder"
    folder.mkdir()
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    fifo = _make(tmp_path / "config.toml", "FIFO")
    return [
        ("report", str(results), "--output", str(folder)),
        ("report", str(results), "--output", "/proc/no/report.html"),
        ("compare", str(results), str(results), "--json", "/proc/no/compare.json"),
        ("compare", str(results), str(results), "--json", str(folder)),
        ("run", "--cells", "cache", "--output", "/proc/no"),
        ("run", "--cells", "cache", "--output", str(a_file)),
        ("run", "--cells", "cache", "--config", str(fifo)),
    ]


def test_outputs_that_cannot_be_written_and_a_config_that_is_a_fifo(tmp_path: Path) -> None:
    for args in _unwritable(tmp_path):
        _one_line_exit_2(*args, cwd=tmp_path)
