"""The report renderers on a results dict made of real measurements: plots, HTML, terminal."""

from __future__ import annotations

import base64
import math
import random
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from results_builders import RUN, results_data
from results_builders import results as results_of
from rich.console import Console

from hermes_bench.hit_rate import ideal_hit_rate
from hermes_bench.reports import plots
from hermes_bench.reports.bounds import default_sizes, lru_hit_rate_curve
from hermes_bench.reports.html import render_html, write_report
from hermes_bench.reports.palette import VERDICT_COLOURS
from hermes_bench.reports.plot_data import step_breakdowns
from hermes_bench.reports.plot_specs import PLOTS
from hermes_bench.reports.report_view import report_view
from hermes_bench.reports.terminal import print_claims, verdict_counts
from hermes_bench.results.files import results_from_data
from hermes_bench.results.model import Results
from hermes_bench.results.vocabulary import BURST_SCENARIO, STEP_PREFIX
from hermes_bench.results.vocabulary import RESULTS_SCHEMA as SCHEMA
from hermes_bench.scenarios.metrics import RunMetrics
from hermes_bench.scenarios.summary import build_document
from hermes_bench.scenarios.workload import zipf_sequence
from hermes_bench.upstream.ground_truth import GroundTruth

T0 = 1_700_000_000.0
PLOT_FUNCTIONS = (
    plots.latency_cdf,
    plots.where_time_goes,
    plots.hit_rate_over_time,
    plots.upstream_calls,
    plots.admitted_vs_limit,
    plots.latency_vs_hit_rate,
    plots.lru_bound,
    plots.capacity,
)
SCRIPT_SUMMARY = 'p99 <script>alert("x")</script> & more'


def _document(metrics: RunMetrics, ground_truth: dict[str, int] | None) -> dict[str, Any]:
    return build_document(
        snapshot=metrics.snapshot(),
        ground_truth=ground_truth,
        cpu={"saturated": False, "per_process": {}},
        run={"workers": 0},
    )


def _cache_document(
    seed: int, hit_ms: float, miss_ms: float, requests: int, *, server_timing: bool = True
) -> dict[str, Any]:
    """A seeded Zipf-like run: repeats hit, first sightings miss, lognormal latencies; with
    `server_timing`, each request's steps as the target's Server-Timing would give them."""
    rng = random.Random(seed)
    metrics = RunMetrics()
    upstream = GroundTruth()
    seen: set[int] = set()
    for i in range(requests):
        # Zipf-like over a catalogue of 2,000 prompts: a few hot ones, a long tail.
        prompt = int(2000 ** rng.random())
        outcome = "HIT" if prompt in seen else "MISS"
        seen.add(prompt)
        median_ms = hit_ms if outcome == "HIT" else miss_ms
        latency_us = int(rng.lognormvariate(math.log(median_ms * 1000), 0.45))
        at_s = T0 + i * 30 / requests
        metrics.record("cache", outcome, latency_us, at_s=at_s)
        if outcome == "MISS":
            upstream.served(latency_us * 0.95)  # the upstream's own clock
        metrics.count("chat_started")
        if server_timing:
            for step, share in _STEP_SHARES[outcome]:
                metrics.record(STEP_PREFIX + step, outcome, int(latency_us * share), at_s=at_s)
    misses = metrics.outcome_count("MISS")
    served = upstream.snapshot()
    truth = {"calls": misses, "distinct_requests": len(seen), "served_us": served["served_us"],
             "served_histogram": served["served_histogram"]}  # fmt: skip
    return _document(metrics, truth)


# Each step's share of the client-seen time, as a target might report it.
_STEP_SHARES = {
    "HIT": (("ratelimit", 0.2), ("cache-read", 0.3), ("total", 0.7)),
    "MISS": (
        ("ratelimit", 0.01),
        ("cache-read", 0.01),
        ("upstream", 0.9),
        ("cache-write", 0.01),
        ("total", 0.95),
    ),
}


def _ratelimit_document(seed: int, limit: int, instances: int) -> dict[str, Any]:
    """Bursts over one key: a shared limiter admits `limit`, per-instance ones up to N times it."""
    rng = random.Random(seed)
    metrics = RunMetrics()
    for burst in range(120):
        admitted = limit if instances == 1 else rng.randint(limit, limit * instances)
        for _ in range(admitted):
            metrics.record("ratelimit", "200", rng.randint(800, 3000), at_s=T0 + burst)
        metrics.count("ratelimit_bursts")
        metrics.count("ratelimit_admitted", admitted)
        metrics.count("ratelimit_limit_sum", limit)
        if admitted > limit:
            metrics.count("ratelimit_over_limit_bursts")
        metrics.record(BURST_SCENARIO, "admitted_count", admitted, at_s=T0 + burst)
    return _document(metrics, None)


def _cell(cell_id: str, kind: str, backend: str, instances: int, **fields: Any) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "id": cell_id,
        "kind": kind,
        "backend": backend,
        "instances": instances,
        "status": "ok",
        "error": None,
        "started_at": T0,
        "ended_at": T0 + 30,
        "conditions": {"users": 8, "upstream_latency": "lognormal median 40 ms"},
        "metrics": None,
        "targets": [],
        "redis_info": None,
        "extra": {},
    }
    cell.update(fields)
    return cell


def _claim(claim_id: str, verdict: str, cells: list[str], summary: str) -> dict[str, Any]:
    return {
        "id": claim_id,
        "title": f"claim {claim_id}",
        "guide": f"what the guide says about {claim_id}",
        "reading": f"how {claim_id} is measured, precisely",
        "verdict": verdict,
        "summary": summary,
        "figures": {"p50_hit_ms": 0.42, "requests": 12_345, "hit_rate": 0.8123},
        "conditions": {"workload": "zipf alpha 1.1", "instances": 1, "machine": "2 cores"},
        "notes": [f"note on {claim_id}"],
        "cells": cells,
    }


def _sweep(path: str, p99_ms: list[float]) -> dict[str, Any]:
    """A capacity sweep at 50, 100, 200/s whose judged p99 is `p99_ms`; the last step fails."""
    steps = []
    for i, ms in enumerate(p99_ms):
        latency = {"count": 500, "p50_us": int(ms * 500), "p99_us": int(ms * 1000)}
        steps.append({
            "rate_rps": 50 * 2**i, "users": 20, "duration_s": 5, "requests": 250 * 2**i,
            "achieved_rps": 50 * 2**i, "errors": 0, "intended": latency,
            "hit_intended": latency if path == "cache" else None,
            "hit_rate": 0.9 if path == "cache" else None, "kept_up": i < len(p99_ms) - 1,
        })  # fmt: skip
    return {"path": path, "step_s": 5, "rates": [50, 100, 200], "steps": steps,
            "knee_rps": 100, "stopped_because": "at 200/s p99 grew"}  # fmt: skip


def sample_results() -> dict[str, Any]:
    """A results dict with every cell kind, one failed cell and one claim per verdict."""
    cells = [
        _cell("cache-redis-1", "cache", "redis", 1, metrics=_cache_document(1, 0.9, 45, 3000)),
        _cell("cache-memory-1", "cache", "memory", 1, metrics=_cache_document(1, 0.3, 44, 3000)),
        _cell("cache-redis-3", "cache", "redis", 3, metrics=_cache_document(2, 1.1, 46, 2000)),
        _cell("ratelimit-redis-3", "ratelimit", "redis", 3, metrics=_ratelimit_document(3, 5, 1)),
        _cell("ratelimit-memory-3", "ratelimit", "memory", 3, metrics=_ratelimit_document(4, 5, 3)),
        _cell("restart-redis-1", "restart", "redis", 1, extra=_restart(40, 40, 40)),
        _cell("restart-memory-1", "restart", "memory", 1, extra=_restart(40, 40, 0)),
        _cell(
            "probe-redis-1",
            "probe",
            "redis",
            1,
            extra={"direct": {op: {"p50_us": 95, "p99_us": 310, "count": 5000} for op in _OPS}},
        ),
        _cell("sweep-redis-1", "sweep", "redis", 1, extra=_sweep("cache", [5, 6, 90])),
        _cell("generator", "generator", "memory", 1, extra=_sweep("bare", [2, 2, 3])),
        _cell("fallback-memory-1", "fallback", "memory", 1, status="failed", error="target died"),
    ]
    claims = [
        _claim("C1", "holds", ["cache-redis-1"], "p50 0.9 ms for hits, 45 ms for misses"),
        _claim("C2", "better than claimed", ["cache-memory-1"], "hits in 0.3 ms"),
        _claim("C3", "does not hold", ["cache-redis-1", "cache-memory-1"], SCRIPT_SUMMARY),
        _claim("C6", "inconclusive", ["ratelimit-redis-3", "ratelimit-memory-3"], "few bursts"),
        _claim("C7", "holds", ["restart-redis-1", "restart-memory-1"], "40/40 intact with Redis"),
        _claim("C12", "not measured yet", ["fallback-memory-1"], "the cell failed"),
        {**_claim("C4", "borderline", ["cache-redis-1"], "faster by 69.8% (67.1% to 72.0%)"),
         "holds_when": "70% faster holds when the upstream's median is at least 3.1 ms"},
    ]  # fmt: skip
    return {
        "schema": SCHEMA,
        "run": {
            "id": "20240101-120000-abcd",
            "started_at": T0,
            "ended_at": T0 + 754.2,
            "wall_s": 754.2,
            "status": "complete",
            "profile": "quick",
            "options": {
                **RUN["options"],
                "redis": "redis://default:hunter2@10.0.0.5:6379/0",
                "seed": 7,
            },
            "machine": {"cpus": 2, "python": "3.11.9", "platform": "Linux x86_64"},
            "versions": {"hermes-bench": "0.1.0", "redis": "7.2.4"},
        },
        "cells": cells,
        "claims": claims,
        "bounds": _bounds(),
    }


def _bounds() -> dict[str, Any]:
    sequence = zipf_sequence(1.0, 200, 0.1, 7, 2000)
    curve = lru_hit_rate_curve(sequence, default_sizes(200))
    return {
        "requests": len(sequence),
        "distinct": len(set(sequence)),
        "ideal_hit_rate": ideal_hit_rate(len(sequence), len(set(sequence))),
        "lru": [{"size": size, "hit_rate": rate} for size, rate in sorted(curve.items())],
    }


_OPS = ("GET", "SET", "HSET", "INCR")


def _restart(sessions: int, before: int, after: int) -> dict[str, Any]:
    return {
        "sessions": sessions,
        "intact_before": before,
        "intact_after": after,
        "hit_rate_after_restart": 0.7 if after else 0.0,
        "warm_prompts": 50,
        "hits_after_restart": 35 if after else 0,
    }


@pytest.fixture(scope="module")
def results() -> Results:
    return results_from_data(sample_results())


def _png_size(png: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    return width, height


@pytest.fixture(scope="module")
def page(results: Results) -> str:
    return render_html(results)


def _img(page: str, slug: str) -> dict[str, str]:
    """The attributes of the plot's <img> in the page."""
    tag = re.search(rf'<img id="plot-{re.escape(slug)}"[^>]*>', page)
    assert tag is not None, f"no <img> for plot-{slug}"
    return dict(re.findall(r'(\w+)="([^"]*)"', tag.group(0)))


@pytest.mark.parametrize("spec", PLOTS, ids=lambda s: s.slug)
def test_plot_is_embedded_whole_at_its_own_width(spec: Any, results: Results, page: str) -> None:
    """The page carries the very PNG the plot makes, laid out 1:1 (never rescaled)."""
    png = spec.render(results)
    assert png is not None and png.startswith(b"\x89PNG")
    img = _img(page, spec.slug)
    prefix = "data:image/png;base64,"
    assert img["src"].startswith(prefix)
    assert base64.b64decode(img["src"].removeprefix(prefix)) == png
    assert int(img["width"]) == _png_size(png)[0]


@pytest.mark.parametrize("plot", PLOT_FUNCTIONS, ids=lambda f: f.__name__)
def test_plot_without_data_is_none(plot: Any) -> None:
    failed = sample_results()
    for cell in failed["cells"]:
        cell.update(status="failed", metrics=None, extra={}, error="boom")
    failed["bounds"] = None
    assert plot(results_from_data(failed)) is None
    assert plot(results_of([])) is None


def test_where_the_time_goes_per_backend_and_outcome(results: Results) -> None:
    """Steps from the single-instance cells only, in request order, beside the client's p50."""
    breakdowns = {(b.backend, b.outcome): b for b in step_breakdowns(results)}
    assert set(breakdowns) == {(b, o) for b in ("redis", "memory") for o in ("HIT", "MISS")}
    hit, miss = breakdowns["redis", "HIT"], breakdowns["redis", "MISS"]
    assert [name for name, _ in hit.steps] == ["ratelimit", "cache-read", "total"]
    assert [name for name, _ in miss.steps] == [
        "ratelimit", "cache-read", "upstream", "cache-write", "total"
    ]  # fmt: skip
    cell = next(c for c in results.cells if c.id == "cache-redis-1")
    assert cell.metrics is not None
    client = cell.metrics.latency("HIT")
    assert client is not None and client.p50_us is not None and hit.client_p50_ms is not None
    assert hit.client_p50_ms == pytest.approx(client.p50_us / 1000)
    assert hit.requests == client.count
    # Every step's p50 is its share of the client-seen p50 (within the histogram's precision).
    for name, p50_ms in hit.steps:
        share = dict(_STEP_SHARES["HIT"])[name]
        assert p50_ms == pytest.approx(share * hit.client_p50_ms, rel=0.01)


def test_where_the_time_goes_without_server_timing_says_no_data() -> None:
    """A target that sends no Server-Timing: the plot is "no data", the rest still renders."""
    cells = [
        _cell(
            f"cache-{backend}-1",
            "cache",
            backend,
            1,
            metrics=_cache_document(1, 0.9, 45, 500, server_timing=False),
        )
        for backend in ("redis", "memory")
    ]
    bare = results_of(cells)
    assert step_breakdowns(bare) == [] and plots.where_time_goes(bare) is None
    page = render_html(bare)
    assert '<p class="nodata" id="plot-where-time-goes">no data</p>' in page
    assert '<img id="plot-latency-cdf"' in page


def test_html_holds_claims_verdicts_and_plots(results: Results, page: str) -> None:
    for claim in results.claims:
        assert f'id="claim-{claim.id}"' in page
    for verdict in VERDICT_COLOURS:
        assert verdict in page
    for spec in PLOTS:
        assert f'<img id="plot-{spec.slug}"' in page
    claim_plots = [claim.plot for claim in report_view(results).claim_sections if claim.plot]
    assert {p.slug for p in claim_plots} == {
        f"claim-{c}" for c in ("C1", "C2", "C3", "C4", "C6", "C7")
    }
    assert page.count("data:image/png;base64,") == len(PLOTS) + len(claim_plots)
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "hunter2" not in page and "password" not in page.lower()
    assert "redis://default:***@10.0.0.5:6379/0" in page
    assert "target died" in page  # the failed cell, with metrics null


def test_html_without_data_says_so() -> None:
    bare = results_data([])
    bare["run"].update(id="r1", status="interrupted")
    page = render_html(results_from_data(bare))
    assert 'class="banner interrupted"' in page and "no data" in page
    assert "<img" not in page


def test_write_report(tmp_path: Path, results: Results, page: str) -> None:
    """The page lands where asked, parents created, byte for byte as rendered, in UTF-8."""
    target = tmp_path / "out" / "nested" / "report.html"
    path = write_report(results, target)
    assert path == target and path.is_file()
    assert path.read_bytes() == page.encode("utf-8")
    assert "“" in page  # non-ASCII text, so the encoding is exercised


def test_html_escapes_and_redacts_every_field() -> None:
    """Markup in a claim or an error is shown as text; credentials in an error are hidden."""
    error = "redis://user:password@cache.internal:6379/0 refused: <script>alert(2)</script>"
    claim = _claim("C1", "does not hold", ["cache-redis-1"], "<script>alert(1)</script>")
    cell = _cell("cache-redis-1", "cache", "redis", 1, status="failed", error=error)
    page = render_html(results_of([cell], claims=[claim]))
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # escaped once, not twice
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "password" not in page.lower()
    assert "redis://user:***@cache.internal:6379/0 refused" in page


def test_terminal_summary(results: Results) -> None:
    console = Console(record=True, width=140, color_system=None)
    print_claims(results, console)
    text = console.export_text()
    for claim in results.claims:
        assert claim.id in text
    assert "fallback-memory-1 failed: target died" in text
    assert '<script>alert("x")</script>' in text  # plain text, not eaten as rich markup
    assert verdict_counts(results) == {
        "holds": 2,
        "better than claimed": 1,
        "does not hold": 1,
        "borderline": 1,
        "inconclusive": 1,
        "not measured yet": 1,
    }
    assert "70% faster holds when the upstream's median is at least 3.1 ms" in text
