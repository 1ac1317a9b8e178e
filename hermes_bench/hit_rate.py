"""The ideal hit rate of a request sequence: what no cache can beat.

A leaf: the scenarios report it per run, the reports draw it beside the LRU bound.
"""

from __future__ import annotations


def ideal_hit_rate(requests: int, distinct: int) -> float | None:
    """1 - distinct/requests: an unbounded, never-expiring cache hits every repeat.

    None when nothing was requested (no hit rate at all, not a rate of 0). `distinct` counts
    distinct requests over everything that shares the cache; ValueError when the two counts
    cannot belong to one sequence.
    """
    if requests < 0:
        raise ValueError(f"requests must be >= 0, got {requests}")
    if requests == 0:
        return None
    if not 1 <= distinct <= requests:
        raise ValueError(f"distinct must be between 1 and requests={requests}, got {distinct}")
    return 1.0 - distinct / requests
