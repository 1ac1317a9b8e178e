"""CPU while a cell runs: readings to samples to summaries and flags, and a real run with a hog."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from hermes_bench.harness.load_watch import (
    OTHER_BUSY_PCT,
    LoadSample,
    ProcessReading,
    Snapshot,
    load_sample,
    summarize_load,
)
from hermes_bench.results.model import Cell, CellLoad

HARNESS, TARGET, REDIS, LOCUST, HOG, SHELL = 1, 10, 20, 30, 40, 50


def _snapshot(at_s: float, busy_s: float, cpu: dict[int, float], **parents: int) -> Snapshot:
    """Processes named by pid with their CPU seconds; `parents` maps p<pid> to a parent."""
    ppids = {int(name[1:]): ppid for name, ppid in parents.items()}
    processes = {
        pid: ProcessReading(pid, ppids.get(pid, HARNESS), f"proc{pid}", 100.0 + pid, cpu_s)
        for pid, cpu_s in cpu.items()
    }
    return Snapshot(at_s=at_s, wall_s=1000 + at_s, busy_s=busy_s, processes=processes)


ROLES = {"target-0": TARGET, "redis": REDIS, "locust": LOCUST}


def test_a_sample_gives_each_role_its_tree_and_the_rest_to_other_load() -> None:
    before = _snapshot(0, 0, {HARNESS: 0, TARGET: 0, 11: 0, REDIS: 0, LOCUST: 0, 31: 0, 32: 0,
                              HOG: 0, SHELL: 0},
                       p11=TARGET, p31=LOCUST, p32=31, p40=SHELL, p50=0)  # fmt: skip
    after = _snapshot(2, 3.62, {HARNESS: 0.1, TARGET: 0.8, 11: 0.2, REDIS: 0.1, LOCUST: 0.2,
                                31: 0.9, 32: 0.1, HOG: 1.2, SHELL: 0.02},
                      p11=TARGET, p31=LOCUST, p32=31, p40=SHELL, p50=0)  # fmt: skip
    sample = load_sample(before, after, ROLES, harness={HARNESS})
    assert sample is not None
    # Over 2 s: target 1.0 s with its child = 50% of a core; the worker with its child 50%.
    assert sample.roles == {"target-0": 50.0, "redis": 5.0, "locust": 10.0,
                            "locust worker 31": 50.0}  # fmt: skip
    # Machine busy 3.62 s = 181%; ours 2.4 s = 120% (the harness included): 61% is other.
    assert sample.other_pct == pytest.approx(61.0)
    assert sample.top_others == ((HOG, "proc40", 60.0), (SHELL, "proc50", 1.0))


def test_a_pid_seen_again_with_another_start_is_a_new_process() -> None:
    before = _snapshot(0, 0, {HOG: 50.0})
    reused = Snapshot(1, 1001, 1.0, {HOG: ProcessReading(HOG, HARNESS, "new", 999.0, 0.5)})
    sample = load_sample(before, reused, {}, harness=set())
    assert sample is not None and sample.top_others == ((HOG, "new", 50.0),)
    assert load_sample(before, before, {}, harness=set()) is None  # no time passed


def _samples(
    roles: list[dict[str, float]], other: list[float], hog_pct: float = 0.0
) -> list[LoadSample]:
    top = ((HOG, "python", hog_pct),) if hog_pct else ()
    return [
        LoadSample(roles=r, other_pct=o, top_others=top, started=i, ended=i + 1)
        for i, (r, o) in enumerate(zip(roles, other, strict=True))
    ]


def test_saturated_is_more_than_a_tenth_of_samples_above_90_percent_of_a_core() -> None:
    target = [95.0, 95.0] + [50.0] * 8  # 2 of 10 above: saturated
    redis = [95.0] + [20.0] * 9  # 1 of 10 is not more than a tenth
    samples = _samples([{"target-0": t, "redis": r} for t, r in zip(target, redis, strict=True)],
                       [2.0] * 10)  # fmt: skip
    load = summarize_load(samples, 1.0)
    assert load.saturated() == ["target-0"]
    cpu = load.processes["target-0"]
    assert (cpu.count, cpu.mean_pct, cpu.p90_pct, cpu.max_pct) == (10, 59.0, 95.0, 95.0)
    assert load.other is not None and load.other.busy is False and load.other.top == []


def test_other_load_is_busy_by_the_same_rule_and_names_its_top_process() -> None:
    samples = _samples([{}] * 5, [80.0, 80.0, 5.0, 5.0, 5.0], hog_pct=60.0)
    other = summarize_load(samples, 1.0).other
    assert other is not None and other.busy is True
    assert other.cpu.threshold_pct == OTHER_BUSY_PCT
    assert [(p.pid, p.name, p.mean_pct, p.max_pct) for p in other.top] == [
        (HOG, "python", 60.0, 60.0)
    ]
    at_threshold = summarize_load(_samples([{}] * 5, [OTHER_BUSY_PCT] * 5), 1.0).other
    assert at_threshold is not None and at_threshold.busy is False  # at it is not above it


def test_workers_are_numbered_in_order_of_appearance() -> None:
    samples = _samples([{"locust": 10, "locust worker 900": 50},
                        {"locust": 10, "locust worker 900": 50, "locust worker 12": 40}],
                       [0, 0])  # fmt: skip
    load = summarize_load(samples, 1.0)
    assert list(load.processes) == ["locust", "locust worker 1", "locust worker 2"]
    assert load.processes["locust worker 2"].count == 1


def test_locusts_start_up_is_left_out_and_nothing_sampled_is_unknown() -> None:
    roles = [{"locust": 100.0, "target-0": 5.0}, {"locust": 40.0, "target-0": 60.0},
             {"locust": 99.0, "target-0": 20.0}, {"locust": 5.0, "target-0": 1.0}]  # fmt: skip
    # The test ran from 0.6 s to 2.4 s: the last sample [3, 4] is after it; the first [0, 1]
    # and the third [2, 3] overlap it, but their middles (Locust's imports, its report) do not.
    load = summarize_load(_samples(roles, [9.0, 1.0, 1.0, 90.0]), 1.0, start=0.6, end=2.4)
    assert load.processes["locust"].count == 1 and load.processes["locust"].max_pct == 40.0
    assert load.processes["target-0"].count == 3 and load.processes["target-0"].max_pct == 60.0
    assert load.other is not None and load.other.cpu.count == 3 and not load.other.busy
    short = summarize_load(_samples(roles[:1], [0.0]), 1.0, start=0.2, end=0.4)
    assert short.processes["locust"].count == 0 and short.processes["locust"].saturated is None
    empty = summarize_load([], 1.0, unknown=["redis (not started by this run)"])
    assert empty.processes == {} and empty.unknown == ["redis (not started by this run)"]
    assert empty.other is not None and empty.other.busy is None  # unknown, not fine


def test_a_cell_writes_its_load_only_when_sampled() -> None:
    base: dict[str, Any] = {"id": "c", "kind": "cache", "instances": 1, "status": "ok",
                            "started_at": 0.0, "ended_at": 1.0}  # fmt: skip
    assert "load" not in Cell.model_validate(base).model_dump(mode="json")
    load = summarize_load(_samples([{"target-0": 50.0}], [80.0], hog_pct=70.0), 1.0)
    data = Cell.model_validate({**base, "load": load.model_dump(mode="json")}).model_dump(
        mode="json"
    )
    assert CellLoad.model_validate(data["load"]) == load


# --- a real run, with and without a CPU hog beside it -----------------------------------------

HOG_S = 150  # the hog ends by itself even if the test is killed


def _run(tmp_path: Path, backend: str) -> tuple[dict[str, Any], set[int]]:
    """`hermes-bench run`, cache cells only; results and every pid the run started."""
    log = tmp_path / "run.log"
    with open(log, "wb") as out:  # a file, not a pipe: nobody reads it while the run goes on
        proc = subprocess.Popen(
            [sys.executable, "-m", "hermes_bench", "run", "--profile", "quick", "--cells",
             "cache", "--backends", backend, "--requests", "1000", "--output", str(tmp_path)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    ours = {proc.pid}
    try:
        deadline = time.monotonic() + 200
        while proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(psutil.Error):
                ours |= {c.pid for c in psutil.Process(proc.pid).children(recursive=True)}
            time.sleep(0.2)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (path,) = tmp_path.glob("run-*/results.json")
    return json.loads(path.read_text()), ours


def _loads(results: dict[str, Any]) -> dict[str, CellLoad]:
    return {c["id"]: CellLoad.model_validate(c["load"]) for c in results["cells"]}


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_a_cpu_hog_beside_the_run_makes_latency_verdicts_inconclusive_naming_it(
    tmp_path: Path,
) -> None:
    loop = f"import time\nend = time.time() + {HOG_S}\nwhile time.time() < end: pass"
    hog = subprocess.Popen([sys.executable, "-c", loop])
    try:
        results, ours = _run(tmp_path, "redis")  # one backend shows it: half the time
    finally:
        hog.kill()
        hog.wait()
    assert hog.pid not in ours
    loads = _loads(results)
    tops, named = {}, []
    for cell_id, load in loads.items():
        assert load.other is not None and load.other.busy, (cell_id, load.other)
        assert {"target-0", "upstream", "locust"} <= set(load.processes), cell_id
        tops[cell_id] = load.other.top[0]  # the hog, unless someone else's work beat a full core
        if hog.pid in [p.pid for p in load.other.top]:
            named.append(cell_id)
    # Named among the largest of some cell: beside other tests (pytest -n), another worker's
    # processes may outrank a hog sharing two cores with them in one cell or another.
    assert named, {cell_id: load.other.top for cell_id, load in loads.items() if load.other}
    claims = {c["id"]: c for c in results["claims"]}
    for claim_id, cell_id in (("C1", "cache-redis-1"), ("C4", "cache-redis-1")):
        claim, top = claims[claim_id], tops[cell_id]
        assert claim["verdict"] == "inconclusive", claim
        assert claim["summary"].startswith(f"the machine was busy with other work during {cell_id}")
        assert f"the largest: pid {top.pid} {top.name}" in claim["summary"], claim
    # Counting claims keep their verdict, and say what the machine was doing.
    for claim_id in ("C3",):
        claim = claims[claim_id]
        assert claim["verdict"] != "inconclusive", claim
        assert any("busy with other work" in note for note in claim["notes"]), claim


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_an_undisturbed_run_samples_every_process_and_never_blames_its_own(
    tmp_path: Path,
) -> None:
    # Whether this shared machine had other work during the run is not ours to assert; that
    # the run's own processes are never counted as other load, and that each is sampled, is.
    results, ours = _run(tmp_path, "redis")
    for cell_id, load in _loads(results).items():
        assert {"target-0", "redis", "upstream", "locust"} <= set(load.processes), cell_id
        assert all(cpu.count >= 1 for cpu in load.processes.values()), load.processes
        assert load.other is not None and load.other.cpu.count >= 1
        assert not {p.pid for p in load.other.top} & ours, (cell_id, load.other.top)
        assert load.unknown == []
