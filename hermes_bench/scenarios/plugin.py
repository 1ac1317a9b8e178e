"""Locust event listeners: options, the embedded stack or the targets' check, the metrics.

Importing this module registers the listeners; locustfile.py does it for you. At every test
stop (the end of a headless run, Stop in the web UI, Ctrl-C) the master or local process writes
the metrics JSON and its CSVs (output_paths.py says where); when Locust quits, the figures go
into its --html report too.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import os
import secrets
import signal
import sys
import time
from argparse import Namespace
from typing import Any, NoReturn

import gevent
import psutil
from locust import events
from locust.env import Environment
from locust.html import process_html_filename
from locust.runners import (
    STATE_RUNNING,
    STATE_SPAWNING,
    STATE_STOPPED,
    STATE_STOPPING,
    MasterRunner,
    WorkerRunner,
)

from hermes_bench.errors import HermesBenchError
from hermes_bench.gc_pauses import keep_out_of_gc
from hermes_bench.http_json import HttpJsonError, post_json
from hermes_bench.redaction import redact_text, redact_url
from hermes_bench.scenarios.options import ScenarioOptions, add_options, check_http_url
from hermes_bench.scenarios.output_paths import OutputPaths, output_paths, run_id
from hermes_bench.scenarios.run_context import HermesRun, run_of
from hermes_bench.scenarios.run_document import metrics_json, stopped_test_document
from hermes_bench.scenarios.run_outputs import add_to_report, section_html, write_metrics
from hermes_bench.scenarios.summary import console_summary
from hermes_bench.scenarios.target_health import Endpoint, check_endpoints, check_upstream
from hermes_bench.scenarios.trace_file import load_trace
from hermes_bench.scenarios.web_tab import add_web_tab
from hermes_bench.scenarios.worker_metrics import (
    collect_finals,
    exchange_metrics,
    expect_workers,
    send_final,
)
from hermes_bench.stack.stack import Stack, StackConfig

log = logging.getLogger("hermes_bench")
CPU_SAMPLE_INTERVAL_S = 1.0
STOP_TIMEOUT_S = 10.0
# Beyond the users' stop timeout, for the workers' last metrics to reach the master.
FINALS_GRACE_S = 10.0
_RUNNING = (STATE_SPAWNING, STATE_RUNNING)


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
        _usage_error(exc, environment)
    run = HermesRun(options, trace)
    environment.hermes_run = run  # type: ignore[attr-defined]
    if not isinstance(environment.runner, WorkerRunner):
        _prepare_master(environment, run)
    exchange_metrics(environment, run)
    gevent.spawn(_sample_cpu, run)
    _ctrl_c_through_the_loop()
    keep_out_of_gc()  # a full collection would stall every user's request in flight


def _ctrl_c_through_the_loop() -> None:
    """Ctrl-C as gevent's loop delivers it: a KeyboardInterrupt thrown into the main greenlet,
    where Locust waits for it. Python's own handler raises it wherever the process is; inside a
    __del__ (geventhttpclient runs one per response) Python prints "Exception ignored", drops
    it, and the run goes on as if Ctrl-C had never been pressed."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # else someone chose
        gevent.signal_handler(signal.SIGINT, _interrupt)


def _interrupt() -> None:
    # Thrown straight into the main greenlet: raised here, gevent's hub would print it as an
    # error of this handler before passing it on.
    gevent.get_hub().parent.throw(KeyboardInterrupt)


def _prepare_master(environment: Environment, run: HermesRun) -> None:
    parsed: Any = environment.parsed_options
    run.outputs = _output_paths(parsed, run.options)
    if not run.options.targets and not environment.host:
        try:
            stack = run.stack = _start_stack(run.options)
        except HermesBenchError as exc:
            _usage_error(exc, environment)
        atexit.register(stack.stop)  # a backstop: quitting normally stops it first
        environment.host = stack.target_urls[0]
        if parsed is not None:
            # Custom options travel to the workers with the spawn message.
            parsed.hermes_targets = ",".join(stack.target_urls)
            parsed.hermes_upstream_url = stack.upstream_url
        # Read from here on by the users and the web tab, without parsing the options again.
        run.options = dataclasses.replace(
            run.options, targets=tuple(stack.target_urls), upstream_url=stack.upstream_url
        )
    else:
        try:
            _check_targets(environment, run)
        except HermesBenchError as exc:
            _usage_error(exc, environment)
    # Users finish the request in flight when a run stops, so every request that reached the
    # upstream is also counted here (Locust's default of 0 s would cut them off).
    environment.stop_timeout = max(environment.stop_timeout or 0.0, STOP_TIMEOUT_S)
    if environment.web_ui is not None:
        add_web_tab(environment, run)
        _add_section_to_downloads(environment, run)
    log.info("hermes-bench metrics go to %s at every test stop", run.outputs.metrics_json)


def _output_paths(parsed: Any, options: ScenarioOptions) -> OutputPaths:
    """Decided once, so every test stop of the run writes the same files."""
    html = getattr(parsed, "html_file", None)
    if html:
        # The name Locust will give its report: {u}, {r} and {t} replaced (on a copy).
        named = Namespace(
            html_file=html,
            num_users=getattr(parsed, "num_users", None),
            spawn_rate=getattr(parsed, "spawn_rate", None),
            run_time=getattr(parsed, "run_time", None),
        )
        process_html_filename(named)
        html = named.html_file
    return output_paths(
        metrics_json=options.metrics_json,
        output=options.output,
        csv_prefix=getattr(parsed, "csv_prefix", None),
        html_file=html,
        run_id=run_id(time.time(), secrets.token_hex(2)),
    )


def _check_targets(environment: Environment, run: HermesRun) -> None:
    """Every target, and the upstream whose ground truth is read, answers: or no load is sent."""
    if not run.options.targets and environment.host:
        check_http_url(environment.host, "--host")
    check_endpoints(Endpoint("target", url) for url in run.targets(environment))
    if run.options.upstream_url:
        check_upstream(run.options.upstream_url)


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
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        # Workers started on their own only now hold the master's --hermes-* options.
        try:
            options = ScenarioOptions.from_parsed(environment.parsed_options)
            trace = load_trace(options.trace) if options.workload == "trace" else None
        except HermesBenchError as exc:
            _fail_now(exc)
        run.options, run.trace = options, trace
        run.begin_test()
        return
    run.begin_test()
    if isinstance(runner, MasterRunner):
        expect_workers(runner, run)
        if run.bounded:
            gevent.spawn(_end_when_workers_are_done, environment)
    upstream = run.upstream_url(environment)
    if upstream:
        try:
            post_json(upstream + "/ground-truth/reset")
        except HttpJsonError as exc:
            log.warning("could not reset the upstream's ground truth at %s: %s", upstream, exc)


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    run = getattr(environment, "hermes_run", None)
    if run is None:
        return
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        send_final(environment, run)
        return
    if isinstance(runner, MasterRunner):
        collect_finals(runner, run, (environment.stop_timeout or 0.0) + FINALS_GRACE_S)
    _write_metrics(environment, run)


def _write_metrics(environment: Environment, run: HermesRun) -> None:
    """The stopped test's metrics JSON and CSVs; the summary on the console."""
    assert run.outputs is not None
    document = stopped_test_document(environment, run)
    text, typed = metrics_json(document)
    written = write_metrics(run.outputs, text, typed)
    run.last_document = typed
    print(console_summary(document), file=sys.stderr)
    print(f"hermes-bench metrics written to {', '.join(map(str, written))}", file=sys.stderr)


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    run = getattr(environment, "hermes_run", None)
    if run is None or isinstance(environment.runner, WorkerRunner):
        return
    try:
        runner = environment.runner
        if runner is not None and runner.state in _RUNNING:
            runner.stop()  # Ctrl-C: in-flight requests finish and are counted; test_stop writes
        if run.outputs is not None and run.last_document is not None:
            report = add_to_report(run.outputs, run.last_document)
            if report is not None:
                print(f"hermes-bench figures added to {report}", file=sys.stderr)
    finally:
        if run.stack is not None:
            run.stack.stop()


def _add_section_to_downloads(environment: Environment, run: HermesRun) -> None:
    """The report the web UI downloads carries the last stopped test's section too."""
    web_ui = environment.web_ui
    if web_ui is None or web_ui.app is None:
        return

    @web_ui.app.after_request
    def add_section(response: Any) -> Any:
        from flask import request

        from hermes_bench.scenarios.report_section import add_section as put

        if request.path != "/stats/report" or run.last_document is None or not run.outputs:
            return response
        section = section_html(run.outputs, run.last_document)
        response.set_data(put(response.get_data(as_text=True), section))
        return response


def _end_when_workers_are_done(environment: Environment) -> None:
    """A bounded run ends once every worker reports no users left (stops, in the web UI).

    A worker's report of zero users was made after its users stopped and its final metrics
    were sent, so nothing is lost by ending then.
    """
    runner = environment.runner
    assert isinstance(runner, MasterRunner)
    seen_users = False
    while True:
        gevent.sleep(0.5)
        if runner.user_count > 0:
            seen_users = True
        elif seen_users and runner.state not in (STATE_SPAWNING, STATE_STOPPING, STATE_STOPPED):
            log.info("every worker has used up its workload: ending the test")
            runner.stop() if environment.web_ui is not None else runner.quit()
            return


def _sample_cpu(run: HermesRun) -> None:
    while True:
        gevent.sleep(CPU_SAMPLE_INTERVAL_S)
        run.cpu.sample()


def _usage_error(exc: HermesBenchError, environment: Environment) -> NoReturn:
    """A usage or set-up error before any load: one message, exit 2 (Locust's own code for a
    bad option); atexit handlers run (what was started stops). A worker forked by
    --processes exits quietly: the master, reading the same options, says it once."""
    parsed: Any = environment.parsed_options
    processes = getattr(parsed, "processes", None)
    forked = isinstance(environment.runner, WorkerRunner) and processes
    if not forked:
        print(f"hermes-bench: error: {redact_text(str(exc))}", file=sys.stderr)
    if processes and not forked:
        _stop_forked_workers()
    sys.stdout.flush()
    sys.exit(2)


def _stop_forked_workers() -> None:
    """The workers --processes forked before this check wait for a master that is leaving:
    their own shutdown would hang on it until Locust's heartbeat timeout (60 s). Nothing of
    theirs needs keeping, no load having started."""
    this = psutil.Process()
    for child in this.children():
        with contextlib.suppress(psutil.Error):
            if child.cmdline() == this.cmdline():  # forked, not started: the same command
                child.kill()


def _fail_now(exc: HermesBenchError) -> NoReturn:
    """Exit 2 from inside a greenlet, where SystemExit would not end the process."""
    print(f"hermes-bench: error: {redact_text(str(exc))}", file=sys.stderr)
    sys.stdout.flush()
    os._exit(2)
