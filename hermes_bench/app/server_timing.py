"""The W3C `Server-Timing` header: the app writes one per chat completion, the load reads it.

The app names its steps RATELIMIT, CACHE_READ, UPSTREAM, CACHE_WRITE and TOTAL (the whole request
in the app); a step not taken is absent (a HIT has no upstream). `dur` is in milliseconds with µs
precision: `ratelimit;dur=0.212, cache-read;dur=0.412, total;dur=0.951`. When the limiter's check
and the cache read are one Redis round trip (fixed window on Redis), they are one step,
RATELIMIT_CACHE_READ (`ratelimit+cache-read;dur=0.230`): one wait cannot be split honestly.
Both ends are here so the format is defined once; `parse_server_timing` reads any target's header.
"""

from __future__ import annotations

import math
import re

HEADER = "Server-Timing"
RATELIMIT = "ratelimit"
CACHE_READ = "cache-read"
UPSTREAM = "upstream"
CACHE_WRITE = "cache-write"
TOTAL = "total"
RATELIMIT_CACHE_READ = f"{RATELIMIT}+{CACHE_READ}"
STEPS = (RATELIMIT, RATELIMIT_CACHE_READ, CACHE_READ, UPSTREAM, CACHE_WRITE, TOTAL)
# The steps before the upstream: the limiter's check and the cache read, apart or together.
LOOKUP_STEPS = (RATELIMIT, RATELIMIT_CACHE_READ, CACHE_READ)


def timing_entry(name: str, elapsed_ns: int) -> str:
    """One `name;dur=MS` entry, the duration in ms to the µs."""
    return f"{name};dur={elapsed_ns / 1_000_000:.3f}"


# RFC 7230 tokens and quoted strings, as the W3C grammar uses them.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_VALUE = rf"(?:{_TOKEN}|\"(?:[^\"\\]|\\.)*\")"
_PARAM = re.compile(rf"[ \t]*;[ \t]*({_TOKEN})[ \t]*(?:=[ \t]*({_VALUE}))?")
_METRIC = re.compile(rf"[ \t]*({_TOKEN})((?:[ \t]*;[ \t]*{_TOKEN}[ \t]*(?:=[ \t]*{_VALUE})?)*)")
_SEPARATOR = re.compile(r"[ \t]*(?:,|\Z)")
# The form this app writes (`name;dur=1.234, ...`): read in one regex step per entry.
_PLAIN_ENTRY = re.compile(rf"({_TOKEN});dur=([0-9]+(?:\.[0-9]+)?)(?:,[ \t]*|\Z)")


def parse_server_timing(value: str) -> dict[str, int] | None:
    """µs per metric name from a Server-Timing value; None when the value is malformed.

    Metrics without `dur` are valid and left out; a name given twice is summed (two calls of one
    step). Malformed: not the W3C grammar, or a `dur` that is not a finite number >= 0.
    """
    # Run for every response in the load generator: the plain form first (~4 µs for five
    # entries), the whole grammar (~3x slower) only for what the plain form does not cover.
    steps: dict[str, int] = {}
    position, end = 0, len(value)
    while position < end:
        entry = _PLAIN_ENTRY.match(value, position)
        if entry is None:
            return _parse_grammar(value)
        name, ms = entry.groups()
        steps[name] = steps.get(name, 0) + round(float(ms) * 1000)
        position = entry.end()
    return steps


def _parse_grammar(value: str) -> dict[str, int] | None:
    steps: dict[str, int] = {}
    position, end = 0, len(value)
    while True:
        metric = _METRIC.match(value, position)
        if metric is None:
            # Only blanks left is an empty list (or a trailing comma); anything else is wrong.
            return steps if not value[position:].strip(" \t") else None
        params = metric.group(2)
        if params:
            dur = _duration_us(params)
            if dur is None:
                return None
            if dur >= 0:
                name = metric.group(1)
                steps[name] = steps.get(name, 0) + dur
        separator = _SEPARATOR.match(value, metric.end())
        if separator is None:
            return None
        position = separator.end()
        if position >= end:
            return steps


def _duration_us(params: str) -> int | None:
    """The first `dur` in µs; -1 when there is none; None when it is not a number >= 0."""
    for param in _PARAM.finditer(params):
        if param.group(1).lower() != "dur":
            continue
        raw = (param.group(2) or "").strip('"')
        try:
            ms = float(raw)
        except ValueError:
            return None
        if not math.isfinite(ms) or ms < 0:
            return None
        return round(ms * 1000)
    return -1
