"""HIT or MISS from the upstream's call log: a pure function of requests and calls."""

from __future__ import annotations

import json
import random
from typing import get_args

import pytest

from hermes_bench.results.model import CacheAccounting
from hermes_bench.scenarios.attribution import (
    CLOCK_TOLERANCE_S,
    FROM_BOTH,
    FROM_HEADER,
    FROM_LOG,
    Lookup,
    attribute,
    outcome_source,
)

T0 = 1_700_000_000.0
MS = 0.001


def _lookup(digest: str, sent_ms: float, answered_ms: float, header: str | None = None) -> Lookup:
    return (digest, T0 + sent_ms * MS, T0 + answered_ms * MS, 1000, None, header)


def _call(digest: str, at_ms: float) -> list[object]:
    return [digest, T0 + at_ms * MS]


def test_a_call_in_flight_is_a_miss_and_none_a_hit() -> None:
    lookups = [_lookup("a", 0, 20), _lookup("a", 30, 31), _lookup("b", 40, 60)]
    calls = [_call("a", 1), _call("b", 10)]  # b's call came before b was sent
    found = attribute(lookups, calls)
    assert found.outcomes == ["MISS", "HIT", "HIT"]
    assert (found.hits, found.misses, found.unattributed) == (2, 1, 0)
    assert found.hit_rate == pytest.approx(2 / 3)
    assert found.log_outcomes == 3 and found.header_outcomes == 0
    assert found.compared == 0 and found.agreement is None


def test_the_window_is_inclusive_and_widened_by_the_tolerance_only() -> None:
    tolerance_ms = CLOCK_TOLERANCE_S / MS
    lookups = [_lookup("a", 10, 20)]
    for at_ms, outcome in [
        (10, "MISS"),  # at the send
        (20, "MISS"),  # at the answer
        (10 - tolerance_ms / 2, "MISS"),
        (20 + tolerance_ms / 2, "MISS"),
        (10 - tolerance_ms * 2, "HIT"),
        (20 + tolerance_ms * 2, "HIT"),
    ]:
        assert attribute(lookups, [_call("a", at_ms)]).outcomes == [outcome], at_ms
    assert attribute(lookups, [_call("a", 0)], tolerance_s=0.011).outcomes == ["MISS"]


def test_requests_one_coalesced_call_answered_are_each_a_miss() -> None:
    # Two requests in flight together, one upstream call: both windows hold it. A third that
    # joined after the call had arrived cost nothing: a HIT.
    lookups = [_lookup("a", 0, 25), _lookup("a", 2, 25), _lookup("a", 10, 25)]
    found = attribute(lookups, [_call("a", 5)])
    assert found.outcomes == ["MISS", "MISS", "HIT"]


def test_another_request_hash_is_never_counted() -> None:
    found = attribute([_lookup("a", 0, 20)], [_call("b", 5), _call("c", 6)])
    assert found.outcomes == ["HIT"]


def test_a_log_out_of_order_still_reads() -> None:
    calls = [_call("a", 50), _call("a", 5), _call("a", 100)]
    found = attribute([_lookup("a", 0, 10), _lookup("a", 20, 30)], calls)
    assert found.outcomes == ["MISS", "HIT"]


def _reference_app_run(requests: int, seed: int) -> tuple[list[Lookup], list[list[object]]]:
    """One user in front of a cache like the reference app's: X-Cache says what it did, and a
    MISS calls the upstream 1 ms after the send and is answered after 20 ms."""
    rng = random.Random(seed)
    cached: set[str] = set()
    lookups: list[Lookup] = []
    calls: list[list[object]] = []
    now_ms = 0.0
    for _ in range(requests):
        digest = f"prompt-{min(int(rng.paretovariate(1.0)), 40)}"
        if digest in cached:
            lookups.append(_lookup(digest, now_ms, now_ms + 0.6, "HIT"))
            now_ms += 0.6
        else:
            calls.append(_call(digest, now_ms + 1))
            lookups.append(_lookup(digest, now_ms, now_ms + 21, "MISS"))
            cached.add(digest)
            now_ms += 21
    return lookups, calls


def test_a_cache_that_says_what_it_did_agrees_with_the_log_everywhere() -> None:
    lookups, calls = _reference_app_run(500, seed=3)
    found = attribute(lookups, calls)
    headers = [lookup[5] for lookup in lookups]
    assert found.outcomes == headers
    assert found.compared == 500 and found.agreement == 1.0 and found.mismatches == {}
    assert found.misses == len(calls) and found.hits == 500 - len(calls) > 0
    assert found.header_outcomes == 500 and found.log_outcomes == 0


def test_mismatches_are_counted_by_kind() -> None:
    lookups = [
        _lookup("a", 0, 20, "HIT"),  # claims a hit, but its call reached the upstream
        _lookup("b", 30, 31, "MISS"),  # claims a miss, no call came
        _lookup("c", 40, 41, "BYPASS"),  # the same for a bypass
        _lookup("d", 50, 70, "BYPASS"),  # a bypass that called: agrees
        _lookup("e", 80, 81, "STALE"),  # a value we cannot compare
        _lookup("f", 90, 91),  # no header: the log alone tells
    ]
    found = attribute(lookups, [_call("a", 5), _call("d", 55)])
    assert found.outcomes == ["MISS", "HIT", "HIT", "MISS", "HIT", "HIT"]
    assert (found.compared, found.agreed) == (4, 1)
    assert found.agreement == 0.25
    assert found.mismatches == {
        "header BYPASS, log HIT": 1,
        "header HIT, log MISS": 1,
        "header MISS, log HIT": 1,
    }
    assert found.header_outcomes == 5 and found.log_outcomes == 1


def test_past_a_full_log_nothing_is_attributed() -> None:
    lookups = [_lookup("a", 0, 20), _lookup("b", 30, 31), _lookup("c", 200, 220)]
    calls = [_call("a", 5), _call("z", 100)]  # the last call logged, then the log was full
    found = attribute(lookups, calls, calls_log_dropped=7)
    assert found.outcomes == ["MISS", "HIT", None]
    assert found.unattributed == 1 and found.hits + found.misses == 2


def test_without_a_log_nothing_is_attributed_but_headers_are_counted() -> None:
    found = attribute([_lookup("a", 0, 1, "HIT"), _lookup("b", 2, 3)], None)
    assert found.outcomes == [None, None]
    assert found.unattributed == 2 and found.header_outcomes == 1
    assert found.hit_rate is None and found.agreement is None


def test_summary_is_json_and_leaves_out_the_outcomes() -> None:
    lookups, calls = _reference_app_run(50, seed=1)
    summary = attribute(lookups, calls).summary()
    assert json.loads(json.dumps(summary)) == summary
    assert "outcomes" not in summary and summary["agreement"] == 1.0


@pytest.mark.parametrize(
    ("header", "log", "source"),
    [(5, 0, FROM_HEADER), (0, 5, FROM_LOG), (3, 2, FROM_BOTH), (0, 0, None)],
)
def test_outcome_source(header: int, log: int, source: str | None) -> None:
    assert outcome_source(header, log) == source


def test_the_sources_are_the_ones_the_model_knows() -> None:
    allowed = get_args(CacheAccounting.model_fields["outcome_source"].annotation)
    assert set(get_args(allowed[0])) == {FROM_HEADER, FROM_LOG, FROM_BOTH}
