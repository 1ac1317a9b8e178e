"""Shared fixtures of the benchmarks, and the plugin that reports the ratio figures.

Ratios are printed and written to JSON, never asserted: the machine is shared and noisy.
"""

from __future__ import annotations

import json
import operator
import os
import platform
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import redis

from hermes_bench.stack.embedded_redis import redis_from_env_or_private

RATIO_PLUGIN_NAME = "hermes-bench-ratios"
DEFAULT_RATIOS_JSON = ".benchmarks/ratios.json"
_GOAL_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
}
_LIBRARIES = ("redis", "hiredis", "limits", "cachetools", "hdrhistogram", "geventhttpclient")


@dataclass(frozen=True)
class RatioFigure:
    """One measured ratio, its goal (e.g. '>=' 0.5) and what it was computed from."""

    name: str
    value: float
    goal_op: str
    goal: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def meets_goal(self) -> bool:
        """True when the value is on the right side of the goal."""
        return _GOAL_OPERATORS[self.goal_op](self.value, self.goal)

    @property
    def verdict(self) -> str:
        """'meets goal' or 'misses goal'."""
        return "meets goal" if self.meets_goal else "misses goal"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, verdict included."""
        return {
            "name": self.name,
            "value": round(self.value, 4),
            "goal": f"{self.goal_op} {self.goal}",
            "verdict": self.verdict,
            "details": self.details,
        }


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries on the measured paths."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine_description() -> dict[str, Any]:
    """What the figures were measured on: a ratio means little without it."""
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": sys.version.split()[0],
    }


def render_table(figures: list[RatioFigure]) -> list[str]:
    """The figures as aligned text lines: name, value, goal, verdict."""
    rows = [("figure", "value", "goal", "verdict")]
    rows += [(f.name, f"{f.value:.3f}", f"{f.goal_op} {f.goal}", f.verdict) for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]


class RatioReport:
    """Collects ratio figures during the session; prints and saves them at its end."""

    def __init__(self, json_path: Path) -> None:
        self.json_path = json_path
        self.figures: list[RatioFigure] = []
        self.context: dict[str, Any] = {}

    def add(self, figure: RatioFigure) -> None:
        """Record one figure for the summary and the JSON file."""
        self.figures.append(figure)

    def document(self) -> dict[str, Any]:
        """Everything written to the JSON file."""
        return {
            "schema": 1,
            "machine": machine_description(),
            "versions": library_versions(),
            **self.context,
            "figures": [f.as_dict() for f in self.figures],
        }

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Print the table and the details of each figure, then write the JSON file."""
        if not self.figures:
            return
        terminalreporter.section("hermes-bench ratios (printed, never asserted)")
        for line in render_table(self.figures):
            terminalreporter.write_line(line)
        for figure in self.figures:
            terminalreporter.write_line(f"- {figure.name}:")
            for key, value in figure.details.items():
                terminalreporter.write_line(f"    {key}: {value}")
        self.json_path.parent.mkdir(parents=True, exist_ok=True)
        self.json_path.write_text(json.dumps(self.document(), indent=2) + "\n")
        terminalreporter.write_line(f"ratios written to {self.json_path}")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--ratios-json",
        default=DEFAULT_RATIOS_JSON,
        help=f"where bench/test_ratios.py writes its figures (default {DEFAULT_RATIOS_JSON})",
    )


def pytest_configure(config: pytest.Config) -> None:
    path = Path(config.getoption("--ratios-json"))
    if not path.is_absolute():
        path = config.invocation_params.dir / path
    config.pluginmanager.register(RatioReport(path), RATIO_PLUGIN_NAME)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Let -k select a benchmark group by the name its table shows (`-k cache-get-hit`)."""
    # tryfirst: the group must be a keyword before pytest's -k deselection looks at the items.
    for item in items:
        marker = item.get_closest_marker("benchmark")
        group = marker.kwargs.get("group") if marker else None
        if group:
            item.extra_keyword_matches.add(group)


@pytest.fixture(scope="session")
def ratio_report(pytestconfig: pytest.Config) -> RatioReport:
    """The session's figure collector."""
    report = pytestconfig.pluginmanager.get_plugin(RATIO_PLUGIN_NAME)
    assert isinstance(report, RatioReport)
    return report


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """REDIS_URL when the environment sets it, else a private redis-server for this session."""
    with redis_from_env_or_private() as url:
        yield url


@pytest.fixture(scope="session")
def backend_versions(redis_url: str) -> dict[str, str]:
    """Library versions plus the version the Redis server reports in INFO."""
    with redis.Redis.from_url(redis_url) as client:
        server = client.info("server")
    return {**library_versions(), "redis_server": str(server["redis_version"])}
