"""What the report page shows, read from Results: plain strings, formatted and redacted.

The one place the report reads the results; the templates only loop over this view.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hermes_bench.redaction import redact_text
from hermes_bench.reports.capacity import capacities
from hermes_bench.reports.claim_plot_data import pool_figures
from hermes_bench.reports.outage_verdicts import outage_figures, statuses_text
from hermes_bench.reports.palette import verdict_colour
from hermes_bench.reports.plain_answer import usd
from hermes_bench.reports.plot_data import instances_text
from hermes_bench.reports.plot_specs import CLAIM_PLOTS, PLOT_WIDTH_PX, PLOTS
from hermes_bench.reports.terminal import verdict_counts
from hermes_bench.results.model import (
    Cell,
    Claim,
    EvictionFigures,
    FallbackFigures,
    MemoryFigures,
    OutageFigures,
    OutagePhase,
    Payoff,
    Results,
    Run,
    SweepFigures,
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
class FileLink:
    """A link to a file beside the report, relative to the report's folder."""

    href: str
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
    banner: str | None  # "interrupted", "killed", "running" (any other unfinished) or None


@dataclass(frozen=True)
class ClaimRow:
    """One line of the claims table."""

    anchor: str
    id: str
    guide: str
    verdict: Verdict
    summary: str
    holds_when: str | None
    plot: Link | None  # the claim's own plot, when its cells hold something to plot


@dataclass(frozen=True)
class PlotFigure:
    """One plot: the PNG as base64 for a data: URI, None when there is nothing to plot;
    `slug` is its anchor on the page (plot-SLUG)."""

    slug: str
    title: str
    alt: str
    caption: str
    width_px: int
    png_base64: str | None


@dataclass(frozen=True)
class SweepView:
    """One sweep (of the capacity section, or a claim's): what it found, and its steps as rows."""

    title: str
    summary: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class ClaimSection:
    """One claim in detail, with its own plot and links to the cells it rests on."""

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
    plot: PlotFigure | None  # None: a claim told in words (C12) or one that measured nothing
    evidence: str | None  # what a claim told in words rests on (the fallback target's log)
    steps: SweepView | None = None  # a claim judged on a sweep (C13): its steps as rows


@dataclass(frozen=True)
class PhaseRow:
    """One phase of a fault: what the requests sent in it met."""

    phase: str
    span: str
    chat: str  # statuses of the chat requests
    throughput: str
    served: str  # served by Redis / failed open / limiter fail-open / cache writes refused
    failed_open: str
    limiter_open: str
    writes_refused: str
    p50: str
    p99: str
    longest: str
    beside_upstream: str  # the longest less its upstream part
    session_reads: str
    session_writes: str
    healthz: str


@dataclass(frozen=True)
class OutageSection:
    """One fault of Redis: the verdict on what the app did, and its figures phase by phase."""

    anchor: str
    id: str
    title: str
    verdict: Verdict
    guide: str
    reading: str
    how: str
    summary: str
    holds_when: str | None
    timeline: KeyValues
    phases: tuple[PhaseRow, ...]
    notes: tuple[str, ...]
    conditions: KeyValues
    cell: Link | None


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
    files: tuple[FileLink, ...]  # the cell's Locust report and CSVs, when they are there


@dataclass(frozen=True)
class Configuration:
    """What the run was asked to do and where it ran."""

    options: KeyValues
    machine: KeyValues
    versions: KeyValues


@dataclass(frozen=True)
class TierRow:
    """One Redis tier of the payoff table."""

    label: str
    monthly: str
    break_even: str
    why_not: str


@dataclass(frozen=True)
class PayoffView:
    """The payoff in figures, or why it is not known."""

    measured: bool
    reason: str
    figures: KeyValues
    tiers: tuple[TierRow, ...]
    assumptions: tuple[str, ...]


@dataclass(frozen=True)
class ReportView:
    """Everything the report template shows, formatted and redacted, nothing left to compute."""

    title_id: str
    header: Header
    answer: tuple[str, ...]  # the plain answer, first on the page
    payoff: PayoffView | None
    verdict_counts: tuple[tuple[Verdict, int], ...]
    claims: tuple[ClaimRow, ...]
    plots: tuple[PlotFigure, ...]
    claim_sections: tuple[ClaimSection, ...]
    outages: tuple[OutageSection, ...]
    capacity: tuple[SweepView, ...]
    cells: tuple[CellRow, ...]
    configuration: Configuration


def _text(value: Any) -> str:
    """Redacted before the template escapes it: escaping never splits a secret out of sight."""
    return redact_text(str(value))


def _anchor(prefix: str, name: Any) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9_-]", "-", str(name))


def _format_value(value: Any, key: str = "") -> str:
    """A value as people read it: "—" for nothing, yes/no, lists and mappings as text, and a
    count of instances as "1 instance" or "1 and 2 instances"."""
    if value is None or (isinstance(value, dict | list | tuple) and not value):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "instances" and _whole_numbers(value):
        return _instances(value if isinstance(value, list | tuple) else [value])
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_format_value(v, str(k))}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_format_value(v) for v in value)
    return str(value)


def _whole_numbers(value: Any) -> bool:
    values = value if isinstance(value, list | tuple) else [value]
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def _instances(counts: list[int] | tuple[int, ...]) -> str:
    """[1] -> "1 instance"; [1, 2] -> "1 and 2 instances"."""
    ordered = [str(n) for n in sorted(set(counts))]
    if len(ordered) == 1:
        return instances_text(counts[0])
    return f"{', '.join(ordered[:-1])} and {ordered[-1]} instances"


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


def _key_values(data: Any, labels: Mapping[str, str] | None = None) -> KeyValues:
    """Rows of a key-value table; `labels` names keys for people (requests_per_cache_cell ->
    requests per cache cell), any other key shown as it is."""
    if not isinstance(data, dict):
        return ()
    labels = labels or {}
    return tuple(
        (_text(labels.get(str(key), key)), _text(_format_value(value, str(key))))
        for key, value in data.items()
    )


def _header(run: Run) -> Header:
    banner = (
        None
        if run.status == "complete"
        else run.status
        if run.status in ("interrupted", "killed")
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


def _claim_row(claim: Claim, plot: PlotFigure | None) -> ClaimRow:
    return ClaimRow(
        anchor=_anchor("claim-", claim.id),
        id=_text(claim.id),
        guide=_text(claim.guide),
        verdict=_verdict(claim.verdict),
        summary=_text(claim.summary),
        holds_when=None if claim.holds_when is None else _text(claim.holds_when),
        plot=None if plot is None else Link(f"plot-{plot.slug}", plot.title),
    )


def _plot_figure(slug: str, title: str, alt: str, caption: str, png: bytes | None) -> PlotFigure:
    return PlotFigure(
        slug=slug,
        title=_text(title),
        alt=_text(alt),
        caption=_text(caption),
        width_px=PLOT_WIDTH_PX,
        png_base64=None if png is None else base64.b64encode(png).decode("ascii"),
    )


def _claim_plot(results: Results, claim: Claim) -> PlotFigure | None:
    """The claim's own plot, from the cells it names; None when it has none or they hold
    nothing to plot."""
    spec = CLAIM_PLOTS.get(claim.id)
    png = spec.render(results, claim) if spec is not None and claim.cells else None
    if spec is None or png is None:
        return None
    return _plot_figure(_anchor("claim-", claim.id), spec.title, spec.alt, spec.caption, png)


def _evidence(results: Results, claim: Claim) -> str | None:
    """What a claim told in words rests on: the log of its fallback target."""
    for cell in results.cells:
        if cell.id in claim.cells and isinstance(cell.extra, FallbackFigures) and cell.extra.log:
            return _text(cell.extra.log)
    return None


def _claim_section(results: Results, claim: Claim, plot: PlotFigure | None) -> ClaimSection:
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
        plot=plot,
        evidence=_evidence(results, claim),
        steps=_pool_steps(results, claim),
    )


_POOL_COLUMNS = (
    "pool", "in flight", "requests", "lost Redis", "HTTP", "wait p50", "wait p99", "refused",
    "p50", "p99", "req/s",
)  # fmt: skip
_POOL_MODES = {"nonblocking": "plain (the guide's)", "blocking": "blocking"}


def _pool_steps(results: Results, claim: Claim) -> SweepView | None:
    """The pool sweep a claim rests on (C13), a row per mode and step; None without one."""
    figures = pool_figures(results, claim.cells)
    if figures is None:
        return None
    rows = []
    for mode, steps in figures.modes.items():
        for step in sorted(steps, key=lambda s: s.in_flight):
            wait = step.connection_wait
            rows.append(
                tuple(
                    _text(value)
                    for value in (
                        _POOL_MODES.get(mode, mode),
                        step.in_flight,
                        step.requests,
                        _share(step.lost_redis_share),
                        statuses_text(step.statuses),
                        _wait(None if wait is None else wait.p50_us),
                        _wait(None if wait is None else wait.p99_us),
                        "—" if step.connection_refusals is None else step.connection_refusals,
                        _ms(step.latency.p50_us),
                        _ms(step.latency.p99_us),
                        f"{step.throughput_rps:g}/s",
                    )
                )
            )
    summary = (
        f"REDIS_MAX_CONNECTIONS={figures.max_connections}, REDIS_TIMEOUT={figures.timeout_s:g} s. "
        "Wait: the app's own time from asking its pool for a connection to having one, or to "
        "the refusal. p50, p99: response time at the client."
    )
    return SweepView(_text("The pool's steps"), _text(summary), _POOL_COLUMNS, tuple(rows))


def _wait(us: int | None) -> str:
    """µs below a millisecond, where waits of a pool with a free connection stay."""
    if us is None:
        return "—"
    return f"{us} µs" if us < 1000 else _ms(us)


def _ms(us: int | float | None) -> str:
    return "—" if us is None else f"{us / 1000:,.1f} ms"


def _seconds(value: float | None, missing: str) -> str:
    return missing if value is None else f"{value:.2f} s"


def _phase_row(name: str, phase: OutagePhase) -> PhaseRow:
    sessions = phase.sessions
    return PhaseRow(
        phase=_text(name),
        span=_text(f"{phase.start_s:.1f}–{phase.end_s:.1f} s"),
        chat=_text(statuses_text(phase.statuses)),
        throughput=_text(f"{phase.throughput_rps:g}/s"),
        served=_text(phase.served_by_redis),
        failed_open=_text(phase.failed_open),
        limiter_open=_text(phase.limiter_failed_open + phase.limiter_failed_closed),
        writes_refused=_text(phase.cache_write_failed),
        p50=_text(_ms(phase.latency.p50_us)),
        p99=_text(_ms(phase.latency.p99_us)),
        longest=_text(_ms(phase.latency.max_us)),
        beside_upstream=_text(_ms(phase.beside_upstream.max_us)),
        session_reads=_text(
            statuses_text(sessions["read"].statuses) if "read" in sessions else "—"
        ),
        session_writes=_text(
            statuses_text(sessions["write"].statuses) if "write" in sessions else "—"
        ),
        healthz=_text(
            f"{statuses_text(phase.healthz.statuses)}; longest {_ms(phase.healthz.latency.max_us)}"
        ),
    )


def _outage_section(
    claim: Claim, cell: Cell | None, figures: OutageFigures | None
) -> OutageSection:
    fault = figures.faults.get(claim.id) if figures is not None else None
    timeline: KeyValues = ()
    phases: tuple[PhaseRow, ...] = ()
    if fault is not None:
        timeline = _key_values(
            {
                "Redis away for": f"{fault.fault_s:.2f} s",
                "/healthz said 503 after": _seconds(fault.detected_s, "never"),
                "/healthz said 200 again after": _seconds(fault.healthy_again_s, "never"),
                "served from Redis again after": _seconds(fault.recovered_s, "not by the end"),
                "sessions kept": f"{fault.sessions_intact} of {fault.sessions}",
                "cached answers kept": f"{fault.cache_entries_intact} of {fault.cache_entries}",
                "warnings the app logged": _counts(fault.app_warnings, times=True),
                "counters that changed": _counts(fault.app_counters, times=False),
            }
        )
        phases = tuple(_phase_row(name, phase) for name, phase in fault.phases.items())
    return OutageSection(
        anchor=_anchor("outage-", claim.id),
        id=_text(claim.id),
        title=_text(claim.title),
        verdict=_verdict(claim.verdict),
        guide=_text(claim.guide),
        reading=_text(claim.reading),
        how=_text(fault.how if fault is not None else ""),
        summary=_text(claim.summary),
        holds_when=None if claim.holds_when is None else _text(claim.holds_when),
        timeline=timeline,
        phases=phases,
        notes=tuple(_text(n) for n in claim.notes),
        conditions=_key_values(claim.conditions),
        cell=None if cell is None else Link(_anchor("cell-", cell.id), _text(cell.id)),
    )


def _counts(counts: Mapping[str, int], *, times: bool) -> str:
    """{"hits": 3} as "hits: 3"; with `times` (messages as keys) as "3 × the message"."""
    if not counts:
        return "none"
    if times:
        return "; ".join(f"{n:,} × {message}" for message, n in counts.items())
    return "; ".join(f"{name.replace('_', ' ')}: {n:,}" for name, n in counts.items())


def _payoff_view(payoff: Payoff | None) -> PayoffView | None:
    if payoff is None:
        return None
    figures: dict[str, Any] = {}
    if payoff.status == "measured":
        figures = {
            "requests a day": f"{payoff.traffic_per_day:,.0f}",
            "model, prices of": f"{payoff.model}, {payoff.prices_as_of}",
            "tokens per call (prompt + completion)": f"{payoff.prompt_tokens_per_call:g} + "
            f"{payoff.completion_tokens_per_call:g}",
            "one OpenAI call": usd(payoff.usd_per_call or 0.0),
            f"calls avoided by Redis ({payoff.instances} instances)": _share(
                payoff.calls_avoided_share
            ),
            f"calls avoided in memory ({payoff.instances} instances)": _share(
                payoff.memory_calls_avoided_share
            ),
            "saved per 1,000 requests": usd(payoff.saved_per_1000_usd or 0.0),
            "saved a month against no cache": usd(payoff.saved_per_month_usd or 0.0),
            "saved a month against the in-memory fallback": (
                "—"
                if payoff.over_memory_per_month_usd is None
                else usd(payoff.over_memory_per_month_usd)
            ),
            "cache entries × bytes each": f"{payoff.cache_entries or 0:,} × "
            f"{payoff.entry_bytes or 0:g} B = {(payoff.memory_bytes or 0) / 1e6:,.2f} MB",
            "Redis commands per request": _format_value(payoff.commands_per_request),
        }
    return PayoffView(
        measured=payoff.status == "measured",
        reason=_text(payoff.reason or ""),
        figures=_key_values(figures),
        tiers=tuple(
            TierRow(
                label=_text(t.label),
                monthly="—" if t.monthly_usd is None else _text(usd(t.monthly_usd)),
                break_even=(
                    "never on this workload"
                    if t.break_even_per_day is None
                    else _text(f"{t.break_even_per_day:,.0f} requests a day")
                ),
                why_not=_text(t.why_not or ""),
            )
            for t in payoff.tiers
        ),
        assumptions=tuple(_text(a) for a in payoff.assumptions),
    )


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


_SWEEP_COLUMNS = (
    "rate", "Locust users", "served", "requests", "errors", "hit rate", "p50", "p99", "HIT p99",
    "kept up", "saturated",
)  # fmt: skip


def _sweep_views(results: Results) -> tuple[SweepView, ...]:
    read = {c.backend: c for c in capacities(results)}
    views = []
    for cell in results.cells:
        if cell.kind not in ("sweep", "generator") or not isinstance(cell.extra, SweepFigures):
            continue
        figures = cell.extra
        knee = "with no rate" if figures.knee_rps is None else f"up to {figures.knee_rps:g}/s"
        if cell.kind == "generator":
            title = "The load generator's own limit (POST /_bare)"
            summary = f"Kept up {knee}."
        else:
            title = f"{cell.backend}: the workload's chat requests"
            capacity = read.get(cell.backend or "")
            summary = f"Kept up {knee}; set by {capacity.limited_by}." if capacity else ""
        if figures.stopped_because:
            summary += f" Stopped: {figures.stopped_because}."
        rows = tuple(
            tuple(
                _text(value)
                for value in (
                    f"{step.rate_rps:g}/s",
                    step.users,
                    f"{step.achieved_rps:g}/s",
                    step.requests,
                    step.errors,
                    _share(step.hit_rate),
                    _ms(step.intended.p50_us),
                    _ms(step.intended.p99_us),
                    _ms(step.hit_intended.p99_us) if step.hit_intended else "—",
                    "yes" if step.kept_up else "no",
                    ", ".join(step.saturated) or "—",
                )
            )
            for step in figures.steps
        )
        views.append(SweepView(_text(title), _text(summary), _SWEEP_COLUMNS, rows))
    return tuple(views)


def _cell_row(cell: Cell, files: tuple[FileLink, ...]) -> CellRow:
    return CellRow(
        anchor=_anchor("cell-", cell.id),
        id=_text(cell.id),
        kind=_text(cell.kind),
        backend=_text(_format_value(cell.backend)),
        instances=_text(cell.instances),
        status=_text(cell.status),
        failed=not cell.ok,
        error=_text(cell.error or ""),
        files=files,
    )


_OPTION_LABELS = {
    "requests_per_cache_cell": "requests per cache cell",
    "upstream_latency": "upstream latency (the real one the run stands for)",
    "time_scale": "fake upstream time scale (1 = the real latency)",
    "rate_limit": "rate limit",
    "target_env": "target environment",
    "external_targets": "external targets",
    "hit_header": "hit header (--hit-header)",
    "stream": "streamed answers",
}
_MACHINE_LABELS = {
    "python": "Python",
    "cpus": "CPUs",
    "memory_gib": "memory (GiB)",
    "load_average_1m": "load average, 1 min",
}
# The package "redis" is the Python client; the server's version is read from Redis itself.
_VERSION_LABELS = {
    "redis": "redis-py (Python client)",
    "hiredis": "hiredis (redis-py's reply parser)",
}
REDIS_SERVER = "Redis server"


def redis_server_version(results: Results) -> str | None:
    """The version the run's Redis reported (INFO), from the first cell that read it."""
    for cell in results.cells:
        if isinstance(cell.extra, MemoryFigures | EvictionFigures | OutageFigures):
            return cell.extra.redis_version
    return None


def _versions(results: Results) -> KeyValues:
    rows = _key_values(results.run.versions, _VERSION_LABELS)
    server = redis_server_version(results)
    return rows if server is None else (*rows, (REDIS_SERVER, _text(server)))


def report_view(
    results: Results, cell_files: Mapping[str, tuple[FileLink, ...]] | None = None
) -> ReportView:
    """What the report shows, read from `results`: the one place the page reads the results.
    `cell_files` holds each cell's files to link (by cell id), found beside the results."""
    run = results.run
    cell_files = cell_files or {}
    outage_cell = results.find_cell("outage", "redis")
    plots = {claim.id: _claim_plot(results, claim) for claim in results.claims}
    return ReportView(
        title_id=_text(run.id),
        header=_header(run),
        answer=tuple(_text(sentence) for sentence in results.answer),
        payoff=_payoff_view(results.payoff),
        verdict_counts=tuple((_verdict(v), n) for v, n in verdict_counts(results).items()),
        claims=tuple(_claim_row(c, plots[c.id]) for c in results.claims),
        plots=tuple(
            _plot_figure(spec.slug, spec.title, spec.alt, spec.caption, spec.render(results))
            for spec in PLOTS
        ),
        claim_sections=tuple(_claim_section(results, c, plots[c.id]) for c in results.claims),
        outages=tuple(
            _outage_section(c, outage_cell, outage_figures(results)) for c in results.outages
        ),
        capacity=_sweep_views(results),
        cells=tuple(_cell_row(c, cell_files.get(c.id, ())) for c in results.cells),
        configuration=Configuration(
            options=_key_values(run.options.model_dump(), _OPTION_LABELS),
            machine=_key_values(run.machine.model_dump(), _MACHINE_LABELS),
            versions=_versions(results),
        ),
    )
