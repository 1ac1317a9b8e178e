"""Compare two claims runs figure by figure: did NEW regress against BASE?

Pure: two Results and the limits in, rows and notes out. Latency and
rate limits are relative, since a shared machine moves absolute figures from run to run; the
error limit is an absolute count. Latencies are µs, percentiles on the 0-100 scale.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from hermes_bench.errors import ConfigError
from hermes_bench.reports import figure_lookup
from hermes_bench.reports.latency_parts import histogram_of, interval, percentile_draws
from hermes_bench.results.model import Cell, Results

# run.options that define the workload: runs differing in any of them measure different things.
# target_env is left out on purpose: changing the target is what a regression check is for.
WORKLOAD_FIELDS = (
    "backends",
    "instances",
    "users",
    "requests_per_cache_cell",
    "upstream_latency",
    "time_scale",
    "rate_limit",
    "seed",
    "workload",
    "cells",
)
# The `hermes-bench run` option behind each field, so a refusal says what to change.
_RUN_OPTION = {
    "backends": "--backends",
    "instances": "--instances",
    "users": "--users",
    "requests_per_cache_cell": "--requests",
    "upstream_latency": "--upstream-latency",
    "time_scale": "--time-scale",
    "rate_limit": "--profile",
    "seed": "--seed",
    "workload": "--profile/--seed",
    "cells": "--cells",
}
OUTCOMES = ("HIT", "MISS", "all")  # "all": every outcome of the cell blended
PERCENTILES = ("p(50)", "p(95)", "p(99)")

# "within noise": moved past its limit, but its 95% interval reaches back inside it.
Status = Literal["ok", "regressed", "improved", "within noise", "missing"]
Unit = Literal["us", "share", "count"]


class ComparisonError(ConfigError):
    """Two runs that cannot be compared: the message names each differing field and both values."""


@dataclass(frozen=True, slots=True)
class Limits:
    """How far NEW may move the wrong way before it counts as a regression.

    latency: max relative increase (0.5 = +50%); hit_rate, calls_avoided: max relative drop;
    errors: max absolute increase of error and wrong-answer responses. A figure that moved the
    right way by more than its limit is reported as improved.
    """

    latency: float = 0.5
    hit_rate: float = 0.05
    calls_avoided: float = 0.05
    errors: float = 0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"limit {field.name}={value!r}: must be a number >= 0")


@dataclass(frozen=True, slots=True)
class Row:
    """One figure of one cache cell in both runs; change is relative, absolute for errors."""

    figure: str
    cell: str
    base: float | None
    new: float | None
    change: float | None  # None when missing, or relative to a base of 0
    limit: float
    regressed: bool
    status: Status
    unit: Unit
    # 95% bootstrap interval of the relative change (latencies): the requests' spread, and the
    # run-to-run spread where either run has repeats. None where the figure is a count.
    noise: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class Comparison:
    """Every compared figure, what the reader should know besides, and the verdict."""

    rows: tuple[Row, ...]
    notes: tuple[str, ...]
    limits: Limits

    @property
    def regressed(self) -> bool:
        """True when any figure moved the wrong way beyond its limit."""
        return any(row.regressed for row in self.rows)

    @property
    def unmeasured(self) -> tuple[Row, ...]:
        """Figures BASE measured and NEW did not: a check that cannot pass them (fail closed)."""
        return tuple(row for row in self.rows if row.base is not None and row.new is None)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready document, for CI to keep or to read back."""
        return {
            "regressed": self.regressed,
            "unmeasured": [f"{row.figure} ({row.cell})" for row in self.unmeasured],
            "limits": asdict(self.limits),
            "rows": [asdict(row) for row in self.rows],
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class _Figure:
    """What is compared, in which unit, against which limit, and which way is worse."""

    name: str
    unit: Unit
    limit: str  # field of Limits
    higher_is_worse: bool


_LATENCIES = tuple(
    _Figure(f"{outcome} {p}", "us", "latency", True) for outcome in OUTCOMES for p in PERCENTILES
)
_SCALARS = (
    _Figure("hit_rate", "share", "hit_rate", False),
    _Figure("calls_avoided", "share", "calls_avoided", False),
    _Figure("errors", "count", "errors", True),
)
_SCALAR_KEYS = {"hit_rate": "hit_rate", "calls_avoided": "calls_avoided_share", "errors": "errors"}


def compare_runs(base: Results, new: Results, limits: Limits) -> Comparison:
    """Compare every figure of the cache cells both runs measured; refuse mismatched runs.

    A latency regresses only when the whole 95% interval of its change lies past the limit:
    a move the runs' own spread could make is reported "within noise", not failed.
    """
    _refuse_mismatch(base, new)
    base_cells, new_cells = _cache_cells(base), _cache_cells(new)
    shared = [cell_id for cell_id in base_cells if cell_id in new_cells]
    measured = [c for c in shared if _ok(base_cells[c]) and _ok(new_cells[c])]
    if not measured:
        raise ComparisonError(_nothing_shared(base_cells, new_cells, shared))
    rows = []
    for cell_id in shared:
        noise = _noise(base_cells[cell_id], new_cells[cell_id])
        for figure in (*_LATENCIES, *_SCALARS):
            row = _row(figure, cell_id, base_cells[cell_id], new_cells[cell_id], limits, noise)
            if row is not None:
                rows.append(row)
    notes = _notes(base, new, base_cells, new_cells, shared)
    return Comparison(rows=tuple(rows), notes=notes, limits=limits)


def _refuse_mismatch(base: Results, new: Results) -> None:
    # Both were read as this version's schema: only their workloads can differ.
    base_options, new_options = _options(base), _options(new)
    differ = [
        f"run.options.{name} ({_RUN_OPTION[name]}) is {_show(base_options.get(name))} in BASE "
        f"and {_show(new_options.get(name))} in NEW"
        for name in WORKLOAD_FIELDS
        if base_options.get(name) != new_options.get(name)
    ]
    if differ:
        raise ComparisonError(
            "cannot compare runs with different workloads: "
            + "; ".join(differ)
            + ". Run both with the same options (only --target-env may differ)"
        )


def _nothing_shared(
    base_cells: dict[str, list[Cell]], new_cells: dict[str, list[Cell]], shared: list[str]
) -> str:
    if not shared:
        return (
            "cannot compare: the runs share no cache cell (BASE has "
            f"{', '.join(base_cells) or 'none'}; NEW has {', '.join(new_cells) or 'none'}); "
            "run both with --cells including cache"
        )
    return (
        "cannot compare: no cache cell was measured in both runs (failed: "
        + ", ".join(
            f"{c} in {side}"
            for c in shared
            for side, cells in (("BASE", base_cells), ("NEW", new_cells))
            if not _ok(cells[c])
        )
        + ")"
    )


def _row(
    figure: _Figure,
    cell: str,
    base_cells: list[Cell],
    new_cells: list[Cell],
    limits: Limits,
    noise_of: dict[str, tuple[float, float]],
) -> Row | None:
    """The figure in both runs against its limit; None when neither run measured it."""
    base, new = _value(base_cells, figure), _value(new_cells, figure)
    limit = float(getattr(limits, figure.limit))
    if base is None and new is None:
        return None  # measured in neither run (no HIT at all, say): nothing to report
    if base is None or new is None:
        return Row(figure.name, cell, base, new, None, limit, False, "missing", figure.unit)
    delta = new - base
    worse = delta if figure.higher_is_worse else -delta  # > 0: moved the wrong way
    noise = None
    if figure.unit == "count":
        change: float | None = delta
        beyond = abs(worse) > limit
    elif base:
        change = delta / base
        beyond = abs(worse / base) > limit
        noise = noise_of.get(figure.name)
    else:
        # Relative to nothing: any move is beyond a finite limit.
        change = 0.0 if not delta else None
        beyond = bool(delta)
    status: Status = "regressed" if worse > 0 and beyond else "improved" if beyond else "ok"
    if status != "ok" and noise is not None and not _clear_of(noise, limit, worse > 0):
        status = "within noise"
    return Row(figure.name, cell, base, new, change, limit, status == "regressed", status,
               figure.unit, noise)  # fmt: skip


def _noise(base_cells: list[Cell], new_cells: list[Cell]) -> dict[str, tuple[float, float]]:
    """95% interval of new / base - 1 for every latency figure of one cell, by bootstrap of
    both runs' histograms (and their repeats)."""
    percentiles = tuple(float(p.removeprefix("p(").removesuffix(")")) for p in PERCENTILES)
    noise = {}
    for outcome in OUTCOMES:
        draws = []
        for seed, cells in enumerate((base_cells, new_cells)):
            hists = [
                histogram_of(hist)
                for cell in cells
                if _measured(cell) and (hist := figure_lookup.pooled_histogram([cell], outcome))
            ]
            if hists:
                draws.append(percentile_draws(hists, percentiles, seed=seed))
        if len(draws) == 2:
            for aggregate, percentile in zip(PERCENTILES, percentiles, strict=True):
                change = draws[1][percentile] / draws[0][percentile] - 1
                noise[f"{outcome} {aggregate}"] = interval(change)
    return noise


def _clear_of(noise: tuple[float, float], limit: float, higher: bool) -> bool:
    """True when the whole interval of the change lies past the limit, on the side it moved."""
    low, high = noise
    return low > limit if higher else high < -limit


def _value(cells: list[Cell], figure: _Figure) -> float | None:
    measured = [cell for cell in cells if _measured(cell)]
    if not measured:
        return None
    if figure.unit == "us":
        outcome, _, aggregate = figure.name.partition(" ")
        return figure_lookup.cells_latency_us(measured, outcome, aggregate)
    return figure_lookup.cell_scalar(measured[0], _SCALAR_KEYS[figure.name])


def _notes(
    base: Results,
    new: Results,
    base_cells: dict[str, list[Cell]],
    new_cells: dict[str, list[Cell]],
    shared: list[str],
) -> tuple[str, ...]:
    notes = []
    base_env, new_env = base.run.options.target_env, new.run.options.target_env
    if base_env != new_env:
        notes.append(
            f"target_env differs: {_show(base_env)} in BASE, {_show(new_env)} in NEW "
            "(compared anyway: a changed target is what a regression check measures)"
        )
    for side, results in (("BASE", base), ("NEW", new)):
        status = results.run.status
        if status != "complete":
            notes.append(f"{side} run is {status}: cells it did not finish are not compared")
    for side, cells, other in (("BASE", base_cells, new_cells), ("NEW", new_cells, base_cells)):
        only = [cell_id for cell_id in cells if cell_id not in other]
        if only:
            notes.append(f"cache cells only in {side}, not compared: {', '.join(only)}")
        for cell_id in shared:
            first, *repeats = cells[cell_id]
            if not _ok(cells[cell_id]):
                error = first.error or "no error recorded"
                notes.append(f"{cell_id} failed in {side} ({error}): its figures are missing")
            for repeat in repeats:
                if not _measured(repeat):
                    notes.append(f"{repeat.id} failed in {side}: left out of {cell_id}'s figures")
    if not any(len(cells) > 1 for group in (base_cells, new_cells) for cells in group.values()):
        notes.append(
            "no repeats in either run: the intervals hold the spread of the requests, not the "
            "machine's from run to run (hermes-bench run --repeat K adds it)"
        )
    notes += _machine_notes(base, new)
    return tuple(notes)


def _machine_notes(base: Results, new: Results) -> list[str]:
    notes = []
    parts = (
        ("machine", base.run.machine.model_dump(), new.run.machine.model_dump(),
         "latencies may move for that alone"),
        ("versions", base.run.versions, new.run.versions,
         "a change of library can move figures too"),
    )  # fmt: skip
    for part, base_part, new_part, why in parts:
        # The load average is the moment's, not the machine's: it differs on every run.
        keys = [
            k
            for k in base_part
            if k != "load_average_1m" and None not in (base_part[k], new_part.get(k))
        ]
        differ = [
            f"{k} {base_part[k]} → {new_part[k]}" for k in keys if base_part[k] != new_part[k]
        ]
        if differ:
            notes.append(f"{part} differs ({', '.join(differ)}): {why}")
    return notes


def _cache_cells(results: Results) -> dict[str, list[Cell]]:
    """Each cache cell by id, with its repeats: they are compared pooled, as one figure."""
    groups: dict[str, list[Cell]] = {}
    for cell in results.cells:
        if cell.kind == "cache" and cell.repeat == 1:
            groups[cell.id] = results.repeats_of(cell)
    return groups


def _measured(cell: Cell) -> bool:
    return cell.ok and cell.metrics is not None


def _ok(cells: list[Cell]) -> bool:
    """True when the cell (its first measurement) completed; failed repeats are left out."""
    return _measured(cells[0])


def _options(results: Results) -> dict[str, Any]:
    return results.run.options.model_dump()


def _show(value: Any) -> str:
    # JSON spelling: strings quoted, lists and dicts as they read in results.json.
    return json.dumps(value, ensure_ascii=False, default=str)
