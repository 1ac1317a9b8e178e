"""Where a plain Locust run's hermes files go: beside Locust's own outputs, or a run folder.

Decided once, when the run starts, so every test stop writes the same files:
- the metrics JSON: --hermes-metrics-json PATH; else DIR/hermes-metrics.json of
  --hermes-output DIR; else PREFIX_hermes_metrics.json beside --csv PREFIX (or the --html
  report, its name without .html); else reports/locust-<date>-<time>-<id>/hermes-metrics.json,
  a folder of the run's own, as `hermes-bench run` makes reports/run-<...>/.
- the two CSVs (per outcome; cache figures): beside --csv or --html under the same name
  (PREFIX_hermes.csv, PREFIX_hermes_cache.csv); else in the --hermes-output or run folder;
  none when only --hermes-metrics-json says where the run's files go.
- the hermes section: into Locust's --html report itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path("reports")
METRICS_NAME = "hermes-metrics.json"
OUTCOMES_SUFFIX = "_hermes.csv"
FIGURES_SUFFIX = "_hermes_cache.csv"
METRICS_SUFFIX = "_hermes_metrics.json"


@dataclass(frozen=True, slots=True)
class OutputPaths:
    """The files one run writes at every test stop, and the report it adds its section to."""

    metrics_json: Path
    outcomes_csv: Path | None = None
    figures_csv: Path | None = None
    html_report: Path | None = None


def run_id(now_s: float, token: str) -> str:
    """A run folder's name: locust-<local date>-<time>-<token>, sorting by start time."""
    return time.strftime("locust-%Y%m%d-%H%M%S-", time.localtime(now_s)) + token


def output_paths(
    *,
    metrics_json: str,
    output: str,
    csv_prefix: str | None,
    html_file: str | None,
    run_id: str,
) -> OutputPaths:
    """The paths for these options (the html file already as Locust names it: {u}, {r}, {t}
    replaced); `run_id` names the run folder when no option says where."""
    html = Path(html_file) if html_file else None
    beside = csv_prefix or (_without_html(html_file) if html_file else None)
    folder = Path(output) if output else None
    if folder is None and not metrics_json and beside is None:
        folder = DEFAULT_ROOT / run_id
    if metrics_json:
        metrics = Path(metrics_json)
    elif folder is not None:
        metrics = folder / METRICS_NAME
    else:
        assert beside is not None
        metrics = Path(beside + METRICS_SUFFIX)
    if beside is not None:
        return OutputPaths(
            metrics, Path(beside + OUTCOMES_SUFFIX), Path(beside + FIGURES_SUFFIX), html
        )
    if folder is not None:
        outcomes, figures = folder / "hermes.csv", folder / "hermes_cache.csv"
        return OutputPaths(metrics, outcomes, figures, html)
    return OutputPaths(metrics, html_report=html)


def _without_html(path: str) -> str:
    return path[: -len(".html")] if path.lower().endswith(".html") else path
