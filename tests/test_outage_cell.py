"""The outage cell end to end: a real Redis stopped under load, and what the app did."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hermes_bench.harness.cells import CellEnv, CellPlan
from hermes_bench.harness.outage_cell import run_outage_cell
from hermes_bench.harness.profiles import PROFILES
from hermes_bench.results.model import OutageFigures, Results
from hermes_bench.results.vocabulary import FAILS, NOT_MEASURED, OUTAGE_FAULTS
from hermes_bench.stack.stack import Stack, StackConfig

PLAN = CellPlan("outage-redis-1", "outage", "redis", 1)


@pytest.mark.e2e
def test_redis_paused_6_s_costs_each_request_one_timeout_and_recovery_is_measured(
    tmp_path: Path,
) -> None:
    profile = dataclasses.replace(
        PROFILES["quick"], outage_faults=("hung",), outage_fault_s=6.0, outage_calm_s=1.0
    )
    # The cell reads only the run's configuration: its target and Redis are its own.
    run_stack = Stack(StackConfig(backend="redis", time_scale=0.1, run_dir=tmp_path / "run"))
    try:
        measured = run_outage_cell(PLAN, run_stack, CellEnv(profile, 0, tmp_path))
    finally:
        run_stack.stop()
    figures = measured.figures
    assert isinstance(figures, OutageFigures) and list(figures.faults) == ["hung"]
    assert figures.redis_timeout_s == 1.0 and measured.conditions["REDIS_TIMEOUT"] == 1.0
    hung = figures.faults["hung"]
    assert hung.fault_s >= 6.0
    during = hung.phases["during"]
    # Every chat request answered 200: the app failed open, and said so in each answer.
    assert during.requests >= 20 and during.statuses == {"200": during.requests}
    assert during.failed_open > 0 and during.served_by_redis < during.requests
    # One REDIS_TIMEOUT at most, once (the defect was 2-3 x): under two, whatever the machine.
    assert during.beside_upstream.max_us is not None
    assert during.beside_upstream.max_us < 2 * figures.redis_timeout_s * 1e6
    # /healthz said 503 within its own PING timeout, sessions 503 at once: nothing hangs.
    assert hung.detected_s is not None and during.healthz.statuses.get("503", 0) > 0
    assert during.healthz.latency.max_us is not None
    assert during.healthz.latency.max_us < 3 * figures.health_timeout_s * 1e6
    for name in ("read", "write"):
        # 503 at once while the breaker is open; one in flight as Redis came back may pass.
        statuses = during.sessions[name].statuses
        assert statuses.get("503", 0) > 0 and set(statuses) <= {"503", "200"}, statuses
    # Redis came back: the app served from it again, health said so, nothing was lost.
    assert hung.recovered_s is not None and hung.healthy_again_s is not None
    after = hung.phases["after"]
    assert after.served_by_redis > 0 and after.server_errors == 0
    assert (hung.sessions_intact, hung.cache_entries_intact) == (hung.sessions, 20)
    assert hung.app_counters.get("breaker_opens", 0) >= 1
    assert measured.load is not None and {"target-0", "redis", "locust"} <= set(
        measured.load.processes
    )


def check_outage_cell(results: Results, page: str, terminal: str) -> None:
    """What the quick profile's outage cell must show (tests/test_claims_run.py runs it):
    what the app does by design under each fault, whatever the machine's timing."""
    (cell,) = [c for c in results.cells if c.id == PLAN.id]
    assert cell.status == "ok", cell.error
    figures = cell.extra
    assert isinstance(figures, OutageFigures) and tuple(figures.faults) == OUTAGE_FAULTS
    for name, fault in figures.faults.items():
        during = fault.phases["during"]
        assert during.requests > 0 and during.server_errors == 0, (name, during.statuses)
        assert during.wrong_answers == 0, name
    killed, hung, full = (figures.faults[n] for n in ("killed", "hung", "full"))
    # Killed without persistence: the data is gone, sessions answered 503 meanwhile.
    assert killed.sessions_intact == 0 and killed.cache_entries_intact == 0
    # 503 while Redis was away; a read still in flight when it came back found nothing (404).
    killed_reads = killed.phases["during"].sessions["read"].statuses
    assert "503" in killed_reads and set(killed_reads) <= {"503", "404"}, killed_reads
    assert killed.detected_s is not None and killed.recovered_s is not None
    assert hung.detected_s is not None and hung.sessions_intact == hung.sessions
    # Full: reads still hit, writes refused and marked, session writes 500.
    full_during = full.phases["during"]
    assert full_during.hits > 0 and full_during.cache_write_failed > 0
    # 500: Redis refused the write; one in flight as memory was freed again may pass.
    writes = full_during.sessions["write"].statuses
    assert writes.get("500", 0) > 0 and set(writes) <= {"500", "200"}, writes
    assert full.last_error and "OOM" in full.last_error
    verdicts = {claim.id: claim for claim in results.outages}
    assert list(verdicts) == list(OUTAGE_FAULTS)
    for claim in verdicts.values():
        assert claim.verdict != NOT_MEASURED and claim.figures, claim
        # The app behaves by design under every fault: only a machine too busy to time it
        # (inconclusive, naming the load) may keep a verdict from holding.
        assert claim.verdict != FAILS, claim
    assert 'id="outage-hung"' in page and "When Redis fails" in page
    assert "When Redis fails" in terminal
