"""The guide's claims and their verdicts: pure functions from results.json to claim dicts.

Every figure in a verdict comes from a cell of the results; nothing is assumed. A claim whose
cells failed, have too few samples, or ran on a saturated load generator is inconclusive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

HOLDS = "holds"
BETTER = "better than claimed"
FAILS = "does not hold"
INCONCLUSIVE = "inconclusive"
NOT_MEASURED = "not measured yet"
VERDICTS = (HOLDS, BETTER, FAILS, INCONCLUSIVE, NOT_MEASURED)
MIN_SAMPLES = 30

Cell = dict[str, Any]
Claim = dict[str, Any]


class _Inconclusive(Exception):
    """Raised inside a claim's evaluation: the data cannot carry a verdict."""


def evaluate_claims(results: dict[str, Any]) -> list[Claim]:
    """One verdict dict per claim, C1 to C13, in order."""
    claims = []
    for claim_id, title, guide, reading, judge in _CLAIMS:
        claim: Claim = {
            "id": claim_id,
            "title": title,
            "guide": guide,
            "reading": reading,
            "figures": {},
            "conditions": {},
            "notes": [],
            "cells": [],
        }
        if judge is None:
            claim.update(verdict=NOT_MEASURED, summary="No cell of this run measures it yet.")
        else:
            try:
                _check_answers(results, claim, judge)
            except _Inconclusive as exc:
                claim.update(verdict=INCONCLUSIVE, summary=str(exc))
            except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
                # Results from another version or a partial cell: say so, never guess.
                claim.update(
                    verdict=INCONCLUSIVE,
                    summary=f"the results lack a figure this claim needs ({type(exc).__name__}: "
                    f"{exc})",
                )
        claims.append(claim)
    return claims


# --- finding cells and figures -------------------------------------------------------------

# Above this share of wrong answers or errors in a cell, its figures carry no verdict.
MAX_BAD_SHARE = 0.01


def _check_answers(
    results: dict[str, Any], claim: Claim, judge: Callable[[dict[str, Any], Claim], None]
) -> None:
    """Judge, then refuse the verdict if a cell it used served wrong answers or many errors."""
    judge(results, claim)
    for cell in results.get("cells", []):
        if cell.get("id") not in claim["cells"] or not cell.get("metrics"):
            continue
        outcomes = cell["metrics"].get("cache", {}).get("chat_outcomes", {})
        total = sum(outcomes.values())
        wrong = outcomes.get("wrong_answer", 0)
        errors = outcomes.get("error", 0)
        if wrong or (total and errors / total > MAX_BAD_SHARE):
            raise _Inconclusive(
                f"cell {cell['id']} got {wrong} wrong answers and {errors} errors in {total} "
                "chat requests: its figures cannot carry a verdict"
            )


def _cell(results: dict[str, Any], claim: Claim, kind: str, backend: str | None, n: str) -> Cell:
    """The cell of `kind` on `backend` with one instance (n="1") or several (n="N")."""
    for cell in results.get("cells", []):
        if cell.get("kind") != kind or (backend and cell.get("backend") != backend):
            continue
        if (n == "1" and cell.get("instances") != 1) or (n == "N" and cell.get("instances", 1) < 2):
            continue
        claim["cells"].append(cell["id"])
        if cell.get("status") != "ok":
            raise _Inconclusive(f"cell {cell['id']} failed: {cell.get('error') or 'no data'}")
        return cell
    raise _Inconclusive(f"no {kind} cell for {backend or 'the run'} ({n} instance(s)) ran")


def _conditions(results: dict[str, Any], claim: Claim, *cells: Cell) -> None:
    options = results.get("run", {}).get("options", {})
    machine = results.get("run", {}).get("machine", {})
    claim["conditions"].update(
        {
            "upstream latency": options.get("upstream_latency"),
            "workload": options.get("workload"),
            "users": options.get("users"),
            "instances": sorted({int(c.get("instances", 1)) for c in cells}),
            "machine": f"{machine.get('cpus')} CPUs, {machine.get('platform')}",
        }
    )
    for cell in cells:
        if (cell.get("metrics") or {}).get("load_generator", {}).get("saturated"):
            raise _Inconclusive(f"the load generator was saturated in {cell['id']}")


def _latency(cell: Cell, outcome: str | None) -> dict[str, Any]:
    """Service-time summary (µs) of the cache scenario: one outcome, or all of them blended."""
    scenario = cell["metrics"]["metrics"]["scenarios"].get("cache")
    if scenario is None:
        raise _Inconclusive(f"cell {cell['id']} recorded no cache requests")
    family = scenario["total"] if outcome is None else scenario["outcomes"].get(outcome, {})
    summary = family.get("service") if "service" in family else family
    if not summary or summary.get("count", 0) < MIN_SAMPLES:
        raise _Inconclusive(
            f"too few {outcome or 'cache'} samples in {cell['id']} "
            f"({(summary or {}).get('count', 0)} < {MIN_SAMPLES})"
        )
    return dict(summary)


def _ms(us: float) -> float:
    return round(us / 1000, 3)


def _range_verdict(value: float, low: float, high: float, lower_is_better: bool) -> str:
    if low <= value <= high:
        return HOLDS
    better = value < low if lower_is_better else value > high
    return BETTER if better else FAILS


def _at_least_verdict(value: float, claimed: float) -> str:
    if value >= claimed * 1.1 or value >= 0.999:
        return BETTER if value > claimed else HOLDS
    return HOLDS if value >= claimed else FAILS


# --- the claims ----------------------------------------------------------------------------


def _response_time(backend: str, low_ms: float, high_ms: float) -> Callable[..., None]:
    def judge(results: dict[str, Any], claim: Claim) -> None:
        cell = _cell(results, claim, "cache", backend, "1")
        _conditions(results, claim, cell)
        blended, hit, miss = _latency(cell, None), _latency(cell, "HIT"), _latency(cell, "MISS")
        mean = _ms(blended["mean_us"])
        claim["figures"] = {
            "blended mean (ms)": mean,
            "blended p50 (ms)": _ms(blended["p50_us"]),
            "blended p95 (ms)": _ms(blended["p95_us"]),
            "HIT p50 (ms)": _ms(hit["p50_us"]),
            "MISS p50 (ms)": _ms(miss["p50_us"]),
            "hit rate": round(cell["metrics"]["cache"]["hit_rate_headers"] or 0, 3),
            "requests": blended["count"],
        }
        claim["verdict"] = _range_verdict(mean, low_ms, high_ms, lower_is_better=True)
        claim["summary"] = (
            f"{backend}: {mean} ms on average (p50 {_ms(blended['p50_us'])} ms; HIT "
            f"{_ms(hit['p50_us'])} ms, MISS {_ms(miss['p50_us'])} ms at p50) against the "
            f"guide's {low_ms:g}-{high_ms:g} ms."
        )
        claim["notes"].append(
            "The guide names no statistic. The mean is judged: the distribution has two humps "
            "(hits and misses), and its p50 is a hit's latency whenever the hit rate passes 50%."
        )
        claim["notes"].append(
            "Blended latency depends on the hit rate and on the upstream's latency: both are "
            "conditions of this verdict, not properties of Redis."
        )
        if backend == "memory":
            claim["notes"].append(
                "Without Redis the guide's fallback still caches, in memory: one instance "
                "answers repeats about as fast as with Redis; C8 shows what N instances lose."
            )

    return judge


def _reduction(cell: Cell) -> tuple[float, dict[str, Any]]:
    cache = cell["metrics"]["cache"]
    if not cache.get("ground_truth"):
        raise _Inconclusive(f"cell {cell['id']} has no upstream ground truth")
    requests, calls = cache["cache_requests"], cache["upstream_calls"]
    distinct = cache["upstream_distinct_requests"]
    duplicates = requests - distinct
    if duplicates < MIN_SAMPLES:
        raise _Inconclusive(f"too few duplicate requests in {cell['id']} ({duplicates})")
    value = 1 - (calls - distinct) / duplicates
    return value, {"requests": requests, "upstream calls": calls, "distinct prompts": distinct}


def _judge_c3(results: dict[str, Any], claim: Claim) -> None:
    redis_cell = _cell(results, claim, "cache", "redis", "N")
    _conditions(results, claim, redis_cell)
    value, figures = _reduction(redis_cell)
    claim["figures"] = {"reduction of duplicate calls (redis, N)": round(value, 4), **figures}
    try:
        memory_value, _ = _reduction(_cell(results, claim, "cache", "memory", "N"))
        claim["figures"]["reduction without Redis (memory, N)"] = round(memory_value, 4)
    except _Inconclusive as exc:
        claim["notes"].append(f"No in-memory comparison: {exc}")
    ideal = redis_cell["metrics"]["cache"].get("ideal_hit_rate")
    if ideal is not None:
        claim["figures"]["ideal hit rate of the sequence"] = round(ideal, 4)
    claim["verdict"] = _at_least_verdict(value, 0.8)
    claim["summary"] = (
        f"Redis with {redis_cell['instances']} instances avoided {value:.1%} of duplicate OpenAI "
        "calls, counted at the fake upstream (guide: 80%)."
    )


def _judge_c4(results: dict[str, Any], claim: Claim) -> None:
    cell = _cell(results, claim, "cache", "redis", "1")
    _conditions(results, claim, cell)
    hit, miss = _latency(cell, "HIT"), _latency(cell, "MISS")
    faster = 1 - hit["p50_us"] / miss["p50_us"]
    claim["figures"] = {
        "repeated (HIT) p50 (ms)": _ms(hit["p50_us"]),
        "first seen (MISS) p50 (ms)": _ms(miss["p50_us"]),
        "faster by": round(faster, 4),
    }
    claim["verdict"] = _at_least_verdict(faster, 0.7)
    claim["summary"] = (
        f"Repeated prompts answered {faster:.1%} faster than first-seen ones at p50 "
        f"({_ms(hit['p50_us'])} vs {_ms(miss['p50_us'])} ms; guide: 70%)."
    )


def _judge_c5(results: dict[str, Any], claim: Claim) -> None:
    cell = _cell(results, claim, "cache", "redis", "1")
    _conditions(results, claim, cell)
    ops: dict[str, dict[str, Any]] = {}
    for stats in cell.get("targets", []):
        for op, summary in stats.get("redis_op_latency_us", {}).items():
            if summary.get("count", 0) > ops.get(op, {}).get("count", 0):
                ops[op] = summary
    if "GET" not in ops or ops["GET"]["count"] < MIN_SAMPLES:
        raise _Inconclusive("the targets recorded too few Redis GETs")
    get_p50 = _ms(ops["GET"]["p50_us"])
    claim["figures"] = {f"app {op} p50 (ms)": _ms(s["p50_us"]) for op, s in sorted(ops.items())}
    claim["figures"]["app GET p99 (ms)"] = _ms(ops["GET"]["p99_us"])
    try:
        probe = _cell(results, claim, "probe", "redis", "N")
        for op, summary in probe["extra"]["direct"].items():
            claim["figures"][f"direct {op} p50 (ms)"] = _ms(summary["p50_us"])
    except _Inconclusive as exc:
        claim["notes"].append(f"No direct probe: {exc}")
    claim["verdict"] = _range_verdict(get_p50, 2.5, 7.5, lower_is_better=True)
    claim["summary"] = (
        f"A Redis GET took {get_p50} ms at p50 as the app saw it (guide: ~5 ms per operation)."
    )
    claim["notes"].append("Loopback Redis: a networked one adds its round trip to every figure.")


def _judge_c6(results: dict[str, Any], claim: Claim) -> None:
    ratios = {}
    for backend in ("redis", "memory"):
        cell = _cell(results, claim, "ratelimit", backend, "N")
        _conditions(results, claim, cell)
        counters = cell["metrics"]["metrics"]["counters"]
        bursts = counters.get("ratelimit_bursts", 0)
        if bursts < 3:
            raise _Inconclusive(f"only {bursts} rate-limit windows measured in {cell['id']}")
        ratio = counters["ratelimit_admitted"] / counters["ratelimit_limit_sum"]
        over = counters.get("ratelimit_over_limit_bursts", 0) / bursts
        ratios[backend] = ratio
        claim["figures"][f"{backend}: admitted / limit per window"] = round(ratio, 3)
        claim["figures"][f"{backend}: windows over the limit"] = round(over, 3)
        claim["figures"][f"{backend}: instances"] = cell["instances"]
    distributed = 0.95 <= ratios["redis"] <= 1.05
    per_instance = ratios["memory"] > 1.05
    claim["verdict"] = HOLDS if distributed and per_instance else FAILS
    claim["summary"] = (
        f"With Redis, {ratios['redis']:.2f}x the limit was admitted per key and window across "
        f"instances; in memory {ratios['memory']:.2f}x (each instance counts alone)."
    )


def _judge_c7(results: dict[str, Any], claim: Claim) -> None:
    shares = {}
    for backend in ("redis", "memory"):
        cell = _cell(results, claim, "restart", backend, "N")
        _conditions(results, claim, cell)
        extra = cell["extra"]
        shares[backend] = extra["intact_after"] / extra["sessions"]
        claim["figures"][f"{backend}: intact after restart"] = round(shares[backend], 3)
        claim["figures"][f"{backend}: intact before (other instance)"] = round(
            extra["intact_before"] / extra["sessions"], 3
        )
    claim["verdict"] = HOLDS if shares["redis"] == 1.0 and shares["memory"] == 0.0 else FAILS
    claim["summary"] = (
        f"After every target restarted, {shares['redis']:.0%} of sessions were intact on Redis "
        f"and {shares['memory']:.0%} in memory."
    )


def _judge_c8(results: dict[str, Any], claim: Claim) -> None:
    growth = {}
    for backend in ("redis", "memory"):
        one = _cell(results, claim, "cache", backend, "1")
        many = _cell(results, claim, "cache", backend, "N")
        _conditions(results, claim, one, many)
        if not (
            one["metrics"]["cache"].get("ground_truth")
            and many["metrics"]["cache"].get("ground_truth")
        ):
            raise _Inconclusive("no upstream ground truth: run with the fake upstream")
        calls_one = one["metrics"]["cache"]["upstream_calls"]
        calls_many = many["metrics"]["cache"]["upstream_calls"]
        growth[backend] = calls_many / max(1, calls_one)
        claim["figures"][f"{backend}: upstream calls, 1 instance"] = calls_one
        claim["figures"][f"{backend}: upstream calls, {many['instances']} instances"] = calls_many
        claim["figures"][f"{backend}: hit rate, {many['instances']} instances"] = round(
            many["metrics"]["cache"]["hit_rate_headers"] or 0, 3
        )
    shared, isolated = growth["redis"] <= 1.1, growth["memory"] > 1.1
    claim["verdict"] = HOLDS if shared and isolated else FAILS
    claim["summary"] = (
        f"Going from 1 to N instances multiplied OpenAI calls by {growth['redis']:.2f} on Redis "
        f"(shared cache) and by {growth['memory']:.2f} in memory (isolated caches)."
    )


def _judge_c9(results: dict[str, Any], claim: Claim) -> None:
    rates = {}
    for backend in ("redis", "memory"):
        cell = _cell(results, claim, "restart", backend, "N")
        _conditions(results, claim, cell)
        rates[backend] = cell["extra"]["hit_rate_after_restart"]
        claim["figures"][f"{backend}: hit rate right after restart"] = round(rates[backend], 3)
    claim["verdict"] = HOLDS if rates["redis"] >= 0.9 and rates["memory"] <= 0.1 else FAILS
    claim["summary"] = (
        f"Right after a restart of every target, prompts cached before were hits "
        f"{rates['redis']:.0%} of the time on Redis and {rates['memory']:.0%} in memory."
    )


def _judge_c12(results: dict[str, Any], claim: Claim) -> None:
    cell = _cell(results, claim, "fallback", None, "1")
    extra = cell["extra"]
    claim["figures"] = {"line logged": extra["line_logged"]}
    claim["verdict"] = HOLDS if extra["line_logged"] else FAILS
    claim["summary"] = (
        f"A target started without REDIS_URL {'logged' if extra['line_logged'] else 'did not log'}"
        f" {extra['expected_line']!r} and served from memory."
    )


_CLAIMS: list[tuple[str, str, str, str, Callable[[dict[str, Any], Claim], None] | None]] = [
    ("C1", "Response time with Redis", "Response time with Redis 10-50 ms",
     "Mean of every cache-path response (hits and misses blended) on one Redis-backed target, "
     "with p50 and p95 beside it.",
     _response_time("redis", 10, 50)),
    ("C2", "Response time without Redis", "Response time without Redis 50-200 ms",
     "The same, on one in-memory target, same workload and seed.",
     _response_time("memory", 50, 200)),
    ("C3", "Fewer duplicate OpenAI calls", "80% reduction in duplicate OpenAI calls",
     "1 - (upstream calls - distinct prompts) / (requests - distinct prompts), counted at the "
     "fake upstream, N Redis-backed instances.", _judge_c3),
    ("C4", "Repeated queries faster", "70% faster responses for repeated queries",
     "1 - p50(HIT) / p50(MISS) in the same run on one Redis-backed target.", _judge_c4),
    ("C5", "Redis operation overhead", "~5 ms overhead per Redis operation",
     "p50 round trip of each Redis command as the target times it, beside a direct redis-py "
     "probe of the same server.", _judge_c5),
    ("C6", "Distributed rate limiting", "Rate limiting distributed with Redis, per instance "
     "without", "Admitted requests / limit per key and window, keys pushed past the limit "
     "through N instances behind a non-sticky balancer.", _judge_c6),
    ("C7", "Sessions survive restarts", "Sessions persist across restarts with Redis, lost "
     "without", "Share of sessions intact after every target instance is restarted.", _judge_c7),
    ("C8", "Shared cache across instances", "Shared cache across instances with Redis, "
     "isolated without", "Upstream calls with N instances against 1, same requests.", _judge_c8),
    ("C9", "Persistent cache", "Cache persistent with Redis",
     "Hit rate of prompts cached before a restart of every target, asked right after it.",
     _judge_c9),
    ("C10", "allkeys-lru under memory pressure", "allkeys-lru is the right policy when memory "
     "is full", "Hit rate and errors under maxmemory, per eviction policy.", None),
    ("C11", "Hash smaller than JSON", "Redis hash ~200 B vs JSON string ~500 B",
     "MEMORY USAGE of the same record stored both ways.", None),
    ("C12", "In-memory fallback", "Without REDIS_URL it falls back to in-memory and logs "
     "\"[INFO] Redis not configured, using in-memory fallback\"",
     "A reference target started without REDIS_URL: its log and its backend.", _judge_c12),
    ("C13", "Pool of 10 connections is enough", "REDIS_MAX_CONNECTIONS=10, REDIS_TIMEOUT=5 is "
     "enough", "Errors and queueing latency when concurrency exceeds the pool.", None),
]  # fmt: skip
