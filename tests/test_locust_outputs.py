"""The hermes files of a plain Locust run: where they go, the CSVs and the report's section."""

from __future__ import annotations

import csv
import io
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hermes_bench.results.model import MetricsDocument
from hermes_bench.results.vocabulary import BURST_SCENARIO, STEP_PREFIX
from hermes_bench.scenarios.hermes_tables import (
    ALL_OUTCOMES,
    cache_figures,
    figures_csv,
    outcomes_csv,
)
from hermes_bench.scenarios.metrics import RunMetrics
from hermes_bench.scenarios.output_paths import OutputPaths, output_paths, run_id
from hermes_bench.scenarios.report_section import (
    BEGIN,
    END,
    add_section,
    render_section,
    section_view,
)
from hermes_bench.scenarios.summary import build_document

T0 = 1_700_000_000.0
RUN = "locust-20250101-120000-abcd"


def _paths(**given: str | None) -> OutputPaths:
    options: dict[str, str | None] = {
        "metrics_json": "",
        "output": "",
        "csv_prefix": None,
        "html_file": None,
        "run_id": RUN,
    }
    return output_paths(**{**options, **given})  # type: ignore[arg-type]


def test_without_any_output_option_the_run_gets_a_folder_of_its_own() -> None:
    paths = _paths()
    folder = Path("reports") / RUN
    assert paths == OutputPaths(
        folder / "hermes-metrics.json", folder / "hermes.csv", folder / "hermes_cache.csv", None
    )
    assert paths.metrics_json.parent != Path()  # never the working directory itself


def test_files_go_beside_locusts_own_under_the_same_name() -> None:
    assert _paths(csv_prefix="out/r", html_file="out/r.html") == OutputPaths(
        Path("out/r_hermes_metrics.json"),
        Path("out/r_hermes.csv"),
        Path("out/r_hermes_cache.csv"),
        Path("out/r.html"),
    )
    only_html = _paths(html_file="out/report.HTML")
    assert only_html.metrics_json == Path("out/report_hermes_metrics.json")
    assert only_html.outcomes_csv == Path("out/report_hermes.csv")
    assert only_html.html_report == Path("out/report.HTML")


def test_an_explicit_path_or_folder_wins_over_the_derived_one() -> None:
    # The harness gives --csv, --html and --hermes-metrics-json: the metrics stay where it says.
    harness = _paths(metrics_json="cell/metrics.json", csv_prefix="cell/locust", html_file="x.html")
    assert harness.metrics_json == Path("cell/metrics.json")
    assert harness.outcomes_csv == Path("cell/locust_hermes.csv")
    folder = _paths(output="out")
    assert folder.metrics_json == Path("out/hermes-metrics.json")
    assert folder.figures_csv == Path("out/hermes_cache.csv")
    alone = _paths(metrics_json="m.json")  # one file asked for: one file written
    assert alone == OutputPaths(Path("m.json"))


def test_run_folders_sort_by_their_start() -> None:
    assert run_id(T0, "abcd").startswith("locust-2023")
    assert run_id(T0, "abcd") < run_id(T0 + 1, "0000")


def _document(outcome_names: tuple[str, ...] = ("HIT", "MISS")) -> MetricsDocument:
    """A document as a run builds it: real histograms, a ground truth of 3 upstream calls."""
    metrics = RunMetrics()
    for i in range(10):
        metrics.record("cache", outcome_names[i % len(outcome_names)], 300 + 7 * i, at_s=T0)
    metrics.record("ratelimit", "429", 900, at_s=T0)
    metrics.record(STEP_PREFIX + "total", "HIT", 120, at_s=T0)
    metrics.record(BURST_SCENARIO, "admitted_count", 20, at_s=T0)
    metrics.count("wrong_answers", 2)
    document = build_document(
        snapshot=metrics.snapshot(),
        ground_truth={"calls": 3, "distinct_requests": 3},
        cpu={"saturated": False, "per_process": {}},
        run={"started_at": T0, "ended_at": T0 + 1},
    )
    return MetricsDocument.model_validate(document)


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csvs_carry_the_documents_figures_unrounded() -> None:
    document = _document()
    figures = {row["figure"]: row["value"] for row in _csv(figures_csv(document))}
    cache = document.cache
    assert float(figures["hit_rate"]) == cache.hit_rate_headers == 0.5
    assert int(figures["calls_avoided"]) == cache.calls_avoided == 10 - 3
    assert int(figures["upstream_calls"]) == cache.upstream_calls == 3
    assert float(figures["calls_avoided_share"]) == cache.calls_avoided_share
    assert figures["counter:wrong_answers"] == "2"
    assert figures["hit_rate_upstream_log"] == ""  # not measured: empty, not 0
    rows = _csv(outcomes_csv(document))
    by_key = {(r["scenario"], r["outcome"], r["family"]): r for r in rows}
    for outcome in ("HIT", "MISS", ALL_OUTCOMES):
        name = None if outcome == ALL_OUTCOMES else outcome
        summary = document.metrics.outcome_summary("cache", name)
        assert summary is not None
        row = by_key[("cache", outcome, "service")]
        assert int(row["count"]) == summary.count and int(row["p50_us"]) == summary.p50_us
        assert int(row["p50_us"]) % 1000  # µs kept, not whole ms
    assert ("ratelimit", ALL_OUTCOMES, "service") not in by_key  # one outcome: no "all" row
    assert not any(r["scenario"] == BURST_SCENARIO for r in rows)  # counts, not latencies
    assert [r["scenario"] for r in rows][-1] == STEP_PREFIX + "total"  # the users' first


def test_every_figure_has_a_meaning() -> None:
    figures = cache_figures(_document())
    assert len({f.name for f in figures}) == len(figures)
    assert all(f.meaning for f in figures)


class _Figures(HTMLParser):
    """The data-figure/data-value cells of a page, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("data-figure"):
            self.figures[str(found["data-figure"])] = str(found.get("data-value"))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def figures_in(page: str) -> dict[str, str]:
    """data-figure name -> data-value of every headline figure in `page`."""
    parser = _Figures()
    parser.feed(page)
    return parser.figures


LOCUST_PAGE = '<html><head></head><body>\n<div id="root"></div>\n<script>x</script></body></html>'


def test_the_section_goes_above_locusts_report_once() -> None:
    document = _document()
    section = render_section(section_view(document))
    page = add_section(LOCUST_PAGE, section)
    assert page.index(BEGIN) < page.index('<div id="root">') < page.index("<script>")
    figures = figures_in(page)
    assert float(figures["hit_rate"]) == document.cache.hit_rate_headers
    assert int(figures["calls_avoided"]) == document.cache.calls_avoided
    # Written again (a second test stop): replaced, not added.
    again = add_section(page, section)
    assert again == page and again.count(BEGIN) == again.count(END) == 1


@pytest.mark.parametrize(
    "page", ["<html><body><p>x</p></body></html>", "<p>no body</p>"], ids=["body", "bare"]
)
def test_a_page_without_locusts_root_still_gets_the_section(page: str) -> None:
    placed = add_section(page, render_section(section_view(_document())))
    assert "hit_rate" in figures_in(placed)
    assert placed.index(BEGIN) > placed.index("<p>")


def test_what_a_target_sends_is_escaped() -> None:
    """An outcome is a header's value, a gateway's to choose: it is shown, never run."""
    page = render_section(section_view(_document(("<script>alert(1)</script>",))))
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_without_ground_truth_the_section_says_calls_avoided_are_unknown() -> None:
    document = _document()
    document.cache.ground_truth = False
    document.cache.calls_avoided = None
    view = section_view(document)
    assert "calls avoided are unknown" in view.intro
    shown = {h.name: h.shown for h in view.headline}
    assert shown["calls_avoided"] == "not measured"
