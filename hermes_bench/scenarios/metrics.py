"""What Locust users record (µs latencies per scenario and outcome, counters, per-second series).

Workers ship deltas with `to_wire()`, the master adds them with `merge_wire()`; the cache
path's answered requests (lookups) travel with them, to be told HIT or MISS from the upstream's
call log at the end (see attribution.py). Latencies are
integers in microseconds; percentiles are on the 0-100 scale and named pNN (p50, p99, p99_9 for
the 99.9th), as in hermes_bench.histograms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hdrh.histogram import HdrHistogram

from hermes_bench.errors import HermesBenchError
from hermes_bench.histograms import (
    add_into,
    decode_histogram,
    latency_summary,
    new_histogram,
    record_values,
)
from hermes_bench.results.vocabulary import (
    CACHE_OUTCOMES,
    CACHE_SCENARIO,
    COUNT_PREFIX,
    FAMILIES,
    INTENDED,
    METRICS_WIRE_VERSION,
    SERVICE,
)
from hermes_bench.scenarios.attribution import HEADER, NO_OUTCOME, Lookup
from hermes_bench.scenarios.step_timings import StepReader

# Counter bumped when a latency above the histogram's 60 s ceiling is clamped to it.
LATENCY_OVER_RANGE = "latency_over_range"
# Lookups one RunMetrics holds for attribution (~200 bytes each); past it they are counted in
# ATTRIBUTION_DROPPED and those without a header outcome recorded as NO_OUTCOME at once.
MAX_LOOKUPS = 500_000
ATTRIBUTION_DROPPED = "attribution_dropped"

# Counters of Server-Timing headers that could not be read, and of steps past MAX_STEP_NAMES.
SERVER_TIMING_MALFORMED = "server_timing_malformed"
STEPS_DROPPED = "server_timing_steps_dropped"
# Responses are kept as they come and folded into the histograms and the series in batches
# (one numpy pass per histogram instead of ~1 µs of pure-Python hdrh per value), before anything
# is read, when the event loop is idle (HermesRun.fold_metrics_when_idle), and at the latest
# once this many wait: the bound on memory and on one fold's time (~3 µs a response).
FOLD_EVERY = 512

_Key = tuple[str, str]  # (scenario, outcome)
_Table = dict[_Key, HdrHistogram]
# A response not folded yet: scenario, outcome, µs, intended µs or None, answered at (time.time()),
# the target's Server-Timing header value or None.
_Pending = tuple[str, str, int, int | None, float, str | None]


class WireFormatError(HermesBenchError):
    """A metrics delta handed to merge_wire() is not one that to_wire() produces."""


def _add_into(table: _Table, key: _Key, other: HdrHistogram) -> None:
    hist = table.get(key)
    if hist is None:
        hist = table[key] = new_histogram()
    add_into(hist, other)


class RunMetrics:
    """Latencies, outcome counts, counters and a per-second series of one process or a whole run.

    Outcomes should be a small fixed set ("HIT", "429", "error"...): each (scenario, outcome)
    costs two fixed-size histograms (~140 kB each), whatever the request count. Lookups (see
    lookup()) are the one part that grows with requests, up to `max_lookups`.
    """

    def __init__(self, max_lookups: int = MAX_LOOKUPS, fold_every: int = FOLD_EVERY) -> None:
        self._max_lookups = max_lookups
        self._fold_every = fold_every
        self._service: _Table = {}
        self._intended: _Table = {}
        self._counters: dict[str, int] = {}
        self._series: dict[int, dict[str, int]] = {}  # second -> outcome -> responses
        self._lookups: list[Lookup] = []
        self._pending: list[_Pending] = []
        self._steps = StepReader()

    def reset(self) -> None:
        """Forget everything recorded: a new test starts. In place, so whoever holds this
        object (the web UI's live view) sees the new test."""
        self._service, self._intended = {}, {}
        self._counters, self._series = {}, {}
        self._lookups = []
        self._pending = []
        self._steps = StepReader()

    def record(
        self,
        scenario: str,
        outcome: str,
        latency_us: int,
        *,
        intended_latency_us: int | None = None,
        at_s: float,
        server_timing: str | None = None,
    ) -> None:
        """Record one response that finished at wall-clock `at_s` (time.time()); with the
        target's Server-Timing value, each step it names under "_step:NAME" and this outcome
        (an unreadable value is counted in SERVER_TIMING_MALFORMED, never failed)."""
        pending = self._pending
        pending.append((scenario, outcome, latency_us, intended_latency_us, at_s, server_timing))
        if len(pending) >= self._fold_every:
            self.fold()

    @property
    def pending(self) -> int:
        """Responses recorded and not folded yet."""
        return len(self._pending)

    def fold(self) -> None:
        """Add the responses recorded since the last fold to the histograms, series and
        counters. Every reader calls it first, so what is read is always exact."""
        pending = self._pending
        if not pending:
            return
        # All worked out aside first, then added at once: a Ctrl-C in the long part leaves the
        # responses pending, to be folded by the reader that writes the results.
        service: dict[_Key, list[int]] = {}
        intended: dict[_Key, list[int]] = {}
        seconds: dict[int, dict[str, int]] = {}  # second -> outcome -> responses
        counts: dict[str, int] = {}
        for scenario, outcome, latency_us, intended_us, at_s, timing in pending:
            key = (scenario, outcome)
            values = service.get(key)
            if values is None:
                values = service[key] = []
            values.append(latency_us)
            if intended_us is not None:
                values = intended.get(key)
                if values is None:
                    values = intended[key] = []
                values.append(intended_us)
            if timing is not None:
                self._fold_steps(timing, outcome, service, counts)
            if scenario.startswith(COUNT_PREFIX):
                continue  # a count, not a response: no place in the per-second request series
            second = int(at_s)
            per_second = seconds.get(second)
            if per_second is None:
                per_second = seconds[second] = {}
            per_second[outcome] = per_second.get(outcome, 0) + 1
        self._pending = []
        # hdrh silently drops out-of-range values; clamping keeps every response counted.
        over_range = 0
        for table, batch in ((self._service, service), (self._intended, intended)):
            for key, values in batch.items():
                hist = table.get(key)
                if hist is None:
                    hist = table[key] = new_histogram()
                over_range += record_values(hist, values)
        if over_range:
            counts[LATENCY_OVER_RANGE] = over_range
        series = self._series
        for second, outcomes in seconds.items():
            per_second = series.get(second)
            if per_second is None:
                series[second] = outcomes
                continue
            for outcome, n in outcomes.items():
                per_second[outcome] = per_second.get(outcome, 0) + n
        for name, n in counts.items():
            self.count(name, n)

    def _fold_steps(
        self, timing: str, outcome: str, service: dict[_Key, list[int]], counts: dict[str, int]
    ) -> None:
        """Each step of one Server-Timing value into `service`, under "_step:NAME"."""
        read = self._steps.read(timing)
        if read is None:
            counts[SERVER_TIMING_MALFORMED] = counts.get(SERVER_TIMING_MALFORMED, 0) + 1
            return
        steps, dropped = read
        if dropped:
            counts[STEPS_DROPPED] = counts.get(STEPS_DROPPED, 0) + dropped
        for scenario, step_us in steps:
            key = (scenario, outcome)
            values = service.get(key)
            if values is None:
                values = service[key] = []
            values.append(step_us)

    def lookup(
        self,
        request_hash: str,
        sent_s: float,
        answered_s: float,
        latency_us: int,
        intended_latency_us: int | None,
        header: str | None,
        server_timing: str | None = None,
    ) -> None:
        """Record one right answer of the cache path, kept for attribution from the call log.

        With a header outcome it is recorded now, under that outcome (its Server-Timing steps
        too, as record() does); without one (None) it waits for settle_lookups(), which records
        it as the log tells.
        """
        if header is not None:
            self.record(
                CACHE_SCENARIO,
                header,
                latency_us,
                intended_latency_us=intended_latency_us,
                at_s=answered_s,
                server_timing=server_timing,
            )
        self._keep((request_hash, sent_s, answered_s, latency_us, intended_latency_us, header))

    def _keep(self, lookup: Lookup) -> None:
        if len(self._lookups) < self._max_lookups:
            self._lookups.append(lookup)
            return
        self.count(ATTRIBUTION_DROPPED)
        if lookup[HEADER] is None:  # it would otherwise be in no histogram at all
            self._record_lookup(lookup, NO_OUTCOME)

    def _record_lookup(self, lookup: Lookup, outcome: str) -> None:
        _, _, answered_s, latency_us, intended_us, _ = lookup
        self.record(
            CACHE_SCENARIO, outcome, latency_us, intended_latency_us=intended_us, at_s=answered_s
        )

    @property
    def lookups(self) -> list[Lookup]:
        """The lookups held for attribution, in the order they were kept (do not modify)."""
        return self._lookups

    def settle_lookups(self, outcomes: Sequence[str | None] | None) -> None:
        """Record each lookup still waiting for an outcome under the log's (attribution order),
        or as NO_OUTCOME where the log could not tell or was not read (None); then drop them."""
        for i, lookup in enumerate(self._lookups):
            if lookup[HEADER] is None:
                outcome = outcomes[i] if outcomes is not None else None
                self._record_lookup(lookup, outcome or NO_OUTCOME)
        self._lookups = []

    def count(self, name: str, n: int = 1) -> None:
        """Add `n` to the free counter `name` (wrong_answers, sessions_verified, ...)."""
        self._counters[name] = self._counters.get(name, 0) + n

    @property
    def counters(self) -> dict[str, int]:
        """A copy of the free counters."""
        self.fold()
        return dict(self._counters)

    def outcome_count(self, outcome: str, scenario: str | None = None) -> int:
        """Responses with `outcome`, in one scenario or in all (counts and steps left out)."""
        self.fold()
        return sum(
            hist.get_total_count()
            for (sc, out), hist in self._service.items()
            if out == outcome
            and (sc == scenario if scenario is not None else not sc.startswith(COUNT_PREFIX))
        )

    def hit_rate(self, scenario: str | None = None) -> float | None:
        """HIT / (HIT + MISS + BYPASS), None when no cache outcome was recorded."""
        hits, misses, bypasses = (self.outcome_count(o, scenario) for o in CACHE_OUTCOMES)
        total = hits + misses + bypasses
        return hits / total if total else None

    def live_rows(self) -> list[dict[str, Any]]:
        """Per scenario and outcome: count and service p50/p90/p99/max in µs, for a live view."""
        self.fold()
        rows = []
        for (scenario, outcome), hist in sorted(self._service.items()):
            row: dict[str, Any] = {"scenario": scenario, "outcome": outcome}
            row["count"] = hist.get_total_count()
            for pct in (50, 90, 99):
                row[f"p{pct}_us"] = hist.get_value_at_percentile(pct)
            row["max_us"] = hist.get_max_value()
            rows.append(row)
        return rows

    def to_wire(self) -> dict[str, Any]:
        """Everything recorded since the last call, as JSON/msgpack-safe types; then reset."""
        self.fold()
        wire = {
            "version": METRICS_WIRE_VERSION,
            "histograms": self._encoded_histograms(),
            "counters": dict(sorted(self._counters.items())),
            "series": self._series_rows(),
            "lookups": self._lookups,
        }
        # Fresh tables: histograms come back lazily, only for keys that are recorded again.
        self._service, self._intended = {}, {}
        self._counters, self._series = {}, {}
        self._lookups = []
        return wire

    def merge_wire(self, data: dict[str, Any]) -> None:
        """Add a to_wire() delta (or a snapshot(), which carries the same keys) into this one."""
        if data.get("version") != METRICS_WIRE_VERSION:
            raise WireFormatError(
                f"metrics delta has version {data.get('version')!r}, "
                f"expected {METRICS_WIRE_VERSION}: master and workers must run the same "
                "hermes-bench"
            )
        histograms = data.get("histograms", {})
        unknown = sorted(set(histograms) - set(FAMILIES))
        if unknown:
            raise WireFormatError(
                f"metrics delta has histogram families {unknown}, expected only {list(FAMILIES)}"
            )
        # Decode everything before adding anything: a rejected delta leaves this one as it was.
        decoded = [
            (table, (scenario, outcome), _decode(encoded, scenario, outcome))
            for family, table in ((SERVICE, self._service), (INTENDED, self._intended))
            for scenario, outcomes in histograms.get(family, {}).items()
            for outcome, encoded in outcomes.items()
        ]
        lookups = [_lookup(row) for row in data.get("lookups", [])]
        for table, key, hist in decoded:
            _add_into(table, key, hist)
        for name, n in data.get("counters", {}).items():
            self.count(name, int(n))
        for row in data.get("series", []):
            per_second = self._series.setdefault(int(row["t"]), {})
            for outcome, n in row["outcomes"].items():
                per_second[outcome] = per_second.get(outcome, 0) + int(n)
        # Their header outcomes are in the histograms above already: kept, not recorded again.
        for lookup in lookups:
            self._keep(lookup)

    def snapshot(self) -> dict[str, Any]:
        """Summaries per scenario, outcome and family, totals, counters, series, histograms."""
        self.fold()
        scenarios: dict[str, Any] = {}
        for scenario in sorted({sc for sc, _ in self._service}):
            outcomes = sorted(out for sc, out in self._service if sc == scenario)
            scenarios[scenario] = {
                "outcomes": {out: self._family_summaries(scenario, out) for out in outcomes},
                "total": self._family_summaries(scenario),
            }
        return {
            "version": METRICS_WIRE_VERSION,
            "scenarios": scenarios,
            "total": self._family_summaries(),
            "counters": dict(sorted(self._counters.items())),
            "hit_rate": self.hit_rate(),
            "series": self._series_rows(),
            "histograms": self._encoded_histograms(),
        }

    def _family_summaries(
        self, scenario: str | None = None, outcome: str | None = None
    ) -> dict[str, dict[str, float | int]]:
        # The intended family appears only where intended times were given.
        result = {}
        for family, table in ((SERVICE, self._service), (INTENDED, self._intended)):
            hists = [
                hist
                for (sc, out), hist in table.items()
                if (sc == scenario or (scenario is None and not sc.startswith(COUNT_PREFIX)))
                and (outcome is None or out == outcome)
            ]
            if len(hists) == 1:
                result[family] = latency_summary(hists[0])
            elif hists:
                merged = new_histogram()
                for hist in hists:
                    add_into(merged, hist)
                result[family] = latency_summary(merged)
        return result

    def _encoded_histograms(self) -> dict[str, dict[str, dict[str, str]]]:
        encoded: dict[str, dict[str, dict[str, str]]] = {}
        for family, table in ((SERVICE, self._service), (INTENDED, self._intended)):
            per_scenario: dict[str, dict[str, str]] = {}
            for (scenario, outcome), hist in sorted(table.items()):
                per_scenario.setdefault(scenario, {})[outcome] = hist.encode().decode("ascii")
            encoded[family] = per_scenario
        return encoded

    def _series_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "t": second,
                "requests": sum(outcomes.values()),
                "outcomes": dict(sorted(outcomes.items())),
            }
            for second, outcomes in sorted(self._series.items())
        ]


def _lookup(row: Any) -> Lookup:
    """A lookup back from the wire (msgpack and JSON turn the tuple into a list)."""
    try:
        digest, sent_s, answered_s, latency_us, intended_us, header = row
        return (
            str(digest),
            float(sent_s),
            float(answered_s),
            int(latency_us),
            None if intended_us is None else int(intended_us),
            None if header is None else str(header),
        )
    except (TypeError, ValueError) as exc:
        raise WireFormatError(
            f"lookup {str(row)[:120]}: {exc}; expected [hash, sent_s, answered_s, latency_us, "
            "intended_us or null, header outcome or null] as to_wire() makes it"
        ) from exc


def _decode(encoded: str, scenario: str, outcome: str) -> HdrHistogram:
    try:
        return decode_histogram(encoded)
    except ValueError as exc:
        raise WireFormatError(
            f"histogram for scenario {scenario!r}, outcome {outcome!r}: {exc}; "
            "the delta was corrupted or not made by to_wire()"
        ) from exc
