"""Plot-ready data out of Results: pure, and tolerant of failed or partial cells.

Only cells with status "ok" are plotted: a failed cell's numbers stop wherever it failed.
Every extractor returns an empty list when nothing usable is there, so a plot can say "no data".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hdrh.histogram import HdrHistogram

from hermes_bench import histograms
from hermes_bench.errors import ConfigError
from hermes_bench.reports.latency_parts import PartsMissing, cell_parts, draw_parts
from hermes_bench.reports.real_latency import RealUpstream, TailUnmeasured, real_upstream
from hermes_bench.results.model import Cell, RestartFigures, Results, SweepFigures
from hermes_bench.results.vocabulary import (
    ADMITTED_OUTCOME,
    BURST_SCENARIO,
    CACHE_OUTCOMES,
    CACHE_SCENARIO,
    HIT,
    MISS,
    SERVICE,
    STEP_ORDER,
    STEP_PREFIX,
    TOTAL_STEP,
)


@dataclass(frozen=True)
class LatencyCdf:
    """Cumulative share of requests at or below each latency, one backend and outcome."""

    backend: str
    outcome: str
    latency_ms: np.ndarray
    share: np.ndarray
    count: int
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class StepBreakdown:
    """p50 of each step the target timed itself (Server-Timing), one backend and outcome."""

    backend: str
    outcome: str
    steps: tuple[tuple[str, float], ...]  # (step name, p50 ms) in request order, total last
    client_p50_ms: float | None  # the same requests as the load generator saw them
    requests: int  # responses that carried the timing (the largest count of any step)


@dataclass(frozen=True)
class HitRateSeries:
    """Per-second hit rate of one cache cell, seconds counted from its first response."""

    cell_id: str
    backend: str
    instances: int
    elapsed_s: np.ndarray
    hit_rate: np.ndarray
    ideal_hit_rate: float | None


@dataclass(frozen=True)
class UpstreamCounts:
    """What reached the cache, what reached the upstream (ground truth), how many were distinct."""

    cell_id: str
    backend: str
    requests: int
    upstream_calls: int
    distinct: int


@dataclass(frozen=True)
class AdmittedDistribution:
    """Bursts by number of requests admitted, for one rate-limit cell."""

    cell_id: str
    backend: str
    instances: int
    admitted: np.ndarray
    bursts: np.ndarray
    limit: float | None
    over_limit_bursts: int


@dataclass(frozen=True)
class RestartShares:
    """Sessions intact before and after every target instance was restarted."""

    cell_id: str
    backend: str
    instances: int
    sessions: int
    intact_before: int
    intact_after: int


def decode_histogram(cell: Cell, scenario: str, outcome: str) -> HdrHistogram | None:
    """The service-time histogram of one scenario and outcome, None when absent or empty."""
    if cell.metrics is None:
        return None
    encoded = cell.metrics.metrics.histograms.of(SERVICE).get(scenario, {}).get(outcome)
    if encoded is None:
        return None
    hist = histograms.decode_histogram(encoded)
    return hist if hist.get_total_count() else None


def histogram_points(hist: HdrHistogram) -> tuple[np.ndarray, np.ndarray]:
    """Recorded values (each bucket's highest equivalent value) and their counts."""
    # One numpy pass over the counts: hdrh's recorded-value iterator is pure Python and slow.
    counts = np.ctypeslib.as_array(hist.counts)[: hist.counts_len]
    indices = np.nonzero(counts)[0]
    values = [hist.get_highest_equivalent_value(hist.get_value_from_index(int(i))) for i in indices]
    return np.asarray(values, dtype=float), counts[indices].astype(float)


_Histograms = dict[tuple[str, str, str], HdrHistogram]  # (backend, scenario, outcome)


def _single_instance_histograms(
    results: Results, scenarios: Callable[[Cell], list[str]]
) -> _Histograms:
    """HIT and MISS histograms of the single-instance cache cells, merged over cells of one
    backend; `scenarios` names the scenarios to read in each cell."""
    merged: _Histograms = {}
    for cell in results.ok_cells("cache"):
        if cell.instances != 1:
            continue
        for scenario in scenarios(cell):
            for outcome in (HIT, MISS):
                hist = decode_histogram(cell, scenario, outcome)
                if hist is None:
                    continue
                key = (str(cell.backend), scenario, outcome)
                if key in merged:
                    merged[key].add(hist)
                else:
                    merged[key] = hist
    return merged


def latency_cdfs(results: Results) -> list[LatencyCdf]:
    """HIT and MISS latency CDFs per backend, from the single-instance cache cells."""
    merged = {
        (backend, outcome): hist
        for (backend, _, outcome), hist in _single_instance_histograms(
            results, lambda _: [CACHE_SCENARIO]
        ).items()
    }
    cdfs = []
    for (backend, outcome), hist in sorted(merged.items()):
        values_us, counts = histogram_points(hist)
        total = counts.sum()
        cdfs.append(
            LatencyCdf(
                backend=backend,
                outcome=outcome,
                latency_ms=values_us / 1000.0,
                share=np.cumsum(counts) / total,
                count=int(total),
                p50_ms=hist.get_value_at_percentile(50.0) / 1000.0,
                p99_ms=hist.get_value_at_percentile(99.0) / 1000.0,
            )
        )
    return cdfs


def step_breakdowns(results: Results) -> list[StepBreakdown]:
    """Per backend and outcome (HIT, MISS) of the single-instance cache cells: each step's p50
    from the target's Server-Timing, beside the p50 the load generator saw."""
    steps = _single_instance_histograms(results, _step_scenarios)
    client = _single_instance_histograms(results, lambda _: [CACHE_SCENARIO])
    grouped: dict[tuple[str, str], dict[str, HdrHistogram]] = {}
    for (backend, scenario, outcome), hist in steps.items():
        grouped.setdefault((backend, outcome), {})[scenario.removeprefix(STEP_PREFIX)] = hist
    breakdowns = []
    for (backend, outcome), by_step in sorted(
        grouped.items(), key=lambda item: (item[0][0], item[0][1] != HIT)
    ):
        seen = client.get((backend, CACHE_SCENARIO, outcome))
        breakdowns.append(
            StepBreakdown(
                backend=backend,
                outcome=outcome,
                steps=tuple(
                    (name, by_step[name].get_value_at_percentile(50.0) / 1000.0)
                    for name in sorted(by_step, key=step_sort_key)
                ),
                client_p50_ms=None if seen is None else seen.get_value_at_percentile(50.0) / 1000,
                requests=max(hist.get_total_count() for hist in by_step.values()),
            )
        )
    return breakdowns


def _step_scenarios(cell: Cell) -> list[str]:
    if cell.metrics is None:
        return []
    return [s for s in cell.metrics.metrics.histograms.of(SERVICE) if s.startswith(STEP_PREFIX)]


def step_sort_key(name: str) -> tuple[int, str]:
    """The reference app's steps in request order, then any other name, the total last."""
    if name == TOTAL_STEP:
        return len(STEP_ORDER) + 1, name
    return (STEP_ORDER.index(name) if name in STEP_ORDER else len(STEP_ORDER)), name


def hit_rate_series(results: Results) -> list[HitRateSeries]:
    """HIT / (HIT + MISS + BYPASS) each second of each cache cell."""
    series = []
    for cell in results.ok_cells("cache"):
        if cell.metrics is None:
            continue
        rows = cell.metrics.metrics.series
        start = min((row.t for row in rows), default=0)
        elapsed, rates = [], []
        for row in rows:
            looked_up = sum(row.outcomes.get(o, 0) for o in CACHE_OUTCOMES)
            if looked_up:
                elapsed.append(row.t - start)
                rates.append(row.outcomes.get(HIT, 0) / looked_up)
        if elapsed:
            series.append(
                HitRateSeries(
                    cell_id=cell.id,
                    backend=str(cell.backend),
                    instances=cell.instances,
                    elapsed_s=np.asarray(elapsed, dtype=float),
                    hit_rate=np.asarray(rates, dtype=float),
                    ideal_hit_rate=cell.metrics.cache.ideal_hit_rate,
                )
            )
    return series


def upstream_counts(results: Results) -> list[UpstreamCounts]:
    """Per cache cell with ground truth: requests, upstream calls and distinct prompts."""
    counts = []
    for cell in results.ok_cells("cache"):
        if cell.metrics is None:
            continue
        cache = cell.metrics.cache
        if cache.upstream_calls is None or cache.upstream_distinct_requests is None:
            continue
        counts.append(
            UpstreamCounts(
                cell_id=cell.id,
                backend=str(cell.backend),
                requests=cache.cache_requests,
                upstream_calls=cache.upstream_calls,
                distinct=cache.upstream_distinct_requests,
            )
        )
    return counts


def admitted_distributions(results: Results) -> list[AdmittedDistribution]:
    """Per rate-limit cell: bursts by admitted count, and the mean limit per burst."""
    distributions = []
    for cell in results.ok_cells("ratelimit"):
        hist = decode_histogram(cell, BURST_SCENARIO, ADMITTED_OUTCOME)
        if hist is None or cell.metrics is None:
            continue
        snapshot = cell.metrics.metrics
        bursts = snapshot.counter("ratelimit_bursts")
        limit_sum = snapshot.counters.get("ratelimit_limit_sum")
        admitted, burst_counts = histogram_points(hist)
        distributions.append(
            AdmittedDistribution(
                cell_id=cell.id,
                backend=str(cell.backend),
                instances=cell.instances,
                admitted=admitted,
                bursts=burst_counts,
                limit=limit_sum / bursts if bursts and limit_sum is not None else None,
                over_limit_bursts=snapshot.counter("ratelimit_over_limit_bursts"),
            )
        )
    return distributions


def restart_shares(results: Results) -> list[RestartShares]:
    """Per restart cell with at least one session: intact before and after the restart."""
    shares = []
    for cell in results.ok_cells("restart"):
        figures = cell.extra
        if not isinstance(figures, RestartFigures) or not figures.sessions:
            continue
        shares.append(
            RestartShares(
                cell_id=cell.id,
                backend=str(cell.backend),
                instances=cell.instances,
                sessions=figures.sessions,
                intact_before=figures.intact_before,
                intact_after=figures.intact_after,
            )
        )
    return shares


def achieved_hit_rates(results: Results) -> list[tuple[Cell, float]]:
    """Each completed cache cell with the hit rate its X-Cache headers showed."""
    return [
        (cell, cell.metrics.cache.hit_rate_headers)
        for cell in results.ok_cells("cache")
        if cell.metrics is not None and cell.metrics.cache.hit_rate_headers is not None
    ]


@dataclass(frozen=True)
class BlendedCurve:
    """The measured parts of one backend's cache cells (repeats pooled) at the real upstream."""

    backend: str
    instances: int
    hit_ms: float
    overhead_ms: float
    hit_rate: float
    upstream: RealUpstream


def blended_curves(results: Results) -> list[BlendedCurve]:
    """Per backend and instance count, what mean response time each hit rate would give."""
    try:
        real_upstream(results.run.options)
    except ConfigError:
        return []
    curves, seen = [], set()
    for cell in results.ok_cells("cache"):
        key = (str(cell.backend), cell.instances)
        if key in seen:
            continue
        seen.add(key)
        try:
            parts = [cell_parts(c) for c in results.repeats_of(cell) if c.ok]
            cache = cell.metrics.cache if cell.metrics else None
            upstream = real_upstream(results.run.options, cache)
        except (PartsMissing, TailUnmeasured):
            continue
        point = draw_parts(parts, draws=1).point
        curves.append(
            BlendedCurve(
                backend=key[0],
                instances=key[1],
                hit_ms=point["hit_mean"],
                overhead_ms=point["overhead_mean"],
                hit_rate=point["hit_rate"],
                upstream=upstream,
            )
        )
    return curves


@dataclass(frozen=True)
class SweepCurve:
    """One sweep as points: served requests/s against the judged p99 (ms) of each step."""

    label: str
    backend: str | None  # None: the load generator's own sweep
    served_rps: list[float]
    p99_ms: list[float]
    kept_up: list[bool]


def sweep_curves(results: Results) -> list[SweepCurve]:
    """Every sweep of the run that measured a step with a p99, cache paths first."""
    curves = []
    for cell in sorted(results.cells, key=lambda c: c.kind == "generator"):
        if cell.kind not in ("sweep", "generator") or not isinstance(cell.extra, SweepFigures):
            continue
        points = [
            (step.achieved_rps, judged.p99_us / 1000, step.kept_up)
            for step in cell.extra.steps
            if (judged := step.hit_intended or step.intended).p99_us is not None
        ]
        if not points:
            continue
        generator = cell.kind == "generator"
        curves.append(
            SweepCurve(
                label="load generator (/_bare)" if generator else f"{cell.backend} (HITs)",
                backend=None if generator else cell.backend,
                served_rps=[p[0] for p in points],
                p99_ms=[p[1] for p in points],
                kept_up=[p[2] for p in points],
            )
        )
    return curves
