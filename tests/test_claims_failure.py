"""C11 (hash vs JSON) and C13 (a pool of 10) from built results: each verdict follows the
figures, and a missing, failed or doubtful cell is inconclusive."""

from __future__ import annotations

import copy
import re
from typing import Any

from results_builders import RUN, results

from hermes_bench.reports import claim_plots
from hermes_bench.reports.claims import BETTER, FAILS, HOLDS, INCONCLUSIVE, evaluate_claims
from hermes_bench.reports.html import render_html
from hermes_bench.results.model import MemoryFigures, PoolFigures

LIMITS = {"limits_config": "hash-max-listpack-*", "max_entries": 128, "max_value_bytes": 64}


def _session(hash_b: float, json_b: float, encoding: str, fields: int, longest: int) -> Any:
    return {"records": 50, "fields": fields, "longest_value_bytes": longest,
            "json_length_bytes": json_b - 60, "hash_bytes": hash_b, "json_bytes": json_b,
            "hash_encoding": encoding, "json_encoding": "raw"}  # fmt: skip


def _memory(typical_hash: float = 200, typical_json: float = 500) -> dict[str, Any]:
    sessions = {
        "small": _session(120, 180, "listpack", 4, 20),
        "typical": _session(typical_hash, typical_json, "listpack", 12, 30),
        "long value": _session(2300, 1400, "hashtable", 13, 1002),
        "many fields": _session(12_000, 2600, "hashtable", 136, 6),
    }
    extra = {"redis_version": "7.2.4", "allocator": "jemalloc-5.3.0", **LIMITS,
             "sessions": sessions,
             "cache_entry": {"entries": 50, "entry_bytes": 568, "value_bytes": 406,
                             "key_bytes": 92, "encoding": "raw"}}  # fmt: skip
    return {"id": "memory-redis-1", "kind": "memory", "backend": "redis", "instances": 1,
            "status": "ok", "extra": extra}  # fmt: skip


def _latency(p50_ms: float, p99_ms: float, count: int = 200) -> dict[str, Any]:
    return {"count": count, "p50_us": int(p50_ms * 1000), "p99_us": int(p99_ms * 1000)}


def _step(in_flight: int, lost: int = 0, p99_ms: float = 10, requests: int = 200,
          wrong: int = 0, generator_pct: float = 20,
          wait_p99_ms: float | None = None) -> dict[str, Any]:  # fmt: skip
    waits = {} if wait_p99_ms is None else {
        "connection_wait": _latency(wait_p99_ms / 4, wait_p99_ms, count=requests),
        "connection_refusals": lost,
    }  # fmt: skip
    return waits | {
        "in_flight": in_flight, "requests": requests, "wall_s": 0.5,
        "throughput_rps": requests / 0.5, "served_by_redis": requests - lost - wrong,
        "cache_failed_open": lost, "limiter_failed_open": lost, "wrong_answers": wrong,
        "statuses": {"200": requests}, "lost_redis_share": (lost + wrong) / requests,
        "latency": _latency(p99_ms / 2, p99_ms), "redis_steps": _latency(1, p99_ms / 2),
        "app_warnings": {"Too many connections": 2 * lost} if lost else {},
        "cpu_pct": {"load generator": generator_pct, "target": 70.0, "machine": 120.0},
    }  # fmt: skip


def _pool(plain: list[dict[str, Any]], blocking: list[dict[str, Any]]) -> dict[str, Any]:
    extra = {"max_connections": 10, "timeout_s": 5, "warm_prompts": 20,
             "modes": {"nonblocking": plain, "blocking": blocking}}  # fmt: skip
    return {"id": "pool-redis-1", "kind": "pool", "backend": "redis", "instances": 1,
            "status": "ok", "extra": extra, "conditions": {"rate limit": "10/second"}}  # fmt: skip


def _plain(fail_at: int = 20) -> list[dict[str, Any]]:
    """The plain pool: fine up to the pool's size, losing Redis from `fail_at` on."""
    return [_step(n, lost=0 if n < fail_at else min(190, n)) for n in (5, 8, 10, 20, 50, 100)]


def _blocking(p99s: tuple[float, ...] = (10, 11, 12, 20, 60, 120)) -> list[dict[str, Any]]:
    return [_step(n, p99_ms=p99) for n, p99 in zip((5, 8, 10, 20, 50, 100), p99s, strict=True)]


def _claims(cells: list[dict[str, Any]], users: int = 8) -> dict[str, dict[str, Any]]:
    run = copy.deepcopy(RUN)
    run["options"]["users"] = users
    return {c.id: c.model_dump() for c in evaluate_claims(results(cells, run=run))}


def test_the_new_figures_read_back_as_their_own_classes() -> None:
    read = results([_memory(), _pool(_plain(), _blocking())])
    assert isinstance(read.cells[0].extra, MemoryFigures)
    assert isinstance(read.cells[1].extra, PoolFigures)


def test_c11_follows_the_typical_sessions_hash_to_json_ratio() -> None:
    assert _claims([_memory(200, 500)])["C11"]["verdict"] == HOLDS  # the guide's 0.4
    assert _claims([_memory(120, 500)])["C11"]["verdict"] == BETTER  # 0.24 < 0.3
    claim = _claims([_memory(370, 405)])["C11"]  # 0.91: the app's session on Redis 6.2
    assert claim["verdict"] == FAILS
    assert claim["figures"]["typical session: hash / JSON"] == 0.914
    assert claim["figures"]["cache entry beyond the completion (B)"] == 162
    assert "0.91 of it" in claim["summary"] and "568 B" in claim["summary"]
    assert any("holds from 0.30 to 0.50" in note for note in claim["notes"])


def test_c11_states_the_compact_hash_boundary_and_the_cost_past_it() -> None:
    holds_when = _claims([_memory(200, 500)])["C11"]["holds_when"]
    assert "at most 128 fields of at most 64 B each (hash-max-listpack-*" in holds_when
    assert "smaller than JSON (hash / JSON 0.40 to 0.67)" in holds_when
    assert "2300 B vs 1400 B for the long value session (13 fields, longest value 1002 B)" in (
        holds_when
    )
    assert "12000 B vs 2600 B for the many fields session" in holds_when
    bigger = _memory(600, 500)  # a compact hash that still costs more than JSON
    assert "not always smaller than JSON" in _claims([bigger])["C11"]["holds_when"]


def test_c11_without_its_cell_or_its_typical_record_is_inconclusive() -> None:
    claim = _claims([])["C11"]
    assert claim["verdict"] == INCONCLUSIVE and claim["figures"] == {}
    failed = {**_memory(), "status": "failed", "error": "MEMORY USAGE refused", "extra": {}}
    claim = _claims([failed])["C11"]
    assert claim["verdict"] == INCONCLUSIVE and "MEMORY USAGE refused" in claim["summary"]
    no_typical = _memory()
    del no_typical["extra"]["sessions"]["typical"]
    assert "no typical session" in _claims([no_typical])["C11"]["summary"]


def test_c13_holds_within_the_pool_and_fails_past_it_at_the_runs_users() -> None:
    cells = [_pool(_plain(fail_at=20), _blocking())]
    claim = _claims(cells, users=8)["C13"]
    assert claim["verdict"] == HOLDS, claim["summary"]
    assert claim["figures"]["plain pool: enough up to (in flight)"] == 10
    assert claim["figures"]["plain pool: not enough from (in flight)"] == 20
    assert claim["holds_when"].startswith(
        "The guide's plain pool of 10 is enough up to 10 requests in flight on this machine; "
        "at 20, 10% of requests lost Redis (the target logged 'Too many connections' 40 times"
    )
    # 16 users: the sweep's first step at or past them is 20, where the plain pool fails.
    claim = _claims(cells, users=16)["C13"]
    assert claim["verdict"] == FAILS
    assert "plain pool: lost Redis at 20 in flight (this run's users)" in claim["figures"]
    everywhere = _claims([_pool(_plain(fail_at=1000), _blocking())])["C13"]
    assert everywhere["verdict"] == HOLDS
    assert "enough at every step, up to 100 requests in flight" in everywhere["holds_when"]


def test_c13_blocking_pool_is_short_where_its_p99_doubles_past_the_pool_or_it_loses_redis() -> None:
    claim = _claims([_pool(_plain(), _blocking())])["C13"]
    # p99 12 ms at 10 in flight (the pool's size): 20 ms at 20 is within 2x, 60 ms at 50 not.
    assert claim["figures"]["blocking pool: enough up to (in flight)"] == 20
    assert claim["figures"]["blocking pool: not enough from (in flight)"] == 50
    assert "queues instead of failing" in claim["holds_when"]
    assert "p99 120.0 ms at 100 against 12.0 ms at 10" in claim["holds_when"]
    # Below the pool's size no one waits for a connection: a slow step there is not the pool's.
    early = _claims([_pool(_plain(), _blocking((10, 40, 12, 20, 22, 23)))])["C13"]
    assert early["figures"]["blocking pool: not enough from (in flight)"] == "not within the sweep"
    timing_out = _blocking((10, 11, 12, 13, 14, 15))
    timing_out[-1] = _step(100, lost=50, p99_ms=5200)
    claim = _claims([_pool(_plain(), timing_out)])["C13"]
    assert claim["figures"]["blocking pool: not enough from (in flight)"] == 100
    assert "waits past REDIS_TIMEOUT=5 s" in claim["holds_when"]


def _waited(steps: list[dict[str, Any]], waits_ms: tuple[float, ...]) -> list[dict[str, Any]]:
    return [_step(s["in_flight"], lost=s["cache_failed_open"], p99_ms=s["latency"]["p99_us"] / 1000,
                  wait_p99_ms=w) for s, w in zip(steps, waits_ms, strict=True)]  # fmt: skip


def test_c13_names_the_blocking_pools_wait_for_a_connection() -> None:
    plain = _waited(_plain(), (0.02, 0.02, 0.03, 0.05, 0.05, 0.04))
    blocking = _waited(_blocking(), (0.02, 0.03, 0.1, 8, 40, 95.5))
    claim = _claims([_pool(plain, blocking)])["C13"]
    assert claim["verdict"] == HOLDS  # the plain pool's at the run's users, as before
    # With waits timed, the blocking pool queues where a wait passes a Redis step (p50 1 ms at
    # 10 in flight): 8 ms at 20, though its response p99 stayed within 2x there.
    assert claim["figures"]["blocking pool: not enough from (in flight)"] == 20
    assert claim["figures"]["blocking pool: enough up to (in flight)"] == 10
    assert (
        "queueing from 20 (half the requests waited 2.0 ms or more for a connection, more than "
        "the 1.0 ms a Redis step took at 10 in flight)" in claim["summary"]
    )
    # Response times that grow while no request waits for a connection are not the pool's.
    cpu_bound = _waited(_blocking(), (0.02, 0.03, 0.1, 0.2, 0.5, 0.9))
    calm = _claims([_pool(plain, cpu_bound)])["C13"]["figures"]
    assert calm["blocking pool: not enough from (in flight)"] == "not within the sweep"
    assert claim["summary"].endswith(
        " Blocking pool: wait for a connection p99 95.5 ms at 100 in flight against 100 µs at 10."
    )
    figures = claim["figures"]
    assert figures["blocking pool: wait for a connection p99 at 100 in flight (ms)"] == 95.5
    assert figures["blocking pool: wait for a connection p99 at 10 in flight (ms)"] == 0.1
    step_text = figures["blocking pool at 100 in flight"]
    assert "wait for a connection p50 23.9 ms, p99 95.5 ms;" in step_text
    # The plain pool refuses instead of waiting: its refusals are in its steps.
    assert "p99 50 µs (20 refused);" in figures["plain pool at 20 in flight"]
    notes = " ".join(claim["notes"])
    assert "the app's own timing of each request for a connection" in notes
    assert "did not time" not in notes


def test_the_c13_section_shows_each_steps_wait_in_its_table_and_plot() -> None:
    plain = _waited(_plain(), (0.02, 0.02, 0.03, 0.05, 0.05, 0.04))
    blocking = _waited(_blocking(), (0.02, 0.03, 0.1, 8, 40, 95.5))
    built = results([_pool(plain, blocking)])
    built = built.model_copy(update={"claims": evaluate_claims(built)})
    section = re.search(r'<section class="claim" id="claim-C13">(.*?)</section>',
                        render_html(built), re.S)  # fmt: skip
    assert section is not None
    table = section.group(1).split("The pool&#39;s steps", 1)[1].split("</table>", 1)[0]
    assert "<th>wait p50</th><th>wait p99</th><th>refused</th>" in table
    assert "<td>blocking</td><td>100</td><td>200</td><td>0.0%</td>" in table
    assert "<td>23.9 ms</td><td>95.5 ms</td><td>0</td>" in table
    assert "<td>plain (the guide&#39;s)</td><td>20</td>" in table
    (claim,) = [c for c in built.claims if c.id == "C13"]
    fig = claim_plots.pool_steps(built, claim)
    assert fig is not None and len(fig.axes) == 3
    assert fig.axes[2].get_ylabel() == "p99 wait for a\nconnection (ms, log)"
    blocking_waits = fig.axes[2].get_lines()[1].get_ydata()
    assert list(blocking_waits) == [0.02, 0.03, 0.1, 8, 40, 95.5]
    # Results written before the app timed its waits: the two panels they can fill.
    old = results([_pool(_plain(), _blocking())])
    old_fig = claim_plots.pool_steps(old, claim)
    assert old_fig is not None and len(old_fig.axes) == 2


def test_c13_from_results_written_before_the_waits_were_timed_says_so() -> None:
    claim = _claims([_pool(_plain(), _blocking())])["C13"]
    assert claim["verdict"] == HOLDS and "wait for a connection" not in claim["summary"]
    assert not any("wait for a connection p99" in key for key in claim["figures"])
    assert "wait for a connection" not in claim["figures"]["blocking pool at 100 in flight"]
    assert any("did not time its waits" in note for note in claim["notes"])


def test_c13_without_its_cell_or_with_doubtful_steps_is_inconclusive() -> None:
    assert _claims([])["C13"]["verdict"] == INCONCLUSIVE
    failed = {**_pool([], []), "status": "failed", "error": "target did not start", "extra": {}}
    assert "target did not start" in _claims([failed])["C13"]["summary"]
    thin = _plain()
    thin[2] = _step(10, requests=10)
    assert (
        "too few requests at 10 in flight" in _claims([_pool(thin, _blocking())])["C13"]["summary"]
    )
    wrong = _blocking()
    wrong[0] = _step(5, wrong=1)
    assert "wrong answers" in _claims([_pool(_plain(), wrong)])["C13"]["summary"]
    saturated = _plain()
    saturated[1] = _step(8, generator_pct=99)  # the step at the run's 8 users
    claim = _claims([_pool(saturated, _blocking())])["C13"]
    assert claim["verdict"] == INCONCLUSIVE and "load generator was saturated" in claim["summary"]
    refused = _plain()
    refused[0] = {**_step(5, lost=200), "statuses": {"401": 200}}  # not the pool: within it
    claim = _claims([_pool(refused, _blocking())])["C13"]
    assert claim["verdict"] == INCONCLUSIVE and "401 x200" in claim["summary"]
    only_plain = _pool(_plain(), [])
    assert "swept no blocking pool" in _claims([only_plain])["C13"]["summary"]
