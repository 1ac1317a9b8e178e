"""One self-contained HTML report: claims and verdicts, plots inline, cells, configuration.

Opens offline: no external CSS, scripts, fonts or images; plots are data: URIs. `report_view`
reads the results into plain, formatted and redacted strings; `render_view` puts them into the
Jinja2 templates next to this module (autoescape on), and the finished page goes through
redaction once more.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from hermes_bench.redaction import redact_text
from hermes_bench.reports.report_view import ReportView, report_view
from hermes_bench.results.model import Results


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


def render_html(results: Results) -> str:
    """The whole report as one HTML page."""
    return render_view(report_view(results))


def write_report(results: Results, path: Path) -> Path:
    """Write the HTML report to `path` (parents created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(results), encoding="utf-8")
    return path
