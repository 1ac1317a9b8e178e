"""The report's plots: what each shows, how it is made, which cell kinds feed it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hermes_bench.reports import plots
from hermes_bench.results.model import Results

# The plots are made this wide (plots.py) and laid out at it: shown 1:1, never rescaled.
PLOT_WIDTH_PX = round(plots.WIDTH_IN * plots.DPI)


@dataclass(frozen=True)
class PlotSpec:
    """One plot of the report: how it is made, what it shows, which cell kinds feed it."""

    slug: str
    title: str
    render: Callable[[Results], bytes | None]
    alt: str
    caption: str
    kinds: tuple[str, ...]


PLOTS = (
    PlotSpec(
        "latency-cdf",
        "Response time, cache path",
        plots.latency_cdf,
        "Cumulative distribution of cache-path response time per backend, hits and misses",
        "Response time of the cache path, single instance: share of requests answered within "
        "each time (log axis). Solid: cache hits; dashed: misses (upstream call included).",
        ("cache",),
    ),
    PlotSpec(
        "where-time-goes",
        "Where the time goes",
        plots.where_time_goes,
        "Median time of each step inside the target, per backend, for cache hits and misses",
        "p50 of each step the target timed itself (its Server-Timing header: rate-limit check, "
        "cache read, upstream call, cache write, the whole request in the app), single "
        "instance, Redis beside in-memory; hatched: the p50 the load generator saw for the same "
        "requests (the rest is the server, the network and the client). Medians of steps need "
        "not add up to the median of the total.",
        ("cache",),
    ),
    PlotSpec(
        "latency-vs-hit-rate",
        "Mean response time against hit rate",
        plots.latency_vs_hit_rate,
        "Mean response time at the real upstream as a function of the hit rate, per backend, "
        "with the guide's 10-50 ms and 50-200 ms bands",
        "Each line is h x HIT + (1 - h) x (upstream + MISS overhead), from the parts each "
        "backend measured, at the un-scaled upstream the run stands for; dots: the hit rate "
        "each cell reached; dotted verticals: the hit rate a single instance needs for 50 ms.",
        ("cache",),
    ),
    PlotSpec(
        "hit-rate",
        "Hit rate over time",
        plots.hit_rate_over_time,
        "Cache hit rate per second for each cache cell",
        "HIT / (HIT + MISS + BYPASS) each second, from the X-Cache headers; dotted lines: the "
        "ideal hit rate of the very request sequence that ran (every repeat a hit).",
        ("cache",),
    ),
    PlotSpec(
        "upstream-calls",
        "Upstream calls",
        plots.upstream_calls,
        "Requests to the cache, OpenAI calls at the fake upstream and distinct prompts per cell",
        "Requests that reached the cache, calls counted where they arrive (the fake upstream: "
        "ground truth) and distinct prompts (the fewest calls any cache could make).",
        ("cache",),
    ),
    PlotSpec(
        "admitted-vs-limit",
        "Admitted vs limit",
        plots.admitted_vs_limit,
        "Distribution of requests admitted per rate-limit window against the limit",
        "Each burst pushes one fresh key past its limit within one window; bars right of the "
        "dashed limit line are windows where more requests got through than allowed.",
        ("ratelimit",),
    ),
    PlotSpec(
        "lru-bound",
        "Hit rate against cache size",
        plots.lru_bound,
        "LRU hit rate of the run's request sequence against cache size, with achieved hit rates",
        "The very sequence a cache cell drew, replayed through an LRU cache of each size (from "
        "stack distances): no cache of that size can do better. Horizontal lines: what each "
        "cell achieved; dotted: the ideal hit rate (1 - distinct / requests).",
        ("cache",),
    ),
    PlotSpec(
        "capacity",
        "Throughput against latency",
        plots.capacity,
        "Served requests per second against p99 latency from the intended send, per sweep step",
        "Each point is one arrival rate of the capacity sweep on one instance: what it served and "
        "its p99 counted from each request's intended send time (HITs on the cache path, every "
        "request against /_bare). Filled: the step kept up; hollow: the first that did not. Grey: "
        "the load generator's own limit; dashed: the guide's 50 ms.",
        ("sweep", "generator"),
    ),
    PlotSpec(
        "sessions-after-restart",
        "Sessions after restart",
        plots.sessions_after_restart,
        "Share of sessions intact before and after restarting every target instance",
        "Sessions created, then every target instance restarted: light bars before, solid bars "
        "after the restart.",
        ("restart",),
    ),
)
