"""Upper bounds of a cache's hit rate for one request sequence: ideal, and LRU by cache size.

Pure: takes a sequence, returns numbers. Capacities are counted in entries (one per distinct
request), the cache starts empty and nothing expires, so these bound what a real run can reach.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from hermes_bench.errors import ConfigError
from hermes_bench.hit_rate import ideal_hit_rate
from hermes_bench.results.model import Bounds, LruPoint

# Stack distance of a first access: no cache of any size holds a key never asked for before.
COMPULSORY_MISS = -1
DEFAULT_POINTS = 12


def stack_distances(sequence: Sequence[Hashable]) -> list[int]:
    """LRU stack distance of each access: distinct other keys touched since the key's last access.

    0 = the same key as the access before; COMPULSORY_MISS (-1) for a key's first access.
    O(n log n): a Fenwick tree holds a 1 at each key's last-access position, so the keys touched
    since position p are the ones after p.
    """
    n = len(sequence)
    tree = [0] * (n + 1)  # 1-based Fenwick tree over access positions
    last: dict[Hashable, int] = {}
    distances = [COMPULSORY_MISS] * n
    live = 0  # ones in the tree = distinct keys so far
    for pos, key in enumerate(sequence, start=1):
        prev = last.get(key)
        if prev is None:
            live += 1
        else:
            ones_upto_prev = 0
            i = prev
            while i:
                ones_upto_prev += tree[i]
                i &= i - 1
            distances[pos - 1] = live - ones_upto_prev
            i = prev
            while i <= n:
                tree[i] -= 1
                i += i & -i
        i = pos
        while i <= n:
            tree[i] += 1
            i += i & -i
        last[key] = pos
    return distances


def _whole(value: object, minimum: int) -> bool:
    return (
        isinstance(value, int | np.integer)
        and not isinstance(value, bool)
        and bool(value >= minimum)
    )


def lru_hit_rate_curve(sequence: Sequence[Hashable], sizes: Sequence[int]) -> dict[int, float]:
    """Hit rate of an LRU cache of each capacity (entries) over `sequence`, starting empty.

    Convention: an access hits a cache of capacity c iff its stack distance d satisfies
    0 <= d < c (0-based: d = 0 hits a 1-entry cache). An empty sequence gives an empty dict.
    """
    for size in sizes:
        if not _whole(size, 0):
            raise ConfigError(f"cache sizes must be whole numbers >= 0 (entries), got {size!r}")
    if not sequence:
        return {}
    distances = np.asarray(stack_distances(sequence), dtype=np.int64)
    reuses = np.sort(distances[distances != COMPULSORY_MISS])
    hits = np.searchsorted(reuses, np.asarray(sizes, dtype=np.int64), side="left")
    return {int(size): int(h) / len(sequence) for size, h in zip(sizes, hits, strict=True)}


def sequence_bounds(sequence: Sequence[Hashable], catalogue_size: int) -> Bounds:
    """Ideal and LRU hit rates of one request sequence, at log-spaced sizes up to the catalogue."""
    distinct = len(set(sequence))
    curve = lru_hit_rate_curve(sequence, default_sizes(catalogue_size))
    return Bounds(
        requests=len(sequence),
        distinct=distinct,
        ideal_hit_rate=ideal_hit_rate(len(sequence), distinct),
        lru=[LruPoint(size=size, hit_rate=rate) for size, rate in sorted(curve.items())],
    )


def default_sizes(catalogue_size: int, points: int = DEFAULT_POINTS) -> list[int]:
    """About `points` log-spaced cache sizes from 1 to catalogue_size: unique, sorted, both ends."""
    if not _whole(catalogue_size, 1):
        raise ConfigError(f"catalogue_size must be a whole number >= 1, got {catalogue_size!r}")
    if not _whole(points, 2):
        raise ConfigError(f"points must be a whole number >= 2, got {points!r}")
    spaced = np.rint(np.geomspace(1, catalogue_size, points)).astype(np.int64)
    return [int(size) for size in np.unique(spaced)]
