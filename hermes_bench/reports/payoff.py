"""Does Redis pay off? OpenAI dollars avoided against the guide's Redis tiers: pure.

The calls avoided and the tokens per call come from the run (the fake upstream bills every call
it answers with a `usage`), the prices from a dated table, the memory from the bytes per cache
entry Redis itself reported times the distinct prompts of the run's workload, the commands per
request from Redis's INFO over a cache cell. Every figure states what it assumed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hermes_bench.reports.price_tables import PriceTable, RedisTier, RedisTiers
from hermes_bench.results.model import (
    Cell,
    EvictionFigures,
    MemoryFigures,
    Payoff,
    Results,
    TierCost,
)
from hermes_bench.results.vocabulary import DEFAULT_TRAFFIC_PER_DAY

DAYS_PER_MONTH = 30
_GB = 1e9
_MB = 1e6


@dataclass(frozen=True)
class PayoffOptions:
    """What the payoff is computed with: prices, tiers, and the traffic to price it at."""

    prices: PriceTable
    tiers: RedisTiers
    traffic_per_day: float = DEFAULT_TRAFFIC_PER_DAY
    model: str | None = None  # None: the model the run's calls used most
    completion_tokens: float | None = None  # None: as the upstream billed them


class _Inconclusive(Exception):
    """The run lacks a figure the payoff needs."""


def usd_per_call(prompt_tokens: float, completion_tokens: float, input_per_mtok: float,
                 output_per_mtok: float) -> float:  # fmt: skip
    """What one call costs at per-1M-token prices."""
    return (prompt_tokens * input_per_mtok + completion_tokens * output_per_mtok) / 1e6


def monthly_saving(share: float, traffic_per_day: float, per_call_usd: float) -> float:
    """USD a month of calls avoided at `share` of `traffic_per_day` requests."""
    return share * traffic_per_day * DAYS_PER_MONTH * per_call_usd


def tier_cost(
    tier: RedisTier,
    memory_bytes: float | None,
    commands_per_request: float | None,
    traffic_per_day: float,
) -> TierCost:
    """What `tier` costs a month for the cache at this traffic, or why it cannot hold it."""
    cost = TierCost(tier=tier.name, label=tier.label)
    if tier.max_mb is not None or tier.per_gb_month is not None:
        if memory_bytes is None:
            cost.why_not = "the bytes per cache entry were not measured"
            return cost
        if tier.max_mb is not None and memory_bytes > tier.max_mb * _MB:
            cost.why_not = f"holds {tier.max_mb:g} MB, the cache needs {memory_bytes / _MB:,.1f} MB"
            return cost
    commands_per_day = None
    if commands_per_request is not None:
        commands_per_day = commands_per_request * traffic_per_day
    if tier.max_commands_per_day is not None or tier.per_100k_commands is not None:
        if commands_per_day is None:
            cost.why_not = "the Redis commands per request were not measured"
            return cost
        if tier.max_commands_per_day is not None and commands_per_day > tier.max_commands_per_day:
            cost.why_not = (
                f"allows {tier.max_commands_per_day:,.0f} commands a day, the traffic needs "
                f"{commands_per_day:,.0f}"
            )
            return cost
    if tier.per_gb_month is not None:
        assert memory_bytes is not None
        gigabytes = max(tier.min_gb, math.ceil(memory_bytes / _GB))
        cost.monthly_usd = round(gigabytes * tier.per_gb_month, 2)
    elif tier.per_100k_commands is not None:
        assert commands_per_day is not None
        cost.monthly_usd = round(
            commands_per_day * DAYS_PER_MONTH / 1e5 * tier.per_100k_commands, 2
        )
    else:
        cost.monthly_usd = tier.flat_month
    return cost


def break_even_per_day(
    tier: RedisTier, cost: TierCost, saved_per_request: float, commands_per_request: float | None
) -> float | None:
    """Requests a day from which on `saved_per_request` pays for the tier; None: never."""
    if cost.monthly_usd is None or saved_per_request <= 0:
        return None
    if tier.per_100k_commands is not None:
        assert commands_per_request is not None
        per_request = commands_per_request * tier.per_100k_commands / 1e5
        return 0.0 if saved_per_request > per_request else None
    return cost.monthly_usd / (DAYS_PER_MONTH * saved_per_request)


def evaluate_payoff(results: Results, options: PayoffOptions) -> Payoff:
    """The payoff of Redis on this run at the traffic asked for."""
    payoff = Payoff(status="measured", traffic_per_day=options.traffic_per_day)
    try:
        _fill(payoff, results, options)
    except _Inconclusive as exc:
        payoff.status = "inconclusive"
        payoff.reason = str(exc)
    return payoff


def _fill(payoff: Payoff, results: Results, options: PayoffOptions) -> None:
    one = _cache_cell(results, "redis", single=True)
    if one is None:
        raise _Inconclusive("no cache cell on the redis backend measured calls avoided")
    many = _cache_cell(results, "redis", single=False) or one
    memory = _cache_cell(results, "memory", single=many.instances == 1)
    payoff.instances = many.instances
    _tokens(payoff, [c for c in (one, many) if c is not None], options)
    redis_share = _share(many)
    if redis_share is None:
        raise _Inconclusive(f"cell {many.id} has no ground truth of the calls it avoided")
    assert payoff.usd_per_call is not None
    traffic = options.traffic_per_day
    payoff.calls_avoided_share = round(redis_share, 4)
    payoff.saved_per_1000_usd = round(redis_share * 1000 * payoff.usd_per_call, 4)
    payoff.saved_per_month_usd = round(monthly_saving(redis_share, traffic, payoff.usd_per_call), 2)
    memory_share = _share(memory) if memory is not None else None
    saved_per_request = 0.0
    if memory_share is not None:
        payoff.memory_calls_avoided_share = round(memory_share, 4)
        saved_per_request = (redis_share - memory_share) * payoff.usd_per_call
        payoff.over_memory_per_month_usd = round(
            monthly_saving(redis_share - memory_share, traffic, payoff.usd_per_call), 2
        )
    _memory(payoff, results, one)
    payoff.commands_per_request = _commands_per_request(one)
    for tier in options.tiers.tiers:
        cost = tier_cost(tier, payoff.memory_bytes, payoff.commands_per_request, traffic)
        if memory_share is not None:
            cost.break_even_per_day = _rounded(
                break_even_per_day(tier, cost, saved_per_request, payoff.commands_per_request)
            )
        payoff.tiers.append(cost)
    payoff.assumptions = _assumptions(payoff, one, many, memory, options)


def _cache_cell(results: Results, backend: str, single: bool) -> Cell | None:
    cell = results.first_ok("cache", backend, single=single)
    return cell if cell is not None and cell.metrics is not None else None


def _share(cell: Cell | None) -> float | None:
    if cell is None or cell.metrics is None:
        return None
    return cell.metrics.cache.calls_avoided_share


def _tokens(payoff: Payoff, cells: list[Cell], options: PayoffOptions) -> None:
    """Tokens per call as the upstream billed the calls of `cells`; the model's price."""
    calls: dict[str, list[int]] = {}
    for cell in cells:
        assert cell.metrics is not None
        for name, usage in cell.metrics.cache.upstream_usage.items():
            totals = calls.setdefault(name, [0, 0, 0])
            totals[0] += usage.calls
            totals[1] += usage.prompt_tokens
            totals[2] += usage.completion_tokens
    model = options.model or max(calls, key=lambda m: calls[m][0], default=None)
    if model is None:
        raise _Inconclusive(
            "the fake upstream billed no call (its token counts are needed; a run against "
            "external targets without --upstream-url has none)"
        )
    price = options.prices.models.get(model)
    if price is None:
        known = ", ".join(sorted(options.prices.models))
        raise _Inconclusive(
            f"no price for model {model!r} in the table of {options.prices.as_of} ({known}); "
            "give --model or --prices FILE"
        )
    # The workload's tokens, whatever model its calls named: --model prices them.
    count = sum(t[0] for t in calls.values())
    prompt = sum(t[1] for t in calls.values())
    completion = sum(t[2] for t in calls.values())
    if not count:
        raise _Inconclusive("the upstream billed no call")
    payoff.model = model
    payoff.prices_as_of, payoff.prices_source = options.prices.as_of, options.prices.source
    payoff.input_usd_per_mtok, payoff.output_usd_per_mtok = price.input, price.output
    payoff.prompt_tokens_per_call = round(prompt / count, 1)
    if options.completion_tokens is not None:
        payoff.completion_tokens_per_call = options.completion_tokens
        payoff.completion_tokens_given = True
    else:
        payoff.completion_tokens_per_call = round(completion / count, 1)
    payoff.usd_per_call = usd_per_call(
        payoff.prompt_tokens_per_call, payoff.completion_tokens_per_call, price.input, price.output
    )


def _memory(payoff: Payoff, results: Results, cell: Cell) -> None:
    """The cache the workload needs: its distinct prompts times bytes per entry."""
    assert cell.metrics is not None
    entries = results.bounds.distinct if results.bounds is not None else None
    entries = entries or cell.metrics.cache.upstream_distinct_requests
    entry_bytes = None
    eviction = results.find_cell("eviction", "redis")
    if eviction is not None and eviction.ok and isinstance(eviction.extra, EvictionFigures):
        entry_bytes = eviction.extra.entry_bytes  # used_memory per entry: overhead included
    memory = results.find_cell("memory", "redis")
    if entry_bytes is None and memory is not None and isinstance(memory.extra, MemoryFigures):
        entry_bytes = memory.extra.cache_entry.entry_bytes
    payoff.cache_entries = entries
    payoff.entry_bytes = None if entry_bytes is None else round(entry_bytes, 1)
    if entries and entry_bytes:
        payoff.memory_bytes = round(entries * entry_bytes)


def _commands_per_request(cell: Cell) -> float | None:
    assert cell.metrics is not None
    info = cell.redis_info or {}
    commands = info.get("total_commands_processed")
    requests = cell.metrics.cache.cache_requests
    if commands is None or not requests:
        return None
    return round(commands / requests, 2)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _assumptions(
    payoff: Payoff, one: Cell, many: Cell, memory: Cell | None, options: PayoffOptions
) -> list[str]:
    completion = (
        f"{payoff.completion_tokens_per_call:g} completion tokens per call as --completion-tokens "
        "gave them"
        if payoff.completion_tokens_given
        else f"{payoff.completion_tokens_per_call:g} completion tokens per call as the fake "
        "upstream billed its short answers (a real answer is longer: --completion-tokens N "
        "prices that; the saving grows with it)"
    )
    said = [
        f"{payoff.model} at ${payoff.input_usd_per_mtok:g} / ${payoff.output_usd_per_mtok:g} per "
        f"1M input / output tokens ({options.prices.source}, as of {options.prices.as_of}).",
        f"{payoff.prompt_tokens_per_call:g} prompt tokens and {completion}.",
        f"{options.traffic_per_day:,.0f} requests a day (--traffic), {DAYS_PER_MONTH} days a "
        "month, each asked like the run's workload.",
        f"Calls avoided as measured in {many.id}"
        + (f", against {memory.id} for the in-memory fallback." if memory is not None else "."),
    ]
    if payoff.memory_bytes is not None:
        said.append(
            f"The cache holds the workload's {payoff.cache_entries:,} distinct prompts at "
            f"{payoff.entry_bytes:g} B each (Redis's own accounting); memory grows with the "
            "distinct prompts of your traffic, not with its volume."
        )
    if payoff.commands_per_request is not None:
        said.append(
            f"{payoff.commands_per_request:g} Redis commands per request (INFO "
            f"total_commands_processed over {one.id}: limiter, cache read and write, the "
            "commands its scripts call included; a price that counts a script as one command "
            "is lower)."
        )
    said.append(f"Redis prices: {options.tiers.source}.")
    return said
