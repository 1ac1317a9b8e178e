"""Thresholds: every documented form parses, malformed ones are rejected with the input quoted,
and evaluation against fake lookups passes, fails or reports "not measured"."""

from __future__ import annotations

import pytest

from hermes_bench.errors import ConfigError
from hermes_bench.reports.figure_lookup import check_subject
from hermes_bench.reports.thresholds import (
    EXAMPLES,
    Threshold,
    ThresholdError,
    evaluate,
    parse_threshold,
    summary_key,
)

LATENCY_US = {
    ("redis.HIT", "p(95)"): 12_300.0,
    ("redis.HIT", "p(50)"): 900.0,
    ("redis.HIT", "p(99.9)"): 130_000.0,
    ("memory.MISS", "avg"): 180_000.0,
    ("redis.all", "max"): 850_000.0,
}
SCALARS = {"redis.hit_rate": 0.85, "calls_avoided_share": 0.4, "memory.errors": 0.0}


def _latency(subject: str, aggregate: str) -> float | None:
    return LATENCY_US.get((subject, aggregate))


def _scalar(name: str) -> float | None:
    return SCALARS.get(name)


@pytest.mark.parametrize(
    ("text", "subject", "aggregate", "op", "value"),
    [
        ("redis.HIT p(95)<50ms", "redis.HIT", "p(95)", "<", 50_000.0),
        ("memory.MISS avg<=200ms", "memory.MISS", "avg", "<=", 200_000.0),
        ("redis.all max<1s", "redis.all", "max", "<", 1_000_000.0),
        ("redis.HIT p(99.9) < 120ms", "redis.HIT", "p(99.9)", "<", 120_000.0),
        ("redis.HIT min>=300us", "redis.HIT", "min", ">=", 300.0),
        ("redis.HIT med>0.5µs", "redis.HIT", "p(50)", ">", 0.5),
        ("redis.HIT p(50)!=7μs", "redis.HIT", "p(50)", "!=", 7.0),
        ("redis.HIT p(100)==2.5", "redis.HIT", "p(100)", "==", 2_500.0),  # no unit: ms
        ("redis.HIT p(95.0) > 1 s", "redis.HIT", "p(95)", ">", 1_000_000.0),
        ("  redis.HIT   p(99)<=.5ms  ", "redis.HIT", "p(99)", "<=", 500.0),
        ("redis.hit_rate>0.8", "redis.hit_rate", None, ">", 0.8),
        ("calls_avoided_share>=0.5", "calls_avoided_share", None, ">=", 0.5),
        ("memory.errors==0", "memory.errors", None, "==", 0.0),
        ("memory.errors != 0", "memory.errors", None, "!=", 0.0),
        ("drift<-1e-3", "drift", None, "<", -0.001),
        ("redis.requests>1e3", "redis.requests", None, ">", 1000.0),
    ],
)
def test_parses_every_form(
    text: str, subject: str, aggregate: str | None, op: str, value: float
) -> None:
    threshold = parse_threshold(text)
    assert threshold == Threshold(text, subject, aggregate, op, pytest.approx(value))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("redis.HIT p95<50ms", "unknown aggregate 'p95'"),
        ("redis.HIT mean<50ms", "unknown aggregate 'mean'"),
        ("redis.HIT p(0)<50ms", "percentile must be above 0"),
        ("redis.HIT p(101)<50ms", "got 101"),
        ("redis.HIT p(-5)<50ms", "got -5"),
        ("redis.HIT p()<50ms", "unknown aggregate 'p()'"),
        ("redis.HIT p(95)<", "missing value after '<'"),
        ("redis.HIT p(95)<=  ", "missing value after '<='"),
        ("redis.HIT p(95)<50ns", "unknown unit 'ns'"),
        ("redis.HIT p(95)<50 min", "unknown unit 'min'"),
        ("redis.HIT p(95)<50 ms x", "invalid value '50 ms x'"),
        ("redis.HIT p(95)<fast", "invalid value 'fast'"),
        ("redis.HIT p(95)<-5ms", "cannot be negative"),
        ("redis.HIT p(95)=<50ms", "unknown operator '=<'"),
        ("redis.HIT p(95)=50ms", "unknown operator '='"),
        ("redis.HIT p(95)<>50ms", "unknown operator '<>'"),
        ("redis.HIT p(95) 50ms", "no comparison operator"),
        ("redis.hit_rate=>0.8", "unknown operator '=>'"),
        ("redis.hit_rate>", "missing value"),
        ("redis.hit_rate>0.8ms", "scalar figure takes no unit"),
        ("p(95)<50ms", "missing subject"),
        ("<50ms", "missing subject"),
        ("redis HIT p(95)<50ms", "before the operator"),
        ("redis/HIT p(95)<50ms", "invalid subject 'redis/HIT'"),
        ("redis.hit_rate>1e999", "too large"),
        ("", "no comparison operator"),
    ],
)
def test_rejects_malformed(text: str, fault: str) -> None:
    with pytest.raises(ThresholdError) as caught:
        parse_threshold(text)
    message = str(caught.value)
    assert repr(text) in message  # the input, quoted
    assert fault in message
    assert all(repr(example) in message for example in EXAMPLES)
    assert isinstance(caught.value, ConfigError)
    assert caught.value.text == text


def test_error_marks_the_fault() -> None:
    with pytest.raises(ThresholdError) as caught:
        parse_threshold("redis.HIT p(101)<50ms")
    lines = str(caught.value).splitlines()
    shown, marker = lines[1], lines[2]
    assert shown.strip() == "redis.HIT p(101)<50ms"
    start = marker.index("^")
    assert shown[start : start + marker.count("^")] == "p(101)"


def test_examples_parse() -> None:
    for example in EXAMPLES:
        parse_threshold(example)


@pytest.mark.parametrize(
    ("text", "observed", "passed", "message"),
    [
        ("redis.HIT p(95)<50ms", 12_300.0, True, "redis.HIT p(95) = 12.3 ms < 50 ms: passed"),
        ("redis.HIT med<=0.9ms", 900.0, True, "redis.HIT p(50) = 0.9 ms <= 0.9 ms: passed"),
        (
            "redis.HIT p(99.9) < 120ms",
            130_000.0,
            False,
            "redis.HIT p(99.9) = 130 ms, not < 120 ms: failed",
        ),
        ("memory.MISS avg<=200ms", 180_000.0, True, "memory.MISS avg = 180 ms <= 200 ms: passed"),
        ("redis.all max<1s", 850_000.0, True, "redis.all max = 850 ms < 1000 ms: passed"),
        ("redis.hit_rate>0.8", 0.85, True, "redis.hit_rate = 0.85 > 0.8: passed"),
        ("calls_avoided_share>=0.5", 0.4, False, "calls_avoided_share = 0.4, not >= 0.5: failed"),
        ("memory.errors==0", 0.0, True, "memory.errors = 0 == 0: passed"),
        ("memory.errors!=0", 0.0, False, "memory.errors = 0, not != 0: failed"),
    ],
)
def test_evaluate(text: str, observed: float, passed: bool, message: str) -> None:
    result = evaluate(parse_threshold(text), _latency, _scalar)
    assert result.observed == pytest.approx(observed)
    assert result.passed is passed
    assert result.message == message
    assert result.threshold.text == text


@pytest.mark.parametrize(
    "text",
    ["redis.MISS p(95)<50ms", "redis.HIT p(90)<50ms", "redis.errors==0", "nan_figure<1"],
)
def test_not_measured_is_reported_not_passed(text: str) -> None:
    def scalar(name: str) -> float | None:
        return float("nan") if name == "nan_figure" else _scalar(name)

    result = evaluate(parse_threshold(text), _latency, scalar)
    assert result.observed is None
    assert result.passed is None
    assert "not measured" in result.message


def test_lookups_receive_canonical_aggregates() -> None:
    asked: list[tuple[str, str]] = []

    def latency(subject: str, aggregate: str) -> float | None:
        asked.append((subject, aggregate))
        return 1.0

    for text in ("a med<1", "a p(99.90)<1", "a avg<1", "a min<1", "a max<1"):
        evaluate(parse_threshold(text), latency, _scalar)
    assert asked == [("a", "p(50)"), ("a", "p(99.9)"), ("a", "avg"), ("a", "min"), ("a", "max")]


@pytest.mark.parametrize(
    ("aggregate", "key"),
    [
        ("p(50)", "p50_us"),
        ("p(95)", "p95_us"),
        ("p(99.9)", "p99_9_us"),
        ("avg", "mean_us"),
        ("min", "min_us"),
        ("max", "max_us"),
    ],
)
def test_summary_key_matches_latency_summary_fields(aggregate: str, key: str) -> None:
    assert summary_key(aggregate) == key


@pytest.mark.parametrize(
    "text",
    [
        *EXAMPLES,
        "redis.all max<1s",
        "memory.MISS avg<=200ms",
        "memory.errors==0",
        "redis.calls_avoided_share>0.1",
        "outage.hung.during max<2s",
        "outage.hung.during.wait p(99)<1.5s",
        "outage.slowed.after.session-write max<1s",
        "outage.killed.recovered_s<3",
        "outage.full.sessions_lost==0",
        "outage.full.during.limiter_failed_closed==0",
        "outage.hung.during.hits>0",
        "outage.hung.before.served_by_redis_share>0.9",
    ],
)
def test_a_subject_a_run_can_measure_is_accepted(text: str) -> None:
    check_subject(parse_threshold(text))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("outage.hungg.during max<2s", "unknown fault 'hungg'; use slowed, full, hung or killed"),
        ("outage.hung.durng max<2s", "unknown phase 'durng'; use before, during or after"),
        ("outage.hung.durng.requests>0", "unknown phase 'durng'"),
        ("outage.hung.during.helthz max<2s", "unknown latency 'helthz' of a phase; use chat,"),
        ("outage.hung.during.requests max<2s", "or no aggregate for a count"),
        ("outage.hung.during.server_erors==0", "unknown figure 'server_erors' of a phase; use"),
        ("outage.hung.during.wait<2", "or an aggregate for a latency"),
        ("outage.hung.recoverd_s<3", "unknown figure 'recoverd_s' of a fault; use fault_s,"),
        ("outage.hung.during<3", "'during' is a phase: name one of its figures"),
        ("outage.hung max<2s", "write outage.FAULT.PHASE[.WHAT]"),
        ("outage.hung.during.wait.x max<2s", "write outage.FAULT.PHASE[.WHAT]"),
        ("outage max<2s", "write outage.FAULT.PHASE[.WHAT]"),
        ("outgae.hung.during max<2s", "unknown subject 'outgae'; start it with redis or memory"),
        ("redis.hit_rte>0.5", "unknown figure 'hit_rte' of redis; use hit_rate,"),
        ("redis.HIT<50", "or an aggregate for a latency ('redis.HIT p(95)<50ms')"),
        ("calls_avoided_share>=0.5", "unknown subject 'calls_avoided_share'"),
        ("redis p(95)<50ms", "name an outcome after redis"),
    ],
)
def test_a_subject_no_run_has_is_one_line_naming_the_accepted_words(
    text: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        check_subject(parse_threshold(text))
    message = str(info.value)
    assert message.startswith(f"invalid threshold {text!r}: ") and problem in message
    assert "\n" not in message
