"""The shell around `hermes-bench compare BASE NEW`: limits in; table, verdict and exit code out."""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

from hermes_bench.errors import ConfigError

# The command line imports this module for its options alone: the comparison, rich and the
# figure lookups load only when a comparison is asked for.
if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from hermes_bench.reports.compare import Comparison, Limits, Row

# As typed on the command line; they parse to the defaults of reports.compare.Limits.
DEFAULT_LIMITS = {"latency": "50%", "hit_rate": "5%", "calls_avoided": "5%", "errors": "0"}
RELATIVE_FORMS = "a percentage like 50% or a fraction like 0.5"
_HELP_FORMS = RELATIVE_FORMS.replace("%", "%%")  # argparse reads % in help as a format
COUNT_FORMS = "a whole number of responses like 0 or 3 (an absolute count, not a percentage)"
EXIT_REGRESSED = 1
# NEW did not measure a figure BASE did (a failed cell, no HIT at all): not a pass.
EXIT_UNMEASURED = 2

_NUMBER_RE = re.compile(r"(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?P<percent>%?)")
# Short enough for an 80-column log; the JSON and the verdict line spell "within noise" out.
_SHOWN_STATUS = {"within noise": "noise"}
_STATUS_STYLE = {
    "ok": "",
    "regressed": "bold red",
    "improved": "green",
    "within noise": "dim",
    "missing": "yellow",
}


def add_compare_arguments(compare: argparse.ArgumentParser) -> None:
    """Arguments and options of `hermes-bench compare`."""
    compare.add_argument(
        "base",
        metavar="BASE",
        help="results.json of the baseline run (e.g. from main), or its folder, or an output "
        "folder (its latest run)",
    )
    compare.add_argument(
        "new", metavar="NEW", help="results.json of the run to check against it (or a folder)"
    )
    compare.add_argument(
        "--latency",
        default=DEFAULT_LIMITS["latency"],
        metavar="SHARE",
        help=f"max relative increase of p50/p95/p99: {_HELP_FORMS} (default 50%%)",
    )
    compare.add_argument(
        "--hit-rate",
        default=DEFAULT_LIMITS["hit_rate"],
        metavar="SHARE",
        help=f"max relative drop of the hit rate: {_HELP_FORMS} (default 5%%)",
    )
    compare.add_argument(
        "--calls-avoided",
        default=DEFAULT_LIMITS["calls_avoided"],
        metavar="SHARE",
        help="max relative drop of the share of upstream calls avoided (default 5%%)",
    )
    compare.add_argument(
        "--errors",
        default=DEFAULT_LIMITS["errors"],
        metavar="N",
        help="max increase in error and wrong-answer responses per cell (default 0)",
    )
    compare.add_argument("--json", metavar="PATH", help="also write the comparison here, for CI")


def parse_relative(option: str, text: str, *, at_most_one: bool = False) -> float:
    """`50%` or `0.5` → 0.5; a drop (`at_most_one`) cannot exceed 100%."""
    found = _NUMBER_RE.fullmatch(text.strip())
    value = math.nan
    if found:
        value = float(found["number"]) / (100 if found["percent"] else 1)
    if not math.isfinite(value) or (at_most_one and value > 1):
        drop = " from 0% to 100%" if at_most_one else ""
        raise ConfigError(f"{option} {text!r}: use {RELATIVE_FORMS}{drop}")
    return value


def parse_count(option: str, text: str) -> int:
    """`0` or `3` → an absolute number of responses."""
    if not text.strip().isdigit():
        raise ConfigError(f"{option} {text!r}: use {COUNT_FORMS}")
    return int(text.strip())


def limits_from_args(args: argparse.Namespace) -> Limits:
    """The limits the options ask for, each checked with a message naming its accepted forms."""
    from hermes_bench.reports.compare import Limits

    return Limits(
        latency=parse_relative("--latency", args.latency),
        hit_rate=parse_relative("--hit-rate", args.hit_rate, at_most_one=True),
        calls_avoided=parse_relative("--calls-avoided", args.calls_avoided, at_most_one=True),
        errors=parse_count("--errors", args.errors),
    )


def compare_from_args(args: argparse.Namespace) -> int:
    """Compare NEW against BASE; exit 1 on a regression, 0 otherwise."""
    from rich.text import Text

    from hermes_bench.harness.console import output_console
    from hermes_bench.harness.report_command import written_or_explained
    from hermes_bench.reports.compare import compare_runs
    from hermes_bench.results.files import find_results, read_results, write_text_atomically

    limits = limits_from_args(args)  # bad options fail before any file is read
    base, new = find_results(Path(args.base)), find_results(Path(args.new))
    comparison = compare_runs(read_results(base), read_results(new), limits)
    if args.json:
        document = {"base": str(base), "new": str(new), **comparison.as_dict()}
        target = Path(args.json)
        text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
        written_or_explained(lambda: write_text_atomically(target, text), target, "--json")
    console = output_console()
    console.print(Text(f"BASE {base}\nNEW  {new}"))
    print_comparison(comparison, console)
    if comparison.regressed:
        return EXIT_REGRESSED
    return EXIT_UNMEASURED if comparison.unmeasured else 0


def print_comparison(comparison: Comparison, console: Console) -> None:
    """The table of figures (regressions in red), the notes, then a one-line verdict."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    # No vertical rules: the seven columns then fit an 80-column CI log without cropping.
    table = Table(
        title="NEW against BASE", box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True
    )
    for name, justify in (("figure", "left"), ("cell", "left"), ("base ms", "right"),
                          ("new ms", "right"), ("change", "right"), ("95% CI", "right"),
                          ("status", "left")):  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in comparison.rows:
        cells = (row.figure, row.cell, _value(row.base, row), _value(row.new, row),
                 _change(row), _noise(row), _SHOWN_STATUS.get(row.status, row.status))  # fmt: skip
        table.add_row(*(Text(c) for c in cells), style=_STATUS_STYLE[row.status])
    console.print(table)
    limits = comparison.limits
    console.print(
        Text(
            f"limits: latency +{limits.latency:.0%}, hit rate -{limits.hit_rate:.0%}, calls "
            f"avoided -{limits.calls_avoided:.0%}, errors +{limits.errors:g}; a latency "
            "regresses only when its whole 95% interval is past its limit"
        ),
        soft_wrap=True,
    )
    # Soft wrap: CI logs keep each note and the verdict on one line, whole names greppable.
    for note in comparison.notes:
        console.print(Text(f"note: {note}", style="yellow"), soft_wrap=True)
    console.print(verdict_line(comparison), soft_wrap=True)


def verdict_line(comparison: Comparison) -> Text:
    """`REGRESSED: ...` naming each regressed figure, or `no regression: ...` with the counts."""
    from rich.text import Text

    rows = comparison.rows
    counts = {
        s: sum(r.status == s for r in rows)
        for s in ("regressed", "improved", "within noise", "missing")
    }
    if comparison.regressed:
        named = ", ".join(f"{r.figure} ({r.cell})" for r in rows if r.regressed)
        line = f"REGRESSED: {counts['regressed']} of {len(rows)} figures beyond their limits: "
        return Text(line + named, style="bold red")
    if comparison.unmeasured:
        named = ", ".join(f"{r.figure} ({r.cell})" for r in comparison.unmeasured)
        line = (
            f"INCOMPLETE: {len(comparison.unmeasured)} of {len(rows)} figures measured in BASE "
            f"and not in NEW, so not checked: {named}"
        )
        return Text(line, style="bold red")
    extra = (
        f"; {counts['improved']} improved, {counts['within noise']} moved within the runs' "
        f"noise, {counts['missing']} in one run only"
    )
    return Text(f"no regression: {len(rows)} figures within their limits{extra}", style="green")


def _value(value: float | None, row: Row) -> str:
    if value is None:
        return "-"
    if row.unit == "us":  # in ms, as the column headers say: the unit would crowd 80 columns
        ms = value / 1000
        return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"
    if row.unit == "share":
        return f"{value:.1%}"
    return f"{value:g}"


def _change(row: Row) -> str:
    if row.status == "missing":
        return "BASE only" if row.new is None else "NEW only"
    if row.change is None:
        return "from 0"
    if row.unit == "count":
        return f"{row.change:+g}"
    return f"{row.change:+.0%}"


def _noise(row: Row) -> str:
    if row.noise is None:
        return "-"
    low, high = row.noise
    return f"{low * 100:+.0f}..{high * 100:+.0f}%"
