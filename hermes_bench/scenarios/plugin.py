"""Locust event listeners: options, the embedded stack, metrics merging, the metrics file.

Importing this module registers the listeners; locustfile.py does it for you.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import (
    STATE_SPAWNING,
    STATE_STOPPED,
    STATE_STOPPING,
    LocalRunner,
    MasterRunner,
    WorkerRunner,
)
from pydantic import ValidationError

from hermes_bench.errors import HermesBenchError
from hermes_bench.http_json import HttpJsonError, get_json, post_json
from hermes_bench.redaction import redact_text, redact_url
from hermes_bench.results.model import MetricsDocument
from hermes_bench.scenarios.attribution import attribute
from hermes_bench.scenarios.generator_cpu import summarize_cpu
from hermes_bench.scenarios.options import ScenarioOptions, add_options
from hermes_bench.scenarios.run_context import HermesRun, run_of
from hermes_bench.scenarios.summary import build_document, console_summary
from hermes_bench.scenarios.trace_file import load_trace
from hermes_bench.scenarios.web_tab import add_web_tab
from hermes_bench.stack.stack import Stack, StackConfig

log = logging.getLogger("hermes_bench")
CPU_SAMPLE_INTERVAL_S = 1.0
LOCAL = "local"
STOP_TIMEOUT_S = 10.0
# The call log of a long run is tens of MB of JSON: more time than a counter read.
LOG_TIMEOUT_S = 120.0


@events.init_command_line_parser.add_listener
def _on_parser(parser: Any, **_: Any) -> None:
    add_options(parser)


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    try:
        options = ScenarioOptions.from_parsed(environment.parsed_options)
        # Every process reads the trace now, so a malformed one fails before any load starts.
        trace = load_trace(options.trace) if options.workload == "trace" else None
    except HermesBenchError as exc:
        _exit_with_error(exc)
    run = HermesRun(options, trace)
    environment.hermes_run = run  # type: ignore[attr-defined]
    if not isinstance(environment.runner, WorkerRunner):
        _prepare_master(environment, run)
    _exchange_metrics(environment, run)
    gevent.spawn(_sample_cpu, run)


def _exchange_metrics(environment: Environment, run: HermesRun) -> None:
    """Workers send metric deltas with each stats report; the master merges them."""

    def on_report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
        data["hermes"] = {"metrics": run.metrics.to_wire(), "cpu": run.cpu.drain()}

    def on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
        payload = data.get("hermes")
        if payload is not None:
            run.metrics.merge_wire(payload["metrics"])
            run.cpu_by_process.setdefault(client_id, []).extend(payload["cpu"])

    if isinstance(environment.runner, WorkerRunner):
        environment.events.report_to_master.add_listener(on_report_to_master)
    elif isinstance(environment.runner, MasterRunner):
        environment.events.worker_report.add_listener(on_worker_report)


def _prepare_master(environment: Environment, run: HermesRun) -> None:
    parsed: Any = environment.parsed_options
    if not run.options.targets and not environment.host:
        try:
            stack = run.stack = _start_stack(run.options)
        except HermesBenchError as exc:
            _exit_with_error(exc)
        atexit.register(stack.stop)  # a backstop: quitting normally stops it first
        environment.host = stack.target_urls[0]
        if parsed is not None:
            # Custom options travel to the workers with the spawn message.
            parsed.hermes_targets = ",".join(stack.target_urls)
            parsed.hermes_upstream_url = stack.upstream_url
    # Users finish the request in flight when a run stops, so every request that reached the
    # upstream is also counted here (Locust's default of 0 s would cut them off).
    environment.stop_timeout = max(environment.stop_timeout or 0.0, STOP_TIMEOUT_S)
    if environment.web_ui is not None:
        add_web_tab(environment, run)


def _start_stack(options: ScenarioOptions) -> Stack:
    config = StackConfig(
        backend=options.backend,
        instances=options.instances,
        redis_url=options.redis_url or None,
        upstream_latency=options.upstream_latency,
        target_env={"RATE_LIMIT": options.rate_limit},
    )
    log.info(
        "starting the embedded stack: %s backend, %d target instance(s)",
        options.backend,
        options.instances,
    )
    stack = Stack(config).start()
    where = redact_url(stack.redis_url) if stack.redis_url else "in memory"
    log.info(
        "targets %s; upstream %s; Redis %s", ", ".join(stack.target_urls), stack.upstream_url, where
    )
    return stack


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    run = run_of(environment)
    run.started_at = time.time()
    if isinstance(environment.runner, WorkerRunner):
        # Workers started on their own only now hold the master's --hermes-* options.
        try:
            options = ScenarioOptions.from_parsed(environment.parsed_options)
            trace = load_trace(options.trace) if options.workload == "trace" else None
        except HermesBenchError as exc:
            _exit_with_error(exc)
        run.reconfigure(options, trace)
        return
    if isinstance(environment.runner, MasterRunner) and run.bounded:
        gevent.spawn(_end_when_workers_are_done, environment.runner)
    upstream = run.upstream_url(environment)
    if upstream:
        try:
            post_json(upstream + "/ground-truth/reset")
        except HttpJsonError as exc:
            log.warning("could not reset the upstream's ground truth at %s: %s", upstream, exc)


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    run = getattr(environment, "hermes_run", None)
    if run is None or isinstance(environment.runner, WorkerRunner):
        return
    try:
        if isinstance(environment.runner, LocalRunner):
            environment.runner.stop()  # in-flight requests finish and are counted
        document = _document(environment, run)
        path = Path(run.options.metrics_json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_metrics_json(document))
        print(console_summary(document), file=sys.stderr)
        print(f"hermes-bench metrics written to {path}", file=sys.stderr)
    finally:
        if run.stack is not None:
            run.stack.stop()


def _metrics_json(document: dict[str, Any]) -> str:
    """The document as the results model types it; as it stands, with an error, if it is not."""
    try:
        typed = MetricsDocument.model_validate(document)
    except ValidationError as exc:  # a bug of ours: say so, but keep what was measured
        log.error("the metrics document does not match its model, written as is: %s", exc)
        return json.dumps(document, indent=1)
    return typed.model_dump_json(by_alias=True, indent=1)


def _document(environment: Environment, run: HermesRun) -> dict[str, Any]:
    upstream = run.upstream_url(environment)
    ground_truth = None
    # Cache-path answers kept (by this process, or shipped by the workers) for attribution.
    lookups = run.metrics.lookups
    if upstream:
        # The call log only when there is something to attribute: it holds every call.
        query = "?log=1" if lookups else ""
        try:
            ground_truth = get_json(upstream + "/ground-truth" + query, timeout_s=LOG_TIMEOUT_S)
        except HttpJsonError as exc:
            log.warning("could not read the upstream's ground truth at %s: %s", upstream, exc)
    attribution = None
    if lookups:
        calls_log = ground_truth.pop("calls_log", None) if ground_truth is not None else None
        dropped = int(ground_truth.get("calls_log_dropped", 0)) if ground_truth else 0
        found = attribute(lookups, calls_log, calls_log_dropped=dropped)
        # Answers without a header outcome get the log's now, before the snapshot is taken.
        run.metrics.settle_lookups(found.outcomes)
        attribution = found.summary()
    run.cpu_by_process.setdefault(LOCAL, []).extend(run.cpu.drain())
    per_process = {name: summarize_cpu(samples) for name, samples in run.cpu_by_process.items()}
    saturated = any(summary.get("saturated") for summary in per_process.values())
    workload = run.workload(environment).describe()
    return build_document(
        snapshot=run.metrics.snapshot(),
        ground_truth=ground_truth,
        cpu={"saturated": saturated, "per_process": per_process},
        run={
            "started_at": run.started_at,
            "ended_at": time.time(),
            "targets": [redact_url(t) for t in run.targets(environment)],
            "upstream": redact_url(upstream) if upstream else None,
            "embedded_stack": run.stack is not None,
            "backend": run.options.backend if run.stack is not None else None,
            # Workers that reported: by the end they may already have quit.
            "workers": len([name for name in run.cpu_by_process if name != LOCAL]),
            "arrival_rate": run.options.arrival_rate or None,
            "workload": workload,
        },
        attribution=attribution,
        hit_header=run.options.hit_header,
    )


def _end_when_workers_are_done(runner: MasterRunner) -> None:
    """A bounded run ends once every worker reports no users left.

    A worker's report of zero users was made after its users stopped, so the metrics it
    carries are complete: nothing is lost by quitting then.
    """
    seen_users = False
    while True:
        gevent.sleep(0.5)
        if runner.user_count > 0:
            seen_users = True
        elif seen_users and runner.state not in (STATE_SPAWNING, STATE_STOPPING, STATE_STOPPED):
            log.info("every worker has used up its workload: ending the run")
            runner.quit()
            return


def _sample_cpu(run: HermesRun) -> None:
    while True:
        gevent.sleep(CPU_SAMPLE_INTERVAL_S)
        run.cpu.sample()


def _exit_with_error(exc: HermesBenchError) -> Any:
    print(f"hermes-bench: error: {redact_text(str(exc))}", file=sys.stderr)
    sys.stdout.flush()
    os._exit(2)
