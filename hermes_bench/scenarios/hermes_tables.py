"""The metrics document as tables: µs percentiles per scenario and outcome, and the cache figures.

Pure: a MetricsDocument in, rows out. The CSV files and the section added to Locust's HTML
report are written from these rows, so both carry the document's figures, unrounded.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, fields

from hermes_bench.results.model import CacheAccounting, LatencySummary, MetricsDocument
from hermes_bench.results.vocabulary import BURST_SCENARIO, COUNT_PREFIX, FAMILIES
from hermes_bench.scenarios.attribution import FROM_BOTH, FROM_LOG

ALL_OUTCOMES = "all"  # the row of a scenario's outcomes blended, as Locust's "Aggregated"
_STATISTICS = ("min_us", "p50_us", "p90_us", "p95_us", "p99_us", "p99_9_us", "max_us", "mean_us")


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """One histogram of the document: a scenario's outcome (or all of them), one family."""

    scenario: str
    outcome: str
    family: str  # service: from the send; intended: from the intended send (arrival rate)
    count: int
    min_us: int | None
    p50_us: int | None
    p90_us: int | None
    p95_us: int | None
    p99_us: int | None
    p99_9_us: int | None
    max_us: int | None
    mean_us: float | None


@dataclass(frozen=True, slots=True)
class Figure:
    """One figure of the run: its name, its value (None: not measured) and what it means."""

    name: str
    value: float | int | str | None
    meaning: str


def outcome_rows(document: MetricsDocument) -> list[OutcomeRow]:
    """Every latency histogram of the document, outcome by outcome, then the scenario's total.

    The rate-limit windows' scenario is left out: its "latencies" are counts (admitted per
    window), given among the figures instead.
    """
    rows = []
    scenarios = document.metrics.scenarios
    # The users' scenarios first, then the "_" ones (the target's steps, first tokens).
    for scenario in sorted(scenarios, key=lambda name: name.startswith(COUNT_PREFIX)):
        if scenario == BURST_SCENARIO:
            continue
        metrics = scenarios[scenario]
        parts = [*metrics.outcomes.items()]
        if len(parts) > 1:
            parts.append((ALL_OUTCOMES, metrics.total))
        for outcome, families in parts:
            for family in FAMILIES:
                summary = getattr(families, family)
                if summary is not None:
                    rows.append(_row(scenario, outcome, family, summary))
    return rows


def _row(scenario: str, outcome: str, family: str, summary: LatencySummary) -> OutcomeRow:
    values = [getattr(summary, name) for name in _STATISTICS]
    return OutcomeRow(scenario, outcome, family, summary.count, *values)


def hit_rate_source(cache: CacheAccounting) -> str:
    """Where the hit rate's HIT and MISS came from, in words."""
    header = f"{cache.hit_header or 'X-Cache'} header"
    if cache.outcome_source == FROM_LOG:
        return "the upstream's call log"
    if cache.outcome_source == FROM_BOTH:
        return f"the {header} and the upstream's call log"
    return f"the {header}"


def cache_figures(document: MetricsDocument) -> list[Figure]:
    """Hit rate, OpenAI calls and calls avoided, their bounds and checks, as the document has
    them; then every counter the users kept."""
    cache = document.cache
    figures = [
        Figure(
            "hit_rate",
            cache.hit_rate_headers,
            f"HIT / (HIT + MISS + BYPASS) of the chat answers, from {hit_rate_source(cache)}",
        ),
        Figure("hits", cache.hits, "chat answers that were a HIT"),
        Figure("cache_lookups", document.cache_lookups(), "chat answers HIT, MISS or BYPASS"),
        Figure(
            "cache_requests",
            cache.cache_requests,
            "chat requests that reached the cache (those the rate limiter refused left out)",
        ),
        Figure(
            "upstream_calls",
            cache.upstream_calls,
            "OpenAI calls, counted where they arrive: the fake upstream (ground truth)",
        ),
        Figure("calls_avoided", cache.calls_avoided, "cache_requests - upstream_calls"),
        Figure("calls_avoided_share", cache.calls_avoided_share, "calls_avoided / cache_requests"),
        Figure(
            "upstream_distinct_requests",
            cache.upstream_distinct_requests,
            "distinct requests the upstream saw",
        ),
        Figure(
            "ideal_hit_rate",
            cache.ideal_hit_rate,
            "1 - distinct / requests: the best any cache could do on this request sequence",
        ),
        Figure(
            "hit_rate_upstream_log",
            cache.hit_rate_upstream_log,
            "hit rate told from the upstream's call log (a MISS: its call arrived in flight)",
        ),
        Figure("log_agreement", cache.log_agreement, "share of answers header and log agree on"),
        Figure(
            "cut_at_stop",
            cache.cut_at_stop,
            "requests sent but not answered when the test stopped (see --stop-timeout)",
        ),
        Figure(
            "load_generator_saturated",
            int(document.load_generator.saturated),
            "1: a load-generating process was above 90% CPU, its latencies are suspect",
        ),
    ]
    figures += [
        Figure(f"counter:{name}", n, "a count the users kept (failed checks among them)")
        for name, n in document.metrics.counters.items()
    ]
    return figures


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """CSV as Locust writes its own: a header line, then one line per row; None is empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
    return out.getvalue()


def outcomes_csv(document: MetricsDocument) -> str:
    """outcome_rows as CSV."""
    header = [f.name for f in fields(OutcomeRow)]
    return csv_text(header, (astuple(row) for row in outcome_rows(document)))


def figures_csv(document: MetricsDocument) -> str:
    """cache_figures as CSV: figure, value, meaning."""
    rows = ((f.name, f.value, f.meaning) for f in cache_figures(document))
    return csv_text(["figure", "value", "meaning"], rows)
