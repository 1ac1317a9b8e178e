"""The payoff and the plain answer against hand-computed cases: prices × tokens, tiers,
break-even, and what is said when a figure is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from results_builders import results

from hermes_bench.errors import ConfigError
from hermes_bench.reports.payoff import (
    PayoffOptions,
    break_even_per_day,
    evaluate_payoff,
    tier_cost,
    usd_per_call,
)
from hermes_bench.reports.plain_answer import cheapest_paid, plain_answer, usd
from hermes_bench.reports.price_tables import (
    PriceTable,
    RedisTier,
    RedisTiers,
    load_price_table,
    load_redis_tiers,
)
from hermes_bench.results.model import Payoff, Results
from hermes_bench.scenarios.metrics import RunMetrics
from hermes_bench.scenarios.summary import build_document

PRICES = PriceTable(
    as_of="2025-06-01", source="a test", models={"m": {"input": 1.0, "output": 2.0}}
)
TIERS = load_redis_tiers()


def _cache(backend: str, instances: int, calls: int, requests: int = 600) -> dict[str, Any]:
    """A cache cell of `requests` chat requests of which `calls` reached the upstream, each
    billed 100 prompt and 50 completion tokens of model m."""
    metrics = RunMetrics()
    for i in range(requests):
        metrics.record("cache", "MISS" if i < calls else "HIT", 3000, at_s=1.0)
    usage = {"m": {"calls": calls, "prompt_tokens": 100 * calls, "completion_tokens": 50 * calls}}
    truth = {"calls": calls, "distinct_requests": calls, "usage_by_model": usage}
    document = build_document(snapshot=metrics.snapshot(), ground_truth=truth, cpu={}, run={})
    return {"id": f"cache-{backend}-{instances}", "kind": "cache", "backend": backend,
            "instances": instances, "status": "ok", "metrics": document,
            "redis_info": {"total_commands_processed": 4 * requests}}  # fmt: skip


def _memory_cell(entry_bytes: float = 500.0) -> dict[str, Any]:
    session = {"records": 50, "fields": 4, "longest_value_bytes": 20, "json_length_bytes": 100,
               "hash_bytes": 120, "json_bytes": 180, "hash_encoding": "listpack",
               "json_encoding": "raw"}  # fmt: skip
    extra = {"redis_version": "7.2.4", "allocator": "jemalloc", "limits_config": "x",
             "max_entries": 128, "max_value_bytes": 64, "sessions": {"small": session},
             "cache_entry": {"entries": 50, "entry_bytes": entry_bytes, "value_bytes": 400,
                             "key_bytes": 60, "encoding": "raw"}}  # fmt: skip
    return {"id": "memory-redis-1", "kind": "memory", "backend": "redis", "instances": 1,
            "status": "ok", "extra": extra}  # fmt: skip


def _run() -> Results:
    # Redis avoids 60% on 2 instances, memory 30%: 600 requests, 240 and 420 upstream calls.
    cells = [_cache("redis", 1, 240), _cache("redis", 2, 240), _cache("memory", 2, 420),
             _memory_cell()]  # fmt: skip
    bounds = {"requests": 600, "distinct": 200, "ideal_hit_rate": 0.66, "lru": []}
    return results(cells, bounds=bounds)


def _payoff(built: Results, **options: Any) -> Payoff:
    return evaluate_payoff(built, PayoffOptions(prices=PRICES, tiers=TIERS, **options))


def test_dollars_are_calls_avoided_times_tokens_times_price() -> None:
    assert usd_per_call(100, 50, 1.0, 2.0) == pytest.approx(0.0002)  # (100 + 100) / 1M
    payoff = _payoff(_run(), traffic_per_day=10_000)
    assert payoff.status == "measured", payoff.reason
    assert (payoff.model, payoff.instances) == ("m", 2)
    assert (payoff.prompt_tokens_per_call, payoff.completion_tokens_per_call) == (100, 50)
    assert payoff.calls_avoided_share == 0.6 and payoff.memory_calls_avoided_share == 0.3
    assert payoff.saved_per_1000_usd == pytest.approx(0.12)  # 600 calls x $0.0002
    assert payoff.saved_per_month_usd == pytest.approx(36.0)  # 0.6 x 10,000 x 30 x 0.0002
    assert payoff.over_memory_per_month_usd == pytest.approx(18.0)  # (0.6 - 0.3) x ...
    assert (payoff.cache_entries, payoff.memory_bytes) == (200, 100_000)
    assert payoff.commands_per_request == 4.0
    assert any("as the fake upstream billed" in a for a in payoff.assumptions)


def test_tiers_are_priced_by_memory_by_command_or_flat_with_their_limits() -> None:
    costs = {c.tier: c for c in _payoff(_run(), traffic_per_day=10_000).tiers}
    assert costs["memorystore-basic"].monthly_usd == 50  # the 1 GB minimum
    assert costs["memorystore-standard"].monthly_usd == 150
    assert costs["redis-cloud-free"].monthly_usd == 0  # 0.1 MB fits in 30 MB
    # 4 commands x 10,000 requests a day: past the free 10,000, $0.20 per 100k beyond.
    assert costs["upstash-free"].monthly_usd is None and "10,000" in (
        costs["upstash-free"].why_not or ""
    )
    assert costs["upstash-payg"].monthly_usd == pytest.approx(2.40)  # 1.2M commands a month
    # Redis's own saving over memory is 0.3 x $0.0002 = $0.00006 a request.
    assert costs["memorystore-basic"].break_even_per_day == pytest.approx(27_777.8, abs=0.1)
    assert costs["upstash-payg"].break_even_per_day == 0.0  # $0.000008 a request < the saving
    big = tier_cost(RedisTier(name="f", label="F", flat_month=0, max_mb=30), 40e6, 4, 10)
    assert big.monthly_usd is None and "30 MB" in (big.why_not or "")
    tier = RedisTier(name="x", label="X", per_gb_month=50, min_gb=1)
    assert break_even_per_day(tier, tier_cost(tier, 1e5, 4, 1), 0.0, 4) is None  # no saving


def test_given_answer_sizes_and_models_reprice_the_same_calls() -> None:
    models = {"m": {"input": 1, "output": 2}, "big": {"input": 10, "output": 20}}
    table = PriceTable(as_of="d", source="s", models=models)
    payoff = evaluate_payoff(
        _run(), PayoffOptions(prices=table, tiers=TIERS, model="big", completion_tokens=500)
    )
    assert payoff.completion_tokens_given and payoff.usd_per_call == pytest.approx(0.011)
    assert any("--completion-tokens gave them" in a for a in payoff.assumptions)


def test_missing_figures_make_the_payoff_inconclusive_naming_them() -> None:
    assert "no cache cell" in (_payoff(results([])).reason or "")
    other = PriceTable(as_of="d", source="s", models={"other": {"input": 1, "output": 1}})
    unpriced = evaluate_payoff(_run(), PayoffOptions(prices=other, tiers=TIERS))
    assert unpriced.status == "inconclusive" and "no price for model 'm'" in (unpriced.reason or "")
    no_memory = results([_cache("redis", 1, 240)])
    payoff = _payoff(no_memory)
    costs = {c.tier: c for c in payoff.tiers}
    assert payoff.status == "measured" and costs["memorystore-basic"].monthly_usd is None
    assert payoff.memory_calls_avoided_share is None
    assert all(c.break_even_per_day is None for c in payoff.tiers)


def test_the_plain_answer_says_dollars_tier_and_break_even_from_the_figures() -> None:
    built = _run()
    built.payoff = _payoff(built, traffic_per_day=10_000)
    answer = plain_answer(built)
    assert answer[0].startswith("On this workload Redis avoided 60% of OpenAI calls on 2")
    assert "$36.00 a month at 10,000 requests a day" in answer[0]
    assert (
        "for 0.1 MB of cache and 40,000 commands a day is Upstash Pay As You Go at $2.40"
        in (answer[1])
    )
    assert "own part is $18.00 a month" in answer[1] and "pays for that tier" in answer[1]
    cheapest = cheapest_paid(built.payoff.tiers)
    assert cheapest is not None and cheapest.tier == "upstash-payg"
    assert (usd(1234.5), usd(2.4), usd(0.00012)) == ("$1,234", "$2.40", "$0.0001")
    built.payoff = _payoff(results([]))
    assert plain_answer(built)[0].startswith("What Redis saves in dollars is not known")


def test_price_files_are_checked_with_a_clear_error(tmp_path: Path) -> None:
    shipped = load_price_table()
    assert shipped.as_of and "gpt-4o-mini" in shipped.models
    assert isinstance(TIERS, RedisTiers) and len(TIERS.tiers) >= 5
    bad = tmp_path / "prices.json"
    bad.write_text('{"as_of": "x", "source": "y", "models": {"m": {"input": -1, "output": 1}}}')
    with pytest.raises(ConfigError, match=r"models\.m\.input"):
        load_price_table(bad)
    with pytest.raises(ConfigError, match="no such file"):
        load_price_table(tmp_path / "missing.json")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError):
        load_price_table(tmp_path / "binary.json")


def check_payoff_and_answer(results: Results, page: str, terminal: str) -> None:
    """What a quick run must show (tests/test_claims_run.py runs it): the answer first, its
    dollars the calls avoided x tokens x the shipped price, recomputed here from the cells."""
    payoff = results.payoff
    assert payoff is not None and payoff.status == "measured", payoff
    (cell,) = [c for c in results.cells if c.id == f"cache-redis-{payoff.instances}"]
    assert cell.metrics is not None
    cache = cell.metrics.cache
    one = next(c for c in results.cells if c.id == "cache-redis-1")
    assert one.metrics is not None
    usages = [*cache.upstream_usage.values(), *one.metrics.cache.upstream_usage.values()]
    calls = sum(u.calls for u in usages)
    assert calls > 0 and payoff.model == "gpt-4o-mini"  # what the workload asks for
    price = load_price_table().models["gpt-4o-mini"]
    per_call = usd_per_call(
        sum(u.prompt_tokens for u in usages) / calls,
        sum(u.completion_tokens for u in usages) / calls,
        price.input,
        price.output,
    )
    assert cache.calls_avoided_share is not None
    expected = cache.calls_avoided_share * payoff.traffic_per_day * 30 * per_call
    assert payoff.saved_per_month_usd == pytest.approx(expected, rel=0.01, abs=0.01)
    assert payoff.memory_bytes and payoff.commands_per_request
    assert results.answer and results.answer[0].startswith("On this workload Redis avoided")
    assert "The answer" in terminal and terminal.index("The answer") < terminal.index("C1 ")
    assert page.index('id="answer"') < page.index('id="claims"') and 'id="payoff"' in page


def test_a_streamed_run_answers_with_the_hits_first_token() -> None:
    cells = []
    for backend, ms in (("redis", 9.0), ("memory", 4.0)):
        metrics = RunMetrics()
        for _ in range(50):
            metrics.record("cache", "HIT", int(ms * 2000), at_s=1.0)
            metrics.record("_ttft", "HIT", int(ms * 1000), at_s=1.0)
        document = build_document(snapshot=metrics.snapshot(), ground_truth=None, cpu={}, run={})
        cells.append({"id": f"cache-{backend}-1", "kind": "cache", "backend": backend,
                      "instances": 1, "status": "ok", "metrics": document})  # fmt: skip
    built = results(cells)
    assert any("A cache hit took 18.0 ms through Redis" in s for s in plain_answer(built))
    built.run.options.stream = True
    sentence = next(s for s in plain_answer(built) if "first token" in s)
    assert "first token came after 9.0 ms through Redis against 4.0 ms in memory" in sentence
