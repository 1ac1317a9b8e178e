"""The outage cell's pure parts: phases, outcomes from headers, detection and recovery."""

from __future__ import annotations

from hermes_bench.harness.outage_figures import (
    CHAT,
    HEALTHZ,
    SESSION_READ,
    SESSION_WRITE,
    Sent,
    chat_outcome,
    detected_s,
    healthy_again_s,
    outage_phases,
    phase_of,
    recovered_s,
    split_phases,
)

SERVED = {"x-cache": "HIT", "x-ratelimit-limit": "10"}
MISS_WRITTEN = {"x-cache": "MISS", "x-ratelimit-limit": "10"}
LIMITER_OPEN = {"x-cache": "HIT", "x-ratelimit-status": "fail-open"}
WRITE_FAILED = {"x-cache": "MISS", "x-ratelimit-limit": "10", "x-cache-write": "failed"}
BYPASS = {"x-cache": "BYPASS", "x-ratelimit-status": "fail-open"}


def chat(at: float, ms: float, headers: dict[str, str], status: str = "200") -> Sent:
    return Sent(CHAT, at, int(ms * 1000), status, headers)


def test_served_by_redis_needs_the_limiters_decision_and_the_cache() -> None:
    assert chat_outcome("200", SERVED).served_by_redis
    assert chat_outcome("200", MISS_WRITTEN).served_by_redis
    for headers in (LIMITER_OPEN, WRITE_FAILED, BYPASS, {"x-cache": "HIT"}):
        assert not chat_outcome("200", headers).served_by_redis, headers
    assert not chat_outcome("503", SERVED).served_by_redis
    assert chat_outcome("200", LIMITER_OPEN).limiter_failed_open
    assert chat_outcome("200", WRITE_FAILED).cache_write_failed
    assert chat_outcome("200", {"x-cache": "MISS", "x-cache-write": "skipped"}).cache_write_failed


def test_a_request_in_flight_when_the_fault_began_belongs_to_it() -> None:
    # Fault from 1.0 s to 3.0 s.
    assert phase_of(chat(0.5, 100, SERVED), 1.0, 3.0) == "before"
    assert phase_of(chat(0.95, 100, BYPASS), 1.0, 3.0) == "during"  # answered at 1.05 s
    assert phase_of(chat(2.9, 500, BYPASS), 1.0, 3.0) == "during"
    assert phase_of(chat(3.0, 1, SERVED), 1.0, 3.0) == "after"
    sent = [chat(2.0, 1, BYPASS), chat(0.1, 1, SERVED), chat(3.5, 1, SERVED)]
    phases = split_phases(sent, 1.0, 3.0)
    assert [len(phases[name]) for name in ("before", "during", "after")] == [1, 1, 1]


def test_a_phase_counts_statuses_fail_opens_and_its_own_latency() -> None:
    sent = [
        chat(0.1, 2, SERVED),
        chat(0.2, 80, MISS_WRITTEN),
        chat(1.5, 1000, BYPASS),
        chat(1.6, 3, LIMITER_OPEN),
        chat(1.7, 90, WRITE_FAILED),
        chat(1.8, 5, {}, status="ConnectionResetError"),
        Sent(SESSION_READ, 1.9, 2000, "503", {}),
        Sent(SESSION_WRITE, 2.0, 2500, "503", {}),
        Sent(HEALTHZ, 1.2, 500_000, "503", {}),
        chat(3.5, 2, SERVED),
    ]
    phases = outage_phases(sent, 1.0, 3.0, 4.0)
    before, during, after = phases["before"], phases["during"], phases["after"]
    assert (before.requests, before.served_by_redis, before.failed_open) == (2, 2, 0)
    assert during.requests == 4 and during.statuses == {"200": 3, "ConnectionResetError": 1}
    assert (during.served_by_redis, during.failed_open, during.hits) == (0, 3, 1)
    assert (during.limiter_failed_open, during.cache_write_failed) == (2, 1)
    assert during.server_errors == 1 and during.throughput_rps == 2.0  # 4 in 2 s
    assert during.latency.max_us is not None and during.latency.max_us >= 1_000_000
    assert during.sessions["read"].statuses == {"503": 1}
    assert during.sessions["write"].requests == 1 and during.healthz.statuses == {"503": 1}
    assert after.requests == 1 and after.served_by_redis == 1


def test_the_wait_beside_the_upstream_leaves_a_misss_upstream_call_out() -> None:
    slow_miss = Sent(CHAT, 1.5, 1_300_000, "200", BYPASS, upstream_us=250_000)
    phases = outage_phases([slow_miss], 1.0, 3.0, 4.0)
    assert phases["during"].latency.max_us is not None
    assert phases["during"].beside_upstream.max_us is not None
    assert phases["during"].latency.max_us > 1_290_000
    assert 1_040_000 <= phases["during"].beside_upstream.max_us <= 1_060_000


def test_detection_health_and_recovery_are_timed_from_the_faults_edges() -> None:
    sent = [
        Sent(HEALTHZ, 0.5, 2000, "200", {}),
        Sent(HEALTHZ, 1.1, 500_000, "503", {}),  # answered 0.6 s into the fault
        Sent(HEALTHZ, 3.2, 3000, "503", {}),
        Sent(HEALTHZ, 3.5, 3000, "200", {}),  # healthy again 0.503 s after the end
        chat(3.1, 2, BYPASS),
        chat(3.3, 2, SERVED),  # served, but the next one is not: no recovery yet
        chat(3.4, 2, LIMITER_OPEN),
        chat(3.6, 4, SERVED),  # from here on every one is served: 0.604 s
        chat(3.8, 2, MISS_WRITTEN),
    ]
    assert detected_s(sent, 1.0, 3.0) == 0.6
    assert healthy_again_s(sent, 3.0) == 0.503
    assert recovered_s(sent, 3.0) == 0.604
    assert recovered_s([*sent, chat(3.9, 1, BYPASS)], 3.0) is None
    assert detected_s(sent[:1], 1.0, 3.0) is None
