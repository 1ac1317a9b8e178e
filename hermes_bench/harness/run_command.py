"""The shell around a claims run: options in; results, report, verdicts and exit code out."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hermes_bench.errors import ConfigError

# The command line imports this module for its options alone: the heavy parts (matplotlib,
# Locust's helpers, the stack) load only when a run or a report is asked for.
from hermes_bench.harness.config_file import add_config_argument
from hermes_bench.harness.profiles import PROFILES, profile_named
from hermes_bench.latency_spec import ACCEPTED_FORMS, parse_latency
from hermes_bench.results.vocabulary import (
    BACKENDS,
    CELL_KINDS,
    DEFAULT_TRAFFIC_PER_DAY,
    VERDICTS,
    CellKind,
    Verdict,
)

if TYPE_CHECKING:
    from rich.console import Console

    from hermes_bench.harness.claims_run import RunOptions
    from hermes_bench.reports.payoff import PayoffOptions
    from hermes_bench.results.model import Results


MAX_REPEAT = 20
MAX_TRAFFIC_PER_DAY = 1e12


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    """Options of `hermes-bench run`."""
    run.add_argument(
        "--profile",
        default="quick",
        choices=sorted(PROFILES),
        help="quick (about two minutes, for CI), standard (a few minutes), full, or capacity "
        "(quick with the capacity sweep)",
    )
    run.add_argument(
        "--sweep",
        action="store_true",
        help="add the capacity sweep: arrival-rate steps per backend until a target stops "
        "keeping up, and the load generator's own limit (the capacity profile has it)",
    )
    run.add_argument(
        "--stream",
        action="store_true",
        help="the cache cells ask with stream: true and record each answer's time to its first "
        "token per outcome",
    )
    run.add_argument(
        "--sweep-rates",
        metavar="R,R,...",
        help="the sweep's arrival rates in requests/s (default 25,50,...,3200); implies --sweep",
    )
    run.add_argument(
        "--sweep-step",
        type=float,
        metavar="SECONDS",
        help="seconds of each sweep step (default 5)",
    )
    run.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="comma-separated backends to compare (default redis,memory)",
    )
    run.add_argument("--instances", type=int, help="N of the multi-instance cells")
    run.add_argument("--users", type=int, help="Locust users of the cache cells")
    run.add_argument("--requests", type=int, help="chat requests per cache cell")
    run.add_argument("--upstream-latency", help=f"fake upstream latency: {ACCEPTED_FORMS}")
    run.add_argument(
        "--hit-header",
        metavar="NAME[=VALUE]",
        help="how the --target gateways mark a cache hit, e.g. cf-cache-status=HIT or "
        "X-From-Cache (present = hit); default X-Cache. Without one, hits and misses come "
        "from the fake upstream's call log (needs --upstream-url)",
    )
    run.add_argument(
        "--time-scale",
        type=float,
        help="the fake upstream sleeps its latency times this (quick 0.1, standard 0.4, full 1); "
        "verdicts stand for the un-scaled latency whatever it is",
    )
    run.add_argument(
        "--repeat",
        type=int,
        metavar="K",
        help="run each one-instance cache cell and the probe K times, for intervals that "
        "include the machine's run-to-run spread (quick 1, standard and full 3)",
    )
    run.add_argument("--seed", type=int, default=0, help="seed of the workload (default 0)")
    run.add_argument(
        "--redis-url",
        help="use this Redis instead of a private redis-server (env HERMES_BENCH_REDIS_URL, "
        "which keeps a password out of `ps`); reached and authenticated before the first cell",
    )
    run.add_argument(
        "--cells",
        default=",".join(CELL_KINDS),
        help=f"comma-separated kinds of cells to run (default all: {','.join(CELL_KINDS)})",
    )
    run.add_argument(
        "--target-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of every target, e.g. CACHE_TTL_S=60 (repeatable)",
    )
    run.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="URL",
        help="load this running target instead of starting the stack (repeatable: N instances)",
    )
    run.add_argument(
        "--upstream-url",
        default="",
        help="the fake upstream (hermes-bench upstream) the --target calls, for ground truth",
    )
    run.add_argument(
        "--target-backend",
        default="redis",
        choices=BACKENDS,
        help="what the --target uses for its cache, to label its cells (default redis)",
    )
    run.add_argument("--duration", type=float, help="seconds of each rate-limit cell")
    run.add_argument("--zipf-alpha", type=float, help="Zipf exponent of prompt popularity")
    run.add_argument("--catalogue-size", type=int, help="distinct prompts in the catalogue")
    run.add_argument("--one-off-share", type=float, help="share of prompts asked only once")
    run.add_argument(
        "--output",
        default="reports",
        help="folder for the run's results, report and logs (default reports/, one folder a run)",
    )
    run.add_argument(
        "--fail-on",
        action="append",
        default=[],
        metavar="VERDICT",
        help=f"exit 1 if any claim or Redis fault gets this verdict ({'; '.join(VERDICTS)})",
    )
    run.add_argument("--threshold", action="append", default=[], metavar="EXPR",
                     help="exit 99 unless it holds, k6-style: 'redis.HIT p(95)<50ms', "
                     "'redis.hit_rate>0.5', 'outage.hung.during max<2s'")  # fmt: skip
    run.add_argument(
        "--junit",
        metavar="FILE",
        help="also write the claims' verdicts and the thresholds as JUnit XML, for CI test tabs",
    )
    add_config_argument(run)
    add_payoff_arguments(run)


def add_payoff_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the payoff (`run` and `report`): traffic, model, prices, answer size."""
    group = parser.add_argument_group("payoff (what Redis saves in OpenAI dollars)")
    group.add_argument(
        "--traffic",
        type=float,
        metavar="N",
        help=f"requests a day to price the payoff at (default {DEFAULT_TRAFFIC_PER_DAY:,.0f})",
    )
    group.add_argument(
        "--model",
        help="the OpenAI model to price the calls at (default: the one the calls named)",
    )
    group.add_argument(
        "--prices",
        metavar="FILE",
        help="a JSON price table instead of the shipped one (OpenAI list prices of a date), "
        'e.g. {"as_of": "2025-06-01", "source": "my contract", "models": {"gpt-4o-mini": '
        '{"input": 0.15, "output": 0.60}}} in USD per 1M tokens',
    )
    group.add_argument(
        "--completion-tokens",
        type=float,
        metavar="N",
        help="price answers of N tokens instead of the fake upstream's short ones",
    )


def payoff_options(args: argparse.Namespace) -> PayoffOptions:
    """The payoff's options from the command line, checked before anything starts."""
    from hermes_bench.reports.payoff import PayoffOptions
    from hermes_bench.reports.price_tables import load_price_table, load_redis_tiers

    traffic = DEFAULT_TRAFFIC_PER_DAY if args.traffic is None else args.traffic
    if not (math.isfinite(traffic) and 0 < traffic <= MAX_TRAFFIC_PER_DAY):
        raise ConfigError(f"--traffic {traffic:g}: requests a day, above 0, at most 1e12")
    completion = args.completion_tokens
    if completion is not None and not (math.isfinite(completion) and 0 <= completion <= 1e6):
        raise ConfigError(f"--completion-tokens {completion:g}: from 0 to 1,000,000 tokens")
    prices = load_price_table(Path(args.prices) if args.prices else None)
    if args.model is not None and args.model not in prices.models:
        raise ConfigError(
            f"--model {args.model!r}: the price table of {prices.as_of} knows "
            f"{', '.join(sorted(prices.models))}; give --prices FILE for another"
        )
    return PayoffOptions(
        prices=prices,
        tiers=load_redis_tiers(),
        traffic_per_day=traffic,
        model=args.model,
        completion_tokens=completion,
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Run the claims as the options say; the exit code reflects --fail-on and --threshold."""
    from hermes_bench.harness.claims_run import RunOptions, run_claims
    from hermes_bench.harness.console import output_console
    from hermes_bench.harness.preflight import check_run
    from hermes_bench.harness.report_command import write_junit
    from hermes_bench.reports.figure_lookup import check_subject
    from hermes_bench.reports.terminal import print_claims
    from hermes_bench.reports.thresholds import parse_threshold
    from hermes_bench.results.files import LATEST_NAME, RESULTS_NAME

    profile = profile_named(args.profile)
    changes: dict[str, Any] = {}
    for name, value in (("instances", args.instances), ("users", args.users),
                        ("cache_requests", args.requests)):  # fmt: skip
        if value is not None:
            if value < (2 if name == "instances" else 1):
                raise ConfigError(f"--{name.replace('cache_', '')} {value} is too small")
            changes[name] = value
    if args.duration is not None and (args.duration < 1 or args.duration != int(args.duration)):
        raise ConfigError(f"--duration {args.duration}: a whole number of seconds, at least 1")
    for name, value in (("ratelimit_seconds", args.duration), ("zipf_alpha", args.zipf_alpha),
                        ("catalogue_size", args.catalogue_size),
                        ("one_off_share", args.one_off_share)):  # fmt: skip
        if value is not None:
            changes[name] = value
    if args.time_scale is not None:
        if not (math.isfinite(args.time_scale) and 0 < args.time_scale <= 10):
            raise ConfigError(f"--time-scale {args.time_scale:g}: a number above 0, at most 10")
        changes["time_scale"] = args.time_scale
    if args.stream:
        changes["stream"] = True
    if args.sweep or args.sweep_rates:
        changes["sweep"] = True
    if args.sweep_rates:
        changes["sweep_rates"] = _sweep_rates(args.sweep_rates)
    if args.sweep_step is not None:
        if not (math.isfinite(args.sweep_step) and 1 <= args.sweep_step <= 600):
            raise ConfigError(f"--sweep-step {args.sweep_step:g}: from 1 to 600 seconds")
        changes["sweep_step_s"] = args.sweep_step
    if args.repeat is not None:
        if not 1 <= args.repeat <= MAX_REPEAT:
            raise ConfigError(f"--repeat {args.repeat}: a whole number from 1 to {MAX_REPEAT}")
        changes["repeat"] = args.repeat
    _check_workload(dataclasses.replace(profile, **changes), args.seed)
    if args.upstream_latency:
        parse_latency(args.upstream_latency)  # a bad spec fails now, not inside a cell
        changes["upstream_latency"] = args.upstream_latency
    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    if args.target:
        backends = (args.target_backend,)  # their targets, one backend: ours start nothing
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown or not backends:
        raise ConfigError(f"--backends {args.backends!r}: use redis, memory or both")
    kinds = _cell_kinds(args.cells)
    if args.cells != ",".join(CELL_KINDS) and {"sweep", "generator"} & set(kinds):
        changes["sweep"] = True  # asked for by name: the sweep is what the run is for
    target_env = []
    for item in args.target_env:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--target-env {item!r}: write it as NAME=VALUE")
        target_env.append((name.strip(), value))
    if args.hit_header is not None:
        from hermes_bench.scenarios.options import parse_hit_header

        try:
            parse_hit_header(args.hit_header)  # a malformed one fails now, not in every cell
        except ConfigError as exc:  # said in the words of this command's option
            raise ConfigError(str(exc).replace("--hermes-hit-header", "--hit-header", 1)) from None
        if not args.target:
            raise ConfigError(
                "--hit-header is for --target gateways: the reference app sends X-Cache"
            )
    fail_on = tuple(dict.fromkeys(_verdict(v) for v in args.fail_on))
    thresholds = tuple(parse_threshold(t) for t in args.threshold)
    for threshold in thresholds:
        check_subject(threshold)  # a mistyped figure fails now, not as "not measured" at the end
    options = RunOptions(
        profile=dataclasses.replace(profile, **changes),
        backends=backends,
        seed=args.seed,
        redis_url=args.redis_url or None,
        output=Path(args.output),
        kinds=kinds,
        target_env=tuple(target_env),
        targets=tuple(url.rstrip("/") for url in args.target),
        upstream_url=args.upstream_url.rstrip("/"),
        target_backend=args.target_backend,
        hit_header=args.hit_header,
        payoff=payoff_options(args),
        thresholds=thresholds,
        fail_on=fail_on,
    )
    junit = Path(args.junit) if args.junit else None
    check_run(options, junit, getattr(args, "sources", {}))
    console = output_console()
    report: dict[str, Path] = {}
    results = run_claims(options, console, lambda r: report.update(path=_finish(r, options)))
    print_claims(results, console)
    if junit is not None:
        write_junit(junit, results)
    code = _exit_code(results, console)
    console.print(f"report  {report['path']}")
    console.print(f"results {report['path'].with_name(RESULTS_NAME)}")
    if junit is not None:
        console.print(f"junit   {junit}")
    console.print(f"latest  {options.output / LATEST_NAME} -> {results.run.id}")
    console.print(f"wall time {results.run.wall_s} s")
    return code


def _sweep_rates(text: str) -> tuple[float, ...]:
    """--sweep-rates as rates, each a number of requests a second from 1 to 100,000."""
    rates = []
    for part in (p.strip() for p in text.split(",")):
        try:
            rate = float(part)
        except ValueError:
            rate = math.nan
        if not (math.isfinite(rate) and 1 <= rate <= 100_000):
            raise ConfigError(
                f"--sweep-rates {text!r}: {part!r} is not a rate from 1 to 100000 requests/s"
            )
        rates.append(rate)
    return tuple(sorted(set(rates)))


def _cell_kinds(text: str) -> tuple[CellKind, ...]:
    """--cells as kinds; ConfigError names the known ones."""
    by_name: dict[str, CellKind] = {kind: kind for kind in CELL_KINDS}
    names = [k.strip() for k in text.split(",") if k.strip()]
    if not names or any(name not in by_name for name in names):
        raise ConfigError(f"--cells {text!r}: choose from {', '.join(CELL_KINDS)}")
    return tuple(by_name[name] for name in names)


def _check_workload(profile: Any, seed: int) -> None:
    """Build the workload once now: a bad alpha, catalogue or share fails before any cell."""
    from hermes_bench.scenarios.workload import ZipfWorkload

    ZipfWorkload(
        alpha=profile.zipf_alpha,
        catalogue_size=profile.catalogue_size,
        one_off_share=profile.one_off_share,
        seed=seed,
    )


def _finish(results: Results, options: RunOptions) -> Path:
    from hermes_bench.reports.html import write_report

    run_dir = options.output / results.run.id
    return write_report(results, run_dir / "report.html")


def _verdict(text: str) -> Verdict:
    by_name: dict[str, Verdict] = {verdict: verdict for verdict in VERDICTS}
    normalized = text.replace("-", " ").strip().lower()
    if normalized not in by_name:
        raise ConfigError(f"--fail-on {text!r}: use one of {', '.join(VERDICTS)}")
    return by_name[normalized]


def _exit_code(results: Results, console: Console) -> int:
    """The exit code of the finished run, with the lines that say why when it is not 0."""
    from rich.text import Text

    from hermes_bench.harness.exit_codes import run_outcome
    from hermes_bench.reports.gates import fail_on_matches

    for verdict, ids in fail_on_matches(results).items():
        console.print(Text(f"--fail-on {verdict!r}: {', '.join(ids)}", style="red"))
    code, reason = run_outcome(results)
    if reason:
        console.print(Text(f"exit {code}: {reason}", style="bold red"))
    return code
