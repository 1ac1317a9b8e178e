"""Latency histograms in microseconds (HdrHistogram) and their one summary.

1 µs to 60 s at 3 significant digits: fixed memory whatever the run length. Percentiles across
hermes-bench are on the 0-100 scale and named pNN_us (p50_us, p99_us, p99_9_us for the 99.9th).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT_DIGITS = 3

# Batches from this size are recorded in one numpy pass (record_values).
_VECTORISED_FROM = 16

PERCENTILES = (
    (50.0, "p50_us"),
    (90.0, "p90_us"),
    (95.0, "p95_us"),
    (99.0, "p99_us"),
    (99.9, "p99_9_us"),
)


def new_histogram() -> HdrHistogram:
    """An empty HdrHistogram for latencies in microseconds."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def clamp_us(value_us: int) -> int:
    """`value_us` inside the trackable range: hdrh silently drops values outside it."""
    return min(max(int(value_us), LOWEST_US), HIGHEST_US)


def record_values(hist: HdrHistogram, values_us: Sequence[int]) -> int:
    """Record every value as `hist.record_value` would, clamped into [LOWEST_US, the histogram's
    highest trackable value]; returns how many were above it (clamped down, still counted).

    One numpy pass over the batch instead of ~1 µs of pure-Python hdrh per value: the load
    generator records several values per request.
    """
    highest = hist.highest_trackable_value
    if len(values_us) < _VECTORISED_FROM:  # numpy's fixed cost outweighs a few values
        above = 0
        for value_us in values_us:
            value = int(value_us)
            if value < LOWEST_US:
                value = LOWEST_US
            elif value > highest:
                value = highest
                above += 1
            hist.record_value(value)
        return above
    values = np.asarray(values_us, dtype=np.int64)
    above = int(np.count_nonzero(values > highest))
    np.clip(values, LOWEST_US, highest, out=values)
    # hdrh's _counts_index_for, vectorised: frexp's exponent is the bit length (exact below 2^53).
    unit = hist.unit_magnitude
    half_magnitude = hist.sub_bucket_half_count_magnitude
    bit_length = np.frexp((values | hist.sub_bucket_mask).astype(np.float64))[1].astype(np.int64)
    bucket = bit_length - unit - (half_magnitude + 1)
    sub_bucket = values >> (bucket + unit)
    index = ((bucket + 1) << half_magnitude) + sub_bucket - hist.sub_bucket_half_count
    counts = np.ctypeslib.as_array(hist.counts)[: hist.counts_len]
    np.add.at(counts, index, 1)
    hist.total_count += len(values)
    hist.min_value = min(hist.min_value, int(values.min()))
    hist.max_value = max(hist.max_value, int(values.max()))
    return above


def add_into(into: HdrHistogram, other: HdrHistogram) -> None:
    """Add `other` to `into`; skips an empty one, whose add() would set the minimum to 0."""
    if other.get_total_count():
        into.add(other)


def decode_histogram(encoded: str) -> HdrHistogram:
    """A histogram from its encode() text; raises ValueError when the text is not one."""
    try:
        return HdrHistogram.decode(encoded)
    except Exception as exc:  # hdrh raises TypeError, zlib.error, its own cookie errors...
        raise ValueError(f"not an HdrHistogram encode() string ({exc})") from exc


def latency_summary(hist: HdrHistogram) -> dict[str, float | int]:
    """Count, min, mean, p50/p90/p95/p99/p99.9 and max (µs) of one histogram."""
    count = hist.get_total_count()
    if count == 0:
        return {"count": 0}
    summary: dict[str, float | int] = {
        "count": count,
        "min_us": hist.get_min_value(),
        "mean_us": round(_mean_us(hist), 1),
    }
    # One pass over the counts for all percentiles instead of one pass each.
    values = hist.get_percentile_to_value_dict([p for p, _ in PERCENTILES])
    for percentile, name in PERCENTILES:
        summary[name] = values[percentile]
    summary["max_us"] = hist.get_max_value()
    return summary


def _mean_us(hist: HdrHistogram) -> float:
    # Same figure as hist.get_mean_value() (median-equivalent value of each bucket), but that
    # walks hdrh's pure-Python iterator (~30 ms a histogram); this single pass takes ~1 ms.
    total = 0
    for index, n in enumerate(hist.counts):
        if n:
            value = hist.get_value_from_index(index)
            lowest = hist.get_lowest_equivalent_value(value)
            size = hist.get_highest_equivalent_value(value) - lowest + 1
            total += n * (lowest + (size >> 1))
    return total / hist.get_total_count()


def bucket_counts(hist: HdrHistogram) -> tuple[np.ndarray, np.ndarray]:
    """Each non-empty bucket's median-equivalent µs value (as in the mean) and its count."""
    counts = np.ctypeslib.as_array(hist.counts)[: hist.counts_len]
    indices = np.nonzero(counts)[0]
    values = []
    for index in indices:
        lowest = hist.get_lowest_equivalent_value(hist.get_value_from_index(int(index)))
        size = hist.get_highest_equivalent_value(lowest) - lowest + 1
        values.append(lowest + (size >> 1))
    return np.asarray(values, dtype=float), counts[indices].astype(np.int64)
