"""The memory (C11) and pool (C13) cells: their pure parts, and one run of both end to end."""

from __future__ import annotations

import json

import pytest

from hermes_bench.app.sessions import MAX_SESSION_FIELDS
from hermes_bench.harness.failure_cells import (
    SESSION_SIZES,
    Answer,
    counter_changes,
    json_record,
    pool_in_flight,
    pool_step,
    session_data,
    warnings_by_cause,
)
from hermes_bench.results.model import MemoryFigures, PoolFigures, Results
from hermes_bench.results.vocabulary import BETTER, FAILS, HOLDS


def test_sessions_past_the_limits_pass_them_as_far_as_the_app_allows() -> None:
    typical = session_data("typical", 3, max_entries=128, max_value_bytes=64)
    assert {"user_id", "email", "last_seen"} <= set(typical) and len(typical) == 10
    assert set(session_data("small", 3, 128, 64)) == {"user_id", "name"}
    long_value = session_data("long value", 3, 128, 64)
    assert max(len(json.dumps(v)) for v in long_value.values()) > 64
    assert len(session_data("long value", 3, 128, 4096)["history"]) == 4097
    assert len(session_data("many fields", 3, 128, 64)) == 136
    assert len(session_data("many fields", 3, 5000, 64)) == MAX_SESSION_FIELDS
    with pytest.raises(ValueError, match="one of small, typical"):
        session_data("huge", 0, 128, 64)
    assert len(SESSION_SIZES) == 4


def test_the_json_record_is_the_hash_the_app_stored_decoded() -> None:
    stored = {b"__owner": b"sk-a", b"__created_at": b"1700000000.25", b"n": b"3",
              b"name": b'"Ada"'}  # fmt: skip
    record = json_record(stored)
    assert record == {"__owner": "sk-a", "__created_at": 1700000000.25, "n": 3, "name": "Ada"}


def test_a_step_counts_what_redis_served_and_what_failed_open() -> None:
    answers = [
        Answer("200", 1000, hit=True, limited=True, redis_steps_us=300),
        Answer("200", 2000, hit=False, limited=True, redis_steps_us=200),  # cache failed open
        Answer("200", 3000, hit=False, limited=False),  # both failed open
        Answer("200", 1500, hit=True, limited=True, right_answer=False),
        Answer("ConnectionResetError", 4000),
    ]
    step = pool_step(5, 0.5, answers, {"cache_errors": 2}, {"target": 80.0})
    assert step.requests == 5 and step.throughput_rps == 10.0
    assert step.served_by_redis == 1 and step.lost_redis_share == 0.8
    assert (step.cache_failed_open, step.limiter_failed_open, step.wrong_answers) == (2, 1, 1)
    assert step.statuses == {"200": 4, "ConnectionResetError": 1}
    assert step.latency.count == 5 and step.redis_steps.count == 2
    assert step.app_counters == {"cache_errors": 2} and step.cpu_pct == {"target": 80.0}
    # The app's own waits for a connection, when its /stats serves them; refusals with them.
    assert step.connection_wait is None and step.connection_refusals is None
    waits = {"count": 6, "p50_us": 12, "p99_us": 900}
    timed = pool_step(5, 0.5, answers, {"redis_pool_refusals": 2}, {}, None, waits)
    assert timed.connection_wait is not None and timed.connection_wait.p99_us == 900
    assert timed.connection_refusals == 2
    assert pool_step(5, 0.5, answers, {}, {}, None, waits).connection_refusals == 0


def test_counter_changes_and_warnings_are_read_whatever_the_app_counts() -> None:
    before = {"requests": 10, "hits": 5, "degraded": False, "instance": "t", "new": 1}
    after = {"requests": 30, "hits": 5, "degraded": True, "instance": "t", "new": 4, "late": 2}
    assert counter_changes(before, after) == {"requests": 20, "new": 3}
    log = (
        "[WARNING] cache failed open: Redis pool for redis://:secret@h:1/0 is exhausted: "
        "Too many connections\n[INFO] fine\n[WARNING] rate limiter failed: x: Too many "
        "connections\n[ERROR] Timeout reading from socket\n"
    )
    assert warnings_by_cause(log) == {"Too many connections": 2, "Timeout reading from socket": 1}
    assert pool_in_flight((5, 10, 20), users=8) == [5, 8, 10, 20]
    assert pool_in_flight((5, 10, 20), users=10) == [5, 10, 20]


def check_memory_and_pool_cells(results: Results, page: str) -> None:
    """What the quick profile's memory and pool cells must show (tests/test_claims_run.py)."""
    cells = {cell.id: cell for cell in results.cells}
    for cell_id in ("memory-redis-1", "pool-redis-1"):
        assert cells[cell_id].status == "ok", cells[cell_id].error
    memory, pool = cells["memory-redis-1"].extra, cells["pool-redis-1"].extra
    assert isinstance(memory, MemoryFigures) and isinstance(pool, PoolFigures)
    assert memory.sessions["typical"].hash_encoding in ("listpack", "ziplist")
    assert memory.sessions["long value"].hash_encoding == "hashtable"
    assert memory.sessions["many fields"].hash_encoding == "hashtable"
    assert memory.cache_entry.entry_bytes > memory.cache_entry.value_bytes > 0
    assert pool.max_connections == 10 and set(pool.modes) == {"nonblocking", "blocking"}
    for steps in pool.modes.values():
        assert [s.in_flight for s in steps] == [5, 8, 10, 20, 50, 100]  # quick, with its 8 users
        assert all(sum(s.statuses.values()) == s.requests >= 200 for s in steps)
        # Each step's own waits for a connection: at least one per request that reached Redis.
        for step in steps:
            assert step.connection_wait is not None and step.connection_refusals is not None
            assert step.connection_wait.count >= step.served_by_redis
    claims = {claim.id: claim for claim in results.claims}
    # Whichever the sizes on this Redis, a verdict from them, not "not measured yet".
    assert claims["C11"].verdict in (HOLDS, FAILS, BETTER), claims["C11"].summary
    assert claims["C11"].figures["typical session: hash / JSON"] > 0
    assert "compact" in (claims["C11"].holds_when or "")
    # 8 users never hold more than 8 of the 10 connections: the plain pool is enough for them.
    assert claims["C13"].verdict == HOLDS, claims["C13"].summary
    assert "plain pool at 100 in flight" in claims["C13"].figures
    assert "requests in flight" in (claims["C13"].holds_when or "")
    assert "Blocking pool: wait for a connection p99" in claims["C13"].summary
    assert 'id="cell-pool-redis-1"' in page and 'id="claim-C13"' in page
