"""The load generator's Server-Timing reading: the fast form agrees with the full W3C parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hermes_bench.app.server_timing import parse_server_timing, timing_entry
from hermes_bench.results.vocabulary import STEP_PREFIX
from hermes_bench.scenarios.step_timings import (
    MAX_REMEMBERED,
    MAX_STEP_NAMES,
    StepReader,
    parse_steps,
)

HEADERS = [
    # The app's own form: what the fast path reads.
    "cache-read;dur=0.412",
    "ratelimit;dur=0.212, cache-read;dur=0.412, total;dur=0.951",
    "ratelimit;dur=0.212,cache-read;dur=0.412,\ttotal;dur=0.951",
    "upstream;dur=61234.568, total;dur=61235.000",
    "total;dur=0.000",
    "a;dur=007.001",
    "db.query;dur=1.000",  # a dot inside a name
    "db;dur=1.000, db;dur=2.000",  # one step twice: summed
    "big;dur=999999999999.999",  # twelve digits of ms: the fast path's largest
    # Other forms, read by the full parser.
    "big;dur=9999999999999.999",  # thirteen digits
    "a;dur=1",
    "a;dur=1.5",
    "a;dur=0.2125",
    "a;dur=1e3",
    "a;dur=1.000,",
    "a;DUR=1.000",
    'db;desc="a, b; c";dur=3.000',
    "miss, edge;dur=7.000",
    "cdn-cache;desc=HIT",
    " a;dur=1.000",
    "a;dur=1.000 ",
    "",
    "   ",
    # Malformed: None from both.
    "a;dur=abc",
    "a;dur=-1.000",
    "a;dur=nan",
    "a;dur=",
    "a b;dur=1.000",
    "a;dur=1.000,,b;dur=2.000",
    ";dur=1.000",
    "a;dur=1.000 junk",
    "ä;dur=1.000",
    "a;dur=1.000\nb;dur=2.000",
    'a;desc="unterminated;dur=1.000',
]


@pytest.mark.parametrize("header", HEADERS)
def test_the_fast_reading_agrees_with_the_full_parser(header: str) -> None:
    assert parse_steps(header) == parse_server_timing(header)


_NAMES = st.sampled_from(["ratelimit", "cache-read", "upstream", "total", "a.b", "x"])


@given(st.lists(st.tuples(_NAMES, st.integers(0, 10**15)), max_size=6))
def test_what_the_app_writes_reads_the_same_both_ways(steps: list[tuple[str, int]]) -> None:
    header = ", ".join(timing_entry(name, us * 1000) for name, us in steps)
    assert parse_steps(header) == parse_server_timing(header)


@given(st.text(alphabet='ab;=.,0123456789 \t-"', max_size=40))
def test_any_text_reads_the_same_both_ways(header: str) -> None:
    assert parse_steps(header) == parse_server_timing(header)


def test_the_reader_names_step_scenarios_and_remembers_what_it_read() -> None:
    reader = StepReader()
    header = "ratelimit;dur=0.212, total;dur=0.951"
    expected = (((STEP_PREFIX + "ratelimit", 212), (STEP_PREFIX + "total", 951)), 0)
    assert reader.read(header) == expected
    assert reader.read(header) == expected  # remembered: the same answer
    assert reader.read("total;dur=abc") is None
    assert reader.read("") == ((), 0)


def test_names_past_the_cap_are_dropped_every_time_they_come() -> None:
    reader = StepReader()
    for i in range(MAX_STEP_NAMES):
        assert reader.read(f"s{i};dur=1.000") == (((f"{STEP_PREFIX}s{i}", 1000),), 0)
    late = "s0;dur=2.000, late;dur=3.000"
    assert reader.read(late) == (((f"{STEP_PREFIX}s0", 2000),), 1)
    assert reader.read(late) == (((f"{STEP_PREFIX}s0", 2000),), 1)  # from memory: dropped again
    # Past MAX_REMEMBERED values the memory starts again; the names stay as they were.
    for i in range(MAX_REMEMBERED):
        reader.read(f"s1;dur={i}.000")
    assert reader.read(late) == (((f"{STEP_PREFIX}s0", 2000),), 1)
