"""The report's plots: what each shows and how it is made; the run-wide ones and one per claim."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from matplotlib.figure import Figure

from hermes_bench.reports import claim_plots, plots
from hermes_bench.reports.plot_style import DPI, WIDTH_IN, png
from hermes_bench.results.model import Claim, Results

# The plots are made this wide (plot_style) and laid out at it: shown 1:1, never rescaled.
PLOT_WIDTH_PX = round(WIDTH_IN * DPI)


@dataclass(frozen=True)
class PlotSpec:
    """One run-wide plot of the report: how it is made and what it shows."""

    slug: str
    title: str
    figure: Callable[[Results], Figure | None]
    alt: str
    caption: str

    def render(self, results: Results) -> bytes | None:
        """The plot as PNG bytes, None when there is nothing to plot."""
        fig = self.figure(results)
        return None if fig is None else png(fig)


@dataclass(frozen=True)
class ClaimPlotSpec:
    """The plot of one claim: made from the cells the claim names, and what it shows."""

    title: str
    figure: Callable[[Results, Claim], Figure | None]
    alt: str
    caption: str

    def render(self, results: Results, claim: Claim) -> bytes | None:
        """The plot as PNG bytes, None when the claim's cells hold nothing to plot."""
        fig = self.figure(results, claim)
        return None if fig is None else png(fig)


PLOTS = (
    PlotSpec(
        "latency-cdf",
        "Response time, cache path",
        plots.latency_cdf,
        "Cumulative distribution of cache-path response time per backend, hits and misses",
        "Response time of the cache path, single instance, as run (the fake upstream at the "
        "run's time scale): share of requests answered within each time (log axis). Solid: "
        "cache hits; dashed: misses (upstream call included).",
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
    ),
    PlotSpec(
        "hit-rate",
        "Hit rate over time",
        plots.hit_rate_over_time,
        "Cache hit rate of each cache cell, second by second",
        "HIT / (HIT + MISS + BYPASS) of the responses that finished in each second, from the "
        "cells' per-second series (the finest the results hold: a short cell has a few "
        "seconds); the first and last seconds are cut to when the load started and ended. "
        "Colour: backend; line style: instances. Dotted: the ideal hit rate of the request "
        "sequence (every repeat a hit), once for all cells that drew the same sequence.",
    ),
    PlotSpec(
        "lru-bound",
        "Hit rate against cache size",
        plots.lru_bound,
        "LRU hit rate of the run's request sequence against cache size, with achieved hit rates",
        "The very sequence a cache cell drew, replayed through an LRU cache of each size (from "
        "stack distances): no cache of that size can do better. Horizontal lines: what each "
        "cell achieved; dotted: the ideal hit rate (1 - distinct / requests).",
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
    ),
)

_RESPONSE_TIME = ClaimPlotSpec(
    "Mean response time against hit rate",
    claim_plots.response_time,
    "Mean response time at the real upstream as a function of the hit rate, with the guide's "
    "band for the backend",
    "Each line is h x HIT + (1 - h) x (upstream + MISS overhead), from the parts the claim's "
    "cells measured, at the un-scaled upstream the run stands for. Dot: the hit rate the cell "
    "reached and its mean, with the 95% interval the verdict rests on; shaded: the guide's band; "
    "dotted verticals: the hit rate from which the mean reaches a bound.",
)
_SESSIONS_CAPTION = (
    "Sessions created round-robin over the targets. Before any restart each is read back "
    "through the next instance, as a non-sticky balancer would (with one instance, the same "
    "one): in memory another instance never had it, so 0 there means not shared, not lost. "
    "Then every target is restarted and each session read through the instance that created "
    "it; with Redis, fresh sessions are also read after Redis itself restarted, per "
    "persistence."
)

CLAIM_PLOTS: dict[str, ClaimPlotSpec] = {
    "C1": _RESPONSE_TIME,
    "C2": _RESPONSE_TIME,
    "C1-C2": ClaimPlotSpec(
        _RESPONSE_TIME.title,
        claim_plots.response_time,
        "Mean response time at the real upstream against the hit rate, Redis and in-memory, "
        "one and N instances, with the guide's bands",
        "Each line is h x HIT + (1 - h) x (upstream + MISS overhead), from the parts each "
        "backend measured, at the un-scaled upstream the run stands for; dots: the hit rate "
        "each cell reached and its mean with a 95% interval; dotted verticals: the hit rate a "
        "single instance needs for 50 ms.",
    ),
    "C3": ClaimPlotSpec(
        "Duplicate OpenAI calls avoided",
        claim_plots.duplicate_calls,
        "Requests to the cache, OpenAI calls at the fake upstream and distinct prompts, with the "
        "most calls an 80% reduction allows",
        "Requests that reached the cache, calls counted where they arrive (the fake upstream: "
        "ground truth) and distinct prompts (the fewest calls any cache could make). Black mark: "
        "the most calls that still avoid 80% of the duplicate requests; calls below it meet the "
        "guide.",
    ),
    "C4": ClaimPlotSpec(
        "Repeated against first-seen prompts",
        claim_plots.repeat_speed,
        "p50 of a repeated prompt (HIT) against a first-seen one (MISS), at the real upstream "
        "and as run",
        "Solid: as judged, a MISS at the real upstream's p50 plus the overhead the MISS "
        "measured over the fake upstream, and a HIT's own p50; light: both as they ran against "
        "the faster fake upstream. Dashed: where a HIT is 70% faster than the judged MISS.",
    ),
    "C5": ClaimPlotSpec(
        "Redis operation times",
        claim_plots.redis_op_times,
        "p50 and p99 round trip of each Redis command as the app timed it and as a direct probe "
        "did, against the guide's 5 ms",
        "Each command's round trip on the run's Redis: as the app timed it while serving the "
        "cache cell (its busiest target), and from a direct redis-py probe. Filled dot: p50; "
        "hollow: p99. Dashed: the guide's ~5 ms per operation.",
    ),
    "C6": ClaimPlotSpec(
        "Admitted vs limit",
        claim_plots.admitted,
        "Distribution of requests admitted per rate-limit window against the limit, per backend",
        "Each burst pushes one fresh key past its limit within one window, spread over the "
        "instances; bars right of the dashed limit line are windows where more requests got "
        "through than allowed (each instance counting alone).",
    ),
    "C7": ClaimPlotSpec(
        "Sessions after restarts",
        claim_plots.sessions_kept,
        "Share of sessions read back intact before any restart, after every target restarted and "
        "after Redis itself restarted",
        _SESSIONS_CAPTION,
    ),
    "C8": ClaimPlotSpec(
        "OpenAI calls with 1 and N instances",
        claim_plots.calls_by_instances,
        "OpenAI calls at the upstream per backend with one instance and with N",
        "Calls counted at the fake upstream for the same workload on one instance and on N. A "
        "shared cache (Redis) makes about as many calls on N as on one; isolated caches (in "
        "memory) each miss on their own. Dotted: distinct prompts, the fewest calls possible.",
    ),
    "C9": ClaimPlotSpec(
        "Cached answers after restarts",
        claim_plots.answers_kept,
        "Share of prompts cached before a restart that were hits right after it",
        "Prompts asked once to fill the cache, then asked again right after every target "
        "restarted (and, with Redis, fresh ones after Redis itself restarted, per persistence): "
        "the share answered as a HIT.",
    ),
    "C10": ClaimPlotSpec(
        "Hit rate per eviction policy",
        claim_plots.eviction_policies,
        "Hit rate of each maxmemory-policy with Redis full, against the exact LRU bound",
        "Redis sized to hold part of the workload's distinct prompts beside the app's sessions, "
        "the same workload under each policy. Bar: hit rate (red: the guide's allkeys-lru); "
        "black mark: an exact LRU cache of the entries the policy left room for; dashed: exact "
        "LRU at the size set; dotted: the ideal. Below each: what the policy cost.",
    ),
    "C11": ClaimPlotSpec(
        "Hash against JSON",
        claim_plots.hash_vs_json,
        "MEMORY USAGE of the same sessions stored as a Redis hash and as a JSON string",
        "MEMORY USAGE of the same session records both ways, small, typical and past the "
        "server's compact-hash limits. Solid: hash; hatched: JSON string; dashed and dotted: "
        "the guide's ~200 B and ~500 B.",
    ),
    "C13": ClaimPlotSpec(
        "Pool under load",
        claim_plots.pool_steps,
        "Share of requests that lost Redis, p99 response time and p99 wait for a pooled "
        "connection per step of requests in flight, plain and blocking pool",
        "A fixed number of chat requests at each step, that many in flight at a time. Top: the "
        "share that lost Redis (the app failed open); middle: p99 at the client; bottom, when "
        "the app timed it: p99 of its waits for a connection from its pool (refusals "
        "included). Dotted: the pool's size; dashed: 1% lost.",
    ),
}
