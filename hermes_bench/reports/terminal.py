"""The claims summary printed at the end of a run, with rich."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hermes_bench.redaction import redact_text
from hermes_bench.reports.capacity import capacities
from hermes_bench.reports.outage_verdicts import fault_line, outage_figures
from hermes_bench.reports.palette import verdict_colour
from hermes_bench.results.model import (
    HOLDS,
    VERDICTS,
    Results,
    Verdict,
)


def verdict_counts(results: Results) -> dict[Verdict, int]:
    """Claims per verdict, in VERDICTS order, for the verdicts that occur."""
    counts = {verdict: 0 for verdict in VERDICTS}
    for claim in results.claims:
        counts[claim.verdict] += 1
    return {verdict: n for verdict, n in counts.items() if n}


def _plain(value: Any) -> Text:
    # Text, not a str: rich would read "[...]" in a summary or an error as markup.
    return Text(redact_text(str(value)))


def _measured(summary: str, holds_when: str | None) -> Text:
    text = _plain(summary)
    if holds_when:
        text.append("\n")
        text.append(redact_text(holds_when), style="dim")
    return text


def print_claims(results: Results, console: Console) -> None:
    """A table of claims with coloured verdicts, then one line per failed cell."""
    if results.run.status in ("interrupted", "killed"):
        console.print(
            Text(f"Run {results.run.status}: verdicts rest on partial data.", style="bold red")
        )
    if results.answer:
        console.print(Panel(_plain(" ".join(results.answer)), title="The answer", expand=False))
    if results.claims:
        table = Table(title=f"HERMES guide claims, run {results.run.id}", show_lines=False)
        table.add_column("id", no_wrap=True)
        table.add_column("the guide says", ratio=2)
        table.add_column("verdict", no_wrap=True)
        table.add_column("what was measured", ratio=3)
        for claim in results.claims:
            table.add_row(
                _plain(claim.id),
                _plain(claim.guide),
                Text(claim.verdict, style=f"bold {verdict_colour(claim.verdict)}"),
                _measured(claim.summary, claim.holds_when),
            )
        console.print(table)
        counts = ", ".join(f"{verdict}: {n}" for verdict, n in verdict_counts(results).items())
        console.print(_plain(counts))
    else:
        console.print(Text("No claims evaluated: no data.", style="yellow"))
    print_outages(results, console)
    print_capacity(results, console)
    print_thresholds(results, console)
    for cell in results.cells:
        if not cell.ok:
            line = f"cell {cell.id} {cell.status}: {cell.error or 'no error recorded'}"
            console.print(_plain(line), style="red")


_THRESHOLD_STYLE = {"passed": "green", "failed": "red", "unmeasured": "red"}


def print_thresholds(results: Results, console: Console) -> None:
    """One line per --threshold: the figure measured against its limit, and the outcome."""
    for check in results.thresholds:
        console.print(Text(f"threshold {check.message}", style=_THRESHOLD_STYLE[check.status]))


def print_outages(results: Results, console: Console) -> None:
    """When Redis fails: a verdict and what happened per fault, when the run had the cell."""
    if results.find_cell("outage", "redis") is None or not results.outages:
        return
    figures = outage_figures(results)
    faults = figures.faults if figures is not None else {}
    table = Table(title="When Redis fails", show_lines=False)
    table.add_column("Redis", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("what the app did", ratio=1)
    for claim in results.outages:
        fault = faults.get(claim.id)
        if claim.verdict == HOLDS and fault is not None:
            text = _plain(fault_line(fault))
        else:
            text = _plain(claim.summary)
        table.add_row(
            _plain(claim.id),
            Text(claim.verdict, style=f"bold {verdict_colour(claim.verdict)}"),
            text,
        )
    console.print(table)


def print_capacity(results: Results, console: Console) -> None:
    """The capacity sweep per backend, when the run had one."""
    read = capacities(results)
    if not read:
        return
    table = Table(title="Capacity (one instance, open-model arrival rates)")
    table.add_column("backend", no_wrap=True)
    table.add_column("kept up to", no_wrap=True)
    table.add_column("HITs <= 50 ms p99 to", no_wrap=True)
    table.add_column("set by / stopped", ratio=1)
    for capacity in read:
        table.add_row(
            _plain(capacity.backend),
            _plain("-" if capacity.knee_rps is None else f"{capacity.knee_rps:g}/s"),
            _plain("-" if capacity.fast_hits_rps is None else f"{capacity.fast_hits_rps:g}/s"),
            _plain(
                capacity.limited_by
                + (f"; {capacity.stopped_because}" if capacity.stopped_because else "")
            ),
        )
    console.print(table)
