"""CPU of the load generator itself: a run whose generator was saturated measured the generator.

Readings are in percent of ONE core (100 = one core busy), as psutil reports a process. Locust
runs its users on one core per process, so that is the figure that saturates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psutil

# A run is saturated when MORE than this share of its samples is above the threshold: a few
# busy seconds (start-up, a GC pause) do not void a run, a tenth of its duration does.
SATURATED_SHARE = 0.10


def summarize_cpu(samples: Sequence[float], threshold_pct: float = 90.0) -> dict[str, Any]:
    """Count, mean, p90 and max of CPU samples (% of one core), and whether the run saturated.

    saturated is True when more than 10% of the samples are above `threshold_pct` (the same as
    the nearest-rank p90 being above it), None when there are no samples (unknown, not fine).
    """
    count = len(samples)
    if count == 0:
        return {"count": 0, "threshold_pct": threshold_pct, "saturated": None}
    ordered = sorted(samples)
    above = sum(1 for s in ordered if s > threshold_pct)
    return {
        "count": count,
        "mean_pct": round(sum(ordered) / count, 1),
        # Nearest rank (integer arithmetic): the p90 is a sample that was actually observed.
        "p90_pct": ordered[(9 * count + 9) // 10 - 1],
        "max_pct": ordered[-1],
        "threshold_pct": threshold_pct,
        "above_threshold_share": round(above / count, 4),
        "saturated": above / count > SATURATED_SHARE,
    }


class CpuSampler:
    """Samples this process's CPU (% of one core) each time the caller calls sample()."""

    def __init__(self, process: psutil.Process | None = None) -> None:
        self._process = process if process is not None else psutil.Process()
        # The first cpu_percent(interval=None) call only starts the interval and returns 0.0.
        self._process.cpu_percent(interval=None)
        self._samples: list[float] = []

    def sample(self) -> float:
        """Record and return the CPU use since the previous call."""
        reading = float(self._process.cpu_percent(interval=None))
        self._samples.append(reading)
        return reading

    def drain(self) -> list[float]:
        """The readings since the last drain, removed from the sampler (sent to a master)."""
        drained, self._samples = self._samples, []
        return drained
