"""The claims summary printed at the end of a run, with rich."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hermes_bench.redaction import redact_text
from hermes_bench.reports.palette import VERDICTS, verdict_colour


def _claims(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in results.get("claims") or [] if isinstance(c, dict)]


def verdict_counts(results: dict[str, Any]) -> dict[str, int]:
    """Claims per verdict, verdicts that occur only: known ones in VERDICTS order, then others."""
    counts: dict[str, int] = {}
    for claim in _claims(results):
        verdict = str(claim.get("verdict", "?"))
        counts[verdict] = counts.get(verdict, 0) + 1
    order = {v: i for i, v in enumerate(VERDICTS)}
    return dict(sorted(counts.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))


def _plain(value: Any) -> Text:
    # Text, not a str: rich would read "[...]" in a summary or an error as markup.
    return Text(redact_text(str(value)))


def print_claims(results: dict[str, Any], console: Console) -> None:
    """A table of claims with coloured verdicts, then one line per failed cell."""
    run = results.get("run") or {}
    if run.get("status") == "interrupted":
        console.print(Text("Run interrupted: verdicts rest on partial data.", style="bold red"))
    claims = _claims(results)
    if claims:
        table = Table(title=f"HERMES guide claims, run {run.get('id', '?')}", show_lines=False)
        table.add_column("id", no_wrap=True)
        table.add_column("the guide says", ratio=2)
        table.add_column("verdict", no_wrap=True)
        table.add_column("what was measured", ratio=3)
        for claim in claims:
            verdict = str(claim.get("verdict", "?"))
            table.add_row(
                _plain(claim.get("id", "?")),
                _plain(claim.get("guide", "")),
                Text(verdict, style=f"bold {verdict_colour(verdict)}"),
                _plain(claim.get("summary", "")),
            )
        console.print(table)
        counts = ", ".join(f"{verdict}: {n}" for verdict, n in verdict_counts(results).items())
        console.print(_plain(counts))
    else:
        console.print(Text("No claims evaluated: no data.", style="yellow"))
    for cell in results.get("cells") or []:
        if isinstance(cell, dict) and cell.get("status") != "ok":
            line = f"cell {cell.get('id', '?')} {cell.get('status', '?')}: "
            console.print(_plain(line + str(cell.get("error") or "no error recorded")), style="red")
