"""RunMetrics and the load generator's CPU summary: exact merging, wire format, precision."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from typing import Any

import pytest

from hermes_bench.app.server_timing import parse_server_timing
from hermes_bench.histograms import new_histogram
from hermes_bench.results.model import MetricsDocument
from hermes_bench.results.vocabulary import BURST_SCENARIO, STEP_PREFIX
from hermes_bench.scenarios.attribution import attribute
from hermes_bench.scenarios.generator_cpu import CpuSampler, summarize_cpu
from hermes_bench.scenarios.metrics import (
    ATTRIBUTION_DROPPED,
    LATENCY_OVER_RANGE,
    RunMetrics,
    WireFormatError,
    latency_summary,
)
from hermes_bench.scenarios.summary import build_document, console_summary

T0 = 1_700_000_000.0
OUTCOMES = ("HIT", "MISS", "BYPASS", "429", "error")


def _through_json(data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(data))


def _without_histograms(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in snapshot.items() if k != "histograms"}


def test_merging_worker_deltas_equals_recording_in_one() -> None:
    rng = random.Random(1234)
    whole = RunMetrics()
    workers = [RunMetrics() for _ in range(3)]
    master = RunMetrics()
    for i in range(50_000):
        scenario = rng.choice(("cache", "rate_limit"))
        outcome = rng.choice(OUTCOMES)
        latency = int(rng.lognormvariate(7, 1.5))  # median ~1 ms, tail into seconds
        intended = latency + rng.randrange(5_000) if scenario == "cache" else None
        at_s = T0 + i / 1000
        worker = rng.choice(workers)
        for metrics in (whole, worker):
            metrics.record(scenario, outcome, latency, intended_latency_us=intended, at_s=at_s)
            if outcome == "error":
                metrics.count("errors_logged")
        if i % 7_001 == 0:  # workers report several times during the run
            master.merge_wire(_through_json(rng.choice(workers).to_wire()))
    # Out of range on both sides: clamped, counted, never dropped.
    for metrics in (whole, workers[0]):
        metrics.record("cache", "HIT", 0, at_s=T0)
        metrics.record("cache", "MISS", 120_000_000, at_s=T0)
    for worker in workers:
        master.merge_wire(_through_json(worker.to_wire()))

    expected, merged = whole.snapshot(), master.snapshot()
    assert _without_histograms(merged) == _without_histograms(expected)
    for scenario in ("cache", "rate_limit"):
        for outcome in OUTCOMES:
            exp = expected["scenarios"][scenario]["outcomes"][outcome]["service"]
            got = merged["scenarios"][scenario]["outcomes"][outcome]["service"]
            for field in ("count", "p50_us", "p99_us", "max_us"):
                assert got[field] == exp[field]
    assert merged["total"]["service"]["count"] == 50_002
    assert merged["counters"][LATENCY_OVER_RANGE] == 1
    assert merged["total"]["service"]["min_us"] == 1
    assert master.outcome_count("error") == whole.outcome_count("error")
    assert merged["counters"]["errors_logged"] == whole.outcome_count("error")


def test_to_wire_resets_local_state() -> None:
    metrics = RunMetrics()
    metrics.record("cache", "HIT", 500, intended_latency_us=700, at_s=T0)
    metrics.count("sessions_verified", 3)
    first = metrics.to_wire()
    assert first["histograms"]["service"]["cache"].keys() == {"HIT"}
    assert first["counters"] == {"sessions_verified": 3}
    assert len(first["series"]) == 1

    second = metrics.to_wire()
    assert second == {
        "version": 1,
        "histograms": {"service": {}, "intended": {}},
        "counters": {},
        "series": [],
        "lookups": [],
    }
    snapshot = metrics.snapshot()
    assert snapshot["scenarios"] == {} and snapshot["total"] == {}
    assert metrics.outcome_count("HIT") == 0


def test_snapshot_is_json_and_re_reads_exactly() -> None:
    metrics = RunMetrics()
    rng = random.Random(7)
    for i in range(2_000):
        outcome = rng.choice(("ok", "lost"))
        metrics.record("session", outcome, rng.randrange(100, 90_000), at_s=T0 + i)
    metrics.count("sessions_verified", 2_000)
    snapshot = _through_json(metrics.snapshot())
    assert snapshot == metrics.snapshot()

    # A snapshot carries the wire keys: a report can rebuild the exact distributions from it.
    reread = RunMetrics()
    reread.merge_wire(snapshot)
    assert reread.snapshot() == snapshot


def test_intended_family_only_when_given() -> None:
    metrics = RunMetrics()
    metrics.record("cache", "HIT", 400, at_s=T0)
    metrics.record("cache", "MISS", 40_000, intended_latency_us=90_000, at_s=T0)
    cache = metrics.snapshot()["scenarios"]["cache"]
    assert cache["outcomes"]["HIT"].keys() == {"service"}
    assert cache["outcomes"]["MISS"].keys() == {"service", "intended"}
    assert cache["total"]["service"]["count"] == 2
    assert cache["total"]["intended"]["count"] == 1
    assert cache["total"]["intended"]["p50_us"] == pytest.approx(90_000, rel=1e-3)
    wire = metrics.to_wire()
    assert wire["histograms"]["intended"]["cache"].keys() == {"MISS"}


def test_series_counts_requests_and_outcomes_per_second() -> None:
    metrics = RunMetrics()
    metrics.record("cache", "HIT", 300, at_s=T0 + 1.2)
    metrics.record("cache", "MISS", 300, at_s=T0 + 0.9)
    metrics.record("cache", "HIT", 300, at_s=T0 + 0.1)
    metrics.record("rate_limit", "429", 300, at_s=T0 + 1.99)
    assert metrics.snapshot()["series"] == [
        {"t": int(T0), "requests": 2, "outcomes": {"HIT": 1, "MISS": 1}},
        {"t": int(T0) + 1, "requests": 2, "outcomes": {"429": 1, "HIT": 1}},
    ]


def test_hit_rate_and_outcome_count() -> None:
    metrics = RunMetrics()
    assert metrics.hit_rate() is None
    for outcome, n in (("HIT", 6), ("MISS", 3), ("BYPASS", 1), ("429", 5)):
        for _ in range(n):
            metrics.record("cache", outcome, 1_000, at_s=T0)
    metrics.record("mixed", "HIT", 1_000, at_s=T0)
    assert metrics.hit_rate("cache") == pytest.approx(0.6)
    assert metrics.hit_rate() == pytest.approx(7 / 11)
    assert metrics.hit_rate("nothing") is None
    assert metrics.outcome_count("HIT") == 7
    assert metrics.outcome_count("HIT", scenario="mixed") == 1
    assert metrics.outcome_count("429") == 5


def test_three_significant_digits_tell_300_from_900_us() -> None:
    metrics = RunMetrics()
    for _ in range(50):
        metrics.record("cache", "HIT", 300, at_s=T0)
        metrics.record("cache", "HIT", 900, at_s=T0)
    summary = metrics.snapshot()["scenarios"]["cache"]["outcomes"]["HIT"]["service"]
    # Locust's stats would round both to 0 or 1 ms; here each keeps 3 significant digits.
    assert summary["min_us"] == 300
    assert summary["p50_us"] == pytest.approx(300, rel=1e-3)
    assert summary["p90_us"] == pytest.approx(900, rel=1e-3)
    assert summary["max_us"] == pytest.approx(900, rel=1e-3)
    assert summary["mean_us"] == pytest.approx(600, rel=1e-3)


def test_mean_matches_hdrh() -> None:
    hist = new_histogram()
    rng = random.Random(3)
    for _ in range(5_000):
        hist.record_value(rng.randrange(1, 5_000_000))
    assert latency_summary(hist)["mean_us"] == round(hist.get_mean_value(), 1)
    assert latency_summary(new_histogram()) == {"count": 0}


def test_merge_wire_rejects_foreign_data_and_merges_none_of_it() -> None:
    metrics = RunMetrics()
    metrics.record("cache", "HIT", 500, at_s=T0)
    before = metrics.snapshot()
    good = RunMetrics()
    good.record("cache", "HIT", 700, at_s=T0)
    good.count("sessions_verified")
    delta = good.to_wire()
    with pytest.raises(WireFormatError, match="version"):
        metrics.merge_wire({**delta, "version": 99})
    with pytest.raises(WireFormatError, match="families"):
        metrics.merge_wire({**delta, "histograms": {**delta["histograms"], "total": {}}})
    # A valid histogram, then a corrupt one: the valid one must not be merged on its own.
    corrupt = {"HIT": delta["histograms"]["service"]["cache"]["HIT"], "MISS": "not-a-histogram"}
    with pytest.raises(WireFormatError, match="'cache', outcome 'MISS'"):
        metrics.merge_wire({**delta, "histograms": {"service": {"cache": corrupt}}})
    assert metrics.snapshot() == before
    metrics.merge_wire(delta)  # the same delta, intact, merges
    assert metrics.outcome_count("HIT") == 2
    assert metrics.counters == {"sessions_verified": 1}


@pytest.mark.parametrize(
    ("above", "saturated"),
    [(0, False), (2, False), (3, True), (20, True)],
)
def test_summarize_cpu_saturated_when_over_10_percent_above(above: int, saturated: bool) -> None:
    samples = [95.0] * above + [40.0] * (20 - above)
    summary = summarize_cpu(samples, threshold_pct=90.0)
    assert summary["saturated"] is saturated
    assert summary["count"] == 20
    # The rule agrees with "nearest-rank p90 above the threshold".
    assert (summary["p90_pct"] > 90.0) is saturated


def test_summarize_cpu_figures_and_empty() -> None:
    summary = summarize_cpu([10.0, 20.0, 30.0, 100.0], threshold_pct=50.0)
    assert summary["mean_pct"] == 40.0
    assert summary["p90_pct"] == 100.0
    assert summary["max_pct"] == 100.0
    assert summary["above_threshold_share"] == 0.25
    assert summarize_cpu([])["saturated"] is None


def test_cpu_sampler_primes_then_records() -> None:
    class FakeProcess:
        def __init__(self) -> None:
            self.readings = iter([0.0, 55.0, 97.5])

        def cpu_percent(self, interval: float | None = None) -> float:
            assert interval is None  # never blocks the caller's event loop
            return next(self.readings)

    sampler = CpuSampler(FakeProcess())  # type: ignore[arg-type]
    assert sampler.drain() == []  # the priming reading is not a sample
    assert sampler.sample() == 55.0
    sampler.sample()
    assert sampler.drain() == [55.0, 97.5]
    assert sampler.drain() == []  # drained readings are sent once, never twice


def test_cpu_sampler_reads_this_process_in_percent_of_one_core() -> None:
    sampler = CpuSampler()
    wall_start, cpu_start = time.monotonic(), time.process_time()
    while time.process_time() - cpu_start < 0.3:  # keep one core busy
        pass
    reading = sampler.sample()
    busy_pct = 100 * (time.process_time() - cpu_start) / (time.monotonic() - wall_start)
    # One busy core reads about 100 whatever the machine's core count; a reading per machine
    # (÷ cores) or one that kept the priming call's 0.0 would be far off.
    assert reading == pytest.approx(busy_pct, abs=15)


def test_step_timings_and_window_counts_are_not_responses() -> None:
    metrics = RunMetrics()
    metrics.record("cache", "HIT", 500, at_s=1.0)
    metrics.record("cache", "MISS", 70_000, at_s=1.0)
    for step in ("ratelimit", "cache-read"):  # what a HIT's Server-Timing adds
        metrics.record(f"{STEP_PREFIX}{step}", "HIT", 100, at_s=1.0)
    metrics.record(BURST_SCENARIO, "admitted_count", 10, at_s=1.0)
    assert metrics.hit_rate() == 0.5
    assert metrics.outcome_count("HIT") == 1
    assert metrics.outcome_count("HIT", f"{STEP_PREFIX}ratelimit") == 1


# --- responses folded in batches: what is read is what one-by-one recording gives ------------

_TIMINGS = (
    None,
    "cache-read;dur=0.412, total;dur=0.951",
    "ratelimit;dur=0.212, upstream;dur=20.004, total;dur=21.100",
    "db;dur=1.000, db;dur=2.000",  # one step twice: summed
    "edge;dur=1.5",  # not the app's form: the full parser reads it
    "total;dur=abc",  # malformed: counted, nothing recorded
    "total;dur=99999999.000",  # past the histograms' 60 s: clamped and counted
)


def _feed(metrics: RunMetrics, seed: int) -> Counter[tuple[str, str]]:
    """Random responses into `metrics`; returns the responses and steps each (scenario,
    outcome) should count, worked out one response at a time with the full W3C parser."""
    rng = random.Random(seed)
    expected: Counter[tuple[str, str]] = Counter()
    step_names: set[str] = set()
    for i in range(3_000):
        timing = rng.choice(_TIMINGS)
        if i % 500 == 0:  # names past MAX_STEP_NAMES, dropped and counted
            timing = ", ".join(f"n{i}-{k};dur=0.100" for k in range(6))
        scenario = rng.choice(("cache", "mixed", BURST_SCENARIO))
        outcome = rng.choice(("HIT", "MISS", "429"))
        intended = rng.randrange(0, 200_000) if rng.random() < 0.3 else None
        metrics.record(
            scenario,
            outcome,
            rng.choice((0, rng.randrange(1, 90_000), 120_000_000)),
            intended_latency_us=intended,
            at_s=T0 + i / 700,
            server_timing=timing,
        )
        expected[scenario, outcome] += 1
        for name in parse_server_timing(timing or "") or {}:
            if name in step_names or len(step_names) < 16:
                step_names.add(name)
                expected[STEP_PREFIX + name, outcome] += 1
    return expected


@pytest.mark.parametrize("fold_every", [7, 512, 10**9])
def test_folding_in_batches_equals_folding_each_response(fold_every: int) -> None:
    each, batched = RunMetrics(fold_every=1), RunMetrics(fold_every=fold_every)
    _feed(each, 5)
    counts = _feed(batched, 5)
    expected = each.snapshot()
    assert batched.snapshot() == expected
    assert {
        (scenario, outcome): data["service"]["count"]
        for scenario, summary in expected["scenarios"].items()
        for outcome, data in summary["outcomes"].items()
    } == counts
    responses = sum(n for (scenario, _), n in counts.items() if scenario in ("cache", "mixed"))
    assert sum(row["requests"] for row in expected["series"]) == responses  # counts, steps: not
    counters = expected["counters"]
    assert counters["server_timing_malformed"] > 0 and counters[LATENCY_OVER_RANGE] > 0
    assert counters["server_timing_steps_dropped"] > 0
    steps = {name for name in expected["scenarios"] if name.startswith(STEP_PREFIX)}
    assert len(steps) == 16 and f"{STEP_PREFIX}db" in steps and f"{STEP_PREFIX}edge" in steps


def test_every_reader_sees_the_responses_not_folded_yet() -> None:
    def fresh() -> RunMetrics:
        metrics = RunMetrics(fold_every=10**9)
        metrics.record("cache", "HIT", 400, at_s=T0, server_timing="total;dur=0.300")
        metrics.record("cache", "MISS", 900, at_s=T0, server_timing="total;dur=abc")
        assert metrics.pending == 2
        return metrics

    assert fresh().counters == {"server_timing_malformed": 1}
    assert fresh().outcome_count("HIT") == 1
    assert fresh().outcome_count("HIT", f"{STEP_PREFIX}total") == 1
    assert fresh().hit_rate() == 0.5
    assert {(row["scenario"], row["outcome"]) for row in fresh().live_rows()} == {
        ("cache", "HIT"),
        ("cache", "MISS"),
        (f"{STEP_PREFIX}total", "HIT"),
    }
    assert fresh().snapshot()["total"]["service"]["count"] == 2
    wire = fresh().to_wire()
    assert wire["series"][0]["requests"] == 2
    assert wire["histograms"]["service"][f"{STEP_PREFIX}total"].keys() == {"HIT"}
    dropped = fresh()
    dropped.reset()
    assert dropped.pending == 0 and dropped.snapshot()["total"] == {}


def test_a_fold_cut_short_leaves_the_responses_pending() -> None:
    """Ctrl-C lands wherever the process is; in a fold it must lose or double nothing."""
    metrics = RunMetrics(fold_every=10**9)
    for i in range(100):
        metrics.record("cache", "HIT", 500 + i, at_s=T0, server_timing="total;dur=0.300")
    read = metrics._steps.read
    calls = iter(range(1_000))

    def interrupted(value: str) -> Any:
        if next(calls) == 60:
            raise KeyboardInterrupt
        return read(value)

    metrics._steps.read = interrupted  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        metrics.fold()
    assert metrics.pending == 100
    snapshot = metrics.snapshot()
    assert snapshot["scenarios"]["cache"]["total"]["service"]["count"] == 100
    assert snapshot["scenarios"][f"{STEP_PREFIX}total"]["total"]["service"]["count"] == 100
    assert snapshot["series"][0]["requests"] == 100


def test_a_steps_value_is_one_value_per_step_under_the_outcome() -> None:
    metrics = RunMetrics()
    timing = "ratelimit;dur=0.212, cache-read;dur=0.412, total;dur=0.951"
    for outcome in ("HIT", "HIT", "MISS"):
        metrics.record("cache", outcome, 1_000, at_s=T0, server_timing=timing)
    scenarios = metrics.snapshot()["scenarios"]
    for step, us in (("ratelimit", 212), ("cache-read", 412), ("total", 951)):
        outcomes = scenarios[STEP_PREFIX + step]["outcomes"]
        assert outcomes["HIT"]["service"]["count"] == 2
        assert outcomes["MISS"]["service"]["count"] == 1
        assert outcomes["HIT"]["service"]["max_us"] == pytest.approx(us, rel=1e-3)
    assert metrics.snapshot()["series"][0]["requests"] == 3  # steps are not responses


# --- lookups: the cache path's answers, told HIT or MISS from the upstream's call log -------


def _outcome_counts(metrics: RunMetrics) -> dict[str, int]:
    outcomes = metrics.snapshot()["scenarios"].get("cache", {}).get("outcomes", {})
    return {name: data["service"]["count"] for name, data in outcomes.items()}


def test_a_header_outcome_is_recorded_at_once_and_none_waits_for_the_log() -> None:
    metrics = RunMetrics()
    metrics.lookup("a", T0, T0 + 0.02, 20_000, None, "MISS")
    metrics.lookup("b", T0 + 1, T0 + 1.02, 20_000, 25_000, None)
    metrics.lookup("b", T0 + 2, T0 + 2.001, 1_000, 1_500, None)
    assert _outcome_counts(metrics) == {"MISS": 1}
    assert len(metrics.lookups) == 3
    found = attribute(metrics.lookups, [["a", T0 + 0.001], ["b", T0 + 1.001]])
    metrics.settle_lookups(found.outcomes)
    assert _outcome_counts(metrics) == {"HIT": 1, "MISS": 2}
    assert metrics.lookups == []
    cache = metrics.snapshot()["scenarios"]["cache"]
    assert cache["outcomes"]["HIT"]["service"]["p50_us"] == pytest.approx(1_000, rel=1e-3)
    assert cache["outcomes"]["HIT"]["intended"]["p50_us"] == pytest.approx(1_500, rel=1e-3)
    assert [row["outcomes"] for row in metrics.snapshot()["series"]] == [
        {"MISS": 1},
        {"MISS": 1},
        {"HIT": 1},
    ]


def test_without_the_log_answers_are_recorded_without_an_outcome() -> None:
    metrics = RunMetrics()
    metrics.lookup("a", T0, T0 + 0.02, 20_000, None, None)
    metrics.settle_lookups(None)
    assert _outcome_counts(metrics) == {"OK": 1}


def test_lookups_ship_to_the_master_and_attribute_as_if_local() -> None:
    rng = random.Random(5)
    whole, master = RunMetrics(), RunMetrics()
    workers = [RunMetrics() for _ in range(2)]
    calls = []
    for i in range(300):
        digest, sent_s = f"p{rng.randrange(20)}", T0 + i * 0.05
        header = rng.choice(("HIT", "MISS", None))
        if rng.random() < 0.5:
            calls.append([digest, sent_s + 0.001])
        worker = workers[i % 2]
        for metrics in (whole, worker):
            metrics.lookup(digest, sent_s, sent_s + 0.02, 20_000, None, header)
        if i % 97 == 0:
            master.merge_wire(_through_json(worker.to_wire()))
    for worker in workers:
        master.merge_wire(_through_json(worker.to_wire()))
    # The same lookups, in another order: attribution is per lookup, so the counts agree.
    assert sorted(master.lookups) == sorted(whole.lookups)
    for metrics in (whole, master):
        metrics.settle_lookups(attribute(metrics.lookups, calls).outcomes)
    assert _without_histograms(master.snapshot()) == _without_histograms(whole.snapshot())


def test_past_the_cap_lookups_are_counted_and_still_recorded() -> None:
    metrics = RunMetrics(max_lookups=2)
    for i, header in enumerate(("HIT", None, "MISS", None)):
        metrics.lookup("a", T0 + i, T0 + i + 0.01, 10_000, None, header)
    assert len(metrics.lookups) == 2
    assert metrics.counters == {ATTRIBUTION_DROPPED: 2}
    assert _outcome_counts(metrics) == {"HIT": 1, "MISS": 1, "OK": 1}  # the dropped None: OK
    master = RunMetrics(max_lookups=1)
    master.merge_wire(_through_json(metrics.to_wire()))
    assert len(master.lookups) == 1 and master.counters == {ATTRIBUTION_DROPPED: 3}
    assert _outcome_counts(master) == {"HIT": 1, "MISS": 1, "OK": 2}


def test_a_malformed_lookup_is_refused_and_nothing_merged() -> None:
    metrics = RunMetrics()
    good = RunMetrics()
    good.record("cache", "HIT", 700, at_s=T0)
    delta = good.to_wire()
    with pytest.raises(WireFormatError, match="lookup"):
        metrics.merge_wire({**delta, "lookups": [["a", "soon", T0, 1, None, None]]})
    with pytest.raises(WireFormatError, match="lookup"):
        metrics.merge_wire({**delta, "lookups": [["a", T0]]})
    assert metrics.outcome_count("HIT") == 0 and metrics.lookups == []


def _document(metrics: RunMetrics, calls: list[list[Any]]) -> dict[str, Any]:
    found = attribute(metrics.lookups, calls)
    metrics.settle_lookups(found.outcomes)
    truth = {"calls": len(calls), "distinct_requests": len({c[0] for c in calls})}
    return build_document(
        snapshot=metrics.snapshot(),
        ground_truth={**truth, "served_us": {"count": 0}, "calls_log_dropped": 0},
        cpu={},
        run={},
        attribution=found.summary(),
        hit_header="X-Cache",
    )


def test_a_headerless_gateway_gets_its_outcomes_from_the_log() -> None:
    metrics = RunMetrics()
    metrics.lookup("a", T0, T0 + 0.02, 20_000, None, None)
    metrics.lookup("a", T0 + 1, T0 + 1.001, 1_000, None, None)
    document = _document(metrics, [["a", T0 + 0.001]])
    cache = MetricsDocument.model_validate(document).cache
    assert cache.outcome_source == "upstream log"
    assert cache.chat_outcomes == {"HIT": 1, "MISS": 1} and cache.hit_rate_headers == 0.5
    assert cache.hit_rate_upstream_log == 0.5 and cache.log_attributed == 2
    assert cache.log_compared == 0 and cache.log_agreement is None
    assert cache.calls_avoided == 1 and cache.hits_minus_calls_avoided == 0
    assert MetricsDocument.model_validate(document).latency("HIT") is not None
    summary = console_summary(document)
    assert "hit rate (upstream call log): 50.0%" in summary
    assert "2 answers told HIT or MISS from the upstream call log (50.0% hits)" in summary


def test_headers_stay_the_source_and_the_log_checks_them() -> None:
    metrics = RunMetrics()
    metrics.lookup("a", T0, T0 + 0.02, 20_000, None, "MISS")
    metrics.lookup("a", T0 + 1, T0 + 1.001, 1_000, None, "HIT")
    metrics.lookup("b", T0 + 2, T0 + 2.001, 1_000, None, "HIT")  # no call: a true HIT
    metrics.lookup("c", T0 + 3, T0 + 3.001, 1_000, None, "HIT")  # its call came: not a HIT
    document = _document(metrics, [["a", T0 + 0.001], ["c", T0 + 3.0005]])
    cache = MetricsDocument.model_validate(document).cache
    assert cache.outcome_source == "header" and cache.chat_outcomes == {"HIT": 3, "MISS": 1}
    assert cache.log_compared == 4 and cache.log_agreement == 0.75
    assert cache.log_mismatches == {"header HIT, log MISS": 1}
    assert cache.not_attributed == 0 and cache.calls_log_dropped == 0
    summary = console_summary(document)
    assert "hit rate (X-Cache headers): 75.0%" in summary
    assert "header agrees on 75.0% of 4 (header HIT, log MISS: 1)" in summary


def test_reset_starts_a_new_test_in_place() -> None:
    """A new test in the web UI starts from zero, seen by whoever holds the object (the live
    view keeps a reference to it)."""
    metrics = RunMetrics()
    live_rows = metrics.live_rows  # as the web UI's live view holds it
    metrics.record("cache", "HIT", 300, at_s=T0)
    metrics.count("wrong_answers")
    metrics.lookup("a" * 64, T0, T0 + 0.1, 300, None, None)
    metrics.reset()
    assert live_rows() == [] and metrics.lookups == []
    assert metrics.snapshot() == RunMetrics().snapshot()
    metrics.record("cache", "MISS", 900, at_s=T0)
    assert [(r["outcome"], r["count"]) for r in live_rows()] == [("MISS", 1)]
