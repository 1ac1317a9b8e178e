"""Per-process state of one Locust run, shared by the users and the event listeners."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from locust.env import Environment
from locust.runners import WorkerRunner

from hermes_bench.errors import ConfigError
from hermes_bench.harness.stack import Stack
from hermes_bench.scenarios.load_cpu import CpuSampler
from hermes_bench.scenarios.metrics import RunMetrics
from hermes_bench.scenarios.options import ScenarioOptions
from hermes_bench.scenarios.workload import TraceWorkload, WorkItem, ZipfWorkload


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
    _workload: ZipfWorkload | TraceWorkload | None = None

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
        options = ScenarioOptions.from_parsed(environment.parsed_options)
        targets = list(options.targets) or ([environment.host] if environment.host else [])
        if not targets:
            raise ConfigError(
                "no target: give --host or --hermes-targets, or neither to start the embedded stack"
            )
        return [t.rstrip("/") for t in targets]

    def upstream_url(self, environment: Environment) -> str:
        """The fake upstream whose ground truth counts OpenAI calls, or '' when unknown."""
        return ScenarioOptions.from_parsed(environment.parsed_options).upstream_url


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
