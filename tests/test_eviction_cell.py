"""The eviction cell (C10): its pure parts, and one run of it end to end."""

from __future__ import annotations

from hermes_bench.harness.eviction_cell import POLICIES, Reply, cache_sizing, policy_figures
from hermes_bench.reports.bounds import lru_hit_rate_curve
from hermes_bench.results.model import EvictionFigures, Results
from hermes_bench.results.vocabulary import INCONCLUSIVE, NOT_MEASURED


def test_the_cache_is_sized_in_entries_from_the_distinct_prompts() -> None:
    sequence = ["a", "b", "a", "c", "a", "b", "d", "e", "a", "f"]
    sized = cache_sizing(sequence, 0.5)
    assert (sized.distinct, sized.entries) == (6, 3)
    assert sized.lru_hit_rate == lru_hit_rate_curve(sequence, [3])[3] == 0.3  # a, a, b
    assert sized.ideal_hit_rate == 0.4  # 1 - 6/10
    assert cache_sizing(["a"], 0.3).entries == 1  # never a cache of no entry


def test_a_policy_counts_hits_losses_and_what_the_limiter_let_through() -> None:
    hit, miss = Reply("200", {"x-cache": "HIT"}), Reply("200", {"x-cache": "MISS"})
    refused = Reply("200", {"x-cache": "MISS", "x-cache-write": "failed"})
    open_ = Reply("200", {"x-cache": "MISS", "x-ratelimit-status": "fail-open"})
    figures = policy_figures(
        baseline_bytes=1000,
        maxmemory_bytes=2000,
        used_memory_bytes=1990,
        load=[hit, hit, miss, refused, Reply("503"), Reply("ConnectionResetError")],
        burst=[*([miss] * 20), open_, open_, Reply("429")],
        sessions=[Reply("200"), Reply("404"), Reply("200", right=False), Reply("500")],
        new_sessions=[Reply("201"), Reply("500")],
        cache_write_errors=1,
        evicted_keys=7,
        cache_entries_held=3,
        lru_held=0.41234,
        load_s=1.23456,
    )
    assert (figures.requests, figures.hits, figures.hit_rate) == (6, 2, 0.3333)
    assert figures.server_errors == 2 and figures.cache_write_failed == 1
    assert figures.statuses == {"200": 26, "429": 1, "503": 1, "ConnectionResetError": 1}
    assert (figures.sessions_intact, figures.sessions_lost, figures.session_errors) == (1, 1, 2)
    assert (figures.new_sessions, figures.new_sessions_refused) == (2, 1)
    assert (figures.burst_admitted, figures.burst_failed_open, figures.over_admitted) == (22, 2, 2)
    assert figures.limiter_failed_open == 2
    assert (figures.lru_hit_rate_held, figures.load_s) == (0.4123, 1.235)


def check_eviction_cell(results: Results, page: str) -> None:
    """What the quick profile's eviction cell must show (tests/test_claims_run.py runs it)."""
    (cell,) = [c for c in results.cells if c.id == "eviction-redis-1"]
    assert cell.status == "ok", cell.error
    figures = cell.extra
    assert isinstance(figures, EvictionFigures)
    assert tuple(figures.policies) == POLICIES
    assert figures.entry_bytes > figures.entry_memory_usage_bytes > 0
    assert figures.ttl_s["session"] is not None  # the app gives its sessions a TTL
    for name, policy in figures.policies.items():
        assert policy.requests == figures.requests and policy.sessions == 100, name
        assert policy.wrong_answers == 0 and policy.server_errors == 0, name
    # Full, and showing it: one policy evicts, the other refuses.
    assert figures.policies["allkeys-lru"].evicted_keys > 0
    noeviction = figures.policies["noeviction"]
    assert noeviction.evicted_keys == 0 and noeviction.cache_write_failed > 0
    assert noeviction.sessions_lost == 0
    claim = next(claim for claim in results.claims if claim.id == "C10")
    assert claim.verdict not in (NOT_MEASURED, INCONCLUSIVE), claim.summary
    assert claim.holds_when and "allkeys-lru: hit rate" in claim.figures
    assert 'id="cell-eviction-redis-1"' in page and 'id="claim-C10"' in page
