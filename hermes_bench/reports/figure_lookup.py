"""Figures of a run by name, for `--threshold` and `compare`: latencies and scalars of cells.

Subjects name a backend and an outcome of its one-instance cache cell: `redis.HIT`,
`memory.MISS`, `redis.all` (every outcome blended). Scalars: `<backend>.hit_rate`,
`<backend>.calls_avoided_share`, `<backend>.errors` (error and wrong-answer responses over all
of that backend's cells). The outage cell's figures are under `outage.FAULT.PHASE` (see
OUTAGE_LATENCIES and OUTAGE_SCALARS): `outage.hung.during max<2s`. None means the run did not
measure it. check_subject turns a subject no run can have (a mistyped fault, phase, figure or
backend) into an error before the run, where the lookups would say "not measured" after it.
"""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

from hermes_bench.errors import ConfigError
from hermes_bench.histograms import add_into, decode_histogram, latency_summary, new_histogram
from hermes_bench.reports.outage_verdicts import outage_figures
from hermes_bench.reports.thresholds import Threshold, summary_key
from hermes_bench.results.model import (
    Cell,
    LatencySummary,
    OutageFault,
    OutagePhase,
    Results,
)
from hermes_bench.results.vocabulary import (
    BACKENDS,
    CACHE_SCENARIO,
    ERROR,
    OUTAGE_FAULTS,
    OUTAGE_PHASES,
    SERVICE,
    WRONG_ANSWER,
)

SCALARS = ("hit_rate", "calls_avoided_share", "errors")
ALL_OUTCOMES = "all"
OUTAGE = "outage"
# outage.FAULT.PHASE[.WHAT] AGG: the chat requests' time, or that of WHAT.
OUTAGE_LATENCIES = ("chat", "wait", "healthz", "session-read", "session-write")
# outage.FAULT.PHASE.NAME and outage.FAULT.NAME.
OUTAGE_PHASE_SCALARS = (
    "requests", "server_errors", "hits", "failed_open", "failed_open_share",
    "served_by_redis_share", "limiter_failed_open", "limiter_failed_closed", "cache_write_failed",
    "throughput_rps",
)  # fmt: skip
OUTAGE_SCALARS = (
    "fault_s", "detected_s", "healthy_again_s", "recovered_s", "sessions_lost",
    "cache_entries_lost",
)  # fmt: skip


def cell_latency_us(cell: Cell, outcome: str, aggregate: str) -> float | None:
    """µs of `aggregate` (p(95), avg, max...) of one outcome (or "all") of a cache cell."""
    return cells_latency_us([cell], outcome, aggregate)


def cells_latency_us(cells: list[Cell], outcome: str, aggregate: str) -> float | None:
    """The same over a cell and its repeats, their histograms pooled; None if none measured."""
    cells = [c for c in cells if c.ok and c.metrics is not None]
    only = cells[0].metrics if len(cells) == 1 else None
    if only is not None:
        summary = only.metrics.outcome_summary(
            CACHE_SCENARIO, None if outcome == ALL_OUTCOMES else outcome
        )
        if summary is None or not summary.count:
            return None
        value = summary.statistic(summary_key(aggregate))
        if value is not None:
            return value
    # Pooled, or a percentile the summary does not carry: read it off the exact histograms.
    merged = pooled_histogram(cells, outcome)
    if merged is None or not aggregate.startswith("p("):
        return None if merged is None else _from_histogram(merged, aggregate)
    percentile = float(aggregate.removeprefix("p(").removesuffix(")"))
    return float(merged.get_value_at_percentile(percentile))


def pooled_histogram(cells: list[Cell], outcome: str) -> HdrHistogram | None:
    """One outcome's (or "all") service histogram of the cache scenario over `cells`."""
    merged = new_histogram()
    for cell in cells:
        if cell.metrics is None:
            continue
        encoded = cell.metrics.metrics.histograms.of(SERVICE).get(CACHE_SCENARIO, {})
        chosen = list(encoded.values()) if outcome == ALL_OUTCOMES else [encoded.get(outcome, "")]
        for text in chosen:
            if text:
                add_into(merged, decode_histogram(text))
    return merged if merged.get_total_count() else None


def _from_histogram(hist: HdrHistogram, aggregate: str) -> float | None:
    summary = latency_summary(hist)
    value = summary.get(summary_key(aggregate))
    return None if value is None else float(value)


def cell_scalar(cell: Cell, figure: str) -> float | None:
    """hit_rate, calls_avoided_share or errors of one cell."""
    if not cell.ok or cell.metrics is None:
        return None
    if figure == "errors":
        return float(_errors(cell))
    cache = cell.metrics.cache
    value = cache.hit_rate_headers if figure == "hit_rate" else cache.calls_avoided_share
    return None if value is None else float(value)


def latency_us(results: Results, subject: str, aggregate: str) -> float | None:
    """µs of `aggregate` for `backend.OUTCOME` in the backend's one-instance cache cell, its
    repeats pooled."""
    if subject.startswith(OUTAGE + "."):
        return _outage_latency_us(results, subject, aggregate)
    backend, _, outcome = subject.partition(".")
    cell = _cache_cell(results, backend)
    if cell is None or not outcome:
        return None
    return cells_latency_us(results.repeats_of(cell), outcome, aggregate)


def scalar(results: Results, name: str) -> float | None:
    """A scalar figure `backend.name` (or `outage.…`), or None if not measured."""
    if name.startswith(OUTAGE + "."):
        return _outage_scalar(results, name)
    backend, _, figure = name.partition(".")
    if figure not in SCALARS:
        return None
    if figure == "errors":
        cells = [c for c in results.cells if c.backend == backend]
        return float(sum(_errors(c) for c in cells)) if cells else None
    cell = _cache_cell(results, backend)
    return None if cell is None else cell_scalar(cell, figure)


def _cache_cell(results: Results, backend: str) -> Cell | None:
    for cell in results.ok_cells("cache"):
        if cell.backend == backend and cell.instances == 1:
            return cell
    return None


def _errors(cell: Cell) -> int:
    """Error and wrong-answer responses over every scenario of a cell."""
    if cell.metrics is None:
        return 0
    total = 0
    for scenario in cell.metrics.metrics.scenarios.values():
        for outcome in (ERROR, WRONG_ANSWER):
            families = scenario.outcomes.get(outcome)
            if families is not None and families.service is not None:
                total += families.service.count
    return total


def _outage_fault(results: Results, name: str) -> OutageFault | None:
    figures = outage_figures(results)
    return None if figures is None else figures.faults.get(name)


def _outage_latency_us(results: Results, subject: str, aggregate: str) -> float | None:
    """outage.FAULT.PHASE[.WHAT]: chat (the default), wait (less the upstream), healthz,
    session-read or session-write."""
    parts = subject.split(".")
    if len(parts) not in (3, 4):
        return None
    what = parts[3] if len(parts) == 4 else "chat"
    fault = _outage_fault(results, parts[1])
    phase = fault.phases.get(parts[2]) if fault is not None else None
    if phase is None or what not in OUTAGE_LATENCIES:
        return None
    summary = _phase_latency(phase, what)
    if summary is None or not summary.count:
        return None
    return summary.statistic(summary_key(aggregate))


def _phase_latency(phase: OutagePhase, what: str) -> LatencySummary | None:
    if what == "chat":
        return phase.latency
    if what == "wait":
        return phase.beside_upstream
    if what == "healthz":
        return phase.healthz.latency
    requests = phase.sessions.get(what.removeprefix("session-"))
    return None if requests is None else requests.latency


def _outage_scalar(results: Results, name: str) -> float | None:
    """outage.FAULT.NAME or outage.FAULT.PHASE.NAME."""
    parts = name.split(".")
    fault = _outage_fault(results, parts[1]) if len(parts) in (3, 4) else None
    if fault is None:
        return None
    if len(parts) == 3:
        return _fault_scalar(fault, parts[2])
    phase = fault.phases.get(parts[2])
    return None if phase is None else _phase_scalar(phase, parts[3])


def _fault_scalar(fault: OutageFault, figure: str) -> float | None:
    if figure == "sessions_lost":
        return float(fault.sessions - fault.sessions_intact)
    if figure == "cache_entries_lost":
        return float(fault.cache_entries - fault.cache_entries_intact)
    if figure not in OUTAGE_SCALARS:
        return None
    value = getattr(fault, figure)
    return None if value is None else float(value)


def _phase_scalar(phase: OutagePhase, figure: str) -> float | None:
    if figure not in OUTAGE_PHASE_SCALARS:
        return None
    if figure in ("failed_open_share", "served_by_redis_share"):
        if not phase.requests:
            return None
        count = phase.failed_open if figure == "failed_open_share" else phase.served_by_redis
        return count / phase.requests
    return float(getattr(phase, figure))


def check_subject(threshold: Threshold) -> None:
    """Raise a ConfigError, one line naming the accepted words, when `threshold` names a figure
    no run has; the outcome of a cache latency (`redis.HIT`) is any the run may record."""
    subject = threshold.subject
    latency = threshold.aggregate is not None
    if subject == OUTAGE or subject.startswith(OUTAGE + "."):
        problem = _outage_problem(subject.split("."), latency)
    else:
        problem = _backend_problem(subject, latency)
    if problem is not None:
        raise ConfigError(f"invalid threshold {threshold.text!r}: {problem}")


def _backend_problem(subject: str, latency: bool) -> str | None:
    backend, _, rest = subject.partition(".")
    if backend not in BACKENDS:
        return (
            f"unknown subject {backend!r}; start it with {_either(BACKENDS)} (redis.HIT, "
            "redis.hit_rate) or outage (outage.hung.during)"
        )
    if latency:
        return None if rest else f"name an outcome after {backend}: {backend}.HIT, .MISS, .all"
    if rest in SCALARS:
        return None
    return (
        f"unknown figure {rest!r} of {backend}; use {_either(SCALARS)}, or an aggregate for a "
        f"latency ('{backend}.HIT p(95)<50ms')"
    )


def _outage_problem(parts: list[str], latency: bool) -> str | None:
    """What is wrong with outage.FAULT.PHASE[.WHAT] (a latency), outage.FAULT.PHASE.NAME or
    outage.FAULT.NAME (a figure); None when nothing is."""
    if not 3 <= len(parts) <= 4:
        return (
            "write outage.FAULT.PHASE[.WHAT] with an aggregate for a latency, "
            "outage.FAULT.PHASE.NAME or outage.FAULT.NAME for a figure"
        )
    fault, phase, what = parts[1], parts[2], parts[3] if len(parts) == 4 else None
    if fault not in OUTAGE_FAULTS:
        return f"unknown fault {fault!r}; use {_either(OUTAGE_FAULTS)}"
    if not latency and what is None:
        if phase in OUTAGE_PHASES:
            return (
                f"{phase!r} is a phase: name one of its figures after it "
                f"({_either(OUTAGE_PHASE_SCALARS)}), or an aggregate for its latency "
                f"('outage.{fault}.{phase} max<2s')"
            )
        if phase not in OUTAGE_SCALARS:
            return f"unknown figure {phase!r} of a fault; use {_either(OUTAGE_SCALARS)}"
        return None
    if phase not in OUTAGE_PHASES:
        return f"unknown phase {phase!r}; use {_either(OUTAGE_PHASES)}"
    if latency and what is not None and what not in OUTAGE_LATENCIES:
        return (
            f"unknown latency {what!r} of a phase; use {_either(OUTAGE_LATENCIES)} (chat when "
            "none is named), or no aggregate for a count"
        )
    if not latency and what not in OUTAGE_PHASE_SCALARS:
        return (
            f"unknown figure {what!r} of a phase; use {_either(OUTAGE_PHASE_SCALARS)}, or an "
            "aggregate for a latency"
        )
    return None


def _either(words: tuple[str, ...]) -> str:
    """The words as a sentence lists them: a, b or c."""
    return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else words[0]
