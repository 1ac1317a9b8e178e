"""HIT or MISS from the fake upstream's call log, for any gateway, with or without a cache header.

Pure: data in, data out. A request is a MISS exactly when a call with its request hash reached
the upstream while the request was in flight (from its send to its answer, both time.time() of
this machine, as the upstream's arrival times are); otherwise it is a HIT.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hermes_bench.results.vocabulary import BYPASS, HIT, MISS

# One answered cache-path request, as the load generator keeps it (a plain tuple: it is built
# once per request): (request hash, sent at, answered at, service µs, intended µs or None,
# the outcome its cache header gave, or None when it sent none). Times are time.time() seconds.
Lookup = tuple[str, float, float, int, int | None, str | None]
HEADER = 5  # where the header outcome sits in a Lookup

# Both ends stamp the same clock and a call arrives strictly inside its request's window, so
# the slack only covers the clock's granularity and small steps. It is kept well below any
# upstream latency: a wider one would turn a HIT sent just after a MISS's call into a MISS.
CLOCK_TOLERANCE_S = 0.001

# The outcome of a right answer whose HIT or MISS neither its header nor the log tells.
NO_OUTCOME = "OK"

# What the outcome histograms of a run came from (CacheAccounting.outcome_source).
FROM_HEADER = "header"
FROM_LOG = "upstream log"
FROM_BOTH = "header and upstream log"

# A header outcome says whether the request went to the upstream: HIT did not, these did.
_WENT_UPSTREAM = frozenset({MISS, BYPASS})


@dataclass(frozen=True)
class Attribution:
    """The log's outcome per request (HIT, MISS, or None when the log cannot tell), its counts,
    and how far the cache headers, where there were any, agree with it."""

    outcomes: list[str | None]
    hits: int = 0
    misses: int = 0
    unattributed: int = 0
    # Requests whose header gave an outcome; those without one whose outcome the log gave.
    header_outcomes: int = 0
    log_outcomes: int = 0
    compared: int = 0
    agreed: int = 0
    # "header HIT, log MISS" -> requests; only kinds that happened.
    mismatches: dict[str, int] = field(default_factory=dict)

    @property
    def agreement(self) -> float | None:
        """Share of the requests with a HIT/MISS/BYPASS header whose header the log confirms."""
        return self.agreed / self.compared if self.compared else None

    @property
    def hit_rate(self) -> float | None:
        """HIT / (HIT + MISS) by the log, over every request it told."""
        told = self.hits + self.misses
        return self.hits / told if told else None

    def summary(self) -> dict[str, Any]:
        """The figures without the per-request outcomes, JSON-ready."""
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hit_rate,
            "unattributed": self.unattributed,
            "header_outcomes": self.header_outcomes,
            "log_outcomes": self.log_outcomes,
            "compared": self.compared,
            "agreed": self.agreed,
            "agreement": self.agreement,
            "mismatches": dict(sorted(self.mismatches.items())),
        }


def attribute(
    lookups: Sequence[Lookup],
    calls_log: Iterable[Sequence[Any]] | None,
    *,
    calls_log_dropped: int = 0,
    tolerance_s: float = CLOCK_TOLERANCE_S,
) -> Attribution:
    """Each request is a MISS when a call of its hash arrived between its send and its answer
    (inclusive, widened by `tolerance_s` each side), else a HIT.

    Every request whose window holds a call of its hash is a MISS: two requests in flight
    together that one upstream call answered (a gateway coalescing them) are both MISSes, and a
    request that joined a call already under way before it was sent is a HIT, as it cost no
    call. Another client calling the upstream with the same request while one is in flight
    makes it a MISS too. `calls_log` is [hash, arrival] in arrival order, None when it could not
    be read (nothing is attributed then); when the upstream stopped logging
    (`calls_log_dropped` > 0), requests answered after its last logged call are left
    unattributed (None), as a call of theirs may be among those not logged.
    """
    arrivals: dict[str, list[float]] = {}
    last_logged = float("-inf")
    for digest, at_s in calls_log or ():
        arrivals.setdefault(digest, []).append(at_s)
        last_logged = max(last_logged, at_s)
    for arrived in arrivals.values():
        arrived.sort()  # arrival order already, unless the clock stepped back
    incomplete = calls_log is None or calls_log_dropped > 0
    outcomes: list[str | None] = []
    counts = {HIT: 0, MISS: 0}
    unattributed = header_outcomes = log_outcomes = compared = agreed = 0
    mismatches: dict[str, int] = {}
    for digest, sent_s, answered_s, _, _, header in lookups:
        if header is not None:
            header_outcomes += 1
        start, end = sent_s - tolerance_s, answered_s + tolerance_s
        if incomplete and end > last_logged:
            outcomes.append(None)
            unattributed += 1
            continue
        outcome = HIT
        calls = arrivals.get(digest)
        if calls is not None:
            first = bisect.bisect_left(calls, start)
            if first < len(calls) and calls[first] <= end:
                outcome = MISS
        outcomes.append(outcome)
        counts[outcome] += 1
        if header is None:
            log_outcomes += 1
        elif header == HIT or header in _WENT_UPSTREAM:
            compared += 1
            if (header == HIT) == (outcome == HIT):
                agreed += 1
            else:
                kind = f"header {header}, log {outcome}"
                mismatches[kind] = mismatches.get(kind, 0) + 1
    return Attribution(
        outcomes=outcomes,
        hits=counts[HIT],
        misses=counts[MISS],
        unattributed=unattributed,
        header_outcomes=header_outcomes,
        log_outcomes=log_outcomes,
        compared=compared,
        agreed=agreed,
        mismatches=mismatches,
    )


def outcome_source(header_outcomes: int, log_outcomes: int) -> str | None:
    """Where a run's cache outcomes came from, given how many each source gave; None: neither."""
    if header_outcomes and log_outcomes:
        return FROM_BOTH
    if log_outcomes:
        return FROM_LOG
    return FROM_HEADER if header_outcomes else None
