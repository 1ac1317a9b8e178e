"""Writing a run's hermes files: the metrics JSON, its CSVs, its section in Locust's report."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from hermes_bench.results.model import MetricsDocument
from hermes_bench.scenarios.hermes_tables import figures_csv, outcomes_csv
from hermes_bench.scenarios.output_paths import OutputPaths
from hermes_bench.scenarios.report_section import Link, add_section, render_section, section_view

log = logging.getLogger("hermes_bench")


def write_metrics(paths: OutputPaths, text: str, document: MetricsDocument | None) -> list[Path]:
    """Write the metrics JSON `text` and, from the typed `document` (None: it did not match
    its model), the CSVs; returns the files written."""
    written = [_write(paths.metrics_json, text)]
    if document is not None:
        for path, content in ((paths.outcomes_csv, outcomes_csv), (paths.figures_csv, figures_csv)):
            if path is not None:
                written.append(_write(path, content(document)))
    return written


def add_to_report(paths: OutputPaths, document: MetricsDocument) -> Path | None:
    """Put the hermes section into Locust's HTML report, if it wrote one; returns its path."""
    report = paths.html_report
    if report is None or not report.is_file():
        return None
    page = report.read_text(encoding="utf-8")
    report.write_text(add_section(page, section_html(paths, document)), encoding="utf-8")
    return report


def section_html(paths: OutputPaths, document: MetricsDocument) -> str:
    """The section for `document`, its links relative to the report's folder."""
    folder = paths.html_report.parent if paths.html_report is not None else Path()
    files = (
        ("metrics JSON", paths.metrics_json),
        ("per-outcome CSV", paths.outcomes_csv),
        ("cache figures CSV", paths.figures_csv),
    )
    links = tuple(
        Link(label, Path(os.path.relpath(path.absolute(), folder.absolute())).as_posix())
        for label, path in files
        if path is not None
    )
    return render_section(section_view(document, links))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
