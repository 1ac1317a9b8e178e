"""A "hermes-bench" tab in Locust's web UI: live hit rate, calls avoided, µs percentiles."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from locust.env import Environment

from hermes_bench.http_json import HttpJsonError, get_json
from hermes_bench.results.vocabulary import CHAT_SCENARIOS

if TYPE_CHECKING:
    from hermes_bench.scenarios.run_context import HermesRun

TAB_KEY = "hermes-bench"
_STRUCTURE = [
    {"key": "scenario", "title": "Scenario"},
    {"key": "outcome", "title": "Outcome"},
    {"key": "count", "title": "Count"},
    {"key": "p50_ms", "title": "p50 (ms)"},
    {"key": "p90_ms", "title": "p90 (ms)"},
    {"key": "p99_ms", "title": "p99 (ms)"},
    {"key": "max_ms", "title": "Max (ms)"},
]


def add_web_tab(environment: Environment, run: HermesRun) -> None:
    """Register the tab and attach its rows to every /stats/requests poll."""
    web_ui = environment.web_ui
    if web_ui is None or web_ui.app is None:
        return
    web_ui.template_args["extended_tabs"] = [{"title": "hermes-bench", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [{"key": TAB_KEY, "structure": _STRUCTURE}]

    @web_ui.app.after_request
    def extend_stats(response: Any) -> Any:
        from flask import request

        if request.path != "/stats/requests" or response.json is None:
            return response
        rows = live_rows(run, environment)
        extended = [{"key": TAB_KEY, "data": rows}]
        response.set_data(json.dumps({**response.json, "extended_stats": extended}))
        return response


def live_rows(run: HermesRun, environment: Environment) -> list[dict[str, Any]]:
    """Table rows: one per scenario and outcome, then hit rate and calls avoided."""
    rows: list[dict[str, Any]] = []
    hits = misses = bypasses = refused = 0
    chat_total = 0
    for row in run.metrics.live_rows():
        rows.append(
            {
                "scenario": row["scenario"],
                "outcome": row["outcome"],
                "count": row["count"],
                **{
                    f"{k}_ms": round(row[f"{k}_us"] / 1000, 3) for k in ("p50", "p90", "p99", "max")
                },
            }
        )
        if row["scenario"] in CHAT_SCENARIOS:  # not sessions, step timings or window counts
            chat_total += row["count"]
            hits += row["count"] if row["outcome"] == "HIT" else 0
            misses += row["count"] if row["outcome"] == "MISS" else 0
            bypasses += row["count"] if row["outcome"] == "BYPASS" else 0
            refused += row["count"] if row["outcome"] == "429" else 0
    looked_up = hits + misses + bypasses
    if looked_up:
        rows.append({"scenario": "cache", "outcome": f"hit rate {hits / looked_up:.1%}"})
    upstream = run.upstream_url(environment)
    if upstream:
        try:
            truth = get_json(upstream + "/ground-truth", timeout_s=2)
        except HttpJsonError:
            truth = None
        if truth is not None:
            avoided = chat_total - refused - int(truth["calls"])
            rows.append(
                {
                    "scenario": "upstream",
                    "outcome": f"OpenAI calls {truth['calls']}, avoided {avoided}",
                }
            )
    return rows
