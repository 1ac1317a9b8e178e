"""What the web UI's hermes-bench tab shows, as pure functions of measured data.

Table rows with the unit each scenario is measured in (latencies in ms to the µs, counts as
counts), the cache figures (hit rate, OpenAI calls made and avoided) and their series over time.
Hit rates are fractions (0-1) here, as everywhere in hermes-bench; the page draws them in %.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, TypedDict

from hermes_bench.results.vocabulary import (
    ADMITTED_OUTCOME,
    BURST_SCENARIO,
    CACHE_OUTCOMES,
    COUNT_PREFIX,
    STEP_ORDER,
    STEP_PREFIX,
    TTFT_SCENARIO,
)
from hermes_bench.scenarios.summary import cache_accounting

RowKind = Literal["latency", "step", "count"]
MS = "ms"
STEP_UNIT = "ms, in the target (Server-Timing)"
ADMITTED_UNIT = "requests admitted per window"
COUNT_UNIT = "count"
_PERCENTILES = ("p50", "p90", "p99", "max")
# Columns of Locust's extended table, in order; keys are TableRow's. Locust sorts a table by
# its "name" column until one is clicked: no such key, so the rows keep table_rows()'s order.
TABLE_STRUCTURE = [
    {"key": "kind", "title": "Kind"},
    {"key": "scenario", "title": "Name"},
    {"key": "outcome", "title": "Outcome"},
    {"key": "count", "title": "# Samples"},
    {"key": "p50", "title": "p50"},
    {"key": "p90", "title": "p90"},
    {"key": "p99", "title": "p99"},
    {"key": "max", "title": "Max"},
    {"key": "unit", "title": "Unit"},
]


class TableRow(TypedDict):
    """One row of the tab's table: a scenario and outcome, its values in `unit`."""

    kind: RowKind
    scenario: str  # as people say it: "cache", "time to first token", "cache-read" (a step)
    outcome: str
    count: int
    p50: float
    p90: float
    p99: float
    max: float
    unit: str


def row_kind(scenario: str) -> RowKind:
    """Latency (a response or its first token), a step the target timed, or a count."""
    if scenario.startswith(STEP_PREFIX):
        return "step"
    if scenario == TTFT_SCENARIO or not scenario.startswith(COUNT_PREFIX):
        return "latency"
    return "count"


def table_rows(live_rows: list[dict[str, Any]]) -> list[TableRow]:
    """RunMetrics.live_rows() (µs) as table rows: latencies in ms with three decimals (the µs
    measured), counts as counts; latencies first, then steps in request order, then counts."""
    rows = [_table_row(row) for row in live_rows]
    return sorted(rows, key=_row_order)


def _table_row(row: dict[str, Any]) -> TableRow:
    scenario, outcome = str(row["scenario"]), str(row["outcome"])
    kind = row_kind(scenario)
    values: dict[str, float]
    if kind == "count":
        # The histogram holds the counts themselves: shown as they were recorded.
        values = {p: int(row[f"{p}_us"]) for p in _PERCENTILES}
        if scenario == BURST_SCENARIO:
            name = "rate-limit window"
            unit = ADMITTED_UNIT if outcome == ADMITTED_OUTCOME else COUNT_UNIT
        else:
            name, unit = scenario.removeprefix(COUNT_PREFIX), COUNT_UNIT
    else:
        values = {p: us_to_ms(int(row[f"{p}_us"])) for p in _PERCENTILES}
        if kind == "step":
            name, unit = scenario.removeprefix(STEP_PREFIX), STEP_UNIT
        else:
            name = "time to first token" if scenario == TTFT_SCENARIO else scenario
            unit = MS
    return TableRow(
        kind=kind,
        scenario=name,
        outcome=outcome,
        count=int(row["count"]),
        p50=values["p50"],
        p90=values["p90"],
        p99=values["p99"],
        max=values["max"],
        unit=unit,
    )


def us_to_ms(us: int) -> float:
    """Microseconds as milliseconds, every µs kept (0.412 ms, not 0.41 or 0)."""
    return round(us / 1000, 3)


def _row_order(row: TableRow) -> tuple[int, int, str, int, str]:
    kind_order = ("latency", "step", "count").index(row["kind"])
    name = row["scenario"]
    step = STEP_ORDER.index(name) if row["kind"] == "step" and name in STEP_ORDER else 0
    outcomes = CACHE_OUTCOMES
    outcome = outcomes.index(row["outcome"]) if row["outcome"] in outcomes else len(outcomes)
    return kind_order, step, name, outcome, row["outcome"]


@dataclass(frozen=True)
class CacheFigures:
    """The cache's live figures: hit rate from the answers' headers, OpenAI calls from the
    upstream's own count (None without it, with the reason in `ground_truth_error`)."""

    requests: int  # chat requests answered, those the rate limiter refused left out
    hits: int
    looked_up: int  # HIT + MISS + BYPASS
    hit_rate: float | None
    upstream_calls: int | None
    calls_avoided: int | None
    calls_avoided_share: float | None
    ground_truth_error: str | None

    def to_json(self) -> dict[str, Any]:
        """The figures as the JSON endpoint serves them."""
        return asdict(self)


def cache_figures(
    live_rows: list[dict[str, Any]],
    ground_truth: dict[str, Any] | None,
    ground_truth_error: str | None = None,
) -> CacheFigures:
    """Figures from the rows and the upstream's ground truth, counted as the end-of-run summary
    counts them (summary.cache_accounting), so the tab and the metrics file agree."""
    scenarios: dict[str, Any] = {}
    for row in live_rows:
        outcomes = scenarios.setdefault(row["scenario"], {"outcomes": {}})["outcomes"]
        outcomes[row["outcome"]] = {"service": {"count": int(row["count"])}}
    cache = cache_accounting({"scenarios": scenarios, "counters": {}}, ground_truth)
    looked_up = sum(cache["chat_outcomes"].get(o, 0) for o in CACHE_OUTCOMES)
    return CacheFigures(
        requests=cache["cache_requests"],
        hits=cache["hits"],
        looked_up=looked_up,
        hit_rate=cache["hit_rate_headers"],
        upstream_calls=cache.get("upstream_calls"),
        calls_avoided=cache.get("calls_avoided"),
        calls_avoided_share=cache.get("calls_avoided_share"),
        ground_truth_error=ground_truth_error,
    )


@dataclass(frozen=True)
class SeriesPoint:
    """The figures at one moment (wall clock, s): the hit rate since the start and since the
    point before, OpenAI calls avoided and made since the start."""

    t: float
    hits: int
    looked_up: int
    hit_rate: float | None
    interval_hit_rate: float | None
    calls_avoided: int | None
    upstream_calls: int | None

    def to_json(self) -> dict[str, Any]:
        """The point as the JSON endpoint serves it."""
        return asdict(self)


def next_point(previous: SeriesPoint | None, figures: CacheFigures, t: float) -> SeriesPoint:
    """The point for `figures` taken at `t`, its interval hit rate counted from `previous`."""
    hits, looked_up = figures.hits, figures.looked_up
    if previous is not None and looked_up >= previous.looked_up:
        hits, looked_up = hits - previous.hits, looked_up - previous.looked_up
    return SeriesPoint(
        t=t,
        hits=figures.hits,
        looked_up=figures.looked_up,
        hit_rate=figures.hit_rate,
        interval_hit_rate=hits / looked_up if looked_up else None,
        calls_avoided=figures.calls_avoided,
        upstream_calls=figures.upstream_calls,
    )


def same_figures(point: SeriesPoint, figures: CacheFigures) -> bool:
    """True when `figures` say nothing `point` did not: no new answer, no new upstream call."""
    return (point.hits, point.looked_up, point.calls_avoided, point.upstream_calls) == (
        figures.hits,
        figures.looked_up,
        figures.calls_avoided,
        figures.upstream_calls,
    )
