"""What each claim's plot shows, read from the cells the claim rests on: pure, no drawing.

Every extractor takes the cell ids of one claim (`Claim.cells`) and reads only those cells,
completed ones, so a plot shows the measurements its claim was judged on; it returns an empty
list (or None) when they hold nothing to plot.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TypeVar

from hermes_bench.errors import ConfigError
from hermes_bench.reports.latency_parts import (
    PartsMissing,
    cell_parts,
    draw_parts,
    first_token_parts,
    interval,
)
from hermes_bench.reports.plot_data import instances_text, ok_cells
from hermes_bench.reports.real_latency import (
    TailUnmeasured,
    real_upstream,
    repeat_speedup,
)
from hermes_bench.results.model import (
    EvictionFigures,
    MemoryFigures,
    PoolFigures,
    ProbeFigures,
    RestartFigures,
    Results,
)
from hermes_bench.results.vocabulary import BACKENDS

_F = TypeVar("_F")
PERSISTENCE_NAMES = {"none": "no persistence", "aof": "AOF", "rdb": "RDB snapshots"}


def _backend_order(backend: str) -> tuple[int, str]:
    return (BACKENDS.index(backend) if backend in BACKENDS else len(BACKENDS)), backend


# --- C4: a repeated prompt against a first-seen one -----------------------------------------


@dataclass(frozen=True)
class RepeatSpeed:
    """p50 of a HIT, and of a MISS at the real upstream (its p50 plus the MISS's overhead) and
    as run; of the time to the first token when the run streamed."""

    cell_id: str
    streamed: bool
    hit_p50_ms: float
    overhead_p50_ms: float
    upstream_p50_ms: float
    upstream_describe: str
    faster: float
    faster_interval: tuple[float, float]
    as_run_miss_p50_ms: float
    time_scale: float

    @property
    def miss_p50_ms(self) -> float:
        """A first-seen prompt's p50 at the real upstream."""
        return self.upstream_p50_ms + self.overhead_p50_ms


def repeat_speed(results: Results, only: Collection[str]) -> RepeatSpeed | None:
    """The one-instance Redis cache cell of the claim (repeats pooled), as C4 judges it."""
    cell = next((c for c in ok_cells(results, "cache", only) if c.instances == 1), None)
    if cell is None:
        return None
    streamed = results.run.options.stream
    try:
        parts = [
            (first_token_parts if streamed else cell_parts)(c)
            for c in results.repeats_of(cell)
            if c.ok and c.id in only
        ]
        real = real_upstream(results.run.options)
    except (PartsMissing, TailUnmeasured, ConfigError):
        return None
    draws = draw_parts(parts, seed=results.run.options.seed)
    pt = draws.point
    return RepeatSpeed(
        cell_id=cell.id,
        streamed=streamed,
        hit_p50_ms=pt["hit_p50"],
        overhead_p50_ms=pt["overhead_p50"],
        upstream_p50_ms=real.p50_ms,
        upstream_describe=real.describe,
        faster=repeat_speedup(pt["hit_p50"], pt["overhead_p50"], real.p50_ms),
        faster_interval=interval(repeat_speedup(draws.hit_p50, draws.overhead_p50, real.p50_ms)),
        as_run_miss_p50_ms=pt["miss_p50"],
        time_scale=results.run.options.time_scale,
    )


# --- C5: Redis operation times ---------------------------------------------------------------


APP, PROBE = "app", "direct probe"


@dataclass(frozen=True)
class OpTiming:
    """One Redis command's round trip: as the app timed it, or as a direct probe did."""

    op: str
    source: str  # APP (the target's own timing) or PROBE
    p50_ms: float
    p99_ms: float | None
    count: int


def op_timings(results: Results, only: Collection[str]) -> list[OpTiming]:
    """Per command, the app's timing (its busiest target's) beside the direct probe's."""
    app: dict[str, OpTiming] = {}
    for cell in ok_cells(results, "cache", only):
        for stats in cell.targets:
            for op, timing in stats.redis_op_latency_us.items():
                if timing.p50_us is None or (op in app and app[op].count >= timing.count):
                    continue
                app[op] = OpTiming(op, APP, timing.p50_us / 1000, _ms(timing.p99_us),
                                   timing.count)  # fmt: skip
    direct: dict[str, OpTiming] = {}
    for cell in ok_cells(results, "probe", only):
        if not isinstance(cell.extra, ProbeFigures):
            continue
        for op, timing in cell.extra.direct.items():
            if timing.p50_us is not None:
                direct[op] = OpTiming(op, PROBE, timing.p50_us / 1000,
                                      _ms(timing.p99_us), timing.count)  # fmt: skip
    rows = []
    for op in sorted(set(app) | set(direct)):
        rows += [t for t in (app.get(op), direct.get(op)) if t is not None]
    return rows


def _ms(us: float | None) -> float | None:
    return None if us is None else us / 1000


# --- C7 and C9: what is left after a restart -------------------------------------------------


@dataclass(frozen=True)
class KeptRow:
    """`kept` of `whole` still there after one restart, on one backend."""

    backend: str
    label: str
    kept: int
    whole: int


def restart_rows(results: Results, only: Collection[str], what: str) -> list[KeptRow]:
    """Sessions (`what` "sessions") or cached answers ("answers") of the claim's restart cells:
    before any restart, after every target restarted, after Redis itself restarted."""
    rows = []
    cells = sorted(ok_cells(results, "restart", only), key=lambda c: _backend_order(str(c.backend)))
    for cell in cells:
        figures = cell.extra
        if not isinstance(figures, RestartFigures):
            continue
        backend = str(cell.backend)
        restarted = f"after every target restarted ({instances_text(cell.instances)})"
        if what == "sessions" and figures.sessions:
            # Read back before any restart through the next instance, as a non-sticky balancer
            # would: with one instance that is the instance that created them.
            through = "another instance" if cell.instances > 1 else "the same instance"
            rows.append(KeptRow(backend, f"before any restart, read through {through}",
                                figures.intact_before, figures.sessions))  # fmt: skip
            rows.append(KeptRow(backend, restarted, figures.intact_after, figures.sessions))
        elif what == "answers" and figures.warm_prompts:
            rows.append(
                KeptRow(backend, restarted, figures.hits_after_restart, figures.warm_prompts)
            )
        for persistence, redis in figures.redis_restart.items():
            name = PERSISTENCE_NAMES.get(persistence, persistence)
            kept, whole = (
                (redis.intact_after, redis.sessions)
                if what == "sessions"
                else (redis.hits_after_restart, redis.warm_prompts)
            )
            if whole:
                rows.append(KeptRow(backend, f"after Redis itself restarted, {name}", kept, whole))
    return rows


# --- C8: OpenAI calls with one instance and with N -------------------------------------------


@dataclass(frozen=True)
class CallsByInstances:
    """Upstream calls (ground truth) of one backend's cache cells, by number of instances."""

    backend: str
    instances: tuple[int, ...]
    calls: tuple[int, ...]
    distinct: tuple[int, ...]


def calls_by_instances(results: Results, only: Collection[str]) -> list[CallsByInstances]:
    """Per backend, its cache cells' upstream calls from fewest instances to most."""
    found: dict[str, dict[int, tuple[int, int]]] = {}
    for cell in ok_cells(results, "cache", only):
        cache = cell.metrics.cache if cell.metrics else None
        if cache is None or cache.upstream_calls is None or cell.repeat != 1:
            continue
        distinct = cache.upstream_distinct_requests or 0
        found.setdefault(str(cell.backend), {})[cell.instances] = (cache.upstream_calls, distinct)
    return [
        CallsByInstances(
            backend=backend,
            instances=tuple(sorted(by_n)),
            calls=tuple(by_n[n][0] for n in sorted(by_n)),
            distinct=tuple(by_n[n][1] for n in sorted(by_n)),
        )
        for backend, by_n in sorted(found.items(), key=lambda item: _backend_order(item[0]))
    ]


# --- C10, C11, C13: the failure half ---------------------------------------------------------


def eviction_figures(results: Results, only: Collection[str]) -> EvictionFigures | None:
    """The claim's eviction cell's figures, None when it measured none."""
    return _figures_of(results, only, "eviction", EvictionFigures)


def memory_figures(results: Results, only: Collection[str]) -> MemoryFigures | None:
    """The claim's memory cell's figures, None when it measured none."""
    return _figures_of(results, only, "memory", MemoryFigures)


def pool_figures(results: Results, only: Collection[str]) -> PoolFigures | None:
    """The claim's pool cell's figures, None when it swept no step."""
    figures = _figures_of(results, only, "pool", PoolFigures)
    return figures if figures is not None and any(figures.modes.values()) else None


def _figures_of(results: Results, only: Collection[str], kind: str, of: type[_F]) -> _F | None:
    for cell in results.cells:
        if cell.ok and cell.kind == kind and cell.id in only and isinstance(cell.extra, of):
            return cell.extra
    return None
