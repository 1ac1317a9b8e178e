"""One self-contained HTML report: claims and verdicts, plots inline, cells, configuration.

Opens offline: no external CSS, scripts, fonts or images; plots are data: URIs. `report_view`
reads the results into plain, formatted and redacted strings; `render_view` puts them into the
Jinja2 templates next to this module (autoescape on), and the finished page goes through
redaction once more. The one outside link is to each cell's Locust files, relative to the
report, and only to files that are there.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined

from hermes_bench.redaction import redact_text
from hermes_bench.reports.report_view import FileLink, ReportView, report_view
from hermes_bench.results.files import write_text_atomically
from hermes_bench.results.model import Results

# What Locust writes into each cell's folder (hermes_bench/harness/cells.py: --html, --csv).
CELLS_FOLDER = "cells"
LOCUST_REPORT = "locust.html"
LOCUST_CSV_GLOB = "locust_*.csv"


def render_view(view: ReportView) -> str:
    """The report page for `view`, from the templates in hermes_bench/reports/templates."""
    environment = Environment(
        loader=PackageLoader("hermes_bench.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    page = environment.get_template("report.html.j2").render(view=view)
    # Last pass over the whole page: whatever slipped past the per-field redaction.
    return redact_text(page)


def cell_files(
    results: Results, results_dir: Path, report_dir: Path
) -> dict[str, tuple[FileLink, ...]]:
    """Per cell id, the Locust report and CSVs found in results_dir/cells/<id>/, each linked
    relative to `report_dir`; a cell whose files are not there gets none."""
    found = {}
    for cell in results.cells:
        folder = results_dir / CELLS_FOLDER / cell.id
        if not folder.is_dir():
            continue
        paths = [folder / LOCUST_REPORT, *sorted(folder.glob(LOCUST_CSV_GLOB))]
        links = tuple(
            FileLink(_href(path, report_dir), _file_text(path)) for path in paths if path.is_file()
        )
        if links:
            found[cell.id] = links
    return found


def _href(path: Path, report_dir: Path) -> str:
    relative = os.path.relpath(path.resolve(), report_dir.resolve())
    return quote(Path(relative).as_posix())


def _file_text(path: Path) -> str:
    """ "Locust report" for locust.html; the CSV's own name (stats, stats history...) else."""
    if path.name == LOCUST_REPORT:
        return "Locust report"
    return path.stem.removeprefix("locust_").replace("_", " ") + " (CSV)"


def render_html(
    results: Results, results_dir: Path | None = None, report_dir: Path | None = None
) -> str:
    """The whole report as one HTML page; with `results_dir` (where results.json and the
    cells' folders are), each cell links its Locust files relative to `report_dir`."""
    files = {}
    if results_dir is not None:
        files = cell_files(results, results_dir, report_dir or results_dir)
    return render_view(report_view(results, files))


def write_report(results: Results, path: Path, results_dir: Path | None = None) -> Path:
    """Write the HTML report to `path` (parents created) and return the path. The cells'
    Locust files are looked for under `results_dir`, by default the report's own folder."""
    path = Path(path)
    page = render_html(results, results_dir or path.parent, path.parent)
    write_text_atomically(path, page)
    return path
