"""The plain answer: a few sentences a manager can read, each from figures of the run: pure.

What Redis avoided in OpenAI calls and dollars, what the cheapest tier that holds its cache
costs and from which traffic it pays, what a hit costs in time, what survives restarts, and what
the app does when Redis fails. A sentence whose figures the run lacks says so instead.
"""

from __future__ import annotations

from hermes_bench.reports.capacity import capacity_sentence
from hermes_bench.reports.outage_verdicts import outage_figures
from hermes_bench.results.model import (
    HOLDS,
    NOT_MEASURED,
    Payoff,
    RestartFigures,
    Results,
    TierCost,
)
from hermes_bench.results.vocabulary import CACHE_SCENARIO, HIT, PERSISTENCE_MODES, TTFT_SCENARIO

_PERSISTENCE_NAMES = {"none": "none", "aof": "AOF", "rdb": "RDB"}


def plain_answer(results: Results) -> list[str]:
    """Three to five sentences from the figures of `results`."""
    others = (
        capacity_sentence(results),
        _hit_cost(results),
        _restarts(results),
        _failures(results),
    )
    return [*_payoff_sentences(results.payoff), *filter(None, others)]


def usd(value: float) -> str:
    """Dollars as a reader wants them: cents below $100, whole dollars above."""
    if abs(value) >= 100:
        return f"${value:,.0f}"
    if abs(value) >= 0.01 or value == 0:
        return f"${value:,.2f}"
    return f"${value:.4f}"


def cheapest_paid(tiers: list[TierCost]) -> TierCost | None:
    """The cheapest tier that holds the cache and costs something (free tiers are dev-only)."""
    paid = [t for t in tiers if t.monthly_usd is not None and t.monthly_usd > 0]
    return min(paid, key=lambda t: t.monthly_usd or 0.0, default=None)


def _payoff_sentences(payoff: Payoff | None) -> list[str]:
    if payoff is None:
        return []
    if payoff.status != "measured":
        return [f"What Redis saves in dollars is not known from this run: {payoff.reason}."]
    assert payoff.calls_avoided_share is not None and payoff.saved_per_month_usd is not None
    first = (
        f"On this workload Redis avoided {payoff.calls_avoided_share:.0%} of OpenAI calls on "
        f"{payoff.instances} instance{'s' if payoff.instances > 1 else ''}: about "
        f"{usd(payoff.saved_per_month_usd)} a month at {payoff.traffic_per_day:,.0f} requests "
        f"a day ({payoff.model}, {payoff.prompt_tokens_per_call:g} + "
        f"{payoff.completion_tokens_per_call:g} tokens per call"
        + ("" if payoff.completion_tokens_given else ", the fake upstream's short answers")
        + ")."
    )
    tier = cheapest_paid(payoff.tiers)
    if tier is None or tier.monthly_usd is None:
        return [first, "No Redis tier of the guide could be priced for its cache."]
    needs = []
    if payoff.memory_bytes:
        needs.append(f"{payoff.memory_bytes / 1e6:,.1f} MB of cache")
    if payoff.commands_per_request is not None:
        commands = payoff.commands_per_request * payoff.traffic_per_day
        needs.append(f"{commands:,.0f} commands a day")
    second = (
        f"The cheapest paid tier of the guide for {' and '.join(needs) or 'it'} is "
        f"{tier.label} at {usd(tier.monthly_usd)} a month"
    )
    if payoff.memory_calls_avoided_share is None or payoff.over_memory_per_month_usd is None:
        return [first, second + "."]
    second += (
        f"; the in-memory fallback avoided {payoff.memory_calls_avoided_share:.0%}, so Redis's "
        f"own part is {usd(payoff.over_memory_per_month_usd)} a month"
    )
    if tier.break_even_per_day is None:
        second += ", and on OpenAI calls alone it never pays for that tier on this workload."
    else:
        verdict = "pays" if payoff.traffic_per_day >= tier.break_even_per_day else "does not pay"
        second += (
            f": it {verdict} for that tier at this traffic (from "
            f"{tier.break_even_per_day:,.0f} requests a day)."
        )
    return [first, second]


def _hit_p50_ms(results: Results, backend: str, scenario: str = CACHE_SCENARIO) -> float | None:
    cell = results.first_ok("cache", backend, single=True)
    if cell is None or cell.metrics is None:
        return None
    summary = cell.metrics.metrics.outcome_summary(scenario, HIT)
    if summary is None or summary.p50_us is None:
        return None
    return summary.p50_us / 1000


def _hit_cost(results: Results) -> str | None:
    if results.run.options.stream:
        redis_ms = _hit_p50_ms(results, "redis", TTFT_SCENARIO)
        memory_ms = _hit_p50_ms(results, "memory", TTFT_SCENARIO)
        if redis_ms is not None and memory_ms is not None:
            return (
                f"A streamed cache hit's first token came after {redis_ms:.1f} ms through Redis "
                f"against {memory_ms:.1f} ms in memory on one instance (median, on this machine)."
            )
    redis_ms, memory_ms = _hit_p50_ms(results, "redis"), _hit_p50_ms(results, "memory")
    if redis_ms is None or memory_ms is None:
        return None
    return (
        f"A cache hit took {redis_ms:.1f} ms through Redis against {memory_ms:.1f} ms in memory "
        "on one instance (median, on this machine)."
    )


def _restarts(results: Results) -> str | None:
    redis_cell = results.first_ok("restart", "redis", single=False) or results.first_ok(
        "restart", "redis", single=True
    )
    if redis_cell is None or not isinstance(redis_cell.extra, RestartFigures):
        return None
    figures = redis_cell.extra
    text = (
        f"Sessions survived a restart of the targets with Redis ({figures.intact_after} of "
        f"{figures.sessions})"
    )
    memory_cell = results.first_ok("restart", "memory", single=False)
    if memory_cell is not None and isinstance(memory_cell.extra, RestartFigures):
        memory = memory_cell.extra
        text += f", in memory {memory.intact_after} of {memory.sessions}"
    kept = [
        f"{_PERSISTENCE_NAMES[mode]} {figures.redis_restart[mode].intact_after} of "
        f"{figures.redis_restart[mode].sessions}"
        for mode in PERSISTENCE_MODES
        if mode in figures.redis_restart
    ]
    if kept:
        text += "; a restart of Redis itself kept them by persistence: " + ", ".join(kept)
    return text + "."


def _failures(results: Results) -> str | None:
    judged = [c for c in results.outages if c.verdict != NOT_MEASURED]
    if not judged:
        return None
    held = [c.id for c in judged if c.verdict == HOLDS]
    other = [f"{c.id} {c.verdict}" for c in judged if c.verdict != HOLDS]
    text = "When Redis was " + _listed([c.id for c in judged]) + ", the app "
    if not other:
        text += "kept answering within one REDIS_TIMEOUT and came back on its own"
    else:
        text += f"held up when {_listed(held) or 'none'} ({', '.join(other)})"
    return text + _cost_of_failing_open(results) + "."


def _cost_of_failing_open(results: Results) -> str:
    """What failing open cost while Redis was away (killed, else hung), from the cell."""
    figures = outage_figures(results)
    if figures is None:
        return ""
    fault = figures.faults.get("killed") or figures.faults.get("hung")
    if fault is None or not fault.phases["during"].requests:
        return ""
    during = fault.phases["during"]
    upstream = (during.requests - during.hits) / during.requests
    limiter = (
        "was off (fail-open)"
        if figures.rate_limit_on_redis_error == "open"
        else "refused requests (fail-closed)"
    )
    return (
        f"; while Redis was away {upstream:.0%} of answers were OpenAI calls and the limiter "
        + limiter
    )


def _listed(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " or " + names[-1]
