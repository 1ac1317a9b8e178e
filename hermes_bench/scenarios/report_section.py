"""The hermes-bench section of Locust's HTML report: hit rate, calls avoided, µs percentiles.

Locust's report is a page its script draws into <div id="root">; the section goes before that
element, as plain HTML the script leaves alone, at the top of the page. `section_view` is pure,
`render_section` fills the Jinja2 template (autoescape on), `add_section` puts it into a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from hermes_bench.redaction import redact_text
from hermes_bench.results.model import MetricsDocument
from hermes_bench.results.vocabulary import STEP_PREFIX
from hermes_bench.scenarios.hermes_tables import (
    Figure,
    OutcomeRow,
    cache_figures,
    hit_rate_source,
    outcome_rows,
)

BEGIN = "<!-- hermes-bench section: begin -->"
END = "<!-- hermes-bench section: end -->"
_ROOT = '<div id="root"'
_HEADLINE = (
    ("hit_rate", "Hit rate"),
    ("calls_avoided", "OpenAI calls avoided"),
    ("upstream_calls", "OpenAI calls (ground truth)"),
    ("cache_requests", "Chat requests"),
    ("ideal_hit_rate", "Ideal hit rate"),
)
_SHARES = frozenset({"hit_rate", "calls_avoided_share", "ideal_hit_rate"})
_COLUMNS = ("scenario", "outcome", "family", "count", "p50 ms", "p90 ms", "p99 ms", "max ms")


@dataclass(frozen=True, slots=True)
class Headline:
    """A figure at the top of the section: `value` as the document has it, `shown` for people."""

    name: str
    label: str
    value: str
    shown: str
    meaning: str


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the per-outcome table: count, then ms with µs kept (3 decimals)."""

    scenario: str
    outcome: str
    family: str
    cells: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Link:
    """A file of the run, relative to the report."""

    label: str
    href: str


@dataclass(frozen=True, slots=True)
class SectionView:
    """Everything the template shows, as strings."""

    intro: str
    headline: tuple[Headline, ...]
    notes: tuple[str, ...]
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    links: tuple[Link, ...]


def section_view(document: MetricsDocument, links: tuple[Link, ...] = ()) -> SectionView:
    """What the section says about `document`."""
    by_name = {figure.name: figure for figure in cache_figures(document)}
    headline = tuple(
        _headline(by_name[name], label, by_name["calls_avoided_share"].value)
        for name, label in _HEADLINE
    )
    intro = (
        "Latencies from µs histograms (Locust's own tables round to whole ms below 100 ms); "
        f"hit rate from {hit_rate_source(document.cache)}; OpenAI calls counted at the fake "
        f"upstream. {STEP_PREFIX}NAME: a step the target timed itself (its Server-Timing)."
    )
    if not document.cache.ground_truth:
        intro += " No upstream was read: calls avoided are unknown (see --hermes-upstream-url)."
    return SectionView(
        intro=intro,
        headline=headline,
        notes=tuple(_notes(document)),
        columns=_COLUMNS,
        rows=tuple(_table_row(row) for row in outcome_rows(document)),
        links=links,
    )


def _headline(figure: Figure, label: str, avoided_share: object) -> Headline:
    value = figure.value
    if value is None:
        shown = "not measured"
    elif figure.name in _SHARES:
        shown = f"{float(value):.1%}"
    elif figure.name == "calls_avoided" and isinstance(avoided_share, float):
        shown = f"{value} ({avoided_share:.1%} of the chat requests)"
    else:
        shown = str(value)
    raw = "" if value is None else str(value)
    return Headline(figure.name, label, raw, shown, figure.meaning)


def _notes(document: MetricsDocument) -> list[str]:
    notes = []
    cache = document.cache
    if cache.cut_at_stop:
        notes.append(
            f"{cache.cut_at_stop} requests were cut off when the test stopped: figures with "
            "calls avoided may be off by as many (see --stop-timeout)."
        )
    if document.load_generator.saturated:
        notes.append("The load generator was saturated (CPU > 90%): latencies are suspect.")
    return notes


def _table_row(row: OutcomeRow) -> Row:
    def ms(value_us: float | None) -> str:
        return "" if value_us is None else f"{value_us / 1000:.3f}"

    cells = (str(row.count), ms(row.p50_us), ms(row.p90_us), ms(row.p99_us), ms(row.max_us))
    return Row(row.scenario, row.outcome, row.family, cells)


@cache
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("hermes_bench.scenarios", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_section(view: SectionView) -> str:
    """The section's HTML between its two markers, redacted once more as a last pass."""
    body = _templates().get_template("hermes_section.html.j2").render(view=view)
    return f"{BEGIN}\n{redact_text(body)}\n{END}"


def add_section(page: str, section: str) -> str:
    """`page` with `section` in it: in place of an earlier one, else before Locust's root
    element (the last one written), else before </body>, else at the end."""
    begin, end = page.find(BEGIN), page.find(END)
    if begin != -1 and end > begin:
        return page[:begin] + section + page[end + len(END) :]
    for anchor in (_ROOT, "</body>"):
        at = page.rfind(anchor)  # the page's own, after any script that spells it
        if at != -1:
            return page[:at] + section + "\n" + page[at:]
    return page + "\n" + section + "\n"
