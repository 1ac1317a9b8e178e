"""The capacity sweep: a step from its metrics, the knee rule, who set the limit, and one small
sweep end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from results_builders import results

from hermes_bench.harness.sweep_steps import kept_up, knee, steady_rate, sweep_step, why_stopped
from hermes_bench.reports.capacity import capacities, capacity_sentence, fast_hits_up_to
from hermes_bench.results.files import read_results
from hermes_bench.results.model import LatencySummary, MetricsDocument, SweepFigures, SweepStep
from hermes_bench.scenarios.metrics import RunMetrics
from hermes_bench.scenarios.summary import build_document


def _document(rate: float, seconds: int, hit_ms: float, errors: int = 0) -> MetricsDocument:
    """`rate` answers a second for `seconds` whole seconds (and two partial ones around them),
    HITs of `hit_ms` from their intended send, a miss in ten."""
    metrics = RunMetrics()
    t0 = 1_700_000_000
    per_second = int(rate)
    for second in range(seconds + 2):
        count = per_second if 0 < second <= seconds else per_second // 4
        for i in range(count):
            outcome = "MISS" if i % 10 == 0 else "HIT"
            ms = 80.0 if outcome == "MISS" else hit_ms
            metrics.record("cache", outcome, int(ms * 1000), intended_latency_us=int(ms * 1000),
                           at_s=t0 + second + i / max(count, 1))  # fmt: skip
    for _ in range(errors):
        metrics.record("cache", "error", 1000, intended_latency_us=1000, at_s=t0 + 1.5)
    run = {"started_at": t0, "ended_at": t0 + seconds + 2}
    data = build_document(snapshot=metrics.snapshot(), ground_truth=None, cpu={}, run=run)
    return MetricsDocument.model_validate(data)


def _steps(hit_ms: list[float], served: list[float] | None = None) -> list[SweepStep]:
    steps: list[SweepStep] = []
    rates = [50.0 * 2**i for i in range(len(hit_ms))]
    for i, (rate, ms) in enumerate(zip(rates, hit_ms, strict=True)):
        document = _document(served[i] if served else rate, 3, ms)
        steps.append(sweep_step(rate, 10, document, None, steps[0] if steps else None))
    return steps


def test_a_step_is_read_from_its_steady_seconds_and_hits() -> None:
    document = _document(100, 3, 5.0)
    assert steady_rate(document, 0, 0.0) == 100  # the partial first and last seconds left out
    step = sweep_step(100, 20, document, None, None)
    assert step.kept_up and step.achieved_rps == 100 and step.errors == 0
    assert step.hit_intended is not None and step.hit_intended.p99_us is not None
    assert 4_900 <= step.hit_intended.p99_us <= 5_100  # the HITs, not the 80 ms misses


def test_the_knee_is_the_last_rate_kept_up_with_and_says_why() -> None:
    # HIT p99 5 ms, 6 ms, then 60 ms: past 5 x 5 ms + 20 ms.
    steps = _steps([5, 6, 60])
    assert [s.kept_up for s in steps] == [True, True, False]
    assert knee(steps) == 100
    assert "HIT p99 from the intended send was 60.0 ms against 5.0 ms at 50/s" in why_stopped(
        steps[2], steps[0]
    )
    slow = _steps([5, 5], served=[50, 60])  # asked 100/s, served 60/s
    assert not slow[1].kept_up and "it served 60/s" in why_stopped(slow[1], slow[0])
    assert knee(_steps([5])) == 50
    failing = sweep_step(50, 10, _document(50, 3, 5.0, errors=20), None, None)
    assert not failing.kept_up


def test_no_requests_or_no_latency_is_not_keeping_up() -> None:
    empty = SweepStep(rate_rps=10, users=1, duration_s=1, requests=0, achieved_rps=0, errors=0,
                      intended=LatencySummary(count=0), kept_up=False)  # fmt: skip
    assert not kept_up(empty, empty) and knee([empty]) is None
    assert "no request was answered" in why_stopped(empty, empty)


def _sweep_cell(kind: str, backend: str, knee_rps: float | None, hit_ms: float) -> dict[str, Any]:
    steps = _steps([hit_ms, hit_ms])
    figures = SweepFigures(path="cache" if kind == "sweep" else "bare", step_s=3,
                           rates=[50, 100], steps=steps, knee_rps=knee_rps)  # fmt: skip
    cell_id = "generator" if kind == "generator" else f"sweep-{backend}-1"
    return {"id": cell_id, "kind": kind, "backend": backend, "instances": 1, "status": "ok",
            "extra": figures.model_dump()}  # fmt: skip


def test_a_knee_near_the_generators_own_limit_is_not_claimed_for_the_target() -> None:
    built = results([_sweep_cell("sweep", "redis", 100, 5), _sweep_cell("sweep", "memory", 400, 5),
                     _sweep_cell("generator", "memory", 400, 1)])  # fmt: skip
    read = {c.backend: c for c in capacities(built)}
    assert read["redis"].limited_by.startswith("the target")
    assert read["memory"].limited_by.startswith("the load generator")
    sentence = capacity_sentence(built)
    assert sentence is not None
    assert "kept up to 100 requests/s with Redis and 400 requests/s in memory" in sentence
    assert "memory may go further than measured" in sentence
    alone = results([_sweep_cell("sweep", "redis", 100, 5)])
    assert "not known" in (capacity_sentence(alone) or "")
    assert capacity_sentence(results([])) is None
    assert fast_hits_up_to(_steps([5, 60]), 50_000) == 50  # the knee comes first
    assert fast_hits_up_to(_steps([70, 70]), 50_000) is None


@pytest.mark.e2e
def test_a_small_sweep_finds_a_knee_or_the_last_rate_and_reports_it(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "hermes_bench", "run", "--cells", "sweep,generator",
               "--backends", "memory", "--sweep-rates", "10,20", "--sweep-step", "2",
               "--output", str(tmp_path)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    (path,) = tmp_path.glob("run-*/results.json")
    built = read_results(path)
    cells = {cell.id: cell for cell in built.cells}
    assert set(cells) == {"sweep-memory-1", "generator"}, cells
    for cell in cells.values():
        assert cell.ok and isinstance(cell.extra, SweepFigures), cell.error
        assert cell.extra.steps and all(step.requests > 0 for step in cell.extra.steps)
        assert cell.extra.rates == [10, 20]
        # Kept up to its last rate, or stopped saying why: one or the other.
        last = cell.extra.steps[-1]
        assert last.kept_up == (cell.extra.stopped_because is None)
    assert "Capacity" in output and any("On this machine one instance" in s for s in built.answer)
    assert 'id="capacity"' in path.with_name("report.html").read_text()
    bad = subprocess.run([*command[:4], "--sweep-rates", "10,fast"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "--sweep-rates" in bad.stderr
