"""The HTML report of real quick runs (tests/data): each claim's own plot, readable legends,
values for people, versions told apart and each cell's Locust files linked."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from hermes_bench.reports import claim_plots, plot_data, plots
from hermes_bench.reports.claim_plot_data import restart_rows
from hermes_bench.reports.html import render_html, write_report
from hermes_bench.reports.plot_specs import CLAIM_PLOTS
from hermes_bench.results.files import read_results, results_from_data
from hermes_bench.results.model import Claim, RestartFigures, Results

DATA = Path(__file__).with_name("data")
# A quick run of the cache, rate-limit, restart, probe and fallback cells; and one of every cell
# (memory, pool, eviction and outage too), Redis restarted per persistence.
QUICK = DATA / "results-quick.json"
ALL_CELLS = DATA / "results-quick-all-cells.json"
RUNS = pytest.mark.parametrize("path", [QUICK, ALL_CELLS], ids=lambda p: p.stem)


@pytest.fixture(scope="module")
def pages() -> dict[Path, str]:
    return {path: render_html(read_results(path)) for path in (QUICK, ALL_CELLS)}


def _section(page: str, claim_id: str) -> str:
    """The HTML of one claim's section of "Claims in detail"."""
    found = re.search(rf'<section class="claim" id="claim-{re.escape(claim_id)}">(.*?)</section>',
                      page, re.S)  # fmt: skip
    assert found is not None, f"no section for {claim_id}"
    return found.group(1)


def _claim(results: Results, claim_id: str) -> Claim:
    return next(c for c in results.claims if c.id == claim_id)


@RUNS
def test_each_claim_shows_and_links_its_own_plot(path: Path, pages: dict[Path, str]) -> None:
    """A claim with cells to plot shows its plot in its own section, and the claims table
    links it; every plot is a different one; a claim with no plot spec or no cells shows none."""
    results, page = read_results(path), pages[path]
    shown = []
    for claim in results.claims:
        section = _section(page, claim.id)
        images = re.findall(r'<img id="plot-([^"]+)"[^>]*src="data:image/png;base64,([^"]+)"',
                            section)  # fmt: skip
        if claim.id in CLAIM_PLOTS and claim.cells:
            assert [slug for slug, _ in images] == [f"claim-{claim.id}"], claim.id
            assert f'href="#plot-claim-{claim.id}"' in page  # the claims table's link
            shown.append(images[0][1])
        else:
            assert images == [], claim.id
    assert len(shown) >= 10
    # C1 and C1-C2 rest on the same cells in a run that stopped C1-C2 early; otherwise each
    # claim's plot is its own picture.
    assert len(set(shown)) >= len(shown) - 1
    # Sections link no plot of another claim.
    for claim in results.claims:
        linked = set(re.findall(r'href="#plot-([^"]+)"', _section(page, claim.id)))
        assert linked <= {f"claim-{claim.id}"}, (claim.id, linked)


def test_the_failure_half_has_its_plots() -> None:
    """C10, C11 and C13 from the run that measured them; C12 is told in words, with its log."""
    results = read_results(ALL_CELLS)
    made = (
        ("C10", claim_plots.eviction_policies),
        ("C11", claim_plots.hash_vs_json),
        ("C13", claim_plots.pool_steps),
    )
    for claim_id, make in made:
        claim = _claim(results, claim_id)
        assert claim.cells and make(results, claim) is not None, claim_id
        assert make(results, claim.model_copy(update={"cells": []})) is None, claim_id
    c12 = _section(render_html(results), "C12")
    assert "<img" not in c12
    assert '<pre class="log">' in c12 and "Redis not configured, using in-memory fallback" in c12


def test_a_claim_plot_reads_only_the_claims_cells() -> None:
    """C3 names the N-instance cells: its plot shows those, not the one-instance ones."""
    results = read_results(QUICK)
    claim = _claim(results, "C3")
    fig = claim_plots.duplicate_calls(results, claim)
    assert fig is not None
    ticks = [label.get_text().split("\n")[0] for label in fig.axes[0].get_xticklabels()]
    assert ticks == claim.cells == ["cache-redis-2", "cache-memory-2"]
    c6 = claim_plots.admitted(results, _claim(results, "C6"))
    assert c6 is not None
    titles = [ax.get_title(loc="left") for ax in c6.axes]
    assert [re.search(r"\((ratelimit-[^)]+)\)", t).group(1) for t in titles] == (  # type: ignore[union-attr]
        _claim(results, "C6").cells
    )


@RUNS
def test_hit_rate_over_time_has_one_distinct_legend_entry_per_cell(path: Path) -> None:
    results = read_results(path)
    cache_cells = [c for c in results.ok_cells("cache")]
    fig = plots.hit_rate_over_time(results)
    assert fig is not None
    labels = [text.get_text() for text in fig.legends[0].get_texts()]
    per_cell = [label for label in labels if not label.startswith("ideal")]
    assert len(per_cell) == len(set(per_cell)) == len(cache_cells)
    for cell in cache_cells:
        assert any(cell.id in label and str(cell.backend) in label for label in per_cell)
    # Every cell drew the same seeded sequence: one ideal line for all of them.
    ideals = {c.metrics.cache.ideal_hit_rate for c in cache_cells if c.metrics}
    assert len(ideals) == 1
    (ideal,) = [label for label in labels if label.startswith("ideal")]
    assert f"{ideals.pop():.1%}" in ideal and f"all {len(cache_cells)} cells" in ideal


def test_hit_rate_steps_hold_each_seconds_rate_over_its_span() -> None:
    results = read_results(ALL_CELLS)
    series = plot_data.hit_rate_series(results)
    for s in series:
        cell = next(c for c in results.cells if c.id == s.cell_id)
        assert cell.metrics is not None
        rows = cell.metrics.metrics.series
        assert len(s.hit_rate) == len(rows) >= 2
        assert s.lookups.sum() == cell.metrics.cache_lookups()
        assert s.start_s[0] >= 0 and all(s.end_s > s.start_s)
        span = cell.metrics.run.ended_at - cell.metrics.run.started_at  # type: ignore[operator]
        assert s.end_s[-1] == pytest.approx(span)
        x, y = plot_data.step_points(s)
        assert list(x[:-1]) == list(s.start_s) and x[-1] == s.end_s[-1]
        assert list(y[:-1]) == list(s.hit_rate)


def test_a_second_without_lookups_breaks_the_line() -> None:
    data: dict[str, Any] = json.loads(QUICK.read_text())
    cell = next(c for c in data["cells"] if c["id"] == "cache-redis-2")
    series = cell["metrics"]["metrics"]["series"]
    series[1]["outcomes"] = {"429": series[1]["requests"]}  # no cache lookup that second
    (s,) = [s for s in plot_data.hit_rate_series(results_from_data(data))
            if s.cell_id == "cache-redis-2"]  # fmt: skip
    x, y = plot_data.step_points(s)
    assert len(s.hit_rate) == 2 and list(y[1:2]) != list(y[1:2])  # NaN: the gap
    assert x[1] == s.end_s[0] and x[2] == s.start_s[1]


@RUNS
def test_sessions_plot_says_what_was_read_where(path: Path) -> None:
    """The 'before' figure was read through another instance: in memory it was never there
    (0 of 40), which the row says instead of calling it lost before a restart."""
    results = read_results(path)
    claim = _claim(results, "C7")
    rows = {(r.backend, r.label): (r.kept, r.whole) for r in restart_rows(results, claim.cells,
                                                                         "sessions")}  # fmt: skip
    for cell in results.ok_cells("restart"):
        figures = cell.extra
        assert isinstance(figures, RestartFigures) and cell.instances == 2
        backend = str(cell.backend)
        before = rows[backend, "before any restart, read through another instance"]
        after = rows[backend, "after every target restarted (2 instances)"]
        assert before == (figures.intact_before, figures.sessions)
        assert after == (figures.intact_after, figures.sessions)
        for persistence, redis in figures.redis_restart.items():
            name = {"none": "no persistence", "aof": "AOF", "rdb": "RDB snapshots"}[persistence]
            assert rows[backend, f"after Redis itself restarted, {name}"] == (
                redis.intact_after,
                redis.sessions,
            )
    assert rows["memory", "before any restart, read through another instance"][0] == 0
    fig = claim_plots.sessions_kept(results, claim)
    assert fig is not None
    shown = [label.get_text() for label in fig.axes[0].get_yticklabels()]
    assert shown == [f"{b}: {label}" for b, label in rows]
    assert "before restart" not in " ".join(shown)


@RUNS
def test_no_raw_python_values_in_the_page(path: Path, pages: dict[Path, str]) -> None:
    page = pages[path]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", page, re.S)
    for raw in ("None", "True", "False", "[]", "{}"):
        assert raw not in cells, raw
    # A list or a mapping dumped as Python or JSON would be bracketed, or quote its keys.
    listed = [c for c in cells if re.fullmatch(r"\s*[\[{].*[\]}]\s*", c) or "&#34;:" in c]
    assert listed == []
    assert "<td>1 instance</td>" in page and "<td>2 instances</td>" in page
    assert "<td>1 and 2 instances</td>" in page  # C8's conditions: both kinds of cell
    # The fallback cell has no backend: a dash, not "None" or an empty cell.
    assert re.search(r'<tr id="cell-fallback"><td><code>fallback</code></td><td>fallback</td>'
                     r"<td>—</td>", page)  # fmt: skip
    assert "requests_per_cache_cell" not in page and "requests per cache cell" in page


@RUNS
def test_versions_tell_the_client_from_the_server(path: Path, pages: dict[Path, str]) -> None:
    results = read_results(path)
    versions = pages[path].split("<h3>Versions</h3>", 1)[1].split("</table>", 1)[0]
    client = results.run.versions["redis"]
    assert f"<tr><th>redis-py (Python client)</th><td>{client}</td></tr>" in versions
    assert "<tr><th>redis</th>" not in versions
    server = re.search(r"<tr><th>Redis server</th><td>([^<]+)</td></tr>", versions)
    if path == ALL_CELLS:
        memory = next(c for c in results.cells if c.kind == "memory")
        assert server is not None and server.group(1) == memory.extra.redis_version  # type: ignore[union-attr]
    else:  # no cell of that run read the server's version
        assert server is None


def _run_folder(tmp_path: Path, with_files: dict[str, list[str]]) -> Path:
    """The quick run's results.json in a run folder, with the named files in cells/<id>/."""
    run = tmp_path / "reports" / "run-1"
    run.mkdir(parents=True)
    shutil.copy(QUICK, run / "results.json")
    for cell_id, names in with_files.items():
        (run / "cells" / cell_id).mkdir(parents=True)
        for name in names:
            (run / "cells" / cell_id / name).write_text(f"{cell_id} {name}\n")
    return run


def _links(page: str) -> list[str]:
    return re.findall(r'<a href="([^"#][^"]*)">', page)


def test_cells_link_their_locust_files_when_they_are_there(tmp_path: Path) -> None:
    names = ["locust.html", "locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv"]
    run = _run_folder(tmp_path, {"cache-redis-1": names, "ratelimit-memory-2": ["locust.log"]})
    report = write_report(read_results(run / "results.json"), run / "report.html")
    page = report.read_text()
    links = _links(page)
    assert links == [
        "cells/cache-redis-1/locust.html",
        "cells/cache-redis-1/locust_failures.csv",
        "cells/cache-redis-1/locust_stats.csv",
        "cells/cache-redis-1/locust_stats_history.csv",
    ]
    for link in links:  # relative to the report, and to files that are there
        assert (report.parent / link).read_text().startswith("cache-redis-1 ")
    row = re.search(r'<tr id="cell-cache-redis-1">.*?</tr>', page, re.S)
    assert (
        row is not None
        and "Locust report" in row.group(0)
        and "stats history (CSV)" in row.group(0)
    )
    other = re.search(r'<tr id="cell-ratelimit-memory-2">.*?</tr>', page, re.S)
    assert other is not None and "<a href" not in other.group(0)  # no Locust file there


def test_a_report_written_elsewhere_links_back_or_not_at_all(tmp_path: Path) -> None:
    run = _run_folder(tmp_path, {"cache-memory-2": ["locust.html", "locust_stats.csv"]})
    results = read_results(run / "results.json")
    elsewhere = tmp_path / "shared" / "report.html"
    linked = write_report(results, elsewhere, results_dir=run).read_text()
    assert _links(linked) == [
        "../reports/run-1/cells/cache-memory-2/locust.html",
        "../reports/run-1/cells/cache-memory-2/locust_stats.csv",
    ]
    for link in _links(linked):
        assert (elsewhere.parent / link).is_file()
    # Told nothing of the run's folder, it finds no Locust file beside it and links none.
    assert _links(write_report(results, tmp_path / "alone" / "report.html").read_text()) == []
