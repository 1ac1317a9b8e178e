"""The load generator's reading of a target's Server-Timing header into step scenarios.

Read for every response, so the form the reference app writes (`name;dur=MS` with three
decimals, see hermes_bench.app.server_timing) is read with two regex calls and no float
arithmetic; anything else goes to the full W3C parser, whose answer is the reference for both.
"""

from __future__ import annotations

import re

from hermes_bench.app.server_timing import parse_server_timing
from hermes_bench.results.vocabulary import STEP_PREFIX

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# At most 12 digits of ms: below 2^53 µs, where the full parser's float arithmetic is exact.
_ENTRY = rf"{_TOKEN};dur=[0-9]{{1,12}}\.[0-9]{{3}}"
# The whole value in the app's form: `name;dur=1.234` entries joined by commas.
_APP_FORM = re.compile(rf"{_ENTRY}(?:,[ \t]*{_ENTRY})*")
# One entry's name and its duration in ms, split at the point: ms * 1000 is the digits joined.
_APP_ENTRY = re.compile(rf"({_TOKEN});dur=([0-9]{{1,12}})\.([0-9]{{3}})")


def parse_steps(value: str) -> dict[str, int] | None:
    """µs per step name, exactly as parse_server_timing gives it (None when malformed)."""
    if _APP_FORM.fullmatch(value) is None:
        return parse_server_timing(value)
    steps: dict[str, int] = {}
    for name, whole, thousandths in _APP_ENTRY.findall(value):
        # "0.212" ms is 212 µs: the digits without the point, no float rounding to mind.
        steps[name] = steps.get(name, 0) + int(whole + thousandths)
    return steps


# One Server-Timing value read: its steps as ("_step:NAME" scenario, µs), and how many steps
# it named past the cap on names; None when the value is malformed.
StepsRead = tuple[tuple[tuple[str, int], ...], int] | None
# Distinct Server-Timing names one process records: each costs two fixed-size histograms.
MAX_STEP_NAMES = 16
# Values remembered by a StepReader; past it the memo starts again.
MAX_REMEMBERED = 1024
_UNREAD: StepsRead = ((), -1)  # a value not read yet (no reading drops -1 names)


class StepReader:
    """Server-Timing values into "_step:NAME" scenarios, at most MAX_STEP_NAMES names.

    A target's values repeat a lot (µs durations cluster), so each distinct value is read once
    and remembered; reading it again gives what the first reading gave, since names only ever
    join the set and a name left out once the set was full stays left out.
    """

    def __init__(self) -> None:
        self._scenarios: dict[str, str] = {}  # Server-Timing name -> its "_step:" scenario
        self._read: dict[str, StepsRead] = {}

    def read(self, value: str) -> StepsRead:
        """The steps of one Server-Timing value (see StepsRead)."""
        read = self._read.get(value, _UNREAD)
        if read is not _UNREAD:
            return read
        if len(self._read) >= MAX_REMEMBERED:
            self._read = {}
        read = self._read[value] = self._resolve(parse_steps(value))
        return read

    def _resolve(self, steps: dict[str, int] | None) -> StepsRead:
        if steps is None:
            return None
        scenarios = self._scenarios
        kept = []
        dropped = 0
        for name, step_us in steps.items():
            scenario = scenarios.get(name)
            if scenario is None:
                if len(scenarios) >= MAX_STEP_NAMES:
                    dropped += 1
                    continue
                scenario = scenarios[name] = STEP_PREFIX + name
            kept.append((scenario, step_us))
        return tuple(kept), dropped
