"""Ground truth of the fake upstream: how many chat-completion calls really arrived, when, and
how long it took to answer them."""

from __future__ import annotations

import sys
import time
from array import array
from collections import Counter
from typing import Any

from hermes_bench.histograms import clamp_us, latency_summary, new_histogram

# Calls kept in the call log (~16 bytes each: a shared hash string and a double). Past it the
# log stops and counts what it left out, so an attribution from it knows it is incomplete.
MAX_CALLS_LOG = 1_000_000


class GroundTruth:
    """Counts calls by request hash and by status, logs their arrival, and times the answered
    ones; O(1) per record, no I/O."""

    def __init__(self, max_calls_log: int = MAX_CALLS_LOG) -> None:
        self._served = new_histogram()
        self._first_token = new_histogram()
        self._calls = 0
        self._ok_calls = 0
        self._errors_by_status: Counter[int] = Counter()
        self._calls_by_hash: Counter[str] = Counter()
        self._max_calls_log = max_calls_log
        # Two columns rather than a list of pairs: an eighth of the memory at a million calls.
        self._log_hashes: list[str] = []
        self._log_times = array("d")
        self._log_dropped = 0
        # Token usage of the answered calls, by model: what OpenAI would have billed.
        self._tokens: dict[str, list[int]] = {}

    def record(self, request_hash: str, status: int, at_s: float | None = None) -> None:
        """Count one call that reached the endpoint with a valid body, answered with `status`,
        arrived at wall-clock `at_s` (time.time(); now when None)."""
        self._calls += 1
        self._calls_by_hash[request_hash] += 1
        if 200 <= status < 300:
            self._ok_calls += 1
        else:
            self._errors_by_status[status] += 1
        if len(self._log_hashes) < self._max_calls_log:
            # Interned: a popular request's thousand calls share one string.
            self._log_hashes.append(sys.intern(request_hash))
            self._log_times.append(time.time() if at_s is None else at_s)
        else:
            self._log_dropped += 1

    def served(self, duration_us: float) -> None:
        """Time one answered call from its arrival to its answer: what the upstream itself cost,
        so that a MISS's overhead over it can be told apart."""
        self._served.record_value(clamp_us(round(duration_us)))

    def first_token(self, duration_us: float) -> None:
        """Time one streamed call from its arrival to its first piece of text: the upstream's
        own time to first token, so that a streamed MISS's overhead to it can be told apart."""
        self._first_token.record_value(clamp_us(round(duration_us)))

    def billed(self, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        """Count the usage of one answered call (the `usage` of its answer)."""
        totals = self._tokens.setdefault(model, [0, 0, 0])
        totals[0] += 1
        totals[1] += prompt_tokens
        totals[2] += completion_tokens

    def snapshot(self, per_hash: bool = False, log: bool = False) -> dict[str, Any]:
        """The counters as JSON-ready data; `per_hash` adds calls per request hash, `log` the
        call log ([hash, arrival time.time()] in arrival order) and the calls it left out."""
        distinct = len(self._calls_by_hash)
        data: dict[str, Any] = {
            "calls": self._calls,
            "ok_calls": self._ok_calls,
            "error_calls": sum(self._errors_by_status.values()),
            # JSON object keys are strings, so statuses are too.
            "error_calls_by_status": {
                str(status): count for status, count in sorted(self._errors_by_status.items())
            },
            "distinct_requests": distinct,
            "duplicate_calls": self._calls - distinct,
            "served_us": latency_summary(self._served),
            "usage_by_model": {
                model: {"calls": calls, "prompt_tokens": prompt, "completion_tokens": completion}
                for model, (calls, prompt, completion) in sorted(self._tokens.items())
            },
        }
        if self._served.get_total_count():
            data["served_histogram"] = self._served.encode().decode("ascii")
        if self._first_token.get_total_count():
            data["first_token_us"] = latency_summary(self._first_token)
            data["first_token_histogram"] = self._first_token.encode().decode("ascii")
        if per_hash:
            data["calls_per_hash"] = dict(self._calls_by_hash)
        if log:
            data["calls_log"] = [
                [digest, at_s]
                for digest, at_s in zip(self._log_hashes, self._log_times, strict=True)
            ]
            data["calls_log_dropped"] = self._log_dropped
        return data

    def reset(self) -> None:
        """Forget every call counted so far."""
        self._served.reset()
        self._first_token.reset()
        self._tokens = {}
        self._calls = 0
        self._ok_calls = 0
        self._errors_by_status.clear()
        self._calls_by_hash.clear()
        self._log_hashes = []
        self._log_times = array("d")
        self._log_dropped = 0
