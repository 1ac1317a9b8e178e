"""The tab's live state: rows and figures refreshed at most once a second, and their series.

Reading the upstream's ground truth is the one slow part (an HTTP call, up to its timeout):
a web request never waits for it, it reads the last state (`latest`) while the web tab's shell
refreshes it in the background (`refresh`, when `claim_refresh` says one is due).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hermes_bench.errors import HermesBenchError
from hermes_bench.scenarios.web_figures import (
    TABLE_STRUCTURE,
    CacheFigures,
    SeriesPoint,
    TableRow,
    cache_figures,
    next_point,
    same_figures,
    table_rows,
)

REFRESH_S = 1.0  # at most one ground-truth read a second, however many pages poll
MAX_POINTS = 3600  # an hour of points at one a second; older ones are dropped first
NOT_READ = "not read yet"


@dataclass(frozen=True)
class LiveState:
    """What the tab shows at one moment: table rows, cache figures and their series."""

    taken_at: float | None  # None: not read yet
    state: str  # the runner's when the figures were read (Locust's "running", "stopped"...)
    rows: list[TableRow]
    figures: CacheFigures | None
    series: tuple[SeriesPoint, ...]

    def to_json(self, *, targets: list[str], upstream: str | None) -> dict[str, Any]:
        """The JSON the page and tests read; `targets` and `upstream` already redacted."""
        return {
            "state": self.state,
            "taken_at": self.taken_at,
            "targets": targets,
            "upstream": upstream,
            "figures": self.figures.to_json() if self.figures is not None else None,
            "series": [point.to_json() for point in self.series],
            "structure": TABLE_STRUCTURE,
            "rows": self.rows,
        }


class LiveView:
    """Rows (RunMetrics.live_rows) and ground truth (the upstream's counters), read together.

    `read_ground_truth` raises HermesBenchError, saying why, when it cannot answer; the figures
    then carry that reason and no call counts.
    """

    def __init__(
        self,
        read_rows: Callable[[], list[dict[str, Any]]],
        read_ground_truth: Callable[[], dict[str, Any]],
        *,
        clock: Callable[[], float] = time.time,
        refresh_s: float = REFRESH_S,
        max_points: int = MAX_POINTS,
    ) -> None:
        self._read_rows = read_rows
        self._read_ground_truth = read_ground_truth
        self._clock = clock
        self._refresh_s = refresh_s
        self._series: deque[SeriesPoint] = deque(maxlen=max_points)
        self._started_at: float | None = None
        self._refreshing = False
        self._latest = LiveState(taken_at=None, state=NOT_READ, rows=[], figures=None, series=())

    def latest(self) -> LiveState:
        """The state last refreshed; never waits."""
        return self._latest

    def claim_refresh(self) -> bool:
        """True, once, when a refresh is due: none yet, or the last is older than `refresh_s`;
        the caller then calls refresh(). Pollers arriving meanwhile get False: they share it."""
        taken = self._latest.taken_at
        due = taken is None or self._clock() - taken >= self._refresh_s
        if self._refreshing or not due:
            return False
        self._refreshing = True
        return True

    def refresh(self, state: str, *, active: bool, started_at: float) -> LiveState:
        """Read rows, then ground truth, in the runner's `state`; add a point to the series while
        the test runs (`active`), or once more when the figures changed after it stopped. A new
        `started_at` (a new test) starts a new series."""
        self._refreshing = True
        try:
            # Rows first: an upstream call counted with no answer yet is a request in flight,
            # so calls avoided is never overstated while the test runs.
            rows = self._read_rows()
            error = None
            try:
                ground_truth: dict[str, Any] | None = self._read_ground_truth()
            except HermesBenchError as exc:
                ground_truth, error = None, str(exc)
            figures = cache_figures(rows, ground_truth, error)
            now = self._clock()
            if started_at != self._started_at:
                self._series.clear()
                self._started_at = started_at
            last = self._series[-1] if self._series else None
            answered = figures.requests > 0 or figures.looked_up > 0
            if answered and (active or last is None or not same_figures(last, figures)):
                self._series.append(next_point(last, figures, now))
            self._latest = LiveState(
                taken_at=now,
                state=state,
                rows=table_rows(rows),
                figures=figures,
                series=tuple(self._series),
            )
            return self._latest
        finally:
            self._refreshing = False
