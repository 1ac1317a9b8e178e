"""The Server-Timing header: what the app writes, what the load generator reads from any target."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_servers import QuietHandler, serving
from locust_runs import run_locust

from hermes_bench.app import server_timing
from hermes_bench.app.server_timing import parse_server_timing, timing_entry
from hermes_bench.results.vocabulary import STEP_ORDER, STEP_PREFIX, TOTAL_STEP
from hermes_bench.wire.answer import answer_text


def test_the_apps_steps_are_the_ones_the_reports_know() -> None:
    assert server_timing.STEPS == STEP_ORDER and server_timing.TOTAL == TOTAL_STEP


def test_an_entry_is_milliseconds_to_the_microsecond() -> None:
    assert timing_entry("cache-read", 412_345) == "cache-read;dur=0.412"
    assert timing_entry("upstream", 61_234_567_890) == "upstream;dur=61234.568"
    assert timing_entry("total", 0) == "total;dur=0.000"


def test_what_the_app_writes_reads_back_in_microseconds() -> None:
    header = ", ".join(
        timing_entry(name, ns)
        for name, ns in (("ratelimit", 212_000), ("cache-read", 412_400), ("total", 951_000))
    )
    assert parse_server_timing(header) == {"ratelimit": 212, "cache-read": 412, "total": 951}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("cache-read;dur=0.412", {"cache-read": 412}),
        ("a;dur=1,b;dur=2.5", {"a": 1000, "b": 2500}),
        ('db;desc="a, b; c";dur=3', {"db": 3000}),  # a comma and a ; inside a quoted desc
        ('db ; dur = "4.2" ; desc=x', {"db": 4200}),  # blanks around ; and =, a quoted dur
        ("app;DUR=1", {"app": 1000}),  # parameter names are case-insensitive
        ("miss, edge;dur=7", {"edge": 7000}),  # a metric without dur is valid, not recorded
        ("cdn-cache;desc=HIT", {}),
        ("db;dur=1, db;dur=2", {"db": 3000}),  # one step twice: two calls, summed
        ("a;dur=1;dur=9", {"a": 1000}),  # the first dur wins, as in the W3C parsing
        ("a;dur=1,", {"a": 1000}),  # a trailing comma
        ("", {}),
        ("   ", {}),
        ("total;dur=0", {"total": 0}),
        ("total;dur=1e3", {"total": 1_000_000}),
    ],
)
def test_good_and_partial_headers(header: str, expected: dict[str, int]) -> None:
    assert parse_server_timing(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "a;dur=abc",
        "a;dur=-1",
        "a;dur=nan",
        "a;dur=inf",
        "a;dur=",
        "a b;dur=1",  # a blank inside a name
        "a;dur=1,,b;dur=2",  # an empty entry between commas
        ";dur=1",  # no name
        'a;desc="unterminated;dur=1',
        "a;dur=1 junk",
        "ä;dur=1",  # not a token
        "a;dur=1\nb;dur=2",
    ],
)
def test_malformed_headers_are_refused_whole(header: str) -> None:
    assert parse_server_timing(header) is None


# --- a real Locust run against a gateway whose Server-Timing is missing, malformed or fine ---

_HEADERS = (None, "total;dur=abc", "edge;dur=1.5")  # in turn, request by request


class _Gateway(QuietHandler):
    """Answers every chat completion right, as a HIT, with the next Server-Timing of _HEADERS."""

    served = itertools.count()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        content = json.dumps({"choices": [{"message": {"content": answer_text(body)}}]}).encode()
        timing = _HEADERS[next(self.served) % len(_HEADERS)]
        extra = {} if timing is None else {"Server_Timing": timing}
        self.send_json(content, X_Cache="HIT", **extra)


@pytest.fixture
def gateway() -> Iterator[str]:
    with serving(_Gateway) as url:
        yield url


@pytest.mark.e2e
def test_missing_and_malformed_headers_are_no_failure(tmp_path: Path, gateway: str) -> None:
    _, output, document = run_locust(
        tmp_path, "-u", "1", "-r", "1", "-t", "60s", "CacheUser", "--host", gateway,
        "--hermes-requests", "30", timeout_s=120,
    )  # fmt: skip
    counters = document["metrics"]["counters"]
    scenarios = document["metrics"]["scenarios"]
    assert scenarios["cache"]["outcomes"]["HIT"]["service"]["count"] == 30, output
    assert counters["server_timing_malformed"] == 10  # ignored, counted, not failed
    assert "wrong_answers" not in counters
    assert [s for s in scenarios if s.startswith(STEP_PREFIX)] == [STEP_PREFIX + "edge"]
    assert scenarios[STEP_PREFIX + "edge"]["outcomes"]["HIT"]["service"]["count"] == 10
    assert "server_timing_malformed=10" in output
