"""The end-of-run metrics document and its console summary: pure functions of measured data."""

from __future__ import annotations

from typing import Any

from hermes_bench.hit_rate import ideal_hit_rate
from hermes_bench.results.vocabulary import (
    CACHE_OUTCOMES,
    CACHE_SCENARIO,
    CHAT_SCENARIOS,
    COUNT_PREFIX,
    METRICS_SCHEMA,
    REFUSED,
    STEP_ORDER,
    STEP_PREFIX,
    TOTAL_STEP,
)
from hermes_bench.scenarios.attribution import FROM_BOTH, FROM_HEADER, FROM_LOG, outcome_source
from hermes_bench.scenarios.metrics import ATTRIBUTION_DROPPED

_INFORMATIONAL = frozenset(
    {
        "chat_started",
        "ratelimit_bursts",
        "ratelimit_admitted",
        "ratelimit_limit_sum",
        "ratelimit_over_limit_bursts",
        "ratelimit_windows_unfilled",
    }
)


def cache_accounting(
    snapshot: dict[str, Any],
    ground_truth: dict[str, Any] | None,
    attribution: dict[str, Any] | None = None,
    hit_header: str | None = None,
) -> dict[str, Any]:
    """Hit rate from the cache headers, and OpenAI calls avoided from the upstream's count;
    with `attribution` (Attribution.summary()), the call log's outcomes and their agreement.

    Chat requests refused by the rate limiter never reach the cache, so they are left out:
    cache_requests - upstream_calls is exactly the calls the cache avoided when nothing else
    talks to the upstream.
    """
    outcomes: dict[str, int] = {}
    for scenario in CHAT_SCENARIOS:
        for outcome, families in (
            snapshot["scenarios"].get(scenario, {}).get("outcomes", {}).items()
        ):
            count = int(families["service"]["count"])
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    cache_requests = sum(n for outcome, n in outcomes.items() if outcome != REFUSED)
    started = int(snapshot.get("counters", {}).get("chat_started", 0))
    hits = outcomes.get("HIT", 0)
    looked_up = hits + outcomes.get("MISS", 0) + outcomes.get("BYPASS", 0)
    result: dict[str, Any] = {
        "chat_outcomes": dict(sorted(outcomes.items())),
        "cache_requests": cache_requests,
        "hits": hits,
        "hit_rate_headers": hits / looked_up if looked_up else None,
        "ground_truth": ground_truth is not None,
        # Requests sent but never answered: cut off when the run stopped (see --stop-timeout).
        "cut_at_stop": max(0, started - sum(outcomes.values())),
        "hit_header": hit_header,
    }
    result.update(_log_figures(snapshot, attribution))
    if ground_truth is not None:
        calls = int(ground_truth["calls"])
        distinct = int(ground_truth["distinct_requests"])
        avoided = cache_requests - calls
        result.update(
            upstream_calls=calls,
            upstream_distinct_requests=distinct,
            calls_avoided=avoided,
            calls_avoided_share=avoided / cache_requests if cache_requests else None,
            hits_minus_calls_avoided=hits - avoided,
            ideal_hit_rate=(
                ideal_hit_rate(cache_requests, distinct)
                if cache_requests and 1 <= distinct <= cache_requests
                else None
            ),
            upstream_usage=ground_truth.get("usage_by_model", {}),
            upstream_served=ground_truth.get("served_us"),
            upstream_served_histogram=ground_truth.get("served_histogram"),
            upstream_first_token=ground_truth.get("first_token_us"),
            upstream_first_token_histogram=ground_truth.get("first_token_histogram"),
            calls_log_dropped=ground_truth.get("calls_log_dropped"),
        )
    return result


def _log_figures(snapshot: dict[str, Any], attribution: dict[str, Any] | None) -> dict[str, Any]:
    """CacheAccounting's outcome_source and log_* fields."""
    dropped = int(snapshot.get("counters", {}).get(ATTRIBUTION_DROPPED, 0))
    if attribution is None:  # nothing kept for attribution: the headers, if any, told
        cache = snapshot["scenarios"].get(CACHE_SCENARIO, {}).get("outcomes", {})
        told = any(outcome in cache for outcome in CACHE_OUTCOMES)
        return {"outcome_source": FROM_HEADER if told else None, "not_attributed": dropped}
    return {
        "outcome_source": outcome_source(
            attribution["header_outcomes"], attribution["log_outcomes"]
        ),
        "hit_rate_upstream_log": attribution["hit_rate"],
        "log_attributed": attribution["hits"] + attribution["misses"],
        "log_compared": attribution["compared"],
        "log_agreement": attribution["agreement"],
        "log_mismatches": attribution["mismatches"],
        "not_attributed": attribution["unattributed"] + dropped,
    }


def build_document(
    *,
    snapshot: dict[str, Any],
    ground_truth: dict[str, Any] | None,
    cpu: dict[str, Any],
    run: dict[str, Any],
    attribution: dict[str, Any] | None = None,
    hit_header: str | None = None,
) -> dict[str, Any]:
    """The metrics JSON written at the end of a run."""
    return {
        "schema": METRICS_SCHEMA,
        "run": run,
        "cache": cache_accounting(snapshot, ground_truth, attribution, hit_header),
        "load_generator": cpu,
        "metrics": snapshot,
    }


def console_summary(document: dict[str, Any]) -> str:
    """A few lines a person reads at the end of a run: µs percentiles, hit rate, calls avoided."""
    lines = ["hermes-bench metrics (latency in ms, from µs histograms)"]
    header = (
        f"{'scenario':<10} {'outcome':<13} {'count':>8} {'p50':>9} {'p90':>9} {'p99':>9} {'max':>9}"
    )
    lines.append(header)
    for scenario, data in document["metrics"]["scenarios"].items():
        if scenario.startswith(COUNT_PREFIX):
            continue  # counts, or the target's own step times: summarised below
        for outcome, families in data["outcomes"].items():
            s = families["service"]
            lines.append(
                f"{scenario:<10} {outcome:<13} {s['count']:>8} {_ms(s, 'p50_us')} "
                f"{_ms(s, 'p90_us')} {_ms(s, 'p99_us')} {_ms(s, 'max_us')}"
            )
            if "intended" in families:
                i = families["intended"]
                lines.append(
                    f"{'':<10} {'  intended':<13} {i['count']:>8} {_ms(i, 'p50_us')} "
                    f"{_ms(i, 'p90_us')} {_ms(i, 'p99_us')} {_ms(i, 'max_us')}"
                )
    lines += step_lines(document["metrics"]["scenarios"])
    cache = document["cache"]
    if cache["hit_rate_headers"] is not None:
        source = cache.get("outcome_source")
        label = f"{cache.get('hit_header') or 'X-Cache'} headers"
        if source == FROM_LOG:
            label = "upstream call log"
        elif source == FROM_BOTH:
            label += " and upstream call log"
        lines.append(f"hit rate ({label}): {cache['hit_rate_headers']:.1%}")
    line = attribution_line(cache)
    if line:
        lines.append(line)
    if cache["ground_truth"]:
        lines.append(
            f"OpenAI calls (ground truth): {cache['upstream_calls']} for "
            f"{cache['cache_requests']} requests; calls avoided {cache['calls_avoided']}"
            + (f" ({cache['calls_avoided_share']:.1%})" if cache["calls_avoided_share"] else "")
        )
        if cache["hits_minus_calls_avoided"]:
            lines.append(
                f"  mismatch: {cache['hits']} HIT headers vs {cache['calls_avoided']} calls "
                f"avoided; {cache['cut_at_stop']} requests were cut off at stop, the rest "
                "comes from another client of the upstream or upstream retries"
            )
        if cache["ideal_hit_rate"] is not None:
            lines.append(f"ideal hit rate of this request sequence: {cache['ideal_hit_rate']:.1%}")
    counters = document["metrics"]["counters"]
    if counters.get("ratelimit_bursts"):
        unfilled = counters.get("ratelimit_windows_unfilled", 0)
        lines.append(
            f"rate limit: {counters['ratelimit_admitted'] / counters['ratelimit_limit_sum']:.2f} "
            f"x the limit admitted per window on average; "
            f"{counters.get('ratelimit_over_limit_bursts', 0)} of "
            f"{counters['ratelimit_bursts']} windows over the limit (windows by the target's "
            "X-RateLimit-Reset"
            + (f"; {unfilled} the bursts did not fill left out)" if unfilled else ")")
        )
    problems = {k: v for k, v in counters.items() if v and k not in _INFORMATIONAL}
    if problems:
        lines.append("checks: " + ", ".join(f"{k}={v}" for k, v in sorted(problems.items())))
    cpu = document["load_generator"]
    if cpu.get("saturated"):
        lines.append("WARNING: the load generator was saturated (CPU > 90%): latencies are suspect")
    return "\n".join(lines)


def attribution_line(cache: dict[str, Any]) -> str | None:
    """One line on HIT/MISS told from the upstream's call log, None when it was not read."""
    if cache.get("log_attributed") is None:
        return None
    parts = [f"{cache['log_attributed']} answers told HIT or MISS from the upstream call log"]
    if cache.get("hit_rate_upstream_log") is not None:
        parts[0] += f" ({cache['hit_rate_upstream_log']:.1%} hits)"
    if cache.get("log_compared"):
        agreement = f"header agrees on {cache['log_agreement']:.1%} of {cache['log_compared']}"
        mismatches = cache.get("log_mismatches") or {}
        if mismatches:
            agreement += " (" + ", ".join(f"{k}: {n}" for k, n in mismatches.items()) + ")"
        parts.append(agreement)
    if cache.get("not_attributed"):
        parts.append(f"{cache['not_attributed']} not attributed")
    if cache.get("calls_log_dropped"):
        parts.append(f"the upstream left {cache['calls_log_dropped']} calls out of its log")
    return "; ".join(parts)


def step_lines(scenarios: dict[str, Any]) -> list[str]:
    """One line per outcome: the p50 of each step the target timed itself (Server-Timing)."""
    steps = step_names(scenarios)
    outcomes = {o for name in steps for o in scenarios[STEP_PREFIX + name]["outcomes"]}
    lines = []
    for outcome in sorted(outcomes, key=lambda o: (_order_in(o, CACHE_OUTCOMES), o)):
        parts = []
        for name in steps:
            service = scenarios[STEP_PREFIX + name]["outcomes"].get(outcome, {}).get("service")
            if service and service.get("p50_us") is not None:
                parts.append(f"{name} {service['p50_us'] / 1000:.3f}")
        lines.append(f"steps in the target (Server-Timing), p50 ms, {outcome}: " + ", ".join(parts))
    return lines


def step_names(scenarios: dict[str, Any]) -> list[str]:
    """Step names recorded from Server-Timing: the reference app's in request order, then any
    other name, the total last."""
    names = [s.removeprefix(STEP_PREFIX) for s in scenarios if s.startswith(STEP_PREFIX)]
    return sorted(names, key=lambda n: (n == TOTAL_STEP, _order_in(n, STEP_ORDER), n))


def _order_in(name: str, order: tuple[str, ...]) -> int:
    return order.index(name) if name in order else len(order)


def _ms(summary: dict[str, Any], key: str) -> str:
    value = summary.get(key)
    return f"{value / 1000:>9.3f}" if value is not None else f"{'-':>9}"
