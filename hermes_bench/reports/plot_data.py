"""Plot-ready data out of a results dict: pure, and tolerant of failed or partial cells.

Only cells with status "ok" are plotted: a failed cell's numbers stop wherever it failed.
Every extractor returns an empty list when nothing usable is there, so a plot can say "no data".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from hermes_bench.results.vocabulary import (
    ADMITTED_OUTCOME,
    BURST_SCENARIO,
    CACHE_OUTCOMES,
    CACHE_SCENARIO,
    HIT,
    MISS,
    SERVICE,
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


def ok_cells(results: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """Cells of `kind` that completed."""
    cells = results.get("cells") or []
    return [c for c in cells if isinstance(c, dict) and c.get("kind") == kind and _ok(c)]


def _ok(cell: dict[str, Any]) -> bool:
    return cell.get("status") == "ok"


def _document(cell: dict[str, Any]) -> dict[str, Any]:
    metrics = cell.get("metrics")
    return metrics if isinstance(metrics, dict) else {}


def _snapshot(cell: dict[str, Any]) -> dict[str, Any]:
    snapshot = _document(cell).get("metrics")
    return snapshot if isinstance(snapshot, dict) else {}


def _dig(data: Any, *keys: str) -> Any:
    """data[k1][k2]..., None as soon as a level is missing or not a dict."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def decode_histogram(cell: dict[str, Any], scenario: str, outcome: str) -> HdrHistogram | None:
    """The service-time histogram of one scenario and outcome, None when absent or empty."""
    encoded = _dig(_snapshot(cell), "histograms", SERVICE, scenario, outcome)
    if not isinstance(encoded, str):
        return None
    hist = HdrHistogram.decode(encoded)
    return hist if hist.get_total_count() else None


def histogram_points(hist: HdrHistogram) -> tuple[np.ndarray, np.ndarray]:
    """Recorded values (each bucket's highest equivalent value) and their counts."""
    # One numpy pass over the counts: hdrh's recorded-value iterator is pure Python and slow.
    counts = np.ctypeslib.as_array(hist.counts)[: hist.counts_len]
    indices = np.nonzero(counts)[0]
    values = [hist.get_highest_equivalent_value(hist.get_value_from_index(int(i))) for i in indices]
    return np.asarray(values, dtype=float), counts[indices].astype(float)


def latency_cdfs(results: dict[str, Any]) -> list[LatencyCdf]:
    """HIT and MISS latency CDFs per backend, from the single-instance cache cells."""
    merged: dict[tuple[str, str], HdrHistogram] = {}
    for cell in ok_cells(results, "cache"):
        if cell.get("instances") != 1:
            continue
        for outcome in (HIT, MISS):
            hist = decode_histogram(cell, CACHE_SCENARIO, outcome)
            if hist is None:
                continue
            key = (str(cell.get("backend")), outcome)
            if key in merged:
                merged[key].add(hist)
            else:
                merged[key] = hist
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


def hit_rate_series(results: dict[str, Any]) -> list[HitRateSeries]:
    """HIT / (HIT + MISS + BYPASS) each second of each cache cell."""
    series = []
    for cell in ok_cells(results, "cache"):
        elapsed, rates = [], []
        rows = _snapshot(cell).get("series")
        rows = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
        start = min((_int(r.get("t")) or 0 for r in rows), default=0)
        for row in rows:
            outcomes = row.get("outcomes")
            looked_up = sum(_int(_dig(outcomes, o)) or 0 for o in CACHE_OUTCOMES)
            if looked_up:
                elapsed.append((_int(row.get("t")) or 0) - start)
                rates.append((_int(_dig(outcomes, HIT)) or 0) / looked_up)
        if elapsed:
            series.append(
                HitRateSeries(
                    cell_id=str(cell.get("id")),
                    backend=str(cell.get("backend")),
                    instances=_int(cell.get("instances")) or 1,
                    elapsed_s=np.asarray(elapsed, dtype=float),
                    hit_rate=np.asarray(rates, dtype=float),
                    ideal_hit_rate=_float(_dig(_document(cell), "cache", "ideal_hit_rate")),
                )
            )
    return series


def upstream_counts(results: dict[str, Any]) -> list[UpstreamCounts]:
    """Per cache cell with ground truth: requests, upstream calls and distinct prompts."""
    counts = []
    for cell in ok_cells(results, "cache"):
        cache = _document(cell).get("cache")
        requests = _int(_dig(cache, "cache_requests"))
        calls = _int(_dig(cache, "upstream_calls"))
        distinct = _int(_dig(cache, "upstream_distinct_requests"))
        if requests is None or calls is None or distinct is None:
            continue
        counts.append(
            UpstreamCounts(
                cell_id=str(cell.get("id")),
                backend=str(cell.get("backend")),
                requests=requests,
                upstream_calls=calls,
                distinct=distinct,
            )
        )
    return counts


def admitted_distributions(results: dict[str, Any]) -> list[AdmittedDistribution]:
    """Per rate-limit cell: bursts by admitted count, and the mean limit per burst."""
    distributions = []
    for cell in ok_cells(results, "ratelimit"):
        hist = decode_histogram(cell, BURST_SCENARIO, ADMITTED_OUTCOME)
        if hist is None:
            continue
        counters = _snapshot(cell).get("counters")
        bursts = _int(_dig(counters, "ratelimit_bursts")) or 0
        limit_sum = _int(_dig(counters, "ratelimit_limit_sum"))
        admitted, burst_counts = histogram_points(hist)
        distributions.append(
            AdmittedDistribution(
                cell_id=str(cell.get("id")),
                backend=str(cell.get("backend")),
                instances=_int(cell.get("instances")) or 1,
                admitted=admitted,
                bursts=burst_counts,
                limit=limit_sum / bursts if bursts and limit_sum is not None else None,
                over_limit_bursts=_int(_dig(counters, "ratelimit_over_limit_bursts")) or 0,
            )
        )
    return distributions


def restart_shares(results: dict[str, Any]) -> list[RestartShares]:
    """Per restart cell with at least one session: intact before and after the restart."""
    shares = []
    for cell in ok_cells(results, "restart"):
        extra = cell.get("extra")
        sessions = _int(_dig(extra, "sessions"))
        before = _int(_dig(extra, "intact_before"))
        after = _int(_dig(extra, "intact_after"))
        if not sessions or before is None or after is None:
            continue
        shares.append(
            RestartShares(
                cell_id=str(cell.get("id")),
                backend=str(cell.get("backend")),
                instances=_int(cell.get("instances")) or 1,
                sessions=sessions,
                intact_before=before,
                intact_after=after,
            )
        )
    return shares
