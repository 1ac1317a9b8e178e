"""When Redis fails: one verdict per fault of the outage cell, pure, from its figures.

What is judged is the app's side of the guide's troubleshooting section: that while Redis is
killed, hung, slowed or full the app keeps answering, waits on Redis at most one REDIS_TIMEOUT,
marks and counts every answer that did without Redis, says so in /healthz, and serves from
Redis again once it is back. Each check compares a figure of the fault with one measured
before it on the same target, so the bounds move with the machine, not with a constant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hermes_bench.reports.load_reasons import load_reasons
from hermes_bench.results.model import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_MEASURED,
    Claim,
    OutageFault,
    OutageFigures,
    OutagePhase,
    Results,
)
from hermes_bench.results.vocabulary import OUTAGE_FAULTS

MIN_DURING = 10  # chat requests in flight during a fault, for a verdict on it
# A request may wait on Redis one REDIS_TIMEOUT, once, and /healthz one PING timeout: this many
# of them bound the wait, the half for the jitter of a wait that ran out exactly (see bounded).
BOUND_TIMEOUTS = 1.5


@dataclass(frozen=True)
class Check:
    """One thing the app should do under a fault, and what it did."""

    passed: bool
    text: str
    timed: bool = False  # a bound on time: a busy machine can break it, not only the app


@dataclass(frozen=True)
class _Fault:
    title: str
    guide: str
    reading: str


_FAULTS = {
    "killed": _Fault(
        "Redis killed and started again",
        'Troubleshooting, "Connection Refused": redis.exceptions.ConnectionError: Error '
        "connecting to Redis. Verify Redis is running.",
        "While Redis is down the app keeps answering chat (it fails open, marked and counted), "
        "sessions answer 503 at once, /healthz says degraded, and it serves from Redis again "
        "within the breaker's cool-down and one REDIS_TIMEOUT of Redis coming back.",
    ),
    "hung": _Fault(
        "Redis hung (a stopped process)",
        'Troubleshooting, "Timeout": redis.exceptions.TimeoutError: Timeout reading from '
        "socket. Increase timeout: REDIS_TIMEOUT=10.",
        "A hung Redis costs a request at most one REDIS_TIMEOUT, once; then the breaker skips "
        "Redis; chat fails open (marked and counted), sessions answer 503, /healthz answers "
        "503 within its own timeout, and Redis serves again once it answers.",
    ),
    "slowed": _Fault(
        "Redis slowed (every client paused part of the time)",
        '~5ms overhead per Redis operation (negligible); Troubleshooting, "Timeout": verify '
        "the Redis instance isn't overloaded.",
        "While Redis is slow but answers within REDIS_TIMEOUT, nothing fails open and nothing "
        "errs: requests only take longer, by what Redis makes them wait.",
    ),
    "full": _Fault(
        "Redis full (maxmemory reached, noeviction)",
        'Troubleshooting, "Out of Memory": OOM command not allowed when used memory > '
        "'maxmemory'.",
        "While Redis refuses writes the app keeps answering: cached answers are still served "
        "and every refused cache write is marked (X-Cache-Write: failed) and counted, or, with "
        "RATE_LIMIT_ON_REDIS_ERROR=closed, the limiter refuses what it cannot count with 503, "
        "marked and counted; session writes get 500 at once, and /healthz names the error.",
    ),
}


def outage_figures(results: Results) -> OutageFigures | None:
    """The outage cell's figures; None without the cell or when it failed (no figures)."""
    cell = results.find_cell("outage", "redis")
    return cell.extra if cell is not None and isinstance(cell.extra, OutageFigures) else None


def evaluate_outages(results: Results) -> list[Claim]:
    """A verdict per fault in OUTAGE_FAULTS; not measured without an outage cell."""
    cell = results.find_cell("outage", "redis")
    verdicts = []
    for name in OUTAGE_FAULTS:
        about = _FAULTS[name]
        claim = Claim(
            id=name,
            title=about.title,
            guide=about.guide,
            reading=about.reading,
            verdict=NOT_MEASURED,
            summary="This run had no outage cell (it runs on the redis backend).",
        )
        if cell is not None:
            claim.cells = [cell.id]
            if not cell.ok or not isinstance(cell.extra, OutageFigures):
                claim.verdict = INCONCLUSIVE
                claim.summary = f"Cell {cell.id} failed: {cell.error or 'no figures'}"
            elif name not in cell.extra.faults:
                claim.summary = f"Cell {cell.id} did not put Redis in this state (--profile)."
            else:
                _judge(claim, name, cell.extra, load_reasons(cell))
        verdicts.append(claim)
    return verdicts


def _judge(claim: Claim, name: str, figures: OutageFigures, busy: list[str]) -> None:
    fault = figures.faults[name]
    claim.conditions = {
        "fault": fault.how,
        "REDIS_TIMEOUT": f"{figures.redis_timeout_s:g} s",
        "breaker": f"after {figures.breaker_failures} failures, for "
        f"{figures.breaker_cooldown_s:g} s",
        "RATE_LIMIT_ON_REDIS_ERROR": figures.rate_limit_on_redis_error,
    }
    claim.figures = fault_figures(fault)
    during = fault.phases.get("during")
    if during is None or during.requests + sum(r.requests for r in during.sessions.values()) < (
        MIN_DURING
    ):
        claim.verdict = INCONCLUSIVE
        count = 0 if during is None else during.requests
        claim.summary = (
            f"Only {count} chat requests were in flight during the fault; at least "
            f"{MIN_DURING} are needed."
        )
        return
    checks = CHECKS[name](fault, figures)
    failed = [c for c in checks if not c.passed]
    claim.verdict = FAILS if failed else HOLDS
    shown = failed or checks
    if busy and failed and all(c.timed for c in failed):
        # Only a bound on time broke, on a machine busy with more than this cell.
        claim.verdict = INCONCLUSIVE
        shown = [Check(False, "; ".join(busy)), *failed]
    claim.summary = " ".join(_sentence(c.text) for c in shown)
    if failed:
        claim.notes = [_sentence(c.text) for c in checks if c.passed]
    elif busy:
        claim.notes = [f"Every bound held although {'; '.join(busy)}."]
    claim.notes = [*claim.notes, _data_kept(fault)]
    claim.holds_when = HOLDS_WHEN[name](fault, figures)


def fault_figures(fault: OutageFault) -> dict[str, float | int | bool | str]:
    """The figures a reader (and --threshold) looks for first, flat."""
    figures: dict[str, float | int | bool | str] = {"fault_s": fault.fault_s}
    for phase_name, phase in fault.phases.items():
        figures[f"{phase_name}_requests"] = phase.requests
        figures[f"{phase_name}_server_errors"] = phase.server_errors
        figures[f"{phase_name}_failed_open"] = phase.failed_open
        if phase.latency.max_us is not None:
            figures[f"{phase_name}_longest_ms"] = round(phase.latency.max_us / 1000, 1)
        if phase.latency.p50_us is not None:
            figures[f"{phase_name}_p50_ms"] = round(phase.latency.p50_us / 1000, 1)
    for name in ("detected_s", "healthy_again_s", "recovered_s"):
        value = getattr(fault, name)
        if value is not None:
            figures[name] = value
    figures["sessions_kept"] = f"{fault.sessions_intact}/{fault.sessions}"
    figures["cache_entries_kept"] = f"{fault.cache_entries_intact}/{fault.cache_entries}"
    return figures


# --- checks ---------------------------------------------------------------------------------


def _phase(fault: OutageFault, name: str) -> OutagePhase:
    return fault.phases[name]


def _s(us: int | float | None) -> str:
    """µs as a reader wants them: ms below a second, seconds above."""
    if us is None:
        return "-"
    return f"{us / 1000:.1f} ms" if us < 1e6 else f"{us / 1e6:.2f} s"


def stays_up(fault: OutageFault) -> Check:
    """Every chat request in flight during the fault got an answer that is not an error
    (a limiter's configured fail-closed 503 excepted)."""
    during = _phase(fault, "during")
    errors = during.server_errors - during.limiter_failed_closed
    answered = during.statuses.get("200", 0)
    text = f"{answered} of {during.requests} chat requests during the fault answered 200"
    if during.limiter_failed_closed:
        text += f", {during.limiter_failed_closed} refused by the limiter (fail-closed)"
    return Check(errors <= 0, text + f", {max(0, errors)} with an error")


def bounded(fault: OutageFault, figures: OutageFigures) -> Check:
    """No request during the fault waited longer than one and a half REDIS_TIMEOUT more than
    the longest before it, the upstream's part of a chat request left out (a miss draws its own).

    A request that waits out its budget waits REDIS_TIMEOUT and the scheduler's jitter on top,
    so one timeout exactly would fail on a timing edge; the half is that slack, and a second
    wait (the defect this guards against) still goes past it, to 2 × or more.
    """
    before, during = _phase(fault, "before"), _phase(fault, "during")
    usual = _longest(before)
    longest = _longest(during)
    bound_s = BOUND_TIMEOUTS * figures.redis_timeout_s
    limit = usual + int(bound_s * 1e6)
    return Check(
        timed=True,
        passed=longest <= limit,
        text=f"the longest wait of a request during the fault, its upstream call left out, was "
        f"{_s(longest)}: {'within' if longest <= limit else 'more than'} one and a half "
        f"REDIS_TIMEOUT ({bound_s:g} s) over the longest before it ({_s(usual)}); the "
        f"longest chat request took {_s(during.latency.max_us)}",
    )


def _longest(phase: OutagePhase) -> int:
    """µs of the longest request of a phase apart from its upstream call: chat, session or
    health request alike, the slack every bound of the fault gets."""
    values = [
        phase.beside_upstream.max_us,
        phase.healthz.latency.max_us,
        *(r.latency.max_us for r in phase.sessions.values()),
    ]
    return max((v for v in values if v is not None), default=0)


def marked(fault: OutageFault) -> Check:
    """Every answer that did without Redis said so in its headers, and the app counted it:
    the target's counters equal the answers marked."""
    limiter = sum(p.limiter_failed_open for p in fault.phases.values())
    closed = sum(p.limiter_failed_closed for p in fault.phases.values())
    writes = sum(p.cache_write_failed for p in fault.phases.values())
    counted_limiter = fault.app_counters.get("rate_limit_fail_open", 0)
    counted_closed = fault.app_counters.get("rate_limit_fail_closed", 0)
    counted_writes = fault.app_counters.get("cache_write_errors", 0) + fault.app_counters.get(
        "cache_write_skips", 0
    )
    transport = sum(
        count
        for p in fault.phases.values()
        for status, count in p.statuses.items()
        if not status.isdigit()
    )
    agree = limiter == counted_limiter and writes == counted_writes and closed == counted_closed
    text = (
        f"{limiter} answers were marked X-RateLimit-Status: fail-open and {writes} "
        f"X-Cache-Write: failed or skipped; the app counted {counted_limiter} and "
        f"{counted_writes}"
    )
    if closed or counted_closed:
        text += f"; {closed} were marked fail-closed, the app counted {counted_closed}"
    if transport:
        text += f" ({transport} requests got no answer to read)"
    return Check(agree or transport > 0, text)


def detected(fault: OutageFault, figures: OutageFigures) -> Check:
    """/healthz said 503 during the fault, and answered within one and a half of its own PING
    timeout more than the longest request before the fault (a PING that runs out takes the
    timeout and the scheduler's jitter, as a Redis call does in `bounded`)."""
    before, during = _phase(fault, "before"), _phase(fault, "during")
    longest = during.healthz.latency.max_us or 0
    limit = _longest(before) + int(BOUND_TIMEOUTS * figures.health_timeout_s * 1e6)
    if fault.detected_s is None:
        return Check(False, "/healthz never answered 503 during the fault")
    return Check(
        timed=True,
        passed=longest <= limit,
        text=f"/healthz answered 503 {fault.detected_s:.2f} s into the fault, each answer within "
        f"{_s(longest)} (its PING waits at most {figures.health_timeout_s:g} s; the bound is "
        f"{_s(limit)})",
    )


def sessions_refused(fault: OutageFault, status: str, which: tuple[str, ...]) -> Check:
    """Session requests in flight during the fault answered `status` at once, and none got
    another error (a hang, a transport error, another 5xx); one still in flight as Redis came
    back may get its answer then (a 404 when the data was lost)."""
    during = _phase(fault, "during")
    chosen = [during.sessions[w] for w in which if w in during.sessions]
    requests = sum(r.requests for r in chosen)
    got = sum(r.statuses.get(status, 0) for r in chosen)
    errors = sum(
        n
        for r in chosen
        for answer, n in r.statuses.items()
        if answer != status and (not answer.isdigit() or answer.startswith("5"))
    )
    names = " and ".join(f"session {w}s" for w in which)
    text = f"{got} of {requests} {names} during the fault got {status}"
    if errors:
        text += f", {errors} another error"
    late = requests - got - errors
    if late:
        text += f", {late} {'was' if late == 1 else 'were'} answered as Redis came back"
    return Check(got > 0 and errors == 0, text)


def recovers(fault: OutageFault, figures: OutageFigures) -> Check:
    """Served from Redis again within the breaker's cool-down and one REDIS_TIMEOUT (plus the
    longest request before the fault) of Redis answering again."""
    # The first served request may be a miss: its whole time, the upstream's part included.
    usual = (_phase(fault, "before").latency.max_us or 0) / 1e6
    limit = figures.breaker_cooldown_s + figures.redis_timeout_s + usual
    if fault.recovered_s is None:
        after = _phase(fault, "after")
        return Check(
            timed=True,
            passed=False,
            text=f"the app was not serving from Redis again by the end of the "
            f"{after.end_s - after.start_s:.1f} s after the fault",
        )
    return Check(
        timed=True,
        passed=fault.recovered_s <= limit,
        text=f"it served from Redis again {fault.recovered_s:.2f} s after Redis was back "
        f"(the breaker's cool-down is {figures.breaker_cooldown_s:g} s)",
    )


def refused_as_configured(fault: OutageFault) -> Check:
    """With RATE_LIMIT_ON_REDIS_ERROR=closed the limiter refused the requests it could not
    count, each marked fail-closed and answered 503, whatever kept Redis from counting."""
    during = _phase(fault, "during")
    refused = during.limiter_failed_closed
    unavailable = during.statuses.get("503", 0)
    return Check(
        0 < refused <= unavailable,
        f"the limiter refused {refused} of {during.requests} chat requests during the fault, "
        f"marked X-RateLimit-Status: fail-closed (RATE_LIMIT_ON_REDIS_ERROR=closed); the chat "
        f"answers were {statuses_text(during.statuses)}",
    )


def nothing_failed_open(fault: OutageFault) -> Check:
    """While Redis answers within the timeout, every chat answer still came from Redis."""
    during = _phase(fault, "during")
    return Check(
        during.failed_open == 0,
        f"{during.served_by_redis} of {during.requests} chat requests during the fault were "
        f"served by Redis, {during.failed_open} failed open",
    )


def slower(fault: OutageFault) -> Check:
    """How much longer requests took: reported, not judged."""
    before, during = _phase(fault, "before"), _phase(fault, "during")
    return Check(
        True,
        f"the median chat request took {_s(during.latency.p50_us)} against "
        f"{_s(before.latency.p50_us)} before, {during.throughput_rps:g} requests/s against "
        f"{before.throughput_rps:g}",
    )


def reads_served(fault: OutageFault) -> Check:
    """Cached answers are still read from a full Redis."""
    during = _phase(fault, "during")
    return Check(
        during.hits > 0,
        f"{during.hits} of {during.requests} chat requests during the fault were cache hits",
    )


def writes_refused_visibly(fault: OutageFault) -> Check:
    """A full Redis refused the cache writes, and each refusal was marked in its answer."""
    during = _phase(fault, "during")
    return Check(
        during.cache_write_failed > 0,
        f"{during.cache_write_failed} cache writes were refused, each marked X-Cache-Write: failed",
    )


def error_named(fault: OutageFault) -> Check:
    """/healthz names the last Redis error after the fault."""
    return Check(
        fault.last_error is not None,
        "/healthz names the last Redis error"
        + (f" ({fault.last_error[:80]})" if fault.last_error else ": none"),
    )


def _closed(figures: OutageFigures) -> bool:
    return figures.rate_limit_on_redis_error == "closed"


def _down(fault: OutageFault, figures: OutageFigures) -> list[Check]:
    return [
        stays_up(fault),
        *([refused_as_configured(fault)] if _closed(figures) else []),
        bounded(fault, figures),
        marked(fault),
        sessions_refused(fault, "503", ("read", "write")),
        detected(fault, figures),
        recovers(fault, figures),
    ]


def _full(fault: OutageFault, figures: OutageFigures) -> list[Check]:
    # A fail-closed limiter refuses every request whose count Redis refused: none reaches the
    # cache, so there are no hits to serve nor writes to refuse.
    served = (
        [refused_as_configured(fault)]
        if _closed(figures)
        else [reads_served(fault), writes_refused_visibly(fault)]
    )
    return [
        stays_up(fault),
        *served,
        marked(fault),
        sessions_refused(fault, "500", ("write",)),
        bounded(fault, figures),
        error_named(fault),
        recovers(fault, figures),
    ]


CHECKS: dict[str, Callable[[OutageFault, OutageFigures], list[Check]]] = {
    "killed": _down,
    "hung": _down,
    "slowed": lambda fault, figures: [
        stays_up(fault),
        nothing_failed_open(fault),
        bounded(fault, figures),
        slower(fault),
    ],
    "full": _full,
}


# --- conditions -----------------------------------------------------------------------------


def _settings(figures: OutageFigures) -> str:
    return (
        f"REDIS_TIMEOUT={figures.redis_timeout_s:g} s, a breaker that skips Redis for "
        f"{figures.breaker_cooldown_s:g} s after {figures.breaker_failures} failures, "
        f"RATE_LIMIT_ON_REDIS_ERROR={figures.rate_limit_on_redis_error}"
    )


def _limiter_cost(fault: OutageFault, figures: OutageFigures) -> str:
    during = _phase(fault, "during")
    if figures.rate_limit_on_redis_error == "closed":
        # The statuses as answered: a refusal is 503, or 500 for a configuration error (and
        # from an app that answers a full Redis's OOM with 500).
        return (
            f"the limiter refused {during.limiter_failed_closed} of {during.requests} requests "
            f"(fail-closed; the chat answers during the fault: {statuses_text(during.statuses)})"
        )
    return (
        f"the limiter admitted {during.limiter_failed_open} of {during.requests} requests "
        "unchecked (fail-open; RATE_LIMIT_ON_REDIS_ERROR=closed refuses them instead)"
    )


def _down_condition(fault: OutageFault, figures: OutageFigures) -> str:
    during = _phase(fault, "during")
    upstream = during.requests - during.hits
    return (
        f"Holds with {_settings(figures)}. Its cost while Redis is away: "
        f"{_limiter_cost(fault, figures)}, {upstream} of {during.requests} chat answers came "
        "from the upstream (each an OpenAI call), and sessions were unavailable."
    )


def _hung_condition(fault: OutageFault, figures: OutageFigures) -> str:
    return (
        _down_condition(fault, figures)
        + " A request waits one REDIS_TIMEOUT at most, so the bound is that setting: at the "
        "guide's REDIS_TIMEOUT=5, or the 10 its troubleshooting suggests, the first requests "
        "of a hang wait that long before the breaker opens."
    )


def _slowed_condition(fault: OutageFault, figures: OutageFigures) -> str:
    return (
        f"Holds while each Redis call answers within REDIS_TIMEOUT={figures.redis_timeout_s:g} "
        f"s ({fault.how}); a slower Redis makes requests fail open as a hung one does."
    )


def _full_condition(fault: OutageFault, figures: OutageFigures) -> str:
    return (
        f"Holds with maxmemory-policy noeviction and {_settings(figures)}: "
        f"{_limiter_cost(fault, figures)}; new sessions and cache entries are refused until "
        "memory is freed (C10 measures the eviction policies that make room instead)."
    )


HOLDS_WHEN: dict[str, Callable[[OutageFault, OutageFigures], str]] = {
    "killed": _down_condition,
    "hung": _hung_condition,
    "slowed": _slowed_condition,
    "full": _full_condition,
}


def _data_kept(fault: OutageFault) -> str:
    text = (
        f"Data kept over the fault: {fault.sessions_intact} of {fault.sessions} sessions, "
        f"{fault.cache_entries_intact} of {fault.cache_entries} cached answers"
    )
    if fault.sessions_intact < fault.sessions:
        text += " (this Redis had no persistence: C7/C9 name what keeps them)"
    return text + "."


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def statuses_text(statuses: dict[str, int]) -> str:
    """{"200": 96, "503": 2} as "96 × 200, 2 × 503"; "none" when empty."""
    return ", ".join(f"{n} × {status}" for status, n in statuses.items()) or "none"


def fault_line(fault: OutageFault) -> str:
    """What one fault did to the app, in a line of the terminal summary."""
    during = fault.phases["during"]
    sessions = {
        name: statuses_text(requests.statuses) for name, requests in during.sessions.items()
    }
    recovered = (
        "not served from Redis again before the load ended"
        if fault.recovered_s is None
        else f"served from Redis again {fault.recovered_s:.2f} s after it was back"
    )
    return (
        f"{fault.fault_s:.1f} s: chat {statuses_text(during.statuses)}, {during.failed_open} "
        f"failed open; longest {_s(during.latency.max_us)} (beside the upstream "
        f"{_s(during.beside_upstream.max_us)}); session reads {sessions.get('read', 'none')}, "
        f"writes {sessions.get('write', 'none')}; /healthz {statuses_text(during.healthz.statuses)}"
        f". {recovered[:1].upper()}{recovered[1:]}; kept {fault.sessions_intact}/{fault.sessions}"
        f" sessions, {fault.cache_entries_intact}/{fault.cache_entries} cached answers."
    )
