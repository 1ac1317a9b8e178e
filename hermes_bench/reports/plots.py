"""The report's plots: Results in, PNG bytes out (None when there is nothing to plot).

Each plot builds its own matplotlib Figure on an Agg canvas: no pyplot, so no global figure
state is shared between plots or with any other user of matplotlib in the process.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from hermes_bench.reports import plot_data
from hermes_bench.reports.palette import backend_colour
from hermes_bench.reports.real_latency import blended_mean_ms, break_even_hit_rate
from hermes_bench.results.model import Results
from hermes_bench.results.vocabulary import BACKENDS

# 9 in at 100 dpi: 900 px wide, the width the report lays plots out at.
WIDTH_IN = 9.0
DPI = 100
_OUTCOME_STYLES = {"HIT": "-", "MISS": "--"}
_INSTANCE_STYLES = ("-", "--", ":", "-.")


def _figure(height_in: float) -> Figure:
    fig = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)  # the Agg backend, set for this figure alone
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No creation-time metadata: the same results give the same bytes.
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _style_axes(ax: Axes) -> None:
    ax.grid(True, which="major", alpha=0.35)
    ax.spines[["top", "right"]].set_visible(False)


@dataclass(frozen=True)
class _BarStyle:
    """How a bar's fill tells which quantity it shows; its colour tells the backend."""

    alpha: float = 1.0
    fill: bool = True
    hatch: str | None = None


_SOLID = _BarStyle()
_LIGHT = _BarStyle(alpha=0.35)
_HATCHED = _BarStyle(fill=False, hatch="//")
_LEGEND_GREY = "#777777"


def _bar_look(colour: str, style: _BarStyle) -> dict[str, Any]:
    """What bar() and barh() are told: the backend's colour, the quantity's fill."""
    return {
        "color": colour,
        "edgecolor": colour,
        "alpha": style.alpha,
        "fill": style.fill,
        "hatch": style.hatch,
    }


def _labelled_bar(
    ax: Axes, x: float, height: float, width: float, colour: str, style: _BarStyle, label: str
) -> None:
    ax.bar(x, height, width, **_bar_look(colour, style))
    ax.annotate(
        label,
        (x, height),
        ha="center",
        va="bottom",
        fontsize=8,
        xytext=(0, 2),
        textcoords="offset points",
    )


def _legend_patch(style: _BarStyle, label: str) -> Patch:
    return Patch(
        facecolor=_LEGEND_GREY if style.fill else "white",
        edgecolor=_LEGEND_GREY,
        alpha=style.alpha,
        hatch=style.hatch,
        label=label,
    )


def _ms_label(value: float, _pos: object = None) -> str:
    return f"{value:g}"


def latency_cdf(results: Results) -> bytes | None:
    """CDF of cache-path latency per backend, HIT solid and MISS dashed, log ms axis."""
    cdfs = plot_data.latency_cdfs(results)
    if not cdfs:
        return None
    fig = _figure(5.4)
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
    ax.xaxis.set_major_formatter(FuncFormatter(_ms_label))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("response time (ms, log scale)")
    ax.set_ylabel("share of requests at or below")
    ax.set_title("Cache-path response time by backend and outcome (1 instance)")
    _style_axes(ax)
    ax.grid(True, which="minor", axis="x", alpha=0.12)
    # Below the axes: inside, it would hide the tails that matter most.
    fig.legend(loc="outside lower center", ncols=2, fontsize=9)
    return _png(fig)


def hit_rate_over_time(results: Results) -> bytes | None:
    """Per-second hit rate of each cache cell; dotted: the ideal hit rate of its sequence."""
    series = plot_data.hit_rate_series(results)
    if not series:
        return None
    fig = _figure(4.6)
    ax = fig.add_subplot()
    for s in series:
        colour = backend_colour(s.backend)
        style = _INSTANCE_STYLES[(s.instances - 1) % len(_INSTANCE_STYLES)]
        ax.plot(
            s.elapsed_s,
            s.hit_rate,
            color=colour,
            linestyle=style,
            linewidth=1.8,
            marker="o" if len(s.elapsed_s) < 30 else None,
            markersize=3,
            label=s.cell_id,
        )
        if s.ideal_hit_rate is not None:
            ax.axhline(
                s.ideal_hit_rate,
                color=colour,
                linestyle=":",
                linewidth=1,
                alpha=0.8,
                label=f"{s.cell_id}: ideal {s.ideal_hit_rate:.1%}",
            )
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.set_xlabel("time since the cell's first response (s)")
    ax.set_ylabel("hit rate (HIT / cache lookups)")
    ax.set_title("Cache hit rate per second")
    _style_axes(ax)
    ax.legend(loc="lower right", fontsize=8, ncols=2)
    return _png(fig)


def upstream_calls(results: Results) -> bytes | None:
    """Per cache cell: requests that reached the cache, upstream calls, distinct prompts."""
    counts = plot_data.upstream_counts(results)
    if not counts:
        return None
    fig = _figure(4.6)
    ax = fig.add_subplot()
    x = np.arange(len(counts))
    width = 0.26
    # Colour says the backend (as in every plot); fill says which count the bar is.
    series = (
        (_LIGHT, [c.requests for c in counts]),
        (_SOLID, [c.upstream_calls for c in counts]),
        (_HATCHED, [c.distinct for c in counts]),
    )
    for offset, (style, values) in zip((-width, 0.0, width), series, strict=True):
        for i, (c, value) in enumerate(zip(counts, values, strict=True)):
            _labelled_bar(
                ax, x[i] + offset, value, width, backend_colour(c.backend), style, f"{value:,}"
            )
    ax.set_xticks(x, [c.cell_id for c in counts])
    ax.set_ylabel("requests / calls (count)")
    ax.set_title("Requests to the cache vs OpenAI calls that reached the upstream")
    ax.margins(y=0.12)
    _style_axes(ax)
    ax.grid(False, axis="x")
    labels = ("requests to the cache", "upstream calls (ground truth)", "distinct prompts")
    handles = [
        _legend_patch(style, label) for (style, _), label in zip(series, labels, strict=True)
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9)
    return _png(fig)


_CLIENT_STEP = "client-seen"
_STEP_LABELS = {"total": "total in the app", _CLIENT_STEP: "client-seen (load generator)"}


def where_time_goes(results: Results) -> bytes | None:
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
    fig = _figure(1.0 + sum(0.7 + 0.42 * len(names) for _, names in panels))
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
                style = _HATCHED if name == _CLIENT_STEP else _LIGHT if name == "total" else _SOLID
                y = i - 0.4 + height * (j + 0.5)
                _labelled_barh(ax, y, value, height, backend_colour(backend), style)
        ax.set_yticks(range(len(names)), [_STEP_LABELS.get(n, n) for n in names])
        ax.invert_yaxis()  # steps top down, in the order a request takes them
        ax.set_xlim(left=0)
        ax.margins(x=0.14)
        ax.set_title(f"{outcome} ({', '.join(counts)})", fontsize=10, loc="left")
        _style_axes(ax)
        ax.grid(False, axis="y")
    axes[-1].set_xlabel("p50 (ms)")
    fig.suptitle("Where the time goes: p50 of each step the target timed (1 instance)")
    handles = [Patch(color=backend_colour(b), label=b) for b in backends] + [
        _legend_patch(_SOLID, "a step (Server-Timing)"),
        _legend_patch(_LIGHT, "total in the app"),
        _legend_patch(_HATCHED, "client-seen"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9)
    return _png(fig)


def _labelled_barh(
    ax: Axes, y: float, width_ms: float, height: float, colour: str, style: _BarStyle
) -> None:
    ax.barh(y, width_ms, height, **_bar_look(colour, style))
    ax.annotate(
        f"{width_ms:.3g}",
        (width_ms, y),
        ha="left",
        va="center",
        fontsize=8,
        xytext=(3, 0),
        textcoords="offset points",
    )


def _order(name: str, order: tuple[str, ...]) -> int:
    return order.index(name) if name in order else len(order)


def admitted_vs_limit(results: Results) -> bytes | None:
    """Per rate-limit cell: share of bursts by requests admitted, against the limit."""
    distributions = plot_data.admitted_distributions(results)
    if not distributions:
        return None
    fig = _figure(1.2 + 1.9 * len(distributions))
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
            f"{d.cell_id}: {limit}; {d.over_limit_bursts:,} of {int(total):,} bursts over it",
            fontsize=10,
            loc="left",
        )
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel("share of bursts")
        _style_axes(ax)
    axes[-1].set_xlabel("requests admitted per burst, one fresh key and window (count)")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlim(left=0)
    fig.suptitle("Requests admitted per rate-limit window vs the limit")
    return _png(fig)


def sessions_after_restart(results: Results) -> bytes | None:
    """Per restart cell: share of sessions intact before and after restarting every target."""
    shares = plot_data.restart_shares(results)
    if not shares:
        return None
    fig = _figure(4.2)
    ax = fig.add_subplot()
    x = np.arange(len(shares))
    width = 0.36
    for i, s in enumerate(shares):
        colour = backend_colour(s.backend)
        for offset, intact, style in (
            (-width / 2, s.intact_before, _LIGHT),
            (width / 2, s.intact_after, _SOLID),
        ):
            label = f"{intact:,}/{s.sessions:,}"
            _labelled_bar(ax, x[i] + offset, intact / s.sessions, width, colour, style, label)
    ax.set_xticks(
        x,
        [
            f"{s.cell_id}\n({s.backend}, {s.instances} instance{'s' if s.instances != 1 else ''})"
            for s in shares
        ],
    )
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("sessions intact (%)")
    ax.set_title("Sessions intact before and after restarting every target instance")
    _style_axes(ax)
    ax.grid(False, axis="x")
    handles = [_legend_patch(_LIGHT, "before restart"), _legend_patch(_SOLID, "after restart")]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9)
    return _png(fig)


def lru_bound(results: Results) -> bytes | None:
    """Hit rate an LRU cache of each size could reach on the run's sequence, beside the achieved."""
    bounds = results.bounds
    if bounds is None or not bounds.lru:
        return None
    curve = bounds.lru
    fig = _figure(4.2)
    ax = fig.add_subplot()
    sizes = [point.size for point in curve]
    ax.plot(sizes, [p.hit_rate for p in curve], color="#333333", marker="o", markersize=3,
            linewidth=1.6, label="LRU of that size (stack distances)")  # fmt: skip
    if bounds.ideal_hit_rate is not None:
        ax.axhline(bounds.ideal_hit_rate, color="#333333", linestyle=":", linewidth=1,
                   label=f"ideal (unbounded) {bounds.ideal_hit_rate:.1%}")  # fmt: skip
    for cell, rate in plot_data.achieved_hit_rates(results):
        style = _INSTANCE_STYLES[(cell.instances - 1) % len(_INSTANCE_STYLES)]
        ax.axhline(rate, color=backend_colour(str(cell.backend)), linestyle=style,
                   linewidth=1.4, label=f"{cell.id} achieved {rate:.1%}")  # fmt: skip
    ax.set_xscale("log")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("cache size (entries, log scale)")
    ax.set_ylabel("hit rate")
    ax.set_title(f"Upper bounds for the {bounds.requests}-request sequence of a cell")
    _style_axes(ax)
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


# The guide's two bands: 10-50 ms with Redis, 50-200 ms without.
_GUIDE_BANDS = (("redis", 10.0, 50.0), ("memory", 50.0, 200.0))


def latency_vs_hit_rate(results: Results) -> bytes | None:
    """Mean response time at the real upstream against the hit rate, with the guide's bands."""
    curves = plot_data.blended_curves(results)
    if not curves:
        return None
    fig = _figure(4.8)
    ax = fig.add_subplot()
    rates = np.linspace(0.0, 1.0, 201)
    for backend, low, high in _GUIDE_BANDS:
        ax.axhspan(low, high, color=backend_colour(backend), alpha=0.08, linewidth=0)
        ax.annotate(f"guide, {'with' if backend == 'redis' else 'without'} Redis: "
                    f"{low:g}-{high:g} ms", (0.01, high), textcoords="offset points",
                    xytext=(2, -11), fontsize=8, color=backend_colour(backend))  # fmt: skip
    for index, curve in enumerate(curves):
        colour = backend_colour(curve.backend)
        style = _INSTANCE_STYLES[(curve.instances - 1) % len(_INSTANCE_STYLES)]
        hit, overhead = np.full_like(rates, curve.hit_ms), np.full_like(rates, curve.overhead_ms)
        means = blended_mean_ms(hit, overhead, curve.upstream.mean_ms, rates)
        label = f"{curve.backend}, {curve.instances} instance{'s' if curve.instances > 1 else ''}"
        ax.plot(rates, means, color=colour, linestyle=style, linewidth=1.6, label=label)
        here = blended_mean_ms(
            curve.hit_ms, curve.overhead_ms, curve.upstream.mean_ms, curve.hit_rate
        )
        ax.plot([curve.hit_rate], [here], marker="o", color=colour, markersize=6)
        ax.annotate(f"{curve.hit_rate:.0%}: {here:.0f} ms", (curve.hit_rate, here),
                    textcoords="offset points", xytext=(6, 4 + 11 * index), fontsize=8,
                    color=colour)  # fmt: skip
        if curve.instances == 1:
            bound = 50.0
            even = break_even_hit_rate(
                curve.hit_ms, curve.overhead_ms, curve.upstream.mean_ms, bound
            )
            if np.isfinite(even) and even > 0:
                ax.axvline(even, color=colour, linestyle=":", linewidth=1)
    upstream = curves[0].upstream
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(_ms_label))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlim(0, 1)
    ax.set_xlabel("hit rate")
    ax.set_ylabel("mean response time (ms, log scale)")
    ax.set_title(f"Mean response time at a {upstream.describe} upstream")
    _style_axes(ax)
    ax.legend(loc="lower left", fontsize=8)
    return _png(fig)


def capacity(results: Results) -> bytes | None:
    """Served requests/s against p99 from the intended send, per sweep step; the guide's 50 ms."""
    curves = plot_data.sweep_curves(results)
    if not curves:
        return None
    fig = _figure(4.6)
    ax = fig.add_subplot()
    for curve in curves:
        colour = _LEGEND_GREY if curve.backend is None else backend_colour(curve.backend)
        ax.plot(curve.served_rps, curve.p99_ms, "-", color=colour, label=curve.label)
        for served, p99, kept in zip(curve.served_rps, curve.p99_ms, curve.kept_up, strict=True):
            # Filled: the step kept up; hollow: the first step that did not (the sweep's end).
            ax.plot([served], [p99], "o", color=colour, markerfacecolor=colour if kept else "white")
    ax.axhline(50, color="#444444", linestyle="--", linewidth=1, label="guide's 50 ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(_ms_label))
    ax.set_xlabel("served (requests/s, one instance)")
    ax.set_ylabel("p99 from the intended send (ms)")
    ax.set_title("Throughput against latency: where each sweep stopped keeping up")
    _style_axes(ax)
    ax.legend(fontsize=9)
    return _png(fig)
