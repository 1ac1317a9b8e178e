"""Where a CacheUser request's client CPU goes: each piece of its work timed in a tight loop.

Run by bench/locust_overhead.py (Locust must be imported, so in that subprocess). One real
answer of the target is fetched once; then every piece runs in-process against it, no network,
each timed as the best of a few repeats of many calls (µs per call). Also timed: the ways the
same work was done before (json.dumps per request, response.json() per request, pure-Python
hdrh per value, the full Server-Timing parser), and a whole request's work with the network
left out (a client that hands back the fetched answer and fires Locust's request event as
FastHttpSession does), for CacheUser and for the bare user.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
import timeit
from collections.abc import Callable
from typing import Any

from locust.contrib.fasthttp import FastResponse, ResponseContextManager
from locust.env import Environment

from hermes_bench.app.server_timing import parse_server_timing
from hermes_bench.histograms import new_histogram
from hermes_bench.scenarios.metrics import RunMetrics
from hermes_bench.scenarios.options import ScenarioOptions
from hermes_bench.scenarios.prepared_chat import prepared_chat
from hermes_bench.scenarios.run_context import HermesRun
from hermes_bench.scenarios.step_timings import parse_steps
from hermes_bench.scenarios.users import CHAT_PATH, CacheUser

CALLS = 20_000
REPEATS = 5
# The Server-Timing of a HIT on a Redis target with a rate limit: three steps, as most are.
HIT_TIMING = "ratelimit;dur=0.212, cache-read;dur=0.412, total;dur=0.951"
# As many distinct ones, more than a StepReader remembers: each is read as if new.
DISTINCT_TIMINGS = [
    f"ratelimit;dur=0.{100 + i % 900}, cache-read;dur=0.{100 + i // 900 % 900}, total;dur=1.{i:03}"
    for i in range(5_000)
]


def _us_per_call(function: Callable[[], Any], calls: int = CALLS) -> float:
    return min(timeit.repeat(function, number=calls, repeat=REPEATS)) / calls * 1e6


class _Answering:
    """A client that sends nothing: hands back one fetched answer, reporting it as
    FastHttpSession does (the request event, at once or when the with-block ends)."""

    def __init__(self, environment: Environment, answer: FastResponse) -> None:
        self._event = environment.events.request
        self._answer = answer

    def post(self, url: str, **kwargs: Any) -> Any:
        if kwargs.get("json") is not None:
            json.dumps(kwargs["json"])  # what FastHttpSession does with json=
        meta = {
            "request_type": "POST",
            "name": kwargs.get("name") or url,
            "context": {},
            "response": self._answer,
            "exception": None,
            "start_time": time.time(),
            "url": url,
            "response_length": len(self._answer.content or b""),
            "response_time": 0.3,
        }
        if kwargs.get("catch_response"):
            return ResponseContextManager(self._answer, self._event, meta, True)
        self._event.fire(**meta)
        return self._answer


def measure(
    options: ScenarioOptions, bare_user: type, target: str, upstream: str
) -> dict[str, Any]:
    """µs per piece of a CacheUser request's work and per whole request without network."""
    run = HermesRun(options, None)
    environment = Environment(user_classes=[CacheUser, bare_user], host=target)
    environment.hermes_run = run  # type: ignore[attr-defined]
    if upstream:
        environment.parsed_options = argparse.Namespace(hermes_upstream_url=upstream)
    environment.create_local_runner()
    for user_class in (CacheUser, bare_user):
        user_class.host = target
    user = CacheUser(environment)
    user.on_start()
    bare = bare_user(environment)
    item = run.next_item(environment)
    assert item is not None
    prepared = prepared_chat(item)
    answer = user.client.post(
        target + CHAT_PATH, json=item.body(), headers={"Authorization": "Bearer sk-costs"}
    )
    body = answer.content
    # One that only keeps what it is given (no fold in the loop), one that folds as users do.
    keeping = RunMetrics(fold_every=CALLS * REPEATS + 1)
    folding = RunMetrics()
    timings = itertools.cycle(DISTINCT_TIMINGS)
    pieces = {
        "draw the next item (Zipf)": lambda: run.next_item(environment),
        "its prepared body, answer and hash (memoised)": lambda: prepared_chat(item),
        "request headers": lambda: {"Authorization": f"Bearer {user.api_key()}"},
        "answer check, bytes already checked": lambda: body != prepared.checked_body,
        "answer check, parse (a new body)": lambda: answer.json()["choices"][0]["message"],
        "response headers (X-Cache, Server-Timing)": lambda: (
            answer.headers.get("x-cache"),
            answer.headers.get("server-timing"),
        ),
        "record a response (kept for the fold)": lambda: keeping.record(
            "cache", "HIT", 300, at_s=1.0, server_timing=next(timings)
        ),
        "read Server-Timing (3 steps)": lambda: parse_steps(HIT_TIMING),
        "attribution record (hash, sent, answered)": lambda: keeping.lookup(
            prepared.request_hash(), 1.0, 1.001, 300, None, None
        ),
    }
    costs = {name: round(_us_per_call(piece), 2) for name, piece in pieces.items()}
    # The fold's share: recording as users do (a fold every FOLD_EVERY) less keeping alone.
    kept = costs["record a response (kept for the fold)"]
    seen = _us_per_call(
        lambda: folding.record("cache", "HIT", 300, at_s=1.0, server_timing=HIT_TIMING)
    )
    costs["its fold: 1 + 3 step values, Server-Timing value seen before"] = round(seen - kept, 2)
    new = _us_per_call(
        lambda: folding.record("cache", "HIT", 300, at_s=1.0, server_timing=next(timings))
    )
    costs["its fold: 1 + 3 step values, Server-Timing value read anew"] = round(new - kept, 2)
    hist = new_histogram()
    before = {
        "json.dumps of the body per request": _us_per_call(lambda: json.dumps(item.body())),
        "response.json() per request": _us_per_call(lambda: answer.json()),
        "hdrh record_value, per value": _us_per_call(lambda: hist.record_value(300)),
        "full Server-Timing parser (3 steps)": _us_per_call(
            lambda: parse_server_timing(HIT_TIMING)
        ),
    }
    user.client = _Answering(environment, answer)  # type: ignore[assignment]
    bare.client = _Answering(environment, answer)  # type: ignore[assignment]
    whole = {
        "CacheUser request": _us_per_call(user.ask),
        "bare request": _us_per_call(bare.ask),
    }
    return {
        "pieces_us": costs,
        "replaced_ways_us": {name: round(us, 2) for name, us in before.items()},
        "without_network_us": {name: round(us, 2) for name, us in whole.items()},
        "server_timing": answer.headers.get("server-timing"),
    }
