"""What fails a run in CI: claims whose verdict --fail-on names, and thresholds not passed.

Pure: read from the results alone, so the terminal, the exit code and the JUnit file agree.
"""

from __future__ import annotations

from collections.abc import Sequence

from hermes_bench.results.model import Claim, Results, ThresholdCheck


def judged(results: Results) -> list[Claim]:
    """The guide's claims, then the faults of "When Redis fails" (claims about the app too)."""
    return [*results.claims, *results.outages]


def fail_on_matches(results: Results, fail_on: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Per --fail-on verdict (the run's own when None), the ids that got it; unmatched left out."""
    verdicts = results.run.options.fail_on if fail_on is None else fail_on
    matches = {v: [c.id for c in judged(results) if c.verdict == v] for v in verdicts}
    return {verdict: ids for verdict, ids in matches.items() if ids}


def thresholds_not_passed(results: Results) -> list[ThresholdCheck]:
    """Thresholds that failed, or whose figure the run did not measure (not a pass either)."""
    return [check for check in results.thresholds if check.status != "passed"]
