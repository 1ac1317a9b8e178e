"""How every plot of the report looks: one figure size, axes, bar fills, labels, PNG bytes.

Each plot builds its own matplotlib Figure on an Agg canvas: no pyplot, so no global figure
state is shared between plots or with any other user of matplotlib in the process.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

# 9 in at 100 dpi: 900 px wide, the width the report lays plots out at.
WIDTH_IN = 9.0
DPI = 100
# Line styles by number of instances: 1 solid, 2 dashed...
INSTANCE_STYLES = ("-", "--", ":", "-.")
LEGEND_GREY = "#777777"
# The guide's own figures, drawn as reference lines.
GUIDE_COLOUR = "#444444"


def figure(height_in: float) -> Figure:
    """A new figure of the report's width, on its own Agg canvas."""
    fig = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)  # the Agg backend, set for this figure alone
    return fig


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes; the same figure gives the same bytes."""
    buffer = io.BytesIO()
    # No creation-time metadata: the same results give the same bytes.
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def style_axes(ax: Axes) -> None:
    """A light grid, no top or right spine."""
    ax.grid(True, which="major", alpha=0.35)
    ax.spines[["top", "right"]].set_visible(False)


def instance_style(instances: int) -> str:
    """The line style of a cell with `instances` target instances."""
    return INSTANCE_STYLES[(instances - 1) % len(INSTANCE_STYLES)]


def plain_label(value: float, _pos: object = None) -> str:
    """A tick label as a plain number without trailing zeros (1, 2.5, 1000), never 10^3."""
    return f"{value:g}"


@dataclass(frozen=True)
class BarStyle:
    """How a bar's fill tells which quantity it shows; its colour tells the backend."""

    alpha: float = 1.0
    fill: bool = True
    hatch: str | None = None


SOLID = BarStyle()
LIGHT = BarStyle(alpha=0.35)
HATCHED = BarStyle(fill=False, hatch="//")


def bar_look(colour: str, style: BarStyle) -> dict[str, Any]:
    """What bar() and barh() are told: the backend's colour, the quantity's fill."""
    return {
        "color": colour,
        "edgecolor": colour,
        "alpha": style.alpha,
        "fill": style.fill,
        "hatch": style.hatch,
    }


def labelled_bar(
    ax: Axes, x: float, height: float, width: float, colour: str, style: BarStyle, label: str
) -> None:
    """A vertical bar with its value written above it."""
    ax.bar(x, height, width, **bar_look(colour, style))
    ax.annotate(
        label,
        (x, height),
        ha="center",
        va="bottom",
        fontsize=8,
        xytext=(0, 2),
        textcoords="offset points",
    )


def labelled_barh(
    ax: Axes, y: float, width: float, height: float, colour: str, style: BarStyle, label: str
) -> None:
    """A horizontal bar with its value written right of it."""
    ax.barh(y, width, height, **bar_look(colour, style))
    ax.annotate(
        label,
        (width, y),
        ha="left",
        va="center",
        fontsize=8,
        xytext=(3, 0),
        textcoords="offset points",
    )


def legend_patch(style: BarStyle, label: str) -> Patch:
    """A grey legend key for a fill style (the colour is the backend's, told elsewhere)."""
    return Patch(
        facecolor=LEGEND_GREY if style.fill else "white",
        edgecolor=LEGEND_GREY,
        alpha=style.alpha,
        hatch=style.hatch,
        label=label,
    )
