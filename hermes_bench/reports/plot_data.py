"""Plot-ready data out of Results: pure, and tolerant of failed or partial cells.

Only cells with status "ok" are plotted: a failed cell's numbers stop wherever it failed.
Every extractor returns an empty list when nothing usable is there, so a plot can say "no data".
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np
from hdrh.histogram import HdrHistogram

from hermes_bench import histograms
from hermes_bench.errors import ConfigError
from hermes_bench.reports.latency_parts import PartsMissing, cell_parts, draw_parts, interval
from hermes_bench.reports.palette import backend_colour
from hermes_bench.reports.real_latency import (
    RealUpstream,
    TailUnmeasured,
    blended_mean_ms,
    real_upstream,
)
from hermes_bench.results.model import Cell, Results, SweepFigures
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
    CellKind,
)

# Where an ideal line names no single backend.
_SHARED_GREY = "#555555"


def instances_text(instances: int) -> str:
    """ "1 instance", "2 instances"."""
    return f"{instances} instance{'' if instances == 1 else 's'}"


def cell_label(cell: Cell) -> str:
    """A cell as a legend or an axis names it: "redis, 2 instances (cache-redis-2)"."""
    backend = cell.backend or "no backend"
    return f"{backend}, {instances_text(cell.instances)} ({cell.id})"


def ok_cells(results: Results, kind: CellKind, only: Collection[str] | None) -> list[Cell]:
    """Completed cells of `kind`; only those named in `only` unless it is None."""
    return [c for c in results.ok_cells(kind) if only is None or c.id in only]


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
    """One cache cell's hit rate in each second that had lookups: second i spans start_s[i]
    to end_s[i], in seconds since the cell's load started; `label` differs per cell."""

    cell_id: str
    label: str
    backend: str
    instances: int
    start_s: np.ndarray
    end_s: np.ndarray
    hit_rate: np.ndarray
    lookups: np.ndarray
    ideal_hit_rate: float | None


@dataclass(frozen=True)
class IdealLine:
    """The ideal hit rate of a request sequence, once for every cell that drew it."""

    hit_rate: float
    colour: str
    label: str


@dataclass(frozen=True)
class UpstreamCounts:
    """What reached the cache, what reached the upstream (ground truth), how many were distinct."""

    cell_id: str
    label: str
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
    """HIT / (HIT + MISS + BYPASS) in each second of each cache cell, from its per-second
    series: the first and last seconds cut to when the load started and ended."""
    series = []
    for cell in results.ok_cells("cache"):
        if cell.metrics is None:
            continue
        rows = [
            (row.t, row.outcomes.get(HIT, 0), looked_up)
            for row in cell.metrics.metrics.series
            if (looked_up := sum(row.outcomes.get(o, 0) for o in CACHE_OUTCOMES))
        ]
        if not rows:
            continue
        run = cell.metrics.run
        start = run.started_at if run.started_at is not None else float(rows[0][0])
        end = run.ended_at if run.ended_at is not None else float(rows[-1][0] + 1)
        seconds = np.array([t for t, _, _ in rows], dtype=float)
        # The first and last seconds cut to the load's span; a second wholly outside it (a
        # clock a little off in another process) keeps its whole width.
        starts = np.where(seconds + 1 > start, np.maximum(seconds, start), seconds) - start
        ends = np.where(seconds < end, np.minimum(seconds + 1, end), seconds + 1) - start
        series.append(
            HitRateSeries(
                cell_id=cell.id,
                label=cell_label(cell),
                backend=str(cell.backend),
                instances=cell.instances,
                start_s=starts,
                end_s=ends,
                hit_rate=np.array([hits / looked for _, hits, looked in rows]),
                lookups=np.array([looked for _, _, looked in rows]),
                ideal_hit_rate=cell.metrics.cache.ideal_hit_rate,
            )
        )
    return series


def step_points(series: HitRateSeries) -> tuple[np.ndarray, np.ndarray]:
    """x and y of the series drawn as steps (where="post"): each second's rate held over
    its span, NaN (a break) over a second without lookups."""
    xs: list[float] = []
    ys: list[float] = []
    for i, (start, end, rate) in enumerate(
        zip(series.start_s, series.end_s, series.hit_rate, strict=True)
    ):
        xs.append(float(start))
        ys.append(float(rate))
        following = series.start_s[i + 1] if i + 1 < len(series.start_s) else None
        if following is None or following > end:
            xs.append(float(end))
            ys.append(float(rate) if following is None else float("nan"))
    return np.asarray(xs), np.asarray(ys)


def ideal_lines(series: list[HitRateSeries]) -> list[IdealLine]:
    """One line per ideal hit rate (to 0.1%): cells of one seeded workload share it."""
    groups: dict[float, list[HitRateSeries]] = {}
    for s in series:
        if s.ideal_hit_rate is not None:
            groups.setdefault(round(s.ideal_hit_rate, 3), []).append(s)
    lines = []
    for rate, members in sorted(groups.items()):
        backends = {m.backend for m in members}
        who = (
            f"all {len(members)} cells"
            if len(members) == len(series) and len(members) > 1
            else ", ".join(m.cell_id for m in members)
        )
        lines.append(
            IdealLine(
                hit_rate=rate,
                colour=backend_colour(backends.pop()) if len(backends) == 1 else _SHARED_GREY,
                label=f"ideal hit rate of the sequence: {rate:.1%} ({who})",
            )
        )
    return lines


def upstream_counts(results: Results, only: Collection[str] | None = None) -> list[UpstreamCounts]:
    """Per cache cell with ground truth: requests, upstream calls and distinct prompts."""
    counts = []
    for cell in ok_cells(results, "cache", only):
        if cell.metrics is None:
            continue
        cache = cell.metrics.cache
        if cache.upstream_calls is None or cache.upstream_distinct_requests is None:
            continue
        counts.append(
            UpstreamCounts(
                cell_id=cell.id,
                label=f"{cell.id}\n({cell.backend}, {instances_text(cell.instances)})",
                backend=str(cell.backend),
                requests=cache.cache_requests,
                upstream_calls=cache.upstream_calls,
                distinct=cache.upstream_distinct_requests,
            )
        )
    return counts


def calls_allowed(requests: int, distinct: int, reduction: float) -> float:
    """The most upstream calls that still avoid `reduction` of the duplicate requests."""
    return distinct + (1 - reduction) * (requests - distinct)


def admitted_distributions(
    results: Results, only: Collection[str] | None = None
) -> list[AdmittedDistribution]:
    """Per rate-limit cell: bursts by admitted count, and the mean limit per burst."""
    distributions = []
    for cell in ok_cells(results, "ratelimit", only):
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


def achieved_hit_rates(results: Results) -> list[tuple[Cell, float]]:
    """Each completed cache cell with the hit rate its X-Cache headers showed."""
    return [
        (cell, cell.metrics.cache.hit_rate_headers)
        for cell in results.ok_cells("cache")
        if cell.metrics is not None and cell.metrics.cache.hit_rate_headers is not None
    ]


@dataclass(frozen=True)
class BlendedCurve:
    """The measured parts of one backend's cache cells (repeats pooled) at the real upstream,
    and the mean they give at the hit rate reached, with its 95% bootstrap interval."""

    backend: str
    instances: int
    hit_ms: float
    overhead_ms: float
    hit_rate: float
    upstream: RealUpstream
    mean_ms: float
    mean_interval_ms: tuple[float, float]


def blended_curves(results: Results, only: Collection[str] | None = None) -> list[BlendedCurve]:
    """Per backend and instance count, what mean response time each hit rate would give
    (none when the run's upstream latency is unreadable)."""
    curves, seen = [], set()
    for cell in ok_cells(results, "cache", only):
        key = (str(cell.backend), cell.instances)
        if key in seen:
            continue
        seen.add(key)
        try:
            parts = [cell_parts(c) for c in results.repeats_of(cell) if c.ok]
            cache = cell.metrics.cache if cell.metrics else None
            upstream = real_upstream(results.run.options, cache)
        except ConfigError:  # the run's upstream latency: no cell has a curve then
            return []
        except (PartsMissing, TailUnmeasured):
            continue
        # The claims' own draws (same seed): the interval is the one their verdict rests on.
        draws = draw_parts(parts, seed=results.run.options.seed)
        point = draws.point
        curves.append(
            BlendedCurve(
                backend=key[0],
                instances=key[1],
                hit_ms=point["hit_mean"],
                overhead_ms=point["overhead_mean"],
                hit_rate=point["hit_rate"],
                upstream=upstream,
                mean_ms=blended_mean_ms(
                    point["hit_mean"], point["overhead_mean"], upstream.mean_ms, point["hit_rate"]
                ),
                mean_interval_ms=interval(
                    blended_mean_ms(
                        draws.hit_mean, draws.overhead_mean, upstream.mean_ms, draws.hit_rate
                    )
                ),
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
