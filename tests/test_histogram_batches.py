"""record_values: a batch into an HdrHistogram, exactly as hdrh's record_value one by one."""

from __future__ import annotations

import random

import pytest
from hdrh.histogram import HdrHistogram
from hypothesis import given
from hypothesis import strategies as st

from hermes_bench.histograms import HIGHEST_US, LOWEST_US, new_histogram, record_values


def _one_by_one(values: list[int]) -> tuple[HdrHistogram, int]:
    """The reference: clamp each value into range (counting those above), record_value it."""
    hist = new_histogram()
    above = 0
    for value in values:
        above += value > hist.highest_trackable_value
        assert hist.record_value(min(max(value, LOWEST_US), hist.highest_trackable_value))
    return hist, above


def _assert_same(got: HdrHistogram, expected: HdrHistogram) -> None:
    assert list(got.counts) == list(expected.counts)
    assert got.get_total_count() == expected.get_total_count()
    assert (got.min_value, got.max_value) == (expected.min_value, expected.max_value)
    assert got.encode() == expected.encode()


_EDGES = [0, -5, 1, 2, 2047, 2048, 2049, 4095, 4096, 4097, 1_000_000, HIGHEST_US - 1,
          HIGHEST_US, HIGHEST_US + 1, 10**12]  # fmt: skip


@pytest.mark.parametrize("size", [1, 5, 15, 16, 17, 300])  # both sides of the numpy path
def test_a_batch_equals_recording_one_by_one(size: int) -> None:
    rng = random.Random(size)
    values = (_EDGES + [int(rng.lognormvariate(7, 3)) for _ in range(size)])[:size]
    hist = new_histogram()
    above = record_values(hist, values)
    expected, expected_above = _one_by_one(values)
    _assert_same(hist, expected)
    assert above == expected_above


@given(st.lists(st.lists(st.integers(-10, 2 * HIGHEST_US), max_size=40), max_size=5))
def test_batches_add_up_like_one_by_one(batches: list[list[int]]) -> None:
    hist = new_histogram()
    above = sum(record_values(hist, batch) for batch in batches)
    expected, expected_above = _one_by_one([v for batch in batches for v in batch])
    _assert_same(hist, expected)
    assert above == expected_above


def test_an_empty_batch_changes_nothing() -> None:
    hist = new_histogram()
    assert record_values(hist, []) == 0
    _assert_same(hist, new_histogram())
