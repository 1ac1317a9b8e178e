"""Named figures of a claims run, for `--threshold`: latencies and scalars read from results.

Subjects name a backend and an outcome of its one-instance cache cell: `redis.HIT`,
`memory.MISS`, `redis.all` (every outcome blended). Scalars: `<backend>.hit_rate`,
`<backend>.calls_avoided_share`, `<backend>.errors` (error and wrong-answer responses over all
of that backend's cells).
"""

from __future__ import annotations

from typing import Any

from hdrh.histogram import HdrHistogram

from hermes_bench.histograms import new_histogram
from hermes_bench.reports.thresholds import summary_key

SCALARS = ("hit_rate", "calls_avoided_share", "errors")


def _cache_cell(results: dict[str, Any], backend: str) -> dict[str, Any] | None:
    for cell in results.get("cells", []):
        if (
            cell.get("kind") == "cache"
            and cell.get("backend") == backend
            and cell.get("instances") == 1
            and cell.get("status") == "ok"
        ):
            return cell
    return None


def latency_us(results: dict[str, Any], subject: str, aggregate: str) -> float | None:
    """µs of `aggregate` (p(95), avg, max...) for `backend.OUTCOME`, or None if not measured."""
    backend, _, outcome = subject.partition(".")
    cell = _cache_cell(results, backend)
    if cell is None or not outcome:
        return None
    scenario = cell["metrics"]["metrics"]["scenarios"].get("cache", {})
    family = (
        scenario.get("total") if outcome == "all" else scenario.get("outcomes", {}).get(outcome)
    )
    summary = (family or {}).get("service")
    if not summary or not summary.get("count"):
        return None
    key = summary_key(aggregate)
    if key in summary:
        return float(summary[key])
    # A percentile the summary does not carry: read it off the exact histogram.
    encoded = cell["metrics"]["metrics"]["histograms"]["service"].get("cache", {})
    chosen = encoded.values() if outcome == "all" else [encoded.get(outcome, "")]
    merged = new_histogram()
    for text in chosen:
        if text:
            merged.add(HdrHistogram.decode(text))
    percentile = float(aggregate.removeprefix("p(").removesuffix(")"))
    return float(merged.get_value_at_percentile(percentile))


def scalar(results: dict[str, Any], name: str) -> float | None:
    """A scalar figure `backend.name`, or None if not measured."""
    backend, _, figure = name.partition(".")
    if figure not in SCALARS:
        return None
    if figure == "errors":
        cells = [c for c in results.get("cells", []) if c.get("backend") == backend]
        total = 0
        for cell in cells:
            for data in (
                ((cell.get("metrics") or {}).get("metrics") or {}).get("scenarios", {}).values()
            ):
                for outcome in ("error", "wrong_answer"):
                    total += data["outcomes"].get(outcome, {}).get("service", {}).get("count", 0)
        return float(total) if cells else None
    cell = _cache_cell(results, backend)
    if cell is None:
        return None
    cache = cell["metrics"]["cache"]
    value = cache.get("hit_rate_headers" if figure == "hit_rate" else "calls_avoided_share")
    return None if value is None else float(value)
