"""What the report page shows, read from Results: plain strings, formatted and redacted.

The one place the report reads the results; the templates only loop over this view.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hermes_bench.redaction import redact_text
from hermes_bench.reports.palette import verdict_colour
from hermes_bench.reports.plot_specs import PLOT_WIDTH_PX, PLOTS, PlotSpec
from hermes_bench.reports.terminal import verdict_counts
from hermes_bench.results.model import Cell, Claim, Results, Run

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
    holds_when: str | None


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
    holds_when: str | None
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
        holds_when=None if claim.holds_when is None else _text(claim.holds_when),
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
        holds_when=None if claim.holds_when is None else _text(claim.holds_when),
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
