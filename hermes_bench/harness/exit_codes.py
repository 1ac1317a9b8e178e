"""The exit codes of `hermes-bench run` (and the other commands), stated once for CI."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the results model loads pydantic: not for every command's --help
    from hermes_bench.results.model import Results

EXIT_OK = 0
EXIT_FAIL_ON = 1  # a claim got a verdict --fail-on names
EXIT_SETUP = 2  # bad options or set-up: nothing (or nothing useful) was measured
EXIT_THRESHOLDS = 99  # a --threshold failed or was not measured, as k6 exits
EXIT_INTERRUPTED = 130  # Ctrl-C, SIGTERM or SIGHUP: stopped, what was measured is kept

EPILOG = """\
exit codes:
  0    done; no --fail-on verdict, every --threshold passed
  1    a claim got a verdict named by --fail-on
  2    usage or set-up error: bad option or config file, Redis or a target not reachable,
       output not writable, no cell completed
  99   a --threshold failed or its figure was not measured (as k6 exits)
  130  interrupted (Ctrl-C, SIGTERM, SIGHUP): stopped, results and report of the cells done
       kept
When several apply, the first in this order wins: 130, 2, 99, 1. Thresholds and --fail-on
verdicts are written to results.json and, with --junit FILE, to a JUnit XML file.
"""

COMMANDS_EPILOG = """\
exit codes: 0 done; 1 the command's check failed (run: a --fail-on verdict; compare: a
regression; check: a wrong answer); 2 usage or set-up error (compare: runs that cannot be
compared); 99 run: a --threshold failed; 130 interrupted. `hermes-bench run --help` has the
details.
"""


def run_exit_code(
    *, interrupted: bool, measured_nothing: bool, thresholds_failed: bool, fail_on_matched: bool
) -> int:
    """The run's exit code; an interrupted run says so first, since its verdicts are partial."""
    if interrupted:
        return EXIT_INTERRUPTED
    if measured_nothing:
        return EXIT_SETUP
    if thresholds_failed:
        return EXIT_THRESHOLDS
    if fail_on_matched:
        return EXIT_FAIL_ON
    return EXIT_OK


def run_outcome(results: Results) -> tuple[int, str | None]:
    """The finished run's exit code and, when it is not 0, why, in a line."""
    from hermes_bench.reports.gates import fail_on_matches, thresholds_not_passed

    matches = fail_on_matches(results)
    not_passed = thresholds_not_passed(results)
    code = run_exit_code(
        interrupted=results.run.status == "interrupted",
        measured_nothing=not any(cell.ok for cell in results.cells),
        thresholds_failed=bool(not_passed),
        fail_on_matched=bool(matches),
    )
    reasons = {
        EXIT_OK: None,
        EXIT_INTERRUPTED: "interrupted: the verdicts rest on the cells done",
        EXIT_SETUP: "no cell completed, nothing was measured: see the errors above",
        EXIT_THRESHOLDS: f"{len(not_passed)} of {len(results.thresholds)} thresholds not "
        f"passed: {', '.join(t.expression for t in not_passed)}",
        EXIT_FAIL_ON: "claims got a --fail-on verdict: "
        + "; ".join(f"{verdict} {', '.join(ids)}" for verdict, ids in matches.items()),
    }
    return code, reasons[code]
