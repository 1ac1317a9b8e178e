"""One self-contained HTML report: claims and verdicts, plots inline, cells, configuration.

Opens offline: no external CSS, scripts, fonts or images; plots are data: URIs. `report_view`
reads the results into plain, formatted and redacted strings; `render_view` puts them into the
Jinja2 templates next to this module (autoescape on), and the finished page goes through
redaction once more.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from hermes_bench.redaction import redact_text
from hermes_bench.reports import plots
from hermes_bench.reports.palette import verdict_colour
from hermes_bench.reports.terminal import verdict_counts
from hermes_bench.results.model import Cell, Claim, Results, Run

# The plots are made this wide (plots.py) and laid out at it: shown 1:1, never rescaled.
PLOT_WIDTH_PX = round(plots.WIDTH_IN * plots.DPI)


@dataclass(frozen=True)
class PlotSpec:
    """One plot of the report: how it is made, what it shows, which cell kinds feed it."""

    slug: str
    title: str
    render: Callable[[Results], bytes | None]
    alt: str
    caption: str
    kinds: tuple[str, ...]


PLOTS = (
    PlotSpec(
        "latency-cdf",
        "Response time, cache path",
        plots.latency_cdf,
        "Cumulative distribution of cache-path response time per backend, hits and misses",
        "Response time of the cache path, single instance: share of requests answered within "
        "each time (log axis). Solid: cache hits; dashed: misses (upstream call included).",
        ("cache",),
    ),
    PlotSpec(
        "hit-rate",
        "Hit rate over time",
        plots.hit_rate_over_time,
        "Cache hit rate per second for each cache cell",
        "HIT / (HIT + MISS + BYPASS) each second, from the X-Cache headers; dotted lines: the "
        "ideal hit rate of the very request sequence that ran (every repeat a hit).",
        ("cache",),
    ),
    PlotSpec(
        "upstream-calls",
        "Upstream calls",
        plots.upstream_calls,
        "Requests to the cache, OpenAI calls at the fake upstream and distinct prompts per cell",
        "Requests that reached the cache, calls counted where they arrive (the fake upstream: "
        "ground truth) and distinct prompts (the fewest calls any cache could make).",
        ("cache",),
    ),
    PlotSpec(
        "admitted-vs-limit",
        "Admitted vs limit",
        plots.admitted_vs_limit,
        "Distribution of requests admitted per rate-limit window against the limit",
        "Each burst pushes one fresh key past its limit within one window; bars right of the "
        "dashed limit line are windows where more requests got through than allowed.",
        ("ratelimit",),
    ),
    PlotSpec(
        "lru-bound",
        "Hit rate against cache size",
        plots.lru_bound,
        "LRU hit rate of the run's request sequence against cache size, with achieved hit rates",
        "The very sequence a cache cell drew, replayed through an LRU cache of each size (from "
        "stack distances): no cache of that size can do better. Horizontal lines: what each "
        "cell achieved; dotted: the ideal hit rate (1 - distinct / requests).",
        ("cache",),
    ),
    PlotSpec(
        "sessions-after-restart",
        "Sessions after restart",
        plots.sessions_after_restart,
        "Share of sessions intact before and after restarting every target instance",
        "Sessions created, then every target instance restarted: light bars before, solid bars "
        "after the restart.",
        ("restart",),
    ),
)


KeyValues = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Verdict:
    """A verdict as shown: its text and the colour of its badge."""

    text: str
    colour: str


@dataclass(frozen=True)
class Link:
    """A link to an anchor of the page."""

    anchor: str
    text: str


@dataclass(frozen=True)
class Header:
    """The run at a glance, and which banner (if any) warns that it is unfinished."""

    run_id: str
    profile: str
    status: str
    wall_time: str
    started: str
    ended: str
    banner: str | None  # "interrupted", "running" (any other unfinished status) or None


@dataclass(frozen=True)
class ClaimRow:
    """One line of the claims table."""

    anchor: str
    id: str
    guide: str
    verdict: Verdict
    summary: str


@dataclass(frozen=True)
class PlotFigure:
    """One plot: the PNG as base64 for a data: URI, None when there is nothing to plot."""

    slug: str
    title: str
    alt: str
    caption: str
    width_px: int
    png_base64: str | None


@dataclass(frozen=True)
class ClaimSection:
    """One claim in detail, with links to the cells and plots it rests on."""

    anchor: str
    id: str
    title: str
    verdict: Verdict
    guide: str
    reading: str
    summary: str
    figures: KeyValues
    conditions: KeyValues
    notes: tuple[str, ...]
    cells: tuple[Link, ...]
    plots: tuple[Link, ...]


@dataclass(frozen=True)
class CellRow:
    """One line of the cells table."""

    anchor: str
    id: str
    kind: str
    backend: str
    instances: str
    status: str
    failed: bool
    error: str


@dataclass(frozen=True)
class Configuration:
    """What the run was asked to do and where it ran."""

    options: KeyValues
    machine: KeyValues
    versions: KeyValues


@dataclass(frozen=True)
class ReportView:
    """Everything the report template shows, formatted and redacted, nothing left to compute."""

    title_id: str
    header: Header
    verdict_counts: tuple[tuple[Verdict, int], ...]
    claims: tuple[ClaimRow, ...]
    plots: tuple[PlotFigure, ...]
    claim_sections: tuple[ClaimSection, ...]
    cells: tuple[CellRow, ...]
    configuration: Configuration


def _text(value: Any) -> str:
    """Redacted before the template escapes it: escaping never splits a secret out of sight."""
    return redact_text(str(value))


def _anchor(prefix: str, name: Any) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9_-]", "-", str(name))


def _format_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str)
    return str(value)


def _format_time(epoch_s: Any) -> str:
    if not isinstance(epoch_s, int | float) or isinstance(epoch_s, bool):
        return "—"
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _format_duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    return f"{minutes} min {secs:02d} s" if minutes else f"{seconds:.1f} s"


def _verdict(verdict: Any) -> Verdict:
    return Verdict(_text(verdict), verdict_colour(str(verdict)))


def _key_values(data: Any) -> KeyValues:
    if not isinstance(data, dict):
        return ()
    return tuple((_text(key), _text(_format_value(value))) for key, value in data.items())


def _header(run: Run) -> Header:
    banner = (
        None
        if run.status == "complete"
        else "interrupted"
        if run.status == "interrupted"
        else "running"
    )
    return Header(
        run_id=_text(run.id),
        profile=_text(run.profile),
        status=_text(run.status),
        wall_time=_text(_format_duration(run.wall_s)),
        started=_text(_format_time(run.started_at)),
        ended=_text(_format_time(run.ended_at)),
        banner=banner,
    )


def _claim_row(claim: Claim) -> ClaimRow:
    return ClaimRow(
        anchor=_anchor("claim-", claim.id),
        id=_text(claim.id),
        guide=_text(claim.guide),
        verdict=_verdict(claim.verdict),
        summary=_text(claim.summary),
    )


def _plot_figure(spec: PlotSpec, png: bytes | None) -> PlotFigure:
    return PlotFigure(
        slug=spec.slug,
        title=_text(spec.title),
        alt=_text(spec.alt),
        caption=_text(spec.caption),
        width_px=PLOT_WIDTH_PX,
        png_base64=None if png is None else base64.b64encode(png).decode("ascii"),
    )


def _claim_section(claim: Claim, kinds_by_cell: Mapping[str, str]) -> ClaimSection:
    kinds = {kinds_by_cell.get(c) for c in claim.cells}
    return ClaimSection(
        anchor=_anchor("claim-", claim.id),
        id=_text(claim.id),
        title=_text(claim.title),
        verdict=_verdict(claim.verdict),
        guide=_text(claim.guide),
        reading=_text(claim.reading),
        summary=_text(claim.summary),
        figures=_key_values(claim.figures),
        conditions=_key_values(claim.conditions),
        notes=tuple(_text(n) for n in claim.notes),
        cells=tuple(Link(_anchor("cell-", c), _text(c)) for c in claim.cells),
        plots=tuple(Link(f"plot-{p.slug}", _text(p.title)) for p in PLOTS if kinds & set(p.kinds)),
    )


def _cell_row(cell: Cell) -> CellRow:
    return CellRow(
        anchor=_anchor("cell-", cell.id),
        id=_text(cell.id),
        kind=_text(cell.kind),
        backend=_text(cell.backend or ""),
        instances=_text(cell.instances),
        status=_text(cell.status),
        failed=not cell.ok,
        error=_text(cell.error or ""),
    )


def report_view(results: Results) -> ReportView:
    """What the report shows, read from `results`: the one place the page reads the results."""
    run = results.run
    kinds_by_cell = {c.id: c.kind for c in results.cells}
    return ReportView(
        title_id=_text(run.id),
        header=_header(run),
        verdict_counts=tuple((_verdict(v), n) for v, n in verdict_counts(results).items()),
        claims=tuple(_claim_row(c) for c in results.claims),
        plots=tuple(_plot_figure(spec, spec.render(results)) for spec in PLOTS),
        claim_sections=tuple(_claim_section(c, kinds_by_cell) for c in results.claims),
        cells=tuple(_cell_row(c) for c in results.cells),
        configuration=Configuration(
            options=_key_values(run.options.model_dump()),
            machine=_key_values(run.machine.model_dump()),
            versions=_key_values(run.versions),
        ),
    )


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
