"""The web UI tab's rows and figures, as pure functions: units, count rows, hit rate, calls
avoided, the series over time and the once-a-second refresh."""

from __future__ import annotations

import json
from typing import Any, get_type_hints

import pytest

from hermes_bench.http_json import HttpJsonError
from hermes_bench.results.vocabulary import (
    ADMITTED_OUTCOME,
    BURST_SCENARIO,
    STEP_PREFIX,
    TTFT_SCENARIO,
)
from hermes_bench.scenarios.metrics import RunMetrics
from hermes_bench.scenarios.web_figures import (
    ADMITTED_UNIT,
    MS,
    STEP_UNIT,
    TABLE_STRUCTURE,
    CacheFigures,
    TableRow,
    cache_figures,
    next_point,
    table_rows,
)
from hermes_bench.scenarios.web_live import LiveView


def _row(scenario: str, outcome: str, count: int, *us: int) -> dict[str, Any]:
    """A RunMetrics.live_rows() row: p50, p90, p99, max in µs (all `us[0]` when one is given)."""
    p50, p90, p99, top = us if len(us) == 4 else us * 4
    return {
        "scenario": scenario,
        "outcome": outcome,
        "count": count,
        "p50_us": p50,
        "p90_us": p90,
        "p99_us": p99,
        "max_us": top,
    }


def _by_name(rows: list[TableRow]) -> dict[tuple[str, str], TableRow]:
    return {(row["scenario"], row["outcome"]): row for row in rows}


def test_latencies_are_in_ms_with_every_microsecond() -> None:
    [row] = table_rows([_row("cache", "HIT", 7, 412, 1_003, 20_001, 90_175)])
    assert row["kind"] == "latency" and row["unit"] == MS
    assert (row["p50"], row["p90"], row["p99"], row["max"]) == (0.412, 1.003, 20.001, 90.175)
    assert row["count"] == 7


def test_admitted_per_window_is_a_count_not_a_latency() -> None:
    # The histogram of _ratelimit_window holds the admitted count itself: 40, not "0.04 ms".
    [row] = table_rows([_row(BURST_SCENARIO, ADMITTED_OUTCOME, 12, 40, 41, 43, 44)])
    assert row["kind"] == "count" and row["unit"] == ADMITTED_UNIT
    assert (row["p50"], row["p90"], row["p99"], row["max"]) == (40, 41, 43, 44)
    assert all(isinstance(v, int) for v in (row["p50"], row["p90"], row["p99"], row["max"]))
    assert row["count"] == 12  # windows seen


def test_other_counts_are_counts_too() -> None:
    [row] = table_rows([_row("_retries", "seen", 3, 2)])
    assert row["kind"] == "count" and row["unit"] == "count" and row["p50"] == 2


def test_first_token_is_a_latency_and_steps_are_labelled_as_steps() -> None:
    rows = _by_name(
        table_rows(
            [
                _row(TTFT_SCENARIO, "MISS", 4, 21_500),
                _row(STEP_PREFIX + "cache-read", "HIT", 9, 6),
            ]
        )
    )
    first_token = rows[("time to first token", "MISS")]
    assert first_token["kind"] == "latency" and first_token["unit"] == MS
    assert first_token["p50"] == 21.5
    step = rows[("cache-read", "HIT")]
    assert step["kind"] == "step" and step["unit"] == STEP_UNIT and step["p50"] == 0.006


def test_rows_are_latencies_then_steps_in_request_order_then_counts() -> None:
    rows = table_rows(
        [
            _row(BURST_SCENARIO, ADMITTED_OUTCOME, 2, 20),
            _row(STEP_PREFIX + "total", "HIT", 2, 90),
            _row(STEP_PREFIX + "cache-read", "MISS", 2, 5),
            _row(STEP_PREFIX + "cache-read", "HIT", 2, 5),
            _row(STEP_PREFIX + "ratelimit", "HIT", 2, 20),
            _row("session", "ok", 2, 300),
            _row("cache", "MISS", 2, 22_000),
            _row("cache", "429", 2, 400),
            _row("cache", "HIT", 2, 500),
        ]
    )
    assert [(r["kind"], r["scenario"], r["outcome"]) for r in rows] == [
        ("latency", "cache", "HIT"),
        ("latency", "cache", "MISS"),
        ("latency", "cache", "429"),
        ("latency", "session", "ok"),
        ("step", "ratelimit", "HIT"),
        ("step", "cache-read", "HIT"),
        ("step", "cache-read", "MISS"),
        ("step", "total", "HIT"),
        ("count", "rate-limit window", ADMITTED_OUTCOME),
    ]


def test_the_table_structure_names_every_row_field_and_no_name_column() -> None:
    keys = [column["key"] for column in TABLE_STRUCTURE]
    assert sorted(keys) == sorted(get_type_hints(TableRow))
    # Locust sorts a table by "name" until a column is clicked: the order above would be lost.
    assert "name" not in keys


def test_rows_from_real_metrics_keep_the_microseconds() -> None:
    metrics = RunMetrics()
    metrics.record("cache", "HIT", 412, at_s=1.0)
    metrics.record(BURST_SCENARIO, ADMITTED_OUTCOME, 40, at_s=1.0)
    rows = _by_name(table_rows(metrics.live_rows()))
    assert rows[("cache", "HIT")]["p50"] == 0.412
    assert rows[("rate-limit window", ADMITTED_OUTCOME)]["p50"] == 40


# cache: 30 HIT, 10 MISS; ratelimit: 5 HIT, 5 refused; plus rows that are not chat answers.
_CHAT_ROWS = [
    _row("cache", "HIT", 30, 500),
    _row("cache", "MISS", 10, 22_000),
    _row("ratelimit", "HIT", 5, 500),
    _row("ratelimit", "429", 5, 300),
    _row("session", "ok", 100, 300),
    _row(STEP_PREFIX + "total", "HIT", 35, 90),
    _row(STEP_PREFIX + "total", "MISS", 10, 21_000),
    _row(BURST_SCENARIO, ADMITTED_OUTCOME, 3, 20),
]


def test_hit_rate_counts_chat_answers_only() -> None:
    figures = cache_figures(_CHAT_ROWS, None)
    assert (figures.hits, figures.looked_up) == (35, 45)
    assert figures.hit_rate == pytest.approx(35 / 45)
    assert figures.requests == 45  # the 429s never reached the cache


def test_calls_avoided_are_requests_minus_the_upstreams_calls() -> None:
    figures = cache_figures(_CHAT_ROWS, {"calls": 12, "distinct_requests": 10})
    assert figures.upstream_calls == 12
    assert figures.calls_avoided == 45 - 12
    assert figures.calls_avoided_share == pytest.approx(33 / 45)
    assert figures.ground_truth_error is None


def test_without_ground_truth_no_call_counts_and_the_reason() -> None:
    figures = cache_figures(_CHAT_ROWS, None, "GET http://127.0.0.1:9/ground-truth failed")
    assert figures.upstream_calls is None and figures.calls_avoided is None
    assert figures.ground_truth_error == "GET http://127.0.0.1:9/ground-truth failed"
    assert figures.hit_rate == pytest.approx(35 / 45)  # the headers still tell


def test_no_answer_yet_has_no_hit_rate() -> None:
    figures = cache_figures([_row("session", "ok", 3, 300)], None)
    assert figures.hit_rate is None and figures.looked_up == 0


def _figures(hits: int, looked_up: int, calls: int | None = None) -> CacheFigures:
    return cache_figures(
        [_row("cache", "HIT", hits, 500), _row("cache", "MISS", looked_up - hits, 22_000)],
        None if calls is None else {"calls": calls, "distinct_requests": 1},
    )


def test_a_point_has_the_hit_rate_since_start_and_since_the_point_before() -> None:
    first = next_point(None, _figures(10, 20, calls=10), t=100.0)
    assert first.hit_rate == first.interval_hit_rate == 0.5
    second = next_point(first, _figures(25, 40, calls=15), t=101.0)
    assert second.hit_rate == pytest.approx(25 / 40)
    assert second.interval_hit_rate == pytest.approx(15 / 20)
    assert (second.calls_avoided, second.upstream_calls) == (25, 15)
    idle = next_point(second, _figures(25, 40, calls=15), t=102.0)
    assert idle.interval_hit_rate is None  # nothing looked up in between: no rate, not 0


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Upstream:
    """Ground truth as the fake upstream answers it, or its failure; counts the reads."""

    def __init__(self) -> None:
        self.calls = 0
        self.reads = 0
        self.down = False

    def __call__(self) -> dict[str, Any]:
        self.reads += 1
        if self.down:
            raise HttpJsonError("GET http://127.0.0.1:9/ground-truth failed: refused")
        return {"calls": self.calls, "distinct_requests": max(1, self.calls)}


class _Run:
    """Rows that grow as a test runs."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0

    def rows(self) -> list[dict[str, Any]]:
        return [_row("cache", "HIT", self.hits, 500), _row("cache", "MISS", self.misses, 22_000)]


@pytest.fixture
def live() -> tuple[LiveView, _Clock, _Upstream, _Run]:
    clock, upstream, run = _Clock(), _Upstream(), _Run()
    return LiveView(run.rows, upstream, clock=clock, refresh_s=1.0), clock, upstream, run


def test_a_refresh_is_claimed_once_a_second_and_shared(
    live: tuple[LiveView, _Clock, _Upstream, _Run],
) -> None:
    view, clock, upstream, _ = live
    assert view.latest().figures is None  # nothing read yet, and nobody waits for it
    assert view.claim_refresh() is True
    assert view.claim_refresh() is False  # a second poller shares the refresh under way
    view.refresh("running", active=True, started_at=1.0)
    assert upstream.reads == 1
    clock.now += 0.5
    assert view.claim_refresh() is False  # the last answer is fresh enough
    clock.now += 0.5
    assert view.claim_refresh() is True


def test_the_series_grows_while_the_test_runs_and_once_more_after_it_stops(
    live: tuple[LiveView, _Clock, _Upstream, _Run],
) -> None:
    view, clock, upstream, run = live
    view.refresh("running", active=True, started_at=1.0)
    assert view.latest().series == ()  # nothing answered yet: no point
    for second in range(3):
        run.hits, run.misses, upstream.calls = 4 * second, 2 + second, 2 + second
        clock.now += 1
        view.refresh("running", active=True, started_at=1.0)
    assert len(view.latest().series) == 3
    run.hits += 1  # answered while stopping: one more point once stopped
    clock.now += 1
    view.refresh("stopped", active=False, started_at=1.0)
    clock.now += 1
    view.refresh("stopped", active=False, started_at=1.0)  # nothing new: the series stays as it is
    series = view.latest().series
    assert len(series) == 4
    assert [p.t for p in series] == [1001.0, 1002.0, 1003.0, 1004.0]
    assert (series[-1].hits, series[-1].calls_avoided) == (9, 13 - 4)  # 13 answers, 4 calls
    view.refresh("running", active=True, started_at=2.0)  # a new test: a new series
    assert len(view.latest().series) == 1


def test_an_unreachable_upstream_gives_the_reason_not_an_error(
    live: tuple[LiveView, _Clock, _Upstream, _Run],
) -> None:
    view, _, upstream, run = live
    run.hits, run.misses = 3, 1
    upstream.down = True
    state = view.refresh("running", active=True, started_at=1.0)
    assert state.figures is not None
    assert state.figures.calls_avoided is None and state.figures.hit_rate == 0.75
    assert "ground-truth failed: refused" in str(state.figures.ground_truth_error)
    assert view.claim_refresh() is False  # a failed read is cached like any other


def test_the_json_holds_rows_figures_series_and_targets(
    live: tuple[LiveView, _Clock, _Upstream, _Run],
) -> None:
    view, _, upstream, run = live
    run.hits, run.misses, upstream.calls = 3, 1, 1
    state = view.refresh("running", active=True, started_at=1.0)
    targets = ["http://127.0.0.1:8001", "http://127.0.0.1:8002"]
    data = json.loads(json.dumps(state.to_json(targets=targets, upstream="http://u")))
    assert data["state"] == "running"  # the runner's state when these figures were read
    assert data["targets"] == targets and data["upstream"] == "http://u"
    assert data["figures"]["calls_avoided"] == 3 and data["figures"]["hit_rate"] == 0.75
    assert [p["hit_rate"] for p in data["series"]] == [0.75]
    assert [r["outcome"] for r in data["rows"]] == ["HIT", "MISS"]
    assert data["structure"] == TABLE_STRUCTURE
