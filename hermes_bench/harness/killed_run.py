"""A run whose process died without finishing (SIGKILL, a crash, the machine's power): found
by `report` as "running" with no process behind it, and concluded from the cells it has."""

from __future__ import annotations

import socket
from collections.abc import Callable

import psutil

from hermes_bench.harness.claims_run import conclude
from hermes_bench.results.model import Results

# A pid's start time read back may differ from the one recorded by rounding: within this, it
# is the same process.
_SAME_START_S = 1.0


def process_alive(pid: int, started_at: float | None) -> bool:
    """True when the process `pid` runs and is the one that started at `started_at`."""
    try:
        process = psutil.Process(pid)
        return started_at is None or abs(process.create_time() - started_at) < _SAME_START_S
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def is_killed(
    results: Results,
    host: str | None = None,
    alive: Callable[[int, float | None], bool] = process_alive,
) -> bool:
    """True for a run still marked running whose process, on this host, is gone. A run of
    another host, or of a file without the process recorded, cannot be told: False."""
    run = results.run
    if run.status != "running" or run.pid is None or run.host != (host or socket.gethostname()):
        return False
    return not alive(run.pid, run.process_started_at)


def finish_killed(results: Results) -> None:
    """Mark a killed run so and give it the verdicts of the cells it finished; the claims
    whose cells never ran are inconclusive, as in an interrupted run."""
    run = results.run
    run.status = "killed"
    run.ended_at = max((cell.ended_at for cell in results.cells), default=run.started_at)
    run.wall_s = round(run.ended_at - run.started_at, 1)
    conclude(results)
