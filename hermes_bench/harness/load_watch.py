"""CPU of what a cell loads, and of the machine's other work, sampled while Locust runs.

Readings are in percent of ONE core (100 = one core busy), as in scenarios/generator_cpu. A
role is one process the run started (a target, the embedded Redis, the fake upstream, Locust)
with its descendants; Locust's children (workers) are roles of their own, since each saturates
its own core. The machine's other load is its busy CPU that no role, nor the harness and its
ancestors (pytest, a shell), used. Pure judgement (load_sample, summarize_load) apart from the
one shell that reads /proc (LoadWatch).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import psutil

from hermes_bench.results.model import CellLoad, CpuSummary, OtherLoad, OtherProcess
from hermes_bench.scenarios.generator_cpu import summarize_cpu

SAMPLE_INTERVAL_S = 1.0
# A scan reads every process's /proc entry (~8 ms for ~90 processes here): on a machine with
# many more, samples are spaced so that watching costs at most this share of one core.
MAX_WATCH_SHARE = 0.05
# The machine is busy with other work when more than SATURATED_SHARE (10%) of the samples
# found more than this CPU going to processes the run did not start. Measured on the 2-core
# machine in quick cells (8 users, each cell 3-8 s): with nothing else running, the other load
# was p90 2-10% of one core, at most 16% (softirq, processes that exited between samples, the
# system's daemons); one busy loop beside the run read p90 94-166%, the loop itself 49-90%; other
# people's test runs on the same machine 20-100%. 25% stands clear of the quiet noise, and a
# quarter of a core is a lot to take from a run whose processes already share two cores.
OTHER_BUSY_PCT = 25.0
SATURATED_PCT = 90.0  # a role: the load generator's rule (scenarios/generator_cpu.summarize_cpu)
TOP_OTHERS = 3
LOCUST = "locust"


@dataclass(frozen=True)
class ProcessReading:
    """One process at one instant: its parent, name and CPU seconds used since it started."""

    pid: int
    ppid: int
    name: str
    started: float  # create time: a pid seen again with another one is another process
    cpu_s: float


@dataclass(frozen=True)
class Snapshot:
    """The machine at one instant: monotonic time, busy CPU seconds, every process."""

    at_s: float
    wall_s: float  # epoch seconds, to compare with the Locust run's start and end
    busy_s: float
    processes: Mapping[int, ProcessReading]


@dataclass(frozen=True)
class LoadSample:
    """CPU (% of one core) over one interval: per role, other load, the top other processes."""

    roles: dict[str, float]
    other_pct: float
    top_others: tuple[tuple[int, str, float], ...] = ()
    started: float = 0.0  # the interval, epoch seconds
    ended: float = 0.0


def load_sample(
    before: Snapshot,
    after: Snapshot,
    roles: Mapping[str, int],
    harness: Iterable[int],
    *,
    split: str = LOCUST,
) -> LoadSample | None:
    """The CPU of each role and of the machine's other work between two snapshots.

    `roles` maps a role to its root pid; descendants count for their role, except those of
    `split`, which are roles of their own ("locust worker <pid>"). `harness` are pids that are
    ours without being a role (the harness and its ancestors). None when no time passed.
    """
    wall_s = after.at_s - before.at_s
    if wall_s <= 0:
        return None
    root_role = {pid: role for role, pid in roles.items()}
    memo: dict[int, str | None] = {}

    def role_of(pid: int) -> str | None:
        # Up the parents to a role's root; memoised, so the whole pass stays linear.
        path: list[int] = []
        label: str | None = None
        while True:
            if pid in root_role:
                label = root_role[pid]
                if label == split and path:  # path[-1]: the worker, the root's own child
                    label = f"{split} worker {path[-1]}"
                break
            if pid in memo:
                label = memo[pid]
                break
            path.append(pid)
            reading = after.processes.get(pid)
            if reading is None or reading.ppid in (0, pid):
                break
            pid = reading.ppid
        for walked in path:
            memo[walked] = label
        return label

    ours = set(harness)
    by_role: dict[str, float] = {role: 0.0 for role in roles}
    ours_pct = 0.0
    others: list[tuple[int, str, float]] = []
    for pid, now in after.processes.items():
        then = before.processes.get(pid)
        used_s = now.cpu_s - then.cpu_s if then and then.started == now.started else now.cpu_s
        pct = max(0.0, used_s) / wall_s * 100
        role = role_of(pid)
        if role is not None:
            by_role[role] = by_role.get(role, 0.0) + pct
            ours_pct += pct
        elif pid in ours:
            ours_pct += pct
        elif pct > 0:
            others.append((pid, now.name, pct))
    system_pct = max(0.0, after.busy_s - before.busy_s) / wall_s * 100
    others.sort(key=lambda other: -other[2])
    return LoadSample(
        roles={role: round(pct, 1) for role, pct in by_role.items()},
        other_pct=round(max(0.0, system_pct - ours_pct), 1),
        top_others=tuple((pid, name, round(pct, 1)) for pid, name, pct in others[:TOP_OTHERS]),
        started=before.wall_s,
        ended=after.wall_s,
    )


def summarize_load(
    samples: Sequence[LoadSample],
    interval_s: float,
    unknown: Sequence[str] = (),
    *,
    start: float | None = None,
    end: float | None = None,
) -> CellLoad:
    """Per-role and other-load summaries (count, mean, p90, max, saturated) of one cell.

    Only samples that overlap the Locust test [start, end] (epoch s; None: open) count, and
    Locust's own only when the middle of their interval lies inside it: its start-up (a second
    or two of imports at a full core) and its reports after the test are not load generation,
    and counted they would mark every short cell saturated. A role is saturated by the load
    generator's rule (more than 10% of samples above 90% of a core); the machine is busy by
    the same rule at OTHER_BUSY_PCT. The top other processes rank by mean CPU over the cell.
    """
    lo, hi = -math.inf if start is None else start, math.inf if end is None else end
    overlapping = [s for s in samples if s.ended > lo and s.started < hi]
    series: dict[str, list[float]] = {}
    totals: dict[tuple[int, str], list[float]] = {}
    for sample in overlapping:
        centred = lo <= (sample.started + sample.ended) / 2 <= hi
        for role, pct in sample.roles.items():
            values = series.setdefault(role, [])
            if centred or not role.startswith(LOCUST):
                values.append(pct)
        for pid, name, pct in sample.top_others:
            totals.setdefault((pid, name), []).append(pct)
    # Workers numbered in the order they first appear: pids say nothing to a reader.
    workers = [r for r in series if r.startswith(f"{LOCUST} worker ")]
    names = {w: f"{LOCUST} worker {i}" for i, w in enumerate(workers, start=1)}
    processes = {
        names.get(role, role): CpuSummary.model_validate(summarize_cpu(values, SATURATED_PCT))
        for role, values in series.items()
    }
    count = len(overlapping)
    top = sorted(totals.items(), key=lambda item: -sum(item[1]))[:TOP_OTHERS]
    other = OtherLoad(
        cpu=CpuSummary.model_validate(
            summarize_cpu([s.other_pct for s in overlapping], OTHER_BUSY_PCT)
        ),
        top=[
            OtherProcess(pid=pid, name=name, mean_pct=round(sum(v) / count, 1), max_pct=max(v))
            for (pid, name), v in top
        ],
    )
    return CellLoad(interval_s=interval_s, processes=processes, unknown=list(unknown), other=other)


def harness_pids() -> set[int]:
    """This process and its ancestors (pytest, a shell...): ours, though no role."""
    pids = set()
    try:
        process: psutil.Process | None = psutil.Process()
        while process is not None and process.pid not in pids:
            pids.add(process.pid)
            process = process.parent()
    except psutil.Error:
        pass
    return pids


def _busy_s() -> float:
    """Machine-wide busy CPU seconds: not idle, not waiting for I/O, not stolen by the host
    (steal is another guest's, and no process here could be named for it)."""
    t = psutil.cpu_times()
    total = sum(t) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
    return total - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0)


@dataclass
class LoadWatch:
    """Samples the roles and the machine about once a second while a cell runs; call
    maybe_sample() as often as convenient, then summary()."""

    roles: dict[str, int]
    unknown: list[str] = field(default_factory=list)
    interval_s: float = SAMPLE_INTERVAL_S
    _harness: set[int] = field(default_factory=harness_pids, init=False)
    _cache: dict[int, psutil.Process] = field(default_factory=dict, init=False)
    _last: Snapshot | None = field(default=None, init=False)
    _next_s: float = field(default=0.0, init=False)
    _samples: list[LoadSample] = field(default_factory=list, init=False)

    def maybe_sample(self) -> None:
        """Take a sample when the interval has passed since the previous one."""
        if time.monotonic() < self._next_s:
            return
        started = time.monotonic()
        snapshot = self._snapshot()
        took_s = time.monotonic() - started
        self._next_s = started + max(self.interval_s, took_s / MAX_WATCH_SHARE)
        if self._last is not None:
            sample = load_sample(self._last, snapshot, self.roles, self._harness)
            if sample is not None:
                self._samples.append(sample)
        self._last = snapshot

    def summary(self, start: float | None = None, end: float | None = None) -> CellLoad:
        """What the samples of the Locust test [start, end] (epoch s) say."""
        return summarize_load(self._samples, self.interval_s, self.unknown, start=start, end=end)

    def _snapshot(self) -> Snapshot:
        at_s, wall_s, busy_s = time.monotonic(), time.time(), _busy_s()
        readings = {}
        alive = set(psutil.pids())
        for pid in list(self._cache):
            if pid not in alive:
                del self._cache[pid]
        for pid in alive:
            process = self._cache.get(pid)
            try:
                if process is None:
                    process = self._cache[pid] = psutil.Process(pid)
                with process.oneshot():
                    times = process.cpu_times()
                    readings[pid] = ProcessReading(
                        pid=pid,
                        ppid=process.ppid(),
                        name=process.name(),
                        started=process.create_time(),
                        cpu_s=times.user + times.system,
                    )
            except psutil.Error:  # gone meanwhile, or not ours to read: its CPU stays other
                self._cache.pop(pid, None)
        return Snapshot(at_s=at_s, wall_s=wall_s, busy_s=busy_s, processes=readings)
