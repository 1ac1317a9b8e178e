"""Measures the cost of hermes-bench's instrumentation inside Locust, in its own process.

Locust monkey-patches the standard library with gevent at import, so this runs apart from the
asyncio benchmarks: `python -m bench.locust_overhead TARGET_URL [UPSTREAM_URL]` (from the
repository's root) prints one JSON object.

1. Throughput and client CPU of CacheUser (µs timing, answer check, HdrHistogram per outcome and
   per Server-Timing step, series, and with UPSTREAM_URL the attribution record, as in a run on
   the embedded stack) against a bare FastHttpUser posting the same body to the same endpoint,
   in alternating rounds.
2. Where CacheUser's client CPU goes, piece by piece, in a tight loop (bench/user_costs.py).
3. The process's memory after N and after 10 N instrumented requests.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import sys
import time
from typing import Any

import gevent
import psutil
from locust import task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment

from bench import user_costs
from hermes_bench.scenarios.options import ScenarioOptions
from hermes_bench.scenarios.run_context import HermesRun
from hermes_bench.scenarios.users import CacheUser
from hermes_bench.scenarios.workload import WorkItem

USERS = 4
ROUNDS = 9
REQUESTS_PER_ROUND = 3000
MEMORY_BASE_REQUESTS = 5_000
_BODY = WorkItem("what does a cache in front of an LLM API save?").body()


class BareUser(FastHttpUser):
    """The floor: the same POST, nothing measured or checked."""

    @task
    def ask(self) -> None:
        self.client.post(
            "/v1/chat/completions", json=_BODY, headers={"Authorization": "Bearer sk-bare"}
        )


def _options(target: str) -> ScenarioOptions:
    # One catalogue prompt, no one-offs: every request is the same cache HIT.
    return dataclasses.replace(
        ScenarioOptions.from_parsed(None),
        targets=(target,),
        catalogue_size=1,
        one_off_share=0.0,
        api_keys=1,
    )


def _run(
    user_class: type, target: str, requests: int, run: HermesRun | None, upstream: str = ""
) -> dict[str, float]:
    """Run `requests` requests with USERS users; requests/s and client CPU µs per request."""
    environment = Environment(user_classes=[user_class], host=target)
    if run is not None:
        environment.hermes_run = run  # type: ignore[attr-defined]
    if upstream:  # as the plugin passes it on: the users keep what attribution needs
        environment.parsed_options = argparse.Namespace(hermes_upstream_url=upstream)
    runner = environment.create_local_runner()
    # The process's CPU clock in ns: psutil's cpu_times() moves in 10 ms ticks, 3% of a round.
    cpu_before = time.process_time()
    started = time.perf_counter()
    runner.start(USERS, spawn_rate=USERS)
    while environment.stats.total.num_requests < requests:
        gevent.sleep(0.01)
    elapsed = time.perf_counter() - started
    done = environment.stats.total.num_requests
    failures = environment.stats.total.num_failures
    runner.quit()
    if run is not None:
        # Responses still waiting to be folded into the histograms are this round's work.
        run.metrics.fold()
    cpu_s = time.process_time() - cpu_before
    return {
        "requests": done,
        "failures": failures,
        "rps": done / elapsed,
        "client_cpu_us_per_request": cpu_s / done * 1e6,
    }


def _rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def main(target: str, upstream: str = "") -> dict[str, Any]:
    """The measurements against `target` (a target whose cache can hold one prompt); with
    `upstream` (its fake upstream) the instrumented user keeps attribution records too."""
    run = HermesRun(_options(target), None)
    # Warm up: the one prompt becomes a HIT, connections and code paths get hot.
    _run(CacheUser, target, 300, run, upstream)
    _run(BareUser, target, 300, None)
    rounds = []
    for _ in range(ROUNDS):
        rounds.append(
            {
                "instrumented": _run(CacheUser, target, REQUESTS_PER_ROUND, run, upstream),
                "bare": _run(BareUser, target, REQUESTS_PER_ROUND, None),
            }
        )
    attributed = len(run.metrics.lookups)
    costs = user_costs.measure(_options(target), BareUser, target, upstream)
    memory_run = HermesRun(_options(target), None)
    rss_start = _rss_mb()
    _run(CacheUser, target, MEMORY_BASE_REQUESTS, memory_run)
    rss_base = _rss_mb()
    _run(CacheUser, target, 10 * MEMORY_BASE_REQUESTS, memory_run)
    rss_tenfold = _rss_mb()
    snapshot = memory_run.metrics.snapshot()
    wrong = run.metrics.counters.get("wrong_answers", 0) + memory_run.metrics.counters.get(
        "wrong_answers", 0
    )
    return {
        "rounds": rounds,
        "attribution_records": attributed,
        "costs": costs,
        "memory": {
            "rss_before_mb": round(rss_start, 1),
            "rss_after_n_mb": round(rss_base, 1),
            "rss_after_11n_mb": round(rss_tenfold, 1),
            "n": MEMORY_BASE_REQUESTS,
            "recorded": snapshot["total"]["service"]["count"],
        },
        "wrong_answers": wrong,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "")))
