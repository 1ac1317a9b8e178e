"""When Redis fails: each fault's verdict follows its figures, built here from requests as the
outage cell records them; a missing, failed, thin or busy cell says why it has none."""

from __future__ import annotations

import io
from typing import Any

from results_builders import results
from rich.console import Console

from hermes_bench.harness.outage_figures import (
    CHAT,
    HEALTHZ,
    SESSION_READ,
    SESSION_WRITE,
    Sent,
    detected_s,
    healthy_again_s,
    outage_phases,
    recovered_s,
)
from hermes_bench.reports import figure_lookup
from hermes_bench.reports.outage_verdicts import evaluate_outages
from hermes_bench.reports.report_view import report_view
from hermes_bench.reports.terminal import print_outages
from hermes_bench.results.model import OutageFault, OutageFigures, Results
from hermes_bench.results.vocabulary import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_MEASURED,
    OUTAGE_FAULTS,
)

SERVED = {"x-cache": "HIT", "x-ratelimit-limit": "10"}
OPEN = {"x-cache": "BYPASS", "x-ratelimit-status": "fail-open"}
FULL = {"x-cache": "HIT", "x-ratelimit-status": "fail-open"}
REFUSED = {"x-cache": "MISS", "x-ratelimit-status": "fail-open", "x-cache-write": "failed"}
CLOSED = {"x-ratelimit-status": "fail-closed"}
FAULT = (1.0, 3.0, 7.0)  # start, end, end of the load


def _calm(start: float, end: float) -> list[Sent]:
    """Requests served by Redis every 50 ms, /healthz 200 every 100 ms."""
    sent = []
    t = start
    while t < end - 0.01:
        sent += [Sent(CHAT, t, 3000, "200", SERVED), Sent(HEALTHZ, t + 0.01, 2000, "200", {})]
        sent += [Sent(SESSION_READ, t + 0.02, 2000, "200", {})]
        t += 0.1
    return sent


def _down(
    chat_ms: float, session_status: str = "503", health: str = "503", health_ms: float = 500
) -> list[Sent]:
    """The fault: chat failing open (each `chat_ms` long, 70 ms of it the upstream's); each
    /healthz answer `health_ms` long when it says 503 (its PING ran out)."""
    sent = []
    t = FAULT[0] + 0.05
    while t < FAULT[1] - 0.1:
        sent.append(Sent(CHAT, t, int(chat_ms * 1000), "200", OPEN, upstream_us=70_000))
        sent.append(Sent(SESSION_WRITE, t + 0.01, 2000, session_status, {}))
        sent.append(Sent(SESSION_READ, t + 0.02, 2000, session_status, {}))
        health_us = int(health_ms * 1000) if health == "503" else 2000
        sent.append(Sent(HEALTHZ, t + 0.03, health_us, health, {}))
        t += 0.1
    return sent


def _fault(sent: list[Sent], how: str = "stopped", **overrides: Any) -> OutageFault:
    start, end, load_end = FAULT
    phases = outage_phases(sent, start, end, load_end)
    counters = {
        "rate_limit_fail_open": sum(p.limiter_failed_open for p in phases.values()),
        "cache_write_errors": sum(p.cache_write_failed for p in phases.values()),
        "rate_limit_fail_closed": sum(p.limiter_failed_closed for p in phases.values()),
    }
    fields: dict[str, Any] = {
        "how": how,
        "fault_s": end - start,
        "phases": phases,
        "detected_s": detected_s(sent, start, end),
        "healthy_again_s": healthy_again_s(sent, end),
        "recovered_s": recovered_s(sent, end),
        "sessions": 10,
        "sessions_intact": 10,
        "cache_entries": 20,
        "cache_entries_intact": 20,
        "app_counters": counters,
        "last_error": "OOM command not allowed when used memory > 'maxmemory'.",
    }
    return OutageFault(**(fields | overrides))


def _hung(chat_ms: float = 1060) -> OutageFault:
    return _fault(_calm(0, FAULT[0]) + _down(chat_ms) + _calm(FAULT[1] + 0.5, FAULT[2]))


def _results(
    faults: dict[str, OutageFault], load: dict[str, Any] | None = None, limiter: str = "open"
) -> Results:
    figures = OutageFigures(
        redis_version="7.2.4", redis_timeout_s=1, health_timeout_s=0.5, breaker_failures=3,
        breaker_cooldown_s=2, rate_limit_on_redis_error=limiter, in_flight=8, rate_rps=200,
        faults=faults,
    )  # fmt: skip
    cell = {"id": "outage-redis-1", "kind": "outage", "backend": "redis", "instances": 1,
            "status": "ok", "extra": figures.model_dump()}  # fmt: skip
    if load is not None:
        cell["load"] = load
    return results([cell])


def _verdicts(built: Results) -> dict[str, Any]:
    return {claim.id: claim for claim in evaluate_outages(built)}


def test_a_hung_redis_that_costs_one_timeout_holds_and_names_its_conditions() -> None:
    claim = _verdicts(_results({"hung": _hung()}))["hung"]
    assert claim.verdict == HOLDS, claim.summary
    assert "within one and a half REDIS_TIMEOUT (1.5 s)" in claim.summary
    assert claim.holds_when and "REDIS_TIMEOUT=1 s" in claim.holds_when
    assert "admitted" in claim.holds_when  # what failing open cost: requests unchecked
    assert claim.figures["during_server_errors"] == 0 and claim.cells == ["outage-redis-1"]
    assert any("Data kept" in note for note in claim.notes)


def test_a_request_that_waited_two_timeouts_does_not_hold() -> None:
    # 2.1 s, 70 ms of it the upstream's: two waits of REDIS_TIMEOUT=1 s on Redis.
    claim = _verdicts(_results({"hung": _hung(chat_ms=2100)}))["hung"]
    assert claim.verdict == FAILS
    assert claim.summary.startswith("The longest wait") and (
        "more than one and a half REDIS_TIMEOUT (1.5 s)" in claim.summary
    )


def test_one_timeout_and_the_schedulers_jitter_holds() -> None:
    # As in a stored run: a request waited its whole REDIS_TIMEOUT (1 s) and a few ms more, the
    # longest before the fault 3 ms. One wait that ran out is what the app promises.
    during = _down(1_075)  # 70 ms of it the upstream's: 1,005,000 µs beside it
    claim = _verdicts(_results({"hung": _fault(_calm(0, 1) + during + _calm(3.5, 7))}))["hung"]
    assert claim.verdict == HOLDS, claim.summary
    assert "within one and a half REDIS_TIMEOUT (1.5 s) over the longest before it" in (
        claim.summary
    )


def test_healthz_may_take_its_ping_timeout_and_the_jitter_but_not_two() -> None:
    # A stored run: /healthz's PING ran out (0.5 s) and it answered 503 at 504.8 ms.
    jitter = _down(1_060, health_ms=504.8)
    claim = _verdicts(_results({"hung": _fault(_calm(0, 1) + jitter + _calm(3.5, 7))}))["hung"]
    assert claim.verdict == HOLDS, claim.summary
    twice = _down(1_060, health_ms=1_010)
    claim = _verdicts(_results({"hung": _fault(_calm(0, 1) + twice + _calm(3.5, 7))}))["hung"]
    assert claim.verdict == FAILS and "each answer within 1.01 s" in claim.summary, claim.summary


def test_a_broken_time_bound_on_a_busy_machine_is_inconclusive_naming_the_load() -> None:
    busy = {"interval_s": 1.0, "processes": {}, "other": {"cpu": {
        "count": 10, "mean_pct": 150.0, "p90_pct": 190.0, "max_pct": 199.0,
        "above_threshold_share": 0.8, "saturated": True}, "top": []}}  # fmt: skip
    claim = _verdicts(_results({"hung": _hung(chat_ms=2100)}, load=busy))["hung"]
    assert claim.verdict == INCONCLUSIVE, claim.summary
    assert "busy with other work" in claim.summary


def test_a_500_while_redis_is_down_or_unmarked_fail_opens_do_not_hold() -> None:
    sent = _calm(0, 1) + _down(5, session_status="500") + _calm(3.5, 7)
    claim = _verdicts(_results({"killed": _fault(sent)}))["killed"]
    assert claim.verdict == FAILS and "got 503" in claim.summary
    unmarked = _fault(_calm(0, 1) + _down(5) + _calm(3.5, 7), app_counters={})
    claim = _verdicts(_results({"killed": unmarked}))["killed"]
    assert claim.verdict == FAILS and "the app counted 0" in claim.summary


def test_a_full_redis_holds_when_reads_go_on_and_refused_writes_are_marked() -> None:
    during = []
    t = 1.05
    while t < 2.9:
        during += [Sent(CHAT, t, 4000, "200", FULL), Sent(CHAT, t + 0.01, 80_000, "200", REFUSED)]
        during += [Sent(SESSION_WRITE, t + 0.02, 3000, "500", {})]
        during += [Sent(SESSION_READ, t + 0.03, 2000, "200", {})]
        during += [Sent(HEALTHZ, t + 0.04, 2000, "200", {})]
        t += 0.1
    fault = _fault(_calm(0, 1) + during + _calm(3.0, 7))
    claim = _verdicts(_results({"full": fault}))["full"]
    assert claim.verdict == HOLDS, claim.summary
    assert "cache writes were refused" in claim.summary and "OOM" in claim.summary
    assert claim.holds_when and "noeviction" in claim.holds_when


def _full_closed(status: str) -> OutageFault:
    """Redis full under a fail-closed limiter: every chat request refused with `status`."""
    during = []
    t = 1.05
    while t < 2.9:
        during += [Sent(CHAT, t, 3000, status, CLOSED), Sent(HEALTHZ, t + 0.04, 2000, "200", {})]
        during += [Sent(SESSION_WRITE, t + 0.02, 3000, "500", {})]
        t += 0.1
    return _fault(_calm(0, 1) + during + _calm(3.0, 7))


def test_a_full_redis_under_a_fail_closed_limiter_holds_when_each_refusal_is_a_503() -> None:
    claim = _verdicts(_results({"full": _full_closed("503")}, limiter="closed"))["full"]
    assert claim.verdict == HOLDS, claim.summary
    assert "The limiter refused 19 of 19 chat requests" in claim.summary  # no hits to expect
    assert "19 were marked fail-closed, the app counted 19" in claim.summary
    assert claim.holds_when and "the limiter refused 19 of 19 requests (fail-closed" in (
        claim.holds_when
    )
    assert "19 × 503" in claim.holds_when


def test_a_fail_closed_limiter_that_answers_a_full_redis_with_500_does_not_hold() -> None:
    claim = _verdicts(_results({"full": _full_closed("500")}, limiter="closed"))["full"]
    assert claim.verdict == FAILS
    assert "marked X-RateLimit-Status: fail-closed" in claim.summary and "19 × 500" in (
        claim.summary
    )


def test_without_the_cell_each_fault_is_not_measured_and_a_thin_one_is_inconclusive() -> None:
    verdicts = evaluate_outages(results([]))
    assert [c.id for c in verdicts] == list(OUTAGE_FAULTS)
    assert {c.verdict for c in verdicts} == {NOT_MEASURED}
    thin = _fault(_calm(0, 1) + _calm(3.0, 7))  # nothing in flight during the fault
    claims = _verdicts(_results({"hung": thin}))
    assert claims["hung"].verdict == INCONCLUSIVE and "at least" in claims["hung"].summary
    assert claims["killed"].verdict == NOT_MEASURED  # the profile did not run it
    cell = {"id": "outage-redis-1", "kind": "outage", "backend": "redis", "instances": 1}
    failed = results([{**cell, "status": "failed", "error": "no redis-server"}])
    assert {c.verdict for c in evaluate_outages(failed)} == {INCONCLUSIVE}


def test_thresholds_read_the_outage_figures_by_fault_and_phase() -> None:
    built = _results({"hung": _hung()})
    max_us = figure_lookup.latency_us(built, "outage.hung.during", "max")
    wait_us = figure_lookup.latency_us(built, "outage.hung.during.wait", "max")
    assert max_us is not None and wait_us is not None and 900_000 < wait_us < max_us
    assert figure_lookup.latency_us(built, "outage.hung.during.healthz", "p(99)") is not None
    assert figure_lookup.scalar(built, "outage.hung.during.server_errors") == 0
    assert figure_lookup.scalar(built, "outage.hung.during.failed_open_share") == 1.0
    assert figure_lookup.scalar(built, "outage.hung.sessions_lost") == 0
    assert figure_lookup.scalar(built, "outage.hung.recovered_s") is not None
    # Every figure a threshold may name (figure_lookup.check_subject) is one a phase has.
    for name in figure_lookup.OUTAGE_PHASE_SCALARS:
        assert figure_lookup.scalar(built, f"outage.hung.before.{name}") is not None, name
    assert figure_lookup.scalar(built, "outage.hung.before.hits") == 10
    assert figure_lookup.scalar(built, "outage.hung.during.limiter_failed_closed") == 0
    closed = _results({"full": _full_closed("503")}, limiter="closed")
    assert figure_lookup.scalar(closed, "outage.full.during.limiter_failed_closed") == 19
    for unknown in ("outage.killed.during.requests", "outage.hung.during.nope", "outage.hung"):
        assert figure_lookup.scalar(built, unknown) is None, unknown
    assert figure_lookup.latency_us(built, "outage.hung.sometime", "max") is None


def test_terminal_and_report_show_when_redis_fails() -> None:
    built = _results({"hung": _hung()})
    built.outages = evaluate_outages(built)
    console = Console(file=io.StringIO(), width=200)
    print_outages(built, console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "When Redis fails" in text and "hung" in text and "holds" in text
    assert "not measured yet" in text  # the faults this cell did not run
    view = report_view(built)
    (hung,) = [o for o in view.outages if o.id == "hung"]
    assert [row.phase for row in hung.phases] == ["before", "during", "after"]
    assert hung.cell is not None and hung.cell.anchor == "cell-outage-redis-1"
