"""What one fault of the outage cell measured, from the requests as the client saw them: pure.

A request belongs to the fault ("during") when it was in flight at any moment from the fault's
start until Redis answered again; "before" holds those answered before the fault began, "after"
those sent once Redis was back. A chat request is served by Redis
when the limiter decided it and the cache was read (and, on a miss, written) in Redis; a 200
without one of them failed open.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hermes_bench.histograms import clamp_us, latency_summary, new_histogram
from hermes_bench.results.model import LatencySummary, OutagePhase, OutageRequests
from hermes_bench.results.vocabulary import OUTAGE_PHASES

CHAT, SESSION_READ, SESSION_WRITE, HEALTHZ = "chat", "session read", "session write", "healthz"
REQUEST_KINDS = (CHAT, SESSION_READ, SESSION_WRITE, HEALTHZ)
_SESSION_KINDS = {SESSION_READ: "read", SESSION_WRITE: "write"}


@dataclass(frozen=True)
class Sent:
    """One request of the outage load: when it was sent, how long it took, what came back."""

    kind: str  # one of REQUEST_KINDS
    sent_s: float  # seconds from the start of the load
    elapsed_us: int
    status: str  # "200", "503"..., or the transport error's name
    headers: Mapping[str, str]  # names in lower case
    right_answer: bool = True
    upstream_us: int = 0  # the upstream's part, from the app's Server-Timing

    @property
    def beside_upstream_us(self) -> int:
        """What the request took apart from waiting on the upstream (Redis, the app, the
        network)."""
        return max(0, self.elapsed_us - self.upstream_us)


@dataclass(frozen=True)
class ChatOutcome:
    """How Redis took part in one chat answer, from its headers."""

    served_by_redis: bool
    limiter_failed_open: bool
    cache_write_failed: bool


def chat_outcome(status: str, headers: Mapping[str, str]) -> ChatOutcome:
    """Read the app's failure headers: X-RateLimit-Status, X-Cache, X-Cache-Write."""
    limiter_open = headers.get("x-ratelimit-status") == "fail-open"
    limiter_decided = "x-ratelimit-limit" in headers and not limiter_open
    cache = headers.get("x-cache")
    write_failed = headers.get("x-cache-write") in ("failed", "skipped")
    cache_in_redis = cache == "HIT" or (cache == "MISS" and not write_failed)
    return ChatOutcome(
        served_by_redis=status == "200" and limiter_decided and cache_in_redis,
        limiter_failed_open=limiter_open,
        cache_write_failed=write_failed,
    )


def is_server_error(status: str) -> bool:
    """5xx, or no HTTP answer at all (the transport error's name)."""
    return not status.isdigit() or status.startswith("5")


def phase_bounds(
    fault_start_s: float, fault_end_s: float, load_end_s: float
) -> dict[str, tuple[float, float]]:
    """(start, end) of before, during and after, in seconds from the load's start."""
    spans = ((0.0, fault_start_s), (fault_start_s, fault_end_s), (fault_end_s, load_end_s))
    return dict(zip(OUTAGE_PHASES, spans, strict=True))


def phase_of(sent: Sent, fault_start_s: float, fault_end_s: float) -> str:
    """before, during or after: during when the request was in flight during the fault."""
    if sent.sent_s >= fault_end_s:
        return "after"
    if sent.sent_s + sent.elapsed_us / 1e6 >= fault_start_s:
        return "during"
    return "before"


def split_phases(
    sent: Iterable[Sent], fault_start_s: float, fault_end_s: float
) -> dict[str, list[Sent]]:
    """The requests of each phase, in the order they were sent."""
    phases: dict[str, list[Sent]] = {phase: [] for phase in OUTAGE_PHASES}
    for s in sorted(sent, key=_sent):
        phases[phase_of(s, fault_start_s, fault_end_s)].append(s)
    return phases


def phase_figures(chosen: list[Sent], start_s: float, end_s: float) -> OutagePhase:
    """The figures of one phase from its requests (split_phases) and its span."""
    chats = [s for s in chosen if s.kind == CHAT]
    outcomes = [chat_outcome(s.status, s.headers) for s in chats]
    ok = [(s, o) for s, o in zip(chats, outcomes, strict=True) if s.status == "200"]
    span = end_s - start_s
    return OutagePhase(
        start_s=round(start_s, 3),
        end_s=round(end_s, 3),
        requests=len(chats),
        throughput_rps=round(len(chats) / span, 1) if span > 0 else 0.0,
        statuses=_statuses(chats),
        hits=sum(s.headers.get("x-cache") == "HIT" for s, _ in ok),
        served_by_redis=sum(o.served_by_redis for _, o in ok),
        failed_open=sum(not o.served_by_redis for _, o in ok),
        limiter_failed_open=sum(o.limiter_failed_open for o in outcomes),
        limiter_failed_closed=sum(
            s.headers.get("x-ratelimit-status") == "fail-closed" for s in chats
        ),
        cache_write_failed=sum(o.cache_write_failed for o in outcomes),
        server_errors=sum(is_server_error(s.status) for s in chats),
        wrong_answers=sum(not s.right_answer for s, _ in ok),
        latency=_latency(s.elapsed_us for s in chats),
        beside_upstream=_latency(s.beside_upstream_us for s in chats),
        sessions={
            name: _requests([s for s in chosen if s.kind == kind])
            for kind, name in _SESSION_KINDS.items()
        },
        healthz=_requests([s for s in chosen if s.kind == HEALTHZ]),
    )


def outage_phases(
    sent: list[Sent], fault_start_s: float, fault_end_s: float, load_end_s: float
) -> dict[str, OutagePhase]:
    """before, during and after, each from its own requests."""
    phases = split_phases(sent, fault_start_s, fault_end_s)
    bounds = phase_bounds(fault_start_s, fault_end_s, load_end_s)
    return {name: phase_figures(phases[name], start, end) for name, (start, end) in bounds.items()}


def detected_s(sent: Iterable[Sent], fault_start_s: float, fault_end_s: float) -> float | None:
    """Fault start to the answer of the first /healthz in flight during the fault that said
    503; None when none did."""
    for s in sorted(sent, key=_sent):
        during = phase_of(s, fault_start_s, fault_end_s) == "during"
        if s.kind == HEALTHZ and during and s.status == "503":
            return round(s.sent_s + s.elapsed_us / 1e6 - fault_start_s, 3)
    return None


def healthy_again_s(sent: Iterable[Sent], fault_end_s: float) -> float | None:
    """Fault end to the answer of the first /healthz sent after it that said 200."""
    for s in sorted(sent, key=_sent):
        if s.kind == HEALTHZ and s.sent_s >= fault_end_s and s.status == "200":
            return round(max(0.0, s.sent_s + s.elapsed_us / 1e6 - fault_end_s), 3)
    return None


def recovered_s(sent: Iterable[Sent], fault_end_s: float) -> float | None:
    """Fault end to the answer of the first chat request after it from which on every chat
    request was served by Redis; None when the last one was not."""
    chats = sorted((s for s in sent if s.kind == CHAT and s.sent_s >= fault_end_s), key=_sent)
    first = None
    for s in reversed(chats):  # the run of served requests at the end, back to its start
        if not chat_outcome(s.status, s.headers).served_by_redis:
            break
        first = s
    if first is None:
        return None
    return round(max(0.0, first.sent_s + first.elapsed_us / 1e6 - fault_end_s), 3)


def _sent(s: Sent) -> float:
    return s.sent_s


def _statuses(sent: Iterable[Sent]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in sent:
        counts[s.status] = counts.get(s.status, 0) + 1
    return dict(sorted(counts.items()))


def _latency(values_us: Iterable[int]) -> LatencySummary:
    histogram = new_histogram()
    for value in values_us:
        histogram.record_value(clamp_us(value))
    return LatencySummary.model_validate(latency_summary(histogram))


def _requests(sent: list[Sent]) -> OutageRequests:
    return OutageRequests(
        requests=len(sent),
        statuses=_statuses(sent),
        latency=_latency(s.elapsed_us for s in sent),
    )
