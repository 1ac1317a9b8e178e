"""`hermes-bench compare`: pure checks on built results, then real runs with a deliberate fault."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from results_builders import T0, results_data

from hermes_bench.errors import ConfigError
from hermes_bench.harness.cli import build_parser, main
from hermes_bench.harness.compare_command import (
    DEFAULT_LIMITS,
    compare_from_args,
    limits_from_args,
    parse_count,
    parse_relative,
)
from hermes_bench.reports.compare import (
    Comparison,
    ComparisonError,
    Limits,
    Row,
    compare_runs,
)
from hermes_bench.results.files import (
    read_results,
    results_from_data,
    results_json,
    write_results,
)
from hermes_bench.results.model import Results
from hermes_bench.results.vocabulary import RESULTS_SCHEMA as SCHEMA
from hermes_bench.scenarios.metrics import RunMetrics
from hermes_bench.scenarios.summary import build_document

COMMAND = [sys.executable, "-m", "hermes_bench"]
CELLS = ("cache-memory-1", "cache-memory-2")


def _cache_metrics(
    hits: int = 90,
    misses: int = 110,
    hit_ms: float = 1.0,
    miss_ms: float = 70.0,
    errors: int = 0,
    wrong: int = 0,
) -> dict[str, Any]:
    """A cache cell's metrics document: latencies spread 0.5x-1.5x around each median."""
    metrics = RunMetrics()
    for outcome, n, median_ms in (
        ("HIT", hits, hit_ms),
        ("MISS", misses, miss_ms),
        ("error", errors, 5.0),
        ("wrong_answer", wrong, 5.0),
    ):
        for i in range(n):
            latency_us = int(median_ms * 1000 * (0.5 + i / n))
            metrics.record("cache", outcome, latency_us, at_s=T0 + i * 0.01)
            metrics.count("chat_started")
    return build_document(
        snapshot=metrics.snapshot(),
        ground_truth={"calls": misses + errors + wrong, "distinct_requests": misses},
        cpu={"saturated": False, "per_process": {}},
        run={"workers": 0},
    )


def _cell(cell_id: str, metrics: dict[str, Any] | None, status: str = "ok") -> dict[str, Any]:
    _, backend, instances = cell_id.split("-")
    return {
        "id": cell_id,
        "kind": "cache",
        "backend": backend,
        "instances": int(instances),
        "status": status,
        "error": None if status == "ok" else "target died",
        "started_at": T0,
        "ended_at": T0 + 5,
        "conditions": {"users": 8},
        "metrics": metrics,
        "targets": [],
        "redis_info": None,
        "extra": {},
    }


def _results(**cells: dict[str, Any]) -> dict[str, Any]:
    """A results document as `run --cells cache --backends memory --requests 200` writes it."""
    documents = {
        cell_id: cells.get(cell_id.replace("-", "_"), _cache_metrics()) for cell_id in CELLS
    }
    data = results_data([_cell(cell_id, documents[cell_id]) for cell_id in CELLS])
    data["run"]["options"]["backends"] = ["memory"]
    return data


def _compare_runs(base: dict[str, Any], new: dict[str, Any], limits: Limits) -> Comparison:
    """compare_runs() of two results documents, validated as read_results() would."""
    return compare_runs(_typed(base), _typed(new), limits)


def _typed(data: dict[str, Any]) -> Results:
    return results_from_data(data)


def _row(rows: tuple[Row, ...], figure: str, cell: str = "cache-memory-1") -> Row:
    return next(r for r in rows if r.figure == figure and r.cell == cell)


def test_identical_runs_compare_every_figure_without_regression() -> None:
    comparison = _compare_runs(_results(), _results(), Limits())
    assert len(comparison.rows) == 2 * 12  # 3 outcomes x 3 percentiles + 3 scalars, per cell
    assert {r.status for r in comparison.rows} == {"ok"}
    assert not comparison.regressed
    assert comparison.notes == (
        "no repeats in either run: the intervals hold the spread of the requests, not the "
        "machine's from run to run (hermes-bench run --repeat K adds it)",
    )
    assert _row(comparison.rows, "hit_rate").base == pytest.approx(0.45)


def test_different_schema_is_refused_naming_both_versions(tmp_path: Path) -> None:
    new = _results()
    new["schema"] = "hermes-bench/results/2"
    path = tmp_path / "new.json"
    path.write_text(json.dumps(new))
    with pytest.raises(ConfigError, match="schema") as caught:
        read_results(path)
    assert f"schema 'hermes-bench/results/2'; this hermes-bench reads '{SCHEMA}'" in str(
        caught.value
    )


@pytest.mark.parametrize(
    ("field", "new_value", "shown"),
    [
        ("requests_per_cache_cell", 400, "is 200 in BASE and 400 in NEW"),
        ("seed", 1, "is 0 in BASE and 1 in NEW"),
        ("backends", ["redis", "memory"], 'is ["memory"] in BASE and ["redis", "memory"] in NEW'),
        ("upstream_latency", "fixed:20ms", '"lognormal:60ms:0.3" in BASE and "fixed:20ms"'),
        ("cells", ["cache", "restart"], 'is ["cache"] in BASE and ["cache", "restart"] in NEW'),
    ],
)
def test_different_workload_is_refused_naming_field_and_values(
    field: str, new_value: Any, shown: str
) -> None:
    new = _results()
    new["run"]["options"][field] = new_value
    with pytest.raises(ComparisonError, match="different workloads") as caught:
        _compare_runs(_results(), new, Limits())
    assert f"run.options.{field} " in str(caught.value)
    assert shown in str(caught.value)


def test_every_differing_field_is_named_at_once() -> None:
    new = _results()
    new["run"]["options"].update(seed=3, users=16)
    with pytest.raises(ComparisonError) as caught:
        _compare_runs(_results(), new, Limits())
    assert "run.options.users (--users) is 8 in BASE and 16 in NEW" in str(caught.value)
    assert "run.options.seed (--seed) is 0 in BASE and 3 in NEW" in str(caught.value)


def test_target_env_difference_is_a_note_not_a_refusal() -> None:
    new = _results()
    new["run"]["options"]["target_env"] = {"HERMES_FAULT_CACHE_MISS_SHARE": "0.6"}
    comparison = _compare_runs(_results(), new, Limits())
    assert not comparison.regressed
    assert any("HERMES_FAULT_CACHE_MISS_SHARE" in note for note in comparison.notes)


def test_runs_sharing_no_cache_cell_are_refused() -> None:
    new = _results()
    for cell in new["cells"]:
        cell["id"] = cell["id"].replace("memory", "other")
    with pytest.raises(ComparisonError, match="share no cache cell"):
        _compare_runs(_results(), new, Limits())
    failed = _results()
    for cell in failed["cells"]:
        cell.update(status="failed", metrics=None)
    with pytest.raises(ComparisonError, match="cache-memory-1 in NEW"):
        _compare_runs(_results(), failed, Limits())


def test_a_move_the_requests_spread_could_make_is_within_noise_not_a_regression() -> None:
    # 60% slower, but over 30 hits: the p99 is the single slowest, its interval wide.
    base = _results(cache_memory_1=_cache_metrics(hits=30))
    new = _results(cache_memory_1=_cache_metrics(hits=30, hit_ms=1.6))
    comparison = _compare_runs(base, new, Limits(latency=0.5))
    row = _row(comparison.rows, "HIT p(99)")
    assert row.status == "within noise" and not row.regressed
    assert row.noise is not None and row.noise[0] < 0.5 < row.change
    assert not comparison.regressed


@pytest.mark.parametrize(
    ("factor", "limit", "status"),
    [(1.4, 0.5, "ok"), (1.6, 0.5, "regressed"), (1.6, 1.0, "ok"), (0.4, 0.5, "improved")],
)
def test_latency_limit_is_a_relative_increase(factor: float, limit: float, status: str) -> None:
    # 2,000 hits: the intervals are narrow, the limit decides.
    base = _results(cache_memory_1=_cache_metrics(hits=2000))
    new = _results(cache_memory_1=_cache_metrics(hits=2000, hit_ms=1.0 * factor))
    comparison = _compare_runs(base, new, Limits(latency=limit))
    for figure in ("HIT p(50)", "HIT p(95)", "HIT p(99)"):
        row = _row(comparison.rows, figure)
        assert row.change == pytest.approx(factor - 1, abs=0.01)
        assert (row.status, row.limit) == (status, limit)
    assert _row(comparison.rows, "MISS p(95)").status == "ok"
    assert comparison.regressed is (status == "regressed")


@pytest.mark.parametrize(("limit", "status"), [(0.05, "regressed"), (0.10, "ok")])
def test_hit_rate_limit_is_a_relative_drop(limit: float, status: str) -> None:
    new = _results(cache_memory_2=_cache_metrics(hits=84, misses=116))  # 45% → 42%
    comparison = _compare_runs(_results(), new, Limits(hit_rate=limit, calls_avoided=limit))
    for figure in ("hit_rate", "calls_avoided"):
        row = _row(comparison.rows, figure, "cache-memory-2")
        assert row.change == pytest.approx(-1 / 15)
        assert row.status == status
    assert _row(comparison.rows, "hit_rate", "cache-memory-1").status == "ok"


def test_better_figures_are_improved_and_one_sided_figures_missing() -> None:
    new = _results(
        cache_memory_1=_cache_metrics(hits=0, misses=200),  # no HIT latencies at all
        cache_memory_2=_cache_metrics(hits=120, misses=80),
    )
    comparison = _compare_runs(_results(), new, Limits())
    hit_p95 = _row(comparison.rows, "HIT p(95)")
    assert (hit_p95.status, hit_p95.new, hit_p95.regressed) == ("missing", None, False)
    assert hit_p95 in comparison.unmeasured  # NEW lost a figure: not a pass
    assert _row(comparison.rows, "hit_rate").status == "regressed"  # 45% → 0%
    assert _row(comparison.rows, "hit_rate", "cache-memory-2").status == "improved"
    failed = _results()
    failed["cells"][1].update(status="failed", metrics=None, error="target died")
    comparison = _compare_runs(_results(), failed, Limits())
    assert {r.status for r in comparison.rows if r.cell == "cache-memory-2"} == {"missing"}
    assert any("cache-memory-2 failed in NEW (target died)" in n for n in comparison.notes)
    assert not comparison.regressed
    assert {r.cell for r in comparison.unmeasured} == {"cache-memory-2"}
    assert _compare_runs(failed, _results(), Limits()).unmeasured == ()  # gained, not lost


@pytest.mark.parametrize(
    ("base_errors", "new_errors", "limit", "status"),
    [(0, 3, 0, "regressed"), (0, 3, 3, "ok"), (3, 0, 0, "improved"), (1, 1, 0, "ok")],
)
def test_errors_limit_is_an_absolute_increase(
    base_errors: int, new_errors: int, limit: int, status: str
) -> None:
    # Errors and wrong answers both count: split each total between the two.
    def run(n: int) -> dict[str, Any]:
        return _results(cache_memory_1=_cache_metrics(errors=n - n // 2, wrong=n // 2))

    comparison = _compare_runs(run(base_errors), run(new_errors), Limits(errors=limit))
    row = _row(comparison.rows, "errors")
    assert (row.base, row.new, row.change) == (base_errors, new_errors, new_errors - base_errors)
    assert row.status == status


def test_limits_refuse_negative_values() -> None:
    with pytest.raises(ConfigError, match="latency"):
        Limits(latency=-0.1)


def test_limit_options_accept_percent_or_fraction_and_say_so_otherwise() -> None:
    assert parse_relative("--latency", "50%") == parse_relative("--latency", "0.5") == 0.5
    assert parse_relative("--latency", "250%") == 2.5  # an increase may exceed 100%
    assert parse_count("--errors", "3") == 3
    for option, text in (("--latency", "fast"), ("--latency", "-5%"), ("--hit-rate", "150%")):
        with pytest.raises(ConfigError, match=r"50% or a fraction like 0\.5"):
            parse_relative(option, text, at_most_one=option == "--hit-rate")
    with pytest.raises(ConfigError, match="absolute count"):
        parse_count("--errors", "5%")
    defaults = build_parser().parse_args(["compare", "a.json", "b.json"])
    assert limits_from_args(defaults) == Limits()
    assert set(DEFAULT_LIMITS) == {"latency", "hit_rate", "calls_avoided", "errors"}


def test_help_names_the_accepted_forms(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["compare", "--help"])
    assert exited.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--latency SHARE max relative increase of p50/p95/p99: a percentage like 50%" in out
    assert "--json PATH" in out


def test_command_prints_the_table_writes_json_and_exits_1_on_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, new, report = tmp_path / "base.json", tmp_path / "new.json", tmp_path / "ci/cmp.json"
    write_results(base, results_from_data(_results()))
    write_results(
        new, results_from_data(_results(cache_memory_2=_cache_metrics(hits=60, misses=140)))
    )
    argv = ["compare", str(base), str(new), "--hit-rate", "10%", "--json", str(report)]
    assert compare_from_args(build_parser().parse_args(argv)) == 1
    out = capsys.readouterr().out
    assert "REGRESSED: 2 of 24 figures" in out
    assert "hit_rate (cache-memory-2)" in out
    document = json.loads(report.read_text())
    assert document["regressed"] is True and document["limits"]["hit_rate"] == 0.1
    regressed = {(r["figure"], r["cell"]) for r in document["rows"] if r["regressed"]}
    assert regressed == {("hit_rate", "cache-memory-2"), ("calls_avoided", "cache-memory-2")}
    argv = ["compare", str(base), str(base)]
    assert compare_from_args(build_parser().parse_args(argv)) == 0
    assert "no regression: 24 figures within their limits" in capsys.readouterr().out
    failed = _results()
    failed["cells"][1].update(status="failed", metrics=None, error="target died")
    write_results(new, results_from_data(failed))
    argv = ["compare", str(base), str(new)]
    assert compare_from_args(build_parser().parse_args(argv)) == 2
    assert "INCOMPLETE: 12 of 24 figures measured in BASE and not in NEW" in capsys.readouterr().out


# End to end: real runs of the stack. A quick run's figures move from run to run on a shared
# machine: over seven unchanged 200-request runs here, the hit rate of the two-instance memory
# cell (two separate caches behind a non-sticky balancer) moved by up to 14% and the HIT p99 of
# ~70 samples by up to 5x. Both comparisons therefore use the same limits, wide enough for that
# noise; the fault halves the hit rate or worse, far beyond them.
E2E_LIMITS = ("--latency", "1000%", "--hit-rate", "30%", "--calls-avoided", "30%")
FAULT = "HERMES_FAULT_CACHE_MISS_SHARE=0.6"


def _run_args(output: Path, *extra: str, requests: int = 200) -> list[str]:
    return [*COMMAND, "run", "--cells", "cache", "--backends", "memory",
            "--requests", str(requests), "--output", str(output), *extra]  # fmt: skip


def _results_path(output: Path) -> Path:
    (path,) = output.glob("run-*/results.json")
    assert results_json(read_results(path)) == path.read_text()  # the model round-trips it
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """results.json of a base run, an unchanged one, one with the cache fault, a shorter one."""
    root = tmp_path_factory.mktemp("compare-runs")
    for name in ("base", "unchanged"):
        done = subprocess.run(_run_args(root / name), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    # Only their hit rates and options matter, not their latencies: they may share the machine.
    both = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for args in (
            _run_args(root / "faulty", "--target-env", FAULT),
            _run_args(root / "fewer", requests=20),
        )
    ]
    for proc in both:
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, output
    return {name: _results_path(root / name) for name in ("base", "unchanged", "faulty", "fewer")}


def _compare(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, "compare", *map(str, args)], capture_output=True, text=True, timeout=60
    )


@pytest.mark.e2e
def test_unchanged_build_passes(runs: dict[str, Path]) -> None:
    result = _compare(runs["base"], runs["unchanged"], *E2E_LIMITS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no regression: 24 figures within their limits" in result.stdout


@pytest.mark.e2e
def test_cache_fault_fails_on_hit_rate(runs: dict[str, Path], tmp_path: Path) -> None:
    report = tmp_path / "comparison.json"
    result = _compare(runs["base"], runs["faulty"], *E2E_LIMITS, "--json", report)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "REGRESSED" in result.stdout and "hit_rate (cache-memory-1)" in result.stdout
    assert "HERMES_FAULT_CACHE_MISS_SHARE" in result.stdout  # the target_env note
    regressed = {r["figure"] for r in json.loads(report.read_text())["rows"] if r["regressed"]}
    assert regressed == {"hit_rate", "calls_avoided"}
    # With a tighter hit-rate limit and the default latency limit it fails as well.
    tight = _compare(runs["base"], runs["faulty"], "--hit-rate", "10%")
    assert tight.returncode == 1 and "hit_rate (cache-memory-2)" in tight.stdout


@pytest.mark.e2e
def test_mismatched_runs_exit_2_with_a_clear_message(runs: dict[str, Path]) -> None:
    result = _compare(runs["base"], runs["fewer"])
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("hermes-bench compare: error: cannot compare runs with different")
    assert "run.options.requests_per_cache_cell (--requests) is 200 in BASE and 20 in NEW" in line


def test_a_file_with_non_finite_figures_fails_closed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """NaN or infinity in a figure is refused with exit 2, never compared as "ok"."""
    base = tmp_path / "base.json"
    write_results(base, results_from_data(_results()))
    data = _results()
    summary = data["cells"][0]["metrics"]["metrics"]["scenarios"]["cache"]["total"]["service"]
    summary.update(p50_us=float("nan"), mean_us=float("inf"))
    broken = tmp_path / "nan.json"
    broken.write_text(json.dumps(data))  # json writes NaN and Infinity as bare words
    assert main(["compare", str(base), str(broken)]) == 2
    err = capsys.readouterr().err
    assert "is not a valid results file" in err and "p50_us" in err and "mean_us" in err
