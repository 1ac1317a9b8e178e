"""Metrics from the workers to the master: with each stats report, and once more when they stop.

Workers ship their deltas with Locust's own stats reports (every few seconds). When a worker
stops, it sends what it measured since its last report in a message of its own ("final"), before
Locust's "client_stopped", so the master can write a test's figures complete at its test_stop,
whether the test was stopped from the web UI, ran out of time or used up its workload.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent
from locust.env import Environment
from locust.runners import (
    STATE_CLEANUP,
    STATE_RUNNING,
    STATE_SPAWNING,
    STATE_STOPPING,
    MasterRunner,
    WorkerRunner,
)

from hermes_bench.scenarios.run_context import HermesRun

log = logging.getLogger("hermes_bench")
FINAL_MESSAGE = "hermes_final_metrics"
STOP_MESSAGE = "hermes_stop"
_POLL_S = 0.1
QUIT_GRACE_S = 5.0  # beyond the users' stop timeout, for a stop under way to end


def _payload(run: HermesRun) -> dict[str, Any]:
    return {"metrics": run.metrics.to_wire(), "cpu": run.cpu.drain()}


def _merge(run: HermesRun, client_id: str, payload: dict[str, Any]) -> None:
    run.metrics.merge_wire(payload["metrics"])
    run.cpu_by_process.setdefault(client_id, []).extend(payload["cpu"])


def exchange_metrics(environment: Environment, run: HermesRun) -> None:
    """Register the listeners and messages of this process's side of the exchange."""
    runner = environment.runner
    if isinstance(runner, WorkerRunner):

        def on_report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
            data["hermes"] = _payload(run)

        def on_stop_message(environment: Environment, msg: Any, **_: Any) -> None:
            runner.stop()  # its test_stop sends the final metrics

        def on_quitting(environment: Environment, **_: Any) -> None:
            finish_before_quitting(runner, environment.stop_timeout or 0.0)

        _one_stop_at_a_time(runner, environment)
        environment.events.report_to_master.add_listener(on_report_to_master)
        runner.register_message(STOP_MESSAGE, on_stop_message)
        # Added after Locust's own quitting listener, which tells the master this worker quits:
        # quitting fires in reverse, so this one runs first.
        environment.events.quitting.add_listener(on_quitting)
    elif isinstance(runner, MasterRunner):

        def on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
            payload = data.get("hermes")
            if payload is not None:
                _merge(run, client_id, payload)

        def on_final(environment: Environment, msg: Any, **_: Any) -> None:
            _merge(run, msg.node_id, msg.data)
            run.final_workers.add(msg.node_id)

        environment.events.worker_report.add_listener(on_worker_report)
        runner.register_message(FINAL_MESSAGE, on_final)


def _one_stop_at_a_time(runner: WorkerRunner, environment: Environment) -> None:
    """A stop asked for while another is under way waits for it instead of stopping the users
    again. On Ctrl-C a worker stops itself while the master's "stop" arrives; Locust's worker
    ran both, and each user stopped twice raised "Tried to stop User in an unexpected state"."""
    stop = runner.stop
    under_way = False

    def one_stop() -> None:
        nonlocal under_way
        if under_way:
            _wait_for_stop(runner, environment.stop_timeout or 0.0)
            return
        under_way = True
        try:
            stop()
        finally:
            under_way = False

    runner.stop = one_stop  # type: ignore[method-assign]


def _wait_for_stop(runner: WorkerRunner, stop_timeout_s: float) -> None:
    """Until a stop under way is over, at most the users' stop timeout and a grace."""
    deadline = time.monotonic() + stop_timeout_s + QUIT_GRACE_S
    while runner.state in (STATE_STOPPING, STATE_CLEANUP) and time.monotonic() < deadline:
        gevent.sleep(_POLL_S)


def finish_before_quitting(runner: WorkerRunner, stop_timeout_s: float) -> None:
    """On a worker that quits (Ctrl-C): stop its test, so that its test_stop sends the final
    metrics, and wait for a stop already under way, before the master hears "quit". The master
    stops its test when its last worker quits, and until that stop is over it reads no message:
    a final sent after "quit" waited unread until the master gave up on it."""
    if runner.state in (STATE_SPAWNING, STATE_RUNNING):
        runner.stop()
    _wait_for_stop(runner, stop_timeout_s)


def send_final(environment: Environment, run: HermesRun) -> None:
    """On a worker that has just stopped: what it measured since its last report."""
    runner = environment.runner
    assert isinstance(runner, WorkerRunner)
    runner.send_message(FINAL_MESSAGE, _payload(run))


def expect_workers(runner: MasterRunner, run: HermesRun) -> None:
    """At a test's start on the master: the workers about to get spawn jobs."""
    clients = runner.clients
    run.expected_workers = {c.id for c in (*clients.ready, *clients.spawning, *clients.running)}


def collect_finals(runner: MasterRunner, run: HermesRun, timeout_s: float) -> None:
    """At the master's test_stop: wait for every worker's final metrics.

    Stopped from the web UI, the workers have sent them already. When the run quits (its time
    is up), Locust tells the workers to quit only after test_stop: asked to stop now, they send
    them while the master still listens.
    """
    if not run.expected_workers - run.final_workers:
        return
    runner.send_message(STOP_MESSAGE)
    deadline = time.monotonic() + timeout_s
    while run.expected_workers - run.final_workers and time.monotonic() < deadline:
        gevent.sleep(_POLL_S)
    missing = run.expected_workers - run.final_workers
    if missing:
        log.warning(
            "%d worker(s) sent no final metrics within %.0f s: what they measured since their "
            "last report is missing (%s)",
            len(missing),
            timeout_s,
            ", ".join(sorted(missing)),
        )
