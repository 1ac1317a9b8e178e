"""The measured parts of a cache cell's latency, resampled for intervals: pure, no I/O.

A response's time splits into what the cache costs and what the upstream costs. The parts are
measured per cell: a HIT's time, a MISS's overhead over the upstream (the MISS time less the
upstream's own time per answered call, as the fake upstream clocked it, or as the target's
Server-Timing "upstream" step says when no upstream clock was read) and the hit rate. From them
the figures the guide quotes are projected onto the real upstream a run stands for, whatever
time scale the fake upstream ran at; see real_latency.

Intervals come from a bootstrap: each draw picks the repeats of the cell with replacement (the
run-to-run spread of a shared machine) and resamples every histogram inside each (the spread of
the requests), so one run gives an interval of its requests and K repeats add the machine's.
The hit rate is a property of the seeded workload: only repeats that reached different ones
spread it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hdrh.histogram import HdrHistogram

from hermes_bench.histograms import bucket_counts, decode_histogram
from hermes_bench.results.model import Cell
from hermes_bench.results.vocabulary import (
    CACHE_SCENARIO,
    HIT,
    MISS,
    SERVICE,
    STEP_PREFIX,
    TTFT_SCENARIO,
)

DRAWS = 1000
# A two-sided 95% percentile interval.
INTERVAL = (2.5, 97.5)
UPSTREAM_CLOCK = "the fake upstream's own clock"
UPSTREAM_STEP = "the target's Server-Timing upstream step"


class PartsMissing(Exception):
    """A cell lacks a part: the message says which and why."""


@dataclass(frozen=True)
class Histogram:
    """Bucket values (µs) and counts of one latency histogram."""

    values_us: np.ndarray
    counts: np.ndarray

    @property
    def count(self) -> int:
        return int(self.counts.sum())


@dataclass(frozen=True)
class CellParts:
    """What one cache cell measured of its parts."""

    cell_id: str
    hit: Histogram
    miss: Histogram
    upstream: Histogram
    upstream_source: str
    hits: int
    looked_up: int  # HIT + MISS + BYPASS: the requests the hit rate is a share of


@dataclass(frozen=True)
class PartDraws:
    """Bootstrap draws of each part in ms (arrays of DRAWS), and the point estimates."""

    hit_mean: np.ndarray
    hit_p50: np.ndarray
    overhead_mean: np.ndarray  # MISS mean less the upstream's mean
    overhead_p50: np.ndarray  # MISS p50 less the upstream's p50
    hit_rate: np.ndarray
    point: dict[str, float]
    repeats: int
    requests: int
    upstream_source: str


def cell_parts(cell: Cell) -> CellParts:
    """The parts of one cache cell; PartsMissing names the first one it did not measure."""
    if cell.metrics is None:
        raise PartsMissing(f"cell {cell.id} has no metrics")
    encoded = cell.metrics.metrics.histograms.of(SERVICE)
    outcomes = encoded.get(CACHE_SCENARIO, {})
    hit, miss = (_histogram(outcomes.get(o), f"{o} latency", cell.id) for o in (HIT, MISS))
    served = cell.metrics.cache.upstream_served_histogram
    if served:
        upstream, source = _histogram(served, "the upstream's time", cell.id), UPSTREAM_CLOCK
    else:
        step = encoded.get(STEP_PREFIX + "upstream", {}).get(MISS)
        if not step:
            raise PartsMissing(
                f"cell {cell.id} cannot tell the upstream's time from the target's: no upstream "
                "clock was read and the target sent no Server-Timing upstream step (point the "
                "target at the fake upstream, --upstream-url)"
            )
        upstream, source = _histogram(step, "the upstream step", cell.id), UPSTREAM_STEP
    looked_up = sum(cell.metrics.cache.chat_outcomes.get(o, 0) for o in (HIT, MISS, "BYPASS"))
    return CellParts(cell.id, hit, miss, upstream, source, hit.count, max(looked_up, hit.count))


def first_token_parts(cell: Cell) -> CellParts:
    """The parts of a streamed cache cell's time to first token: a HIT's and a MISS's, and the
    upstream's own time to its first piece; PartsMissing names the first one not measured."""
    if cell.metrics is None:
        raise PartsMissing(f"cell {cell.id} has no metrics")
    outcomes = cell.metrics.metrics.histograms.of(SERVICE).get(TTFT_SCENARIO, {})
    hit, miss = (_histogram(outcomes.get(o), f"first token of a {o}", cell.id) for o in (HIT, MISS))
    served = cell.metrics.cache.upstream_first_token_histogram
    if not served:
        raise PartsMissing(
            f"cell {cell.id} cannot tell the upstream's time to first token from the target's: "
            "the fake upstream timed no streamed call"
        )
    upstream = _histogram(served, "the upstream's time to first token", cell.id)
    return CellParts(
        cell.id, hit, miss, upstream, UPSTREAM_CLOCK, hit.count, hit.count + miss.count
    )


def _histogram(encoded: str | None, what: str, cell_id: str) -> Histogram:
    if not encoded:
        raise PartsMissing(f"cell {cell_id} recorded no {what}")
    try:
        hist = histogram_of(decode_histogram(encoded))
    except ValueError as exc:
        raise PartsMissing(f"cell {cell_id}: {what} is unreadable ({exc})") from None
    if not hist.count:
        raise PartsMissing(f"cell {cell_id} recorded no {what}")
    return hist


def draw_parts(parts: list[CellParts], draws: int = DRAWS, seed: int = 0) -> PartDraws:
    """Point estimates pooled over the repeats, and `draws` bootstrap draws of each part."""
    if not parts:
        raise ValueError("draw_parts needs at least one cell")
    rng = np.random.default_rng(seed)
    k = len(parts)
    # Which repeats each draw pools: all of them once when there is one, else with replacement.
    chosen = np.zeros((draws, 1), dtype=np.int64) if k == 1 else rng.integers(0, k, (draws, k))
    kinds = ("hit", "miss", "upstream")
    means, medians, points = {}, {}, {}
    for kind in kinds:
        grid, pooled, whole = _pooled_counts([getattr(p, kind) for p in parts], chosen, rng)
        means[kind], medians[kind] = _mean_p50(pooled, grid)
        point_mean, point_p50 = _mean_p50(whole[None, :], grid)
        points[kind] = (float(point_mean[0]), float(point_p50[0]))
    # The hit rate is not resampled within a run: the seeded sequence fixes it, so it is a
    # condition of the verdict, not noise. Repeats that reached different ones spread it.
    hits = np.array([p.hits for p in parts])
    looked = np.array([p.looked_up for p in parts])
    hit_rate = hits[chosen].sum(axis=1) / looked[chosen].sum(axis=1)
    ms = 1 / 1000
    return PartDraws(
        hit_mean=means["hit"] * ms,
        hit_p50=medians["hit"] * ms,
        overhead_mean=(means["miss"] - means["upstream"]) * ms,
        overhead_p50=(medians["miss"] - medians["upstream"]) * ms,
        hit_rate=hit_rate,
        point={
            "hit_mean": points["hit"][0] * ms,
            "hit_p50": points["hit"][1] * ms,
            "miss_mean": points["miss"][0] * ms,
            "miss_p50": points["miss"][1] * ms,
            "upstream_mean": points["upstream"][0] * ms,
            "upstream_p50": points["upstream"][1] * ms,
            "overhead_mean": (points["miss"][0] - points["upstream"][0]) * ms,
            "overhead_p50": (points["miss"][1] - points["upstream"][1]) * ms,
            "hit_rate": float(hits.sum() / looked.sum()),
        },
        repeats=k,
        requests=int(looked.sum()),
        upstream_source=parts[0].upstream_source,
    )


def histogram_of(hist: HdrHistogram) -> Histogram:
    """The bucket values and counts of an HdrHistogram."""
    values, counts = bucket_counts(hist)
    return Histogram(values, counts)


def percentile_draws(
    hists: list[Histogram], percentiles: tuple[float, ...], draws: int = DRAWS, seed: int = 0
) -> dict[float, np.ndarray]:
    """Bootstrap draws (µs) of percentiles (0-100) of histograms pooled over repeats, all
    from the same resamples."""
    rng = np.random.default_rng(seed)
    k = len(hists)
    chosen = np.zeros((draws, 1), dtype=np.int64) if k == 1 else rng.integers(0, k, (draws, k))
    grid, pooled, _ = _pooled_counts(hists, chosen, rng)
    return {p: _percentile(pooled, grid, p / 100) for p in percentiles}


def interval(values: np.ndarray) -> tuple[float, float]:
    """The 95% percentile interval of bootstrap draws, NaN draws (no answer) left out."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return float("nan"), float("nan")
    low, high = np.percentile(finite, INTERVAL)
    return float(low), float(high)


def _on_grid(hist: Histogram, grid: np.ndarray) -> np.ndarray:
    counts = np.zeros(grid.size, dtype=np.int64)
    counts[np.searchsorted(grid, hist.values_us)] = hist.counts
    return counts


def _resample(rng: np.random.Generator, counts: np.ndarray, draws: int) -> np.ndarray:
    """`draws` multinomial resamples of a histogram's counts, same total."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros((draws, counts.size), dtype=np.int64)
    return rng.multinomial(total, counts / total, size=draws)


def _pooled_counts(
    hists: list[Histogram], chosen: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A common bucket grid, each draw's resampled counts pooled over the repeats it chose,
    and the counts of every repeat pooled as measured."""
    draws = chosen.shape[0]
    grid = np.unique(np.concatenate([h.values_us for h in hists]))
    aligned = [_on_grid(h, grid) for h in hists]
    resampled = np.stack([_resample(rng, counts, draws) for counts in aligned])
    pooled = resampled[chosen, np.arange(draws)[:, None]].sum(axis=1)
    return grid, pooled, np.sum(aligned, axis=0)


def _mean_p50(counts: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and median (µs) of each row of bucket counts over `grid`."""
    means = counts @ grid / counts.sum(axis=1)
    return means, _percentile(counts, grid, 0.5)


def _percentile(counts: np.ndarray, grid: np.ndarray, share: float) -> np.ndarray:
    """Each row's value at `share` (0-1): the first bucket whose running count reaches that
    share of the total, the rule HdrHistogram's get_value_at_percentile follows."""
    cumulative = np.cumsum(counts, axis=1)
    needed = np.maximum(np.ceil(counts.sum(axis=1) * share), 1)
    index = (cumulative < needed[:, None]).sum(axis=1)
    return grid[np.minimum(index, grid.size - 1)]
