"""Colours shared by the plots, the HTML report and the terminal summary."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from types import MappingProxyType

from hermes_bench.results.model import (
    BETTER,
    BORDERLINE,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_MEASURED,
)

# Redis red and a contrasting blue: the two backends every claim compares.
BACKEND_COLOURS = MappingProxyType({"redis": "#c0392b", "memory": "#1f6fb2"})
# For any other backend name, picked by a stable hash so it keeps its colour across plots.
_OTHER_BACKEND_COLOURS = ("#2e8b57", "#8e44ad", "#d4860b", "#4d4d4d")

VERDICT_COLOURS: Mapping[str, str] = MappingProxyType(
    {
        HOLDS: "#1a7f37",
        BETTER: "#0b6e99",
        FAILS: "#c62828",
        BORDERLINE: "#7b5ea7",
        INCONCLUSIVE: "#b26a00",
        NOT_MEASURED: "#6b7280",
    }
)
_UNKNOWN_VERDICT_COLOUR = "#6b7280"


def backend_colour(backend: str) -> str:
    """The hex colour of a backend, the same in every plot."""
    known = BACKEND_COLOURS.get(backend)
    if known is not None:
        return known
    return _OTHER_BACKEND_COLOURS[zlib.crc32(backend.encode()) % len(_OTHER_BACKEND_COLOURS)]


def verdict_colour(verdict: str) -> str:
    """The hex colour of a verdict; grey for a verdict this version does not know."""
    return VERDICT_COLOURS.get(verdict, _UNKNOWN_VERDICT_COLOUR)
