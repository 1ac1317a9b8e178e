"""`hermes-bench report`: the HTML report (and JUnit XML) again from a run's results alone."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hermes_bench.errors import ConfigError
from hermes_bench.harness.config_file import add_config_argument

if TYPE_CHECKING:
    from hermes_bench.results.model import Results


def add_report_arguments(report: argparse.ArgumentParser) -> None:
    """Arguments and options of `hermes-bench report` (the payoff's are added beside them)."""
    report.add_argument(
        "results",
        metavar="RESULTS",
        help="a results.json written by 'hermes-bench run', the run's folder, or the output "
        "folder (its latest run)",
    )
    report.add_argument("--output", help="where to write the HTML (default: beside the results)")
    report.add_argument(
        "--junit",
        metavar="FILE",
        help="also write the verdicts and the thresholds the run recorded as JUnit XML",
    )
    add_config_argument(report)


def report_from_args(args: argparse.Namespace) -> int:
    """Render the HTML again from the results alone; exit 0, or 2 when they cannot be read."""
    from hermes_bench.harness.console import output_console
    from hermes_bench.harness.killed_run import finish_killed, is_killed
    from hermes_bench.harness.run_command import payoff_options
    from hermes_bench.reports.html import write_report
    from hermes_bench.reports.terminal import print_claims
    from hermes_bench.results.files import find_results, read_results, write_results

    path = find_results(Path(args.results))
    results = read_results(path)
    console = output_console()
    if is_killed(results):
        finish_killed(results)
        written_or_explained(lambda: write_results(path, results), path, "RESULTS")
        console.print(
            f"run {results.run.id} was killed (its process is gone): finished from the "
            f"{len(results.cells)} cell(s) it wrote; results.json now says so"
        )
    if any(v is not None for v in (args.traffic, args.model, args.prices, args.completion_tokens)):
        from hermes_bench.reports.payoff import evaluate_payoff
        from hermes_bench.reports.plain_answer import plain_answer

        # Priced again for the report only: results.json keeps what the run concluded.
        results.payoff = evaluate_payoff(results, payoff_options(args))
        results.answer = plain_answer(results)
    target = Path(args.output) if args.output else path.with_name("report.html")
    written_or_explained(lambda: write_report(results, target), target, "--output")
    junit = Path(args.junit) if args.junit else None
    if junit is not None:
        write_junit(junit, results)
    print_claims(results, console)
    console.print(f"report  {target}")
    if junit is not None:
        console.print(f"junit   {junit}")
    return 0


def write_junit(path: Path, results: Results) -> None:
    """The run's verdicts and thresholds as JUnit XML at `path`."""
    from hermes_bench.reports.junit import junit_xml
    from hermes_bench.results.files import write_text_atomically

    written_or_explained(lambda: write_text_atomically(path, junit_xml(results)), path, "--junit")


def written_or_explained(write: Callable[[], object], path: Path, option: str) -> None:
    """Call `write`; a folder that cannot be made or a file that cannot be written is one
    ConfigError naming the option and the path."""
    try:
        write()
    except OSError as exc:
        raise ConfigError(
            f"{option} {path}: cannot write it ({exc.strerror or exc}); give a path in a "
            "writable folder"
        ) from None
