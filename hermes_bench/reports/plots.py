"""The report's run-wide plots: Results in, a matplotlib Figure out (None: nothing to plot).

`only`, where a plot takes it, names the cells to plot (a claim's), all completed ones when
None. The plots of single claims are in claim_plots; the look of every plot in plot_style.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from hermes_bench.reports import guide, plot_data
from hermes_bench.reports.palette import backend_colour
from hermes_bench.reports.plot_data import calls_allowed, instances_text
from hermes_bench.reports.plot_style import (
    GUIDE_COLOUR,
    HATCHED,
    LEGEND_GREY,
    LIGHT,
    SOLID,
    figure,
    instance_style,
    labelled_bar,
    labelled_barh,
    legend_patch,
    plain_label,
    style_axes,
)
from hermes_bench.reports.real_latency import blended_mean_ms, break_even_hit_rate
from hermes_bench.results.model import Results
from hermes_bench.results.vocabulary import BACKENDS

_OUTCOME_STYLES = {"HIT": "-", "MISS": "--"}


def latency_cdf(results: Results) -> Figure | None:
    """CDF of cache-path latency per backend, HIT solid and MISS dashed, log ms axis."""
    cdfs = plot_data.latency_cdfs(results)
    if not cdfs:
        return None
    fig = figure(5.4)
    ax = fig.add_subplot()
    for cdf in cdfs:
        ax.step(
            cdf.latency_ms,
            cdf.share,
            where="post",
            color=backend_colour(cdf.backend),
            linestyle=_OUTCOME_STYLES.get(cdf.outcome, ":"),
            linewidth=2,
            label=(
                f"{cdf.backend} {cdf.outcome}  (n={cdf.count:,}, "
                f"p50 {cdf.p50_ms:.3g} ms, p99 {cdf.p99_ms:.3g} ms)"
            ),
        )
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(plain_label))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("response time (ms, log scale)")
    ax.set_ylabel("share of requests at or below")
    ax.set_title("Cache-path response time by backend and outcome (1 instance)")
    style_axes(ax)
    ax.grid(True, which="minor", axis="x", alpha=0.12)
    # Below the axes: inside, it would hide the tails that matter most.
    fig.legend(loc="outside lower center", ncols=2, fontsize=9)
    return fig


def hit_rate_over_time(results: Results) -> Figure | None:
    """Each cache cell's hit rate second by second, one legend entry per cell; dotted: the
    ideal hit rate of the sequence, one line per value."""
    series = plot_data.hit_rate_series(results)
    if not series:
        return None
    fig = figure(5.0)
    ax = fig.add_subplot()
    for s in series:
        # A step per second: the rate holds over the second it was counted in.
        x, y = plot_data.step_points(s)
        ax.step(
            x,
            y,
            where="post",
            color=backend_colour(s.backend),
            linestyle=instance_style(s.instances),
            linewidth=1.8,
            label=s.label,
        )
    for ideal in plot_data.ideal_lines(series):
        ax.axhline(ideal.hit_rate, color=ideal.colour, linestyle=":", linewidth=1.2,
                   label=ideal.label)  # fmt: skip
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=min(0.0, *(float(s.start_s[0]) for s in series)))
    ax.set_xlabel("time since the cell's load started (s)")
    ax.set_ylabel("hit rate (HIT / cache lookups)")
    ax.set_title("Cache hit rate, second by second")
    style_axes(ax)
    fig.legend(loc="outside lower center", ncols=2, fontsize=8)
    return fig


def upstream_calls(
    results: Results, only: Collection[str] | None = None, guide_reduction: float | None = None
) -> Figure | None:
    """Per cache cell: requests that reached the cache, upstream calls, distinct prompts; with
    `guide_reduction`, a mark at the most calls that still avoid that share of duplicates."""
    counts = plot_data.upstream_counts(results, only)
    if not counts:
        return None
    fig = figure(4.6)
    ax = fig.add_subplot()
    x = np.arange(len(counts))
    width = 0.26
    # Colour says the backend (as in every plot); fill says which count the bar is.
    series = (
        (LIGHT, [c.requests for c in counts]),
        (SOLID, [c.upstream_calls for c in counts]),
        (HATCHED, [c.distinct for c in counts]),
    )
    for offset, (style, values) in zip((-width, 0.0, width), series, strict=True):
        for i, (c, value) in enumerate(zip(counts, values, strict=True)):
            labelled_bar(
                ax, x[i] + offset, value, width, backend_colour(c.backend), style, f"{value:,}"
            )
    if guide_reduction is not None:
        for i, c in enumerate(counts):
            allowed = calls_allowed(c.requests, c.distinct, guide_reduction)
            ax.hlines(allowed, x[i] - width / 2 - 0.04, x[i] + width / 2 + 0.04, color="black",
                      linewidth=2)  # fmt: skip
    ax.set_xticks(x, [c.label for c in counts])
    ax.set_ylabel("requests / calls (count)")
    ax.set_title("Requests to the cache vs OpenAI calls that reached the upstream")
    ax.margins(y=0.12)
    style_axes(ax)
    ax.grid(False, axis="x")
    labels = ("requests to the cache", "upstream calls (ground truth)", "distinct prompts")
    handles: list[Artist] = [
        legend_patch(style, label) for (style, _), label in zip(series, labels, strict=True)
    ]
    if guide_reduction is not None:
        label = f"most calls for the guide's {guide_reduction:.0%}"
        handles.append(Line2D([], [], color="black", linewidth=2, label=label))
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=9)
    return fig


_CLIENT_STEP = "client-seen"
_STEP_LABELS = {"total": "total in the app", _CLIENT_STEP: "client-seen (load generator)"}


def where_time_goes(results: Results) -> Figure | None:
    """p50 of each step the target timed (Server-Timing), Redis beside in-memory, HIT and MISS."""
    breakdowns = plot_data.step_breakdowns(results)
    if not breakdowns:
        return None
    outcomes = [o for o in ("HIT", "MISS") if any(b.outcome == o for b in breakdowns)]
    backends = sorted({b.backend for b in breakdowns}, key=lambda n: (_order(n, BACKENDS), n))
    by_key = {(b.backend, b.outcome): b for b in breakdowns}
    panels = []
    for outcome in outcomes:
        names = sorted(
            {name for b in breakdowns if b.outcome == outcome for name, _ in b.steps},
            key=plot_data.step_sort_key,
        )
        panels.append((outcome, [*names, _CLIENT_STEP]))
    fig = figure(1.0 + sum(0.7 + 0.42 * len(names) for _, names in panels))
    axes = fig.subplots(len(panels), 1, squeeze=False, height_ratios=[len(n) for _, n in panels])[
        :, 0
    ]
    height = 0.8 / len(backends)
    for ax, (outcome, names) in zip(axes, panels, strict=True):
        counts = []
        for j, backend in enumerate(backends):
            breakdown = by_key.get((backend, outcome))
            if breakdown is None:
                continue
            counts.append(f"{backend} n={breakdown.requests:,}")
            values = {**dict(breakdown.steps), _CLIENT_STEP: breakdown.client_p50_ms}
            for i, name in enumerate(names):
                value = values.get(name)
                if value is None:
                    continue
                style = HATCHED if name == _CLIENT_STEP else LIGHT if name == "total" else SOLID
                y = i - 0.4 + height * (j + 0.5)
                labelled_barh(ax, y, value, height, backend_colour(backend), style, f"{value:.3g}")
        ax.set_yticks(range(len(names)), [_STEP_LABELS.get(n, n) for n in names])
        ax.invert_yaxis()  # steps top down, in the order a request takes them
        ax.set_xlim(left=0)
        ax.margins(x=0.14)
        ax.set_title(f"{outcome} ({', '.join(counts)})", fontsize=10, loc="left")
        style_axes(ax)
        ax.grid(False, axis="y")
    axes[-1].set_xlabel("p50 (ms)")
    fig.suptitle("Where the time goes: p50 of each step the target timed (1 instance)")
    handles = [Patch(color=backend_colour(b), label=b) for b in backends] + [
        legend_patch(SOLID, "a step (Server-Timing)"),
        legend_patch(LIGHT, "total in the app"),
        legend_patch(HATCHED, "client-seen"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9)
    return fig


def _order(name: str, order: tuple[str, ...]) -> int:
    return order.index(name) if name in order else len(order)


def admitted_vs_limit(results: Results, only: Collection[str] | None = None) -> Figure | None:
    """Per rate-limit cell: share of bursts by requests admitted, against the limit."""
    distributions = plot_data.admitted_distributions(results, only)
    if not distributions:
        return None
    fig = figure(1.2 + 1.9 * len(distributions))
    axes = fig.subplots(len(distributions), 1, sharex=True, squeeze=False)[:, 0]
    for ax, d in zip(axes, distributions, strict=True):
        colour = backend_colour(d.backend)
        total = d.bursts.sum()
        ax.bar(d.admitted, d.bursts / total, width=0.8, color=colour, alpha=0.85)
        if d.limit is not None:
            ax.axvline(d.limit, color="black", linestyle="--", linewidth=1.4)
        # The limit goes in the title: a label beside the line would sit on the tallest bar.
        limit = f"limit {d.limit:.3g} (dashed line)" if d.limit is not None else "limit unknown"
        ax.set_title(
            f"{d.backend}, {instances_text(d.instances)} ({d.cell_id}): {limit}; "
            f"{d.over_limit_bursts:,} of {int(total):,} bursts over it",
            fontsize=10,
            loc="left",
        )
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel("share of bursts")
        style_axes(ax)
    axes[-1].set_xlabel("requests admitted per burst, one fresh key and window (count)")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlim(left=0)
    fig.suptitle("Requests admitted per rate-limit window vs the limit")
    return fig


def lru_bound(results: Results) -> Figure | None:
    """Hit rate an LRU cache of each size could reach on the run's sequence, beside the achieved."""
    bounds = results.bounds
    if bounds is None or not bounds.lru:
        return None
    curve = bounds.lru
    fig = figure(4.2)
    ax = fig.add_subplot()
    sizes = [point.size for point in curve]
    ax.plot(sizes, [p.hit_rate for p in curve], color="#333333", marker="o", markersize=3,
            linewidth=1.6, label="LRU of that size (stack distances)")  # fmt: skip
    if bounds.ideal_hit_rate is not None:
        ax.axhline(bounds.ideal_hit_rate, color="#333333", linestyle=":", linewidth=1,
                   label=f"ideal (unbounded) {bounds.ideal_hit_rate:.1%}")  # fmt: skip
    for cell, rate in plot_data.achieved_hit_rates(results):
        ax.axhline(rate, color=backend_colour(str(cell.backend)),
                   linestyle=instance_style(cell.instances), linewidth=1.4,
                   label=f"{plot_data.cell_label(cell)} achieved {rate:.1%}")  # fmt: skip
    ax.set_xscale("log")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("cache size (entries, log scale)")
    ax.set_ylabel("hit rate")
    ax.set_title(f"Upper bounds for the {bounds.requests}-request sequence of a cell")
    style_axes(ax)
    ax.legend(loc="lower right", fontsize=8)
    return fig


# The guide's two bands: 10-50 ms with Redis, 50-200 ms without.


def latency_vs_hit_rate(results: Results, only: Collection[str] | None = None) -> Figure | None:
    """Mean response time at the real upstream against the hit rate, with the guide's band of
    each backend plotted; dots: the hit rate each reached, with its 95% interval."""
    curves = plot_data.blended_curves(results, only)
    if not curves:
        return None
    fig = figure(4.8)
    ax = fig.add_subplot()
    rates = np.linspace(0.0, 1.0, 201)
    for backend in sorted({c.backend for c in curves} & set(guide.RESPONSE_BANDS_MS)):
        low, high = guide.RESPONSE_BANDS_MS[backend]
        ax.axhspan(low, high, color=backend_colour(backend), alpha=0.08, linewidth=0)
        ax.annotate(f"guide, {'with' if backend == 'redis' else 'without'} Redis: "
                    f"{low:g}-{high:g} ms", (0.01, high), textcoords="offset points",
                    xytext=(2, -11), fontsize=8, color=backend_colour(backend))  # fmt: skip
    for index, curve in enumerate(curves):
        colour = backend_colour(curve.backend)
        hit, overhead = np.full_like(rates, curve.hit_ms), np.full_like(rates, curve.overhead_ms)
        means = blended_mean_ms(hit, overhead, curve.upstream.mean_ms, rates)
        low, high = curve.mean_interval_ms
        known = bool(np.isfinite(low) and np.isfinite(high))
        spread = [[curve.mean_ms - low], [high - curve.mean_ms]] if known else None
        ax.errorbar([curve.hit_rate], [curve.mean_ms], yerr=spread, marker="o", color=colour,
                    markersize=6, capsize=4)  # fmt: skip
        within = f" (95%: {low:.0f}-{high:.0f})" if known else ""
        ax.annotate(f"{curve.hit_rate:.0%}: {curve.mean_ms:.0f} ms{within}",
                    (curve.hit_rate, curve.mean_ms), textcoords="offset points",
                    xytext=(6, 4 + 11 * index), fontsize=8, color=colour)  # fmt: skip
        # Where the guide's band is reached: both bounds of a lone curve's, written by its
        # line; with several curves 50 ms for each single instance, in the legend (the lines
        # lie close together).
        bounds: tuple[float, ...]
        if len(curves) == 1:
            bounds = guide.RESPONSE_BANDS_MS.get(curve.backend, ())
        else:
            bounds = (guide.WITH_REDIS_MS,) if curve.instances == 1 else ()
        reached = []
        for bound in bounds:
            even = break_even_hit_rate(
                curve.hit_ms, curve.overhead_ms, curve.upstream.mean_ms, bound
            )
            if np.isfinite(even) and even > 0:
                reached.append(f"{bound:g} ms from {even:.1%}")
                ax.axvline(even, color=colour, linestyle=":", linewidth=1)
                if len(curves) == 1:
                    ax.annotate(reached[-1], (even, 0.98), xycoords=("data", "axes fraction"),
                                rotation=90, ha="right", va="top", fontsize=8,
                                color=colour)  # fmt: skip
        label = f"{curve.backend}, {instances_text(curve.instances)}"
        if reached and len(curves) > 1:
            label += f" (dotted: {', '.join(reached)})"
        ax.plot(rates, means, color=colour, linestyle=instance_style(curve.instances),
                linewidth=1.6, label=label)  # fmt: skip
    upstream = curves[0].upstream
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(plain_label))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlim(0, 1)
    ax.set_xlabel("hit rate")
    ax.set_ylabel("mean response time (ms, log scale)")
    ax.set_title(f"Mean response time at a {upstream.describe} upstream")
    style_axes(ax)
    ax.legend(loc="lower left", fontsize=8)
    return fig


def capacity(results: Results) -> Figure | None:
    """Served requests/s against p99 from the intended send, per sweep step; the guide's 50 ms."""
    curves = plot_data.sweep_curves(results)
    if not curves:
        return None
    fig = figure(4.6)
    ax = fig.add_subplot()
    for curve in curves:
        colour = LEGEND_GREY if curve.backend is None else backend_colour(curve.backend)
        ax.plot(curve.served_rps, curve.p99_ms, "-", color=colour, label=curve.label)
        for served, p99, kept in zip(curve.served_rps, curve.p99_ms, curve.kept_up, strict=True):
            # Filled: the step kept up; hollow: the first step that did not (the sweep's end).
            ax.plot([served], [p99], "o", color=colour, markerfacecolor=colour if kept else "white")
    ax.axhline(guide.WITH_REDIS_MS, color=GUIDE_COLOUR, linestyle="--", linewidth=1,
               label=f"guide's {guide.WITH_REDIS_MS:g} ms")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(plain_label))
    ax.set_xlabel("served (requests/s, one instance)")
    ax.set_ylabel("p99 from the intended send (ms)")
    ax.set_title("Throughput against latency: where each sweep stopped keeping up")
    style_axes(ax)
    ax.legend(fontsize=9)
    return fig
