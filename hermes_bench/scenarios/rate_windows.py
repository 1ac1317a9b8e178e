"""Requests admitted per rate-limit window, with the window as the target reports it.

Every response of the reference target carries X-RateLimit-Limit and X-RateLimit-Reset (epoch
seconds, rounded up, at which its window frees). The admitted requests of one key are grouped
by that Reset value and each group is counted against the limit, so a burst that straddles a
window boundary counts as two windows, not one window over its limit. N instances that each
keep their own window, all begun within one burst, report the same Reset: one group, up to N
times the limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateResponse:
    """What one response of a burst says: admitted or refused (429), and its rate-limit headers."""

    admitted: bool
    limit: int | None
    reset_s: int | None


@dataclass(frozen=True, slots=True)
class WindowCount:
    """One window of one key: its Reset, its limit, the requests it admitted and refused."""

    reset_s: int
    limit: int
    admitted: int
    refused: int

    @property
    def filled(self) -> bool:
        """Pushed to its limit (something refused) or past it: only then does it test the limiter.

        A window the burst left before reaching the limit (it ended, or began at its end) would
        read below 1x the limit whatever the limiter does.
        """
        return self.refused > 0 or self.admitted > self.limit

    @property
    def over_limit(self) -> bool:
        """More requests admitted than the limit allows."""
        return self.admitted > self.limit


@dataclass(frozen=True, slots=True)
class KeyWindows:
    """The windows of one key in Reset order, and admitted requests no window could claim."""

    windows: tuple[WindowCount, ...]
    unattributed: int  # admitted without a Reset, or in a window whose limit is unknown


def count_windows(responses: Iterable[RateResponse]) -> KeyWindows:
    """Group the responses of one key by their Reset and count each group."""
    groups: dict[int, list[int]] = {}  # reset -> [limit (0: unknown), admitted, refused]
    unattributed = 0
    for response in responses:
        if response.reset_s is None:
            unattributed += response.admitted
            continue
        group = groups.setdefault(response.reset_s, [0, 0, 0])
        if response.limit is not None and response.limit > group[0]:
            group[0] = response.limit
        group[1 if response.admitted else 2] += 1
    windows = []
    for reset_s, (limit, admitted, refused) in sorted(groups.items()):
        if limit <= 0:
            unattributed += admitted
        else:
            windows.append(WindowCount(reset_s, limit, admitted, refused))
    return KeyWindows(tuple(windows), unattributed)


def header_int(value: str | None) -> int | None:
    """A header's non-negative integer, None when absent or not one."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() else None
