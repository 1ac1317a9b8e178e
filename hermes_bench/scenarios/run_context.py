"""Per-process state of one Locust run, shared by the users and the event listeners."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import gevent
from locust.env import Environment
from locust.runners import WorkerRunner

from hermes_bench.errors import ConfigError
from hermes_bench.results.model import MetricsDocument
from hermes_bench.scenarios.generator_cpu import CpuSampler
from hermes_bench.scenarios.metrics import RunMetrics
from hermes_bench.scenarios.options import ScenarioOptions
from hermes_bench.scenarios.output_paths import OutputPaths
from hermes_bench.scenarios.workload import TraceWorkload, WorkItem, ZipfWorkload
from hermes_bench.stack.stack import Stack

# The idle-time fold of the users' responses: looked at this often, done from this many.
FOLD_CHECK_S = 0.005
FOLD_FROM = 64


@dataclass
class HermesRun:
    """Options, workload, metrics and (on the master) the stack of one process of a run."""

    options: ScenarioOptions
    trace: list[WorkItem] | None
    metrics: RunMetrics = field(default_factory=RunMetrics)
    cpu: CpuSampler = field(default_factory=CpuSampler)
    stack: Stack | None = None
    # CPU readings of every process: this one's under "local", workers' under their ids.
    cpu_by_process: dict[str, list[float]] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    ending: bool = False  # set once the workload is exhausted and the run is winding down
    # The master's (or a local run's): where each test stop writes, and what it wrote last.
    outputs: OutputPaths | None = None
    last_document: MetricsDocument | None = None
    # On the master: workers sent spawn jobs at this test's start, and those whose final
    # metrics (sent when they stopped) have come in.
    expected_workers: set[str] = field(default_factory=set)
    final_workers: set[str] = field(default_factory=set)
    _workload: ZipfWorkload | TraceWorkload | None = None
    _budget: int | None = None  # draws left in this process under --hermes-requests
    _slot_origin: float | None = None
    _slots_taken: int = 0
    _folder: gevent.Greenlet | None = None

    def fold_metrics_when_idle(self) -> None:
        """Fold the users' responses into the metrics when the event loop has nothing else to
        do, so that no answer waits on the bookkeeping to be timed; once per process."""
        if self._folder is None or self._folder.dead:
            self._folder = gevent.spawn(_fold_when_idle, self.metrics)

    def next_slot(self, environment: Environment) -> float:
        """Claim the next send time (monotonic) of this process's share of --hermes-arrival-rate.

        Slots follow a fixed schedule whatever the responses do, so a late send shows up as
        latency counted from its slot: the coordinated-omission correction of wrk2.
        """
        _, parts = _process_part(environment)
        now = time.monotonic()
        if self._slot_origin is None:
            self._slot_origin = now
        slot = self._slot_origin + self._slots_taken * parts / self.options.arrival_rate
        self._slots_taken += 1
        return slot

    def begin_test(self) -> None:
        """A new test (Locust's test_start): nothing measured yet, the workload from its start."""
        self.metrics.reset()
        self.cpu.drain()
        self.cpu_by_process = {}
        self.started_at = time.time()
        self.last_document = None
        self.expected_workers, self.final_workers = set(), set()
        self.reconfigure(self.options, self.trace)

    def reconfigure(self, options: ScenarioOptions, trace: list[WorkItem] | None) -> None:
        """Take the master's options (a worker gets them with the spawn message); start over."""
        self.options, self.trace = options, trace
        self.ending = False
        self._workload = None
        self._budget = None
        self._slot_origin = None
        self._slots_taken = 0

    @property
    def bounded(self) -> bool:
        """True when the run ends by itself: a trace, or a --hermes-requests budget."""
        return self.trace is not None or self.options.requests > 0

    def next_item(self, environment: Environment) -> WorkItem | None:
        """The next request to send, or None once the workload or the budget is used up."""
        workload = self.workload(environment)
        if self.options.requests > 0:
            if self._budget is None:
                part, parts = _process_part(environment)
                share, extra = divmod(self.options.requests, parts)
                self._budget = share + (1 if part < extra else 0)
            if self._budget <= 0:
                return None
            self._budget -= 1
        item = workload.next_item()
        if item is not None and self.options.prompt_prefix:
            item = dataclasses.replace(item, prompt=self.options.prompt_prefix + item.prompt)
        return item

    def workload(self, environment: Environment) -> ZipfWorkload | TraceWorkload:
        """This process's workload, built on first use: one stream (Zipf) or part (trace)."""
        if self._workload is None:
            part, parts = _process_part(environment)
            if self.trace is not None:
                self._workload = TraceWorkload(self.trace, part=part, parts=parts)
            else:
                o = self.options
                self._workload = ZipfWorkload(
                    alpha=o.zipf_alpha,
                    catalogue_size=o.catalogue_size,
                    one_off_share=o.one_off_share,
                    seed=o.seed,
                    stream=part,
                )
        return self._workload

    def targets(self, environment: Environment) -> list[str]:
        """Target base URLs; workers learn them from the master with the spawn message."""
        targets = list(self.options.targets) or ([environment.host] if environment.host else [])
        if not targets:
            raise ConfigError(
                "no target: give --host or --hermes-targets, or neither to start the embedded stack"
            )
        return [t.rstrip("/") for t in targets]

    def upstream_url(self, environment: Environment) -> str:
        """The fake upstream whose ground truth counts OpenAI calls, or '' when unknown."""
        return self.options.upstream_url


def _fold_when_idle(metrics: RunMetrics) -> None:
    while True:
        gevent.sleep(FOLD_CHECK_S)
        if metrics.pending >= FOLD_FROM:
            gevent.idle()  # no answer is waiting to be read: nobody's latency grows
            metrics.fold()


def _process_part(environment: Environment) -> tuple[int, int]:
    """(index, count) of this load-generating process among all of them."""
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        parsed: Any = environment.parsed_options
        parts = max(1, int(getattr(parsed, "expect_workers", 1) or 1))
        return runner.worker_index % parts, parts
    return 0, 1


def run_of(environment: Environment) -> HermesRun:
    """The HermesRun the plugin attached to `environment` at init."""
    run = getattr(environment, "hermes_run", None)
    if run is None:
        raise ConfigError(
            "hermes-bench users need the hermes-bench plugin: import them through locustfile.py "
            "(which imports hermes_bench.scenarios.plugin)"
        )
    assert isinstance(run, HermesRun)
    return run
