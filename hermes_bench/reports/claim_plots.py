"""One plot per claim, showing what that claim was judged on: (Results, Claim) in, a matplotlib
Figure out, None when the claim's cells hold nothing to plot.

Each reads only the cells the claim names (claim_plot_data), so a claim that measured nothing
shows no plot. Colour says the backend, as in every plot of the report.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullFormatter, PercentFormatter

from hermes_bench.reports import claim_plot_data as data
from hermes_bench.reports import guide, plots
from hermes_bench.reports.palette import backend_colour
from hermes_bench.reports.plot_style import (
    GUIDE_COLOUR,
    HATCHED,
    LEGEND_GREY,
    LIGHT,
    SOLID,
    figure,
    labelled_bar,
    labelled_barh,
    legend_patch,
    plain_label,
    style_axes,
)
from hermes_bench.results.model import Claim, Results

_REDIS = backend_colour("redis")


def response_time(results: Results, claim: Claim) -> Figure | None:
    """C1, C2 and Redis against in-memory: the mean at the real upstream against the hit rate,
    with the guide's band of each backend the claim measured."""
    return plots.latency_vs_hit_rate(results, claim.cells)


def duplicate_calls(results: Results, claim: Claim) -> Figure | None:
    """C3: requests, upstream calls and distinct prompts, with the most calls 80% allows."""
    return plots.upstream_calls(results, claim.cells, guide_reduction=guide.DUPLICATE_REDUCTION)


def admitted(results: Results, claim: Claim) -> Figure | None:
    """C6: requests admitted per rate-limit window against the limit, per backend."""
    return plots.admitted_vs_limit(results, claim.cells)


def repeat_speed(results: Results, claim: Claim) -> Figure | None:
    """C4: a repeated prompt's p50 against a first-seen one's, at the real upstream and as run."""
    speed = data.repeat_speed(results, claim.cells)
    if speed is None:
        return None
    of = "first token, " if speed.streamed else ""
    # A HIT never waits for the upstream: its time as run is the one judged.
    rows = [
        (f"first-seen (MISS), {of}at the real upstream:\nits p50 + the MISS's overhead",
         speed.miss_p50_ms, SOLID),
        (f"first-seen (MISS), {of}as run\n(fake upstream at x{speed.time_scale:g})",
         speed.as_run_miss_p50_ms, LIGHT),
        (f"repeated (HIT), {of}as run", speed.hit_p50_ms, SOLID),
    ]  # fmt: skip
    fig = figure(3.4)
    ax = fig.add_subplot()
    for y, (_, value, style) in enumerate(rows):
        labelled_barh(ax, y, value, 0.6, _REDIS, style, f"{value:,.3g} ms")
    allowed = (1 - guide.REPEAT_SPEEDUP) * speed.miss_p50_ms
    ax.axvline(allowed, color=GUIDE_COLOUR, linestyle="--", linewidth=1.2)
    ax.annotate(f"70% faster than the judged MISS:\na HIT of at most {allowed:,.0f} ms",
                (allowed, 0.12), xycoords=("data", "axes fraction"), textcoords="offset points",
                xytext=(5, 0), ha="left", va="center", fontsize=8,
                color=GUIDE_COLOUR)  # fmt: skip
    ax.set_yticks(range(len(rows)), [label for label, _, _ in rows])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(plain_label))
    ax.margins(x=0.12)
    low, high = speed.faster_interval
    ax.set_title(
        f"{speed.cell_id}: repeats {speed.faster:.1%} faster at p50 (95% interval {low:.1%} "
        f"to {high:.1%})\nat a {speed.upstream_describe} upstream",
        fontsize=10,
    )
    ax.set_xlabel("p50 (ms, log scale)")
    style_axes(ax)
    ax.grid(False, axis="y")
    return fig


def redis_op_times(results: Results, claim: Claim) -> Figure | None:
    """C5: p50 and p99 of each Redis command, as the app timed it and as a direct probe did."""
    rows = data.op_timings(results, claim.cells)
    if not rows:
        return None
    fig = figure(1.2 + 0.36 * len(rows))
    ax = fig.add_subplot()
    for y, row in enumerate(rows):
        colour = _REDIS if row.source == data.APP else LEGEND_GREY
        if row.p99_ms is not None:
            ax.plot([row.p50_ms, row.p99_ms], [y, y], color=colour, linewidth=1.4)
            ax.plot([row.p99_ms], [y], "o", color=colour, markerfacecolor="white")
        ax.plot([row.p50_ms], [y], "o", color=colour)
        ax.annotate(f"{row.p50_ms:.3g} ms", (row.p50_ms, y), textcoords="offset points",
                    xytext=(0, 5), ha="center", fontsize=7, color=colour)  # fmt: skip
    ax.axvline(guide.OP_MS, color=GUIDE_COLOUR, linestyle="--", linewidth=1.2)
    ax.set_yticks(range(len(rows)), [f"{r.op}, {r.source} (n={r.count:,})" for r in rows])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(plain_label))
    ax.set_xlabel("round trip (ms, log scale)")
    ax.set_title("Redis operation times: p50 (filled) to p99 (hollow)")
    style_axes(ax)
    sources = {row.source for row in rows}
    handles = [
        Line2D([], [], color=colour, marker="o", label=label)
        for source, colour, label in (
            (data.APP, _REDIS, "as the app timed it"),
            (data.PROBE, LEGEND_GREY, "direct probe (redis-py)"),
        )
        if source in sources
    ] + [Line2D([], [], color=GUIDE_COLOUR, linestyle="--", label="guide: ~5 ms per operation")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=9)
    return fig


def sessions_kept(results: Results, claim: Claim) -> Figure | None:
    """C7: sessions read back intact before any restart and after each kind of restart."""
    rows = data.restart_rows(results, claim.cells, "sessions")
    return _kept(rows, "sessions intact", "Sessions intact, read back before and after restarts")


def answers_kept(results: Results, claim: Claim) -> Figure | None:
    """C9: prompts cached before a restart that were hits right after it."""
    rows = data.restart_rows(results, claim.cells, "answers")
    return _kept(rows, "cached answers served as hits", "Cached answers still hits after restarts")


def _kept(rows: list[data.KeptRow], what: str, title: str) -> Figure | None:
    if not rows:
        return None
    fig = figure(1.3 + 0.42 * len(rows))
    ax = fig.add_subplot()
    for y, row in enumerate(rows):
        labelled_barh(ax, y, row.kept / row.whole, 0.66, backend_colour(row.backend), SOLID,
                      f"{row.kept:,} of {row.whole:,}")  # fmt: skip
    ax.set_yticks(range(len(rows)), [f"{r.backend}: {r.label}" for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.15)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(f"share of {what}")
    ax.set_title(title)
    style_axes(ax)
    ax.grid(False, axis="y")
    return fig


def calls_by_instances(results: Results, claim: Claim) -> Figure | None:
    """C8: OpenAI calls at the upstream with one instance and with N, per backend."""
    groups = data.calls_by_instances(results, claim.cells)
    if not groups:
        return None
    fig = figure(4.2)
    ax = fig.add_subplot()
    slots = max(len(g.instances) for g in groups)
    width = 0.8 / slots
    ticks, names = [], []
    for x, group in enumerate(groups):
        colour = backend_colour(group.backend)
        for j, (n, calls) in enumerate(zip(group.instances, group.calls, strict=True)):
            style = LIGHT if j == 0 and len(group.instances) > 1 else SOLID
            labelled_bar(ax, x - 0.4 + width * (j + 0.5), calls, width * 0.9, colour, style,
                         f"{calls:,} ({n} inst.)")  # fmt: skip
        distinct = max(group.distinct)
        ax.hlines(distinct, x - 0.42, x + 0.42, color=colour, linestyle=":", linewidth=1.4)
        ticks.append(x)
        names.append(f"{group.backend}\n(growth x{group.calls[-1] / max(1, group.calls[0]):.2f})")
    ax.set_xticks(ticks, names)
    ax.set_ylabel("OpenAI calls at the upstream (count)")
    ax.set_title("OpenAI calls with 1 instance and with N: shared cache or isolated ones")
    ax.margins(y=0.14)
    style_axes(ax)
    ax.grid(False, axis="x")
    handles = [
        legend_patch(LIGHT, "1 instance"),
        legend_patch(SOLID, "N instances"),
        Line2D([], [], color=LEGEND_GREY, linestyle=":", label="distinct prompts (fewest calls)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=9)
    return fig


def eviction_policies(results: Results, claim: Claim) -> Figure | None:
    """C10: hit rate per maxmemory-policy against the exact LRU at the room it left."""
    figures = data.eviction_figures(results, claim.cells)
    if figures is None or not figures.policies:
        return None
    names = list(figures.policies)
    fig = figure(4.6)
    ax = fig.add_subplot()
    x = np.arange(len(names))
    for i, name in enumerate(names):
        policy = figures.policies[name]
        colour = _REDIS if name == "allkeys-lru" else LEGEND_GREY
        ax.bar(x[i], policy.hit_rate, 0.55, color=colour)
        # Inside the bar: above it sits the LRU mark.
        ax.annotate(f"{policy.hit_rate:.1%}", (x[i], policy.hit_rate), xytext=(0, -4),
                    textcoords="offset points", ha="center", va="top", fontsize=8,
                    color="white")  # fmt: skip
        ax.hlines(policy.lru_hit_rate_held, x[i] - 0.34, x[i] + 0.34, color="black",
                  linewidth=1.6)  # fmt: skip
    ax.axhline(figures.lru_hit_rate, color=GUIDE_COLOUR, linestyle="--", linewidth=1)
    ax.axhline(figures.ideal_hit_rate, color=GUIDE_COLOUR, linestyle=":", linewidth=1)
    ax.set_xticks(
        x,
        [
            f"{name}\n{p.sessions_lost} of {p.sessions} sessions lost\n"
            f"{p.over_admitted} admitted past the limit"
            for name, p in figures.policies.items()
        ],
        fontsize=8,
    )
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("hit rate with Redis full")
    ax.set_title(
        f"Hit rate per maxmemory-policy, Redis sized for {figures.cache_entries} cache entries"
    )
    style_axes(ax)
    ax.grid(False, axis="x")
    handles = [
        Line2D([], [], color="black", linewidth=1.6, label="exact LRU at the entries it held"),
        Line2D([], [], color=GUIDE_COLOUR, linestyle="--",
               label=f"exact LRU at the size set ({figures.lru_hit_rate:.1%})"),
        Line2D([], [], color=GUIDE_COLOUR, linestyle=":",
               label=f"ideal ({figures.ideal_hit_rate:.1%})"),
    ]  # fmt: skip
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=9)
    return fig


def hash_vs_json(results: Results, claim: Claim) -> Figure | None:
    """C11: MEMORY USAGE of the same sessions as a hash and as a JSON string, per size."""
    figures = data.memory_figures(results, claim.cells)
    if figures is None or not figures.sessions:
        return None
    sizes = list(figures.sessions)
    fig = figure(4.4)
    ax = fig.add_subplot()
    width = 0.38
    for i, size in enumerate(sizes):
        record = figures.sessions[size]
        labelled_bar(ax, i - width / 2, record.hash_bytes, width, _REDIS, SOLID,
                     f"{record.hash_bytes:,.0f} B")  # fmt: skip
        labelled_bar(ax, i + width / 2, record.json_bytes, width, _REDIS, HATCHED,
                     f"{record.json_bytes:,.0f} B")  # fmt: skip
    for value, style in ((guide.HASH_BYTES, "--"), (guide.JSON_BYTES, ":")):
        ax.axhline(value, color=GUIDE_COLOUR, linestyle=style, linewidth=1)
    ax.set_xticks(
        range(len(sizes)),
        [
            f"{size} session\n{r.fields} fields, hash {r.hash_encoding}"
            for size, r in figures.sessions.items()
        ],
        fontsize=8,
    )
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(plain_label))
    ax.set_ylabel("MEMORY USAGE per record (bytes, log scale)")
    ax.set_title(f"The same session as a hash and as a JSON string (Redis {figures.redis_version})")
    ax.margins(y=0.15)
    style_axes(ax)
    ax.grid(False, axis="x")
    handles = [
        legend_patch(SOLID, "hash (HSET, as the app stores it)"),
        legend_patch(HATCHED, "JSON string (SET)"),
        Line2D([], [], color=GUIDE_COLOUR, linestyle="--", label="guide: hash ~200 B"),
        Line2D([], [], color=GUIDE_COLOUR, linestyle=":", label="guide: JSON ~500 B"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8)
    return fig


_POOL_LABELS = {"nonblocking": "plain pool (the guide's)", "blocking": "blocking pool"}
_POOL_STYLES = {"nonblocking": "-", "blocking": "--"}


def _ms_or_nan(us: int | None) -> float:
    return np.nan if us is None else us / 1000


def pool_steps(results: Results, claim: Claim) -> Figure | None:
    """C13: requests that lost Redis, p99 and, when the app timed it, the p99 wait for a
    connection, per step of requests in flight, per pool mode."""
    figures = data.pool_figures(results, claim.cells)
    if figures is None:
        return None
    timed = any(s.connection_wait is not None for steps in figures.modes.values() for s in steps)
    fig = figure(7.2 if timed else 5.4)
    axes = list(fig.subplots(3 if timed else 2, 1, sharex=True))
    lost_ax, p99_ax = axes[:2]
    stepped: set[int] = set()
    for mode, steps in figures.modes.items():
        steps = sorted(steps, key=lambda s: s.in_flight)
        if not steps:
            continue
        in_flight = [s.in_flight for s in steps]
        stepped.update(in_flight)
        style = dict(color=_REDIS, linestyle=_POOL_STYLES.get(mode, ":"), marker="o",
                     label=_POOL_LABELS.get(mode, mode))  # fmt: skip
        lost_ax.plot(in_flight, [s.lost_redis_share for s in steps], **style)
        p99_ax.plot(in_flight, [_ms_or_nan(s.latency.p99_us) for s in steps], **style)
        if timed:
            waits = [None if s.connection_wait is None else s.connection_wait.p99_us for s in steps]
            axes[2].plot(in_flight, [_ms_or_nan(w) for w in waits], **style)
    for ax in axes:
        ax.axvline(figures.max_connections, color=GUIDE_COLOUR, linestyle=":", linewidth=1.2)
        style_axes(ax)
    lost_ax.axhline(0.01, color=GUIDE_COLOUR, linestyle="--", linewidth=1)
    lost_ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    lost_ax.set_ylabel("requests that\nlost Redis")
    lost_ax.set_title(
        f"A pool of REDIS_MAX_CONNECTIONS={figures.max_connections} as requests in flight grow "
        "(dotted: the pool's size; dashed: 1% lost)",
        fontsize=10,
    )
    bottom = axes[-1]
    bottom.set_xscale("log")
    # Every step tried gets its tick; a log axis would name only the decades.
    bottom.set_xticks(sorted(stepped), [str(n) for n in sorted(stepped)])
    bottom.xaxis.set_minor_formatter(NullFormatter())
    for ax in axes[1:]:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(plain_label))
    p99_ax.set_ylabel("p99 response\ntime (ms, log)")
    if timed:
        axes[2].set_ylabel("p99 wait for a\nconnection (ms, log)")
    bottom.set_xlabel("requests in flight (log scale)")
    handles, labels = lost_ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=9)
    return fig
