"""Locust run headless on the project's locustfile, as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = str(ROOT / "locustfile.py")


def run_locust(
    tmp_path: Path, *args: str, timeout_s: float = 150
) -> tuple[int, str, dict[str, Any]]:
    """Run Locust headless in `tmp_path`; returns (exit code, its output, the metrics
    document, {} when none was written)."""
    metrics = tmp_path / "metrics.json"
    command = [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless", "--only-summary"]
    result = subprocess.run(
        [*command, "--hermes-metrics-json", str(metrics), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    output = result.stdout + result.stderr
    document = json.loads(metrics.read_text()) if metrics.exists() else {}
    return result.returncode, output, document
