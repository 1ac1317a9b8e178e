"""Hit-rate upper bounds: stack distances and the LRU curve agree with a brute-force LRU cache."""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Hashable, Sequence

import pytest

from hermes_bench.errors import ConfigError
from hermes_bench.hit_rate import ideal_hit_rate
from hermes_bench.reports.bounds import (
    COMPULSORY_MISS,
    default_sizes,
    lru_hit_rate_curve,
    stack_distances,
)
from hermes_bench.scenarios.workload import zipf_sequence


def _brute_lru_hit_rate(sequence: Sequence[Hashable], capacity: int) -> float:
    """Simulate an LRU cache of `capacity` entries, starting empty."""
    cache: OrderedDict[Hashable, None] = OrderedDict()
    hits = 0
    for key in sequence:
        if key in cache:
            hits += 1
            cache.move_to_end(key)
        elif capacity > 0:
            cache[key] = None
            if len(cache) > capacity:
                cache.popitem(last=False)
    return hits / len(sequence)


def _brute_stack_distances(sequence: Sequence[Hashable]) -> list[int]:
    """The O(n·m) list walk: position of the key in the recency stack, most recent first."""
    stack: list[Hashable] = []
    distances = []
    for key in sequence:
        if key in stack:
            distances.append(stack.index(key))
            stack.remove(key)
        else:
            distances.append(COMPULSORY_MISS)
        stack.insert(0, key)
    return distances


def _random_sequence(seed: int, length: int, keys: int) -> list[int]:
    rng = random.Random(seed)
    # Skewed draws so small caches hit sometimes and large ones often.
    return [int(rng.paretovariate(1.2)) % keys for _ in range(length)]


@pytest.mark.parametrize("seed", range(6))
def test_stack_distances_match_list_walk(seed: int) -> None:
    sequence = _random_sequence(seed, 600, 40 + 20 * seed)
    assert stack_distances(sequence) == _brute_stack_distances(sequence)


def test_stack_distances_small_example() -> None:
    assert stack_distances(["a", "b", "a", "a", "c", "b"]) == [-1, -1, 1, 0, -1, 2]
    assert stack_distances([]) == []


def test_first_accesses_are_compulsory_misses() -> None:
    sequence = _random_sequence(7, 500, 60)
    seen: set[int] = set()
    for key, distance in zip(sequence, stack_distances(sequence), strict=True):
        assert (distance == COMPULSORY_MISS) == (key not in seen)
        seen.add(key)
    all_distinct = list(range(50))
    assert lru_hit_rate_curve(all_distinct, [1, 10, 50, 100]) == {
        1: 0.0,
        10: 0.0,
        50: 0.0,
        100: 0.0,
    }


@pytest.mark.parametrize("seed", range(8))
def test_lru_curve_matches_brute_force(seed: int) -> None:
    sequence = _random_sequence(100 + seed, 1500, 30 + 25 * seed)
    distinct = len(set(sequence))
    sizes = [0, 1, 2, 3, 5, 8, 13, distinct - 1, distinct, distinct + 1, 10 * distinct]
    curve = lru_hit_rate_curve(sequence, sizes)
    for size in sizes:
        assert curve[size] == pytest.approx(_brute_lru_hit_rate(sequence, size), abs=1e-12)
    # A cache as large as the distinct count never evicts: it reaches the ideal hit rate.
    ideal = ideal_hit_rate(len(sequence), distinct)
    assert ideal is not None
    assert curve[distinct] == pytest.approx(ideal)
    assert curve[10 * distinct] == pytest.approx(ideal)
    assert curve[distinct - 1] <= ideal


def test_lru_curve_is_monotone_in_size() -> None:
    sequence = zipf_sequence(0.9, 500, 0.1, 3, 5000)
    sizes = list(range(0, 600, 7))
    curve = lru_hit_rate_curve(sequence, sizes)
    rates = [curve[size] for size in sizes]
    assert rates == sorted(rates)
    assert curve[0] == 0.0


def test_lru_curve_edges() -> None:
    assert lru_hit_rate_curve([], [1, 10]) == {}
    assert lru_hit_rate_curve(["a"] * 4, [1]) == {1: 0.75}
    with pytest.raises(ConfigError, match="-1"):
        lru_hit_rate_curve(["a"], [-1])
    with pytest.raises(ConfigError, match=r"2\.5"):
        lru_hit_rate_curve(["a"], [2.5])  # type: ignore[list-item]


def test_default_sizes() -> None:
    sizes = default_sizes(10_000)
    assert sizes[0] == 1
    assert sizes[-1] == 10_000
    assert len(sizes) == 12
    assert sizes == sorted(set(sizes))
    assert all(isinstance(size, int) for size in sizes)
    small = default_sizes(5)
    assert small == sorted(set(small))
    assert small[0] == 1
    assert small[-1] == 5
    assert default_sizes(1) == [1]
    with pytest.raises(ConfigError, match="catalogue_size"):
        default_sizes(0)
