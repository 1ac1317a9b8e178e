"""The results model: a real run's results.json reads, validates and writes back unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hermes_bench.harness.cli import main
from hermes_bench.results.files import (
    ResultsFileError,
    read_results,
    results_from_data,
    results_json,
    write_results,
)
from hermes_bench.results.model import NoFigures, ProbeFigures, RestartFigures

QUICK_RUN = Path(__file__).with_name("data") / "results-quick.json"


def _data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(QUICK_RUN.read_text())
    return data


def test_a_real_run_round_trips_exactly(tmp_path: Path) -> None:
    results = read_results(QUICK_RUN)
    assert results_json(results) == QUICK_RUN.read_text()
    copy = tmp_path / "results.json"
    write_results(copy, results)
    assert read_results(copy) == results


def test_each_cell_kind_reads_as_its_own_figures() -> None:
    results = read_results(QUICK_RUN)
    by_kind = {cell.kind: cell for cell in results.cells}
    assert isinstance(by_kind["restart"].extra, RestartFigures)
    assert isinstance(by_kind["probe"].extra, ProbeFigures)
    cache = by_kind["cache"]
    assert cache.metrics is not None and cache.metrics.cache.upstream_calls is not None
    assert cache.metrics.latency("HIT") is not None


def test_a_failed_cell_keeps_no_figures() -> None:
    data = _data()
    data["cells"][0].update(status="failed", error="boom", metrics=None, extra={}, targets=[])
    cell = results_from_data(data).cells[0]
    assert isinstance(cell.extra, NoFigures) and cell.metrics is None and not cell.ok


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("cells", 0, "metrics", "cache", "hits"), "many", "cells.0.metrics.cache.hits"),
        (("cells", 1, "started_at"), float("inf"), "cells.1.started_at: Input should be a finite"),
        (("run", "status"), "paused", "run.status: Input should be 'running'"),
        (("run", "surprise"), 1, "run.surprise: Extra inputs are not permitted"),
        (("claims", 0, "verdict"), "maybe", "claims.0.verdict"),
    ],
)
def test_a_bad_field_is_one_error_naming_where(
    path: tuple[Any, ...], value: Any, expected: str
) -> None:
    data = _data()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ResultsFileError, match="is not a valid results file") as caught:
        results_from_data(data, source="r.json")
    assert expected in str(caught.value)


def test_not_json_or_another_schema_is_refused(tmp_path: Path) -> None:
    garbled = tmp_path / "garbled.json"
    garbled.write_text('{"schema": ')
    with pytest.raises(ResultsFileError, match="is not JSON"):
        read_results(garbled)
    with pytest.raises(ResultsFileError, match="schema 'hermes-bench/results/0'"):
        results_from_data({**_data(), "schema": "hermes-bench/results/0"})


def test_report_of_a_hand_broken_file_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _data()
    data["cells"][2]["instances"] = 0
    broken = tmp_path / "results.json"
    broken.write_text(json.dumps(data))
    assert main(["report", str(broken)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cells.2.instances" in err
    assert not (tmp_path / "report.html").exists()


def test_secrets_are_redacted_on_the_way_out(tmp_path: Path) -> None:
    data = _data()
    data["cells"][0]["error"] = "redis://user:hunter2@cache:6379/0 went away"
    path = tmp_path / "results.json"
    write_results(path, results_from_data(data))
    assert "hunter2" not in path.read_text() and "user:***@cache" in path.read_text()
