"""The run as JUnit XML, for CI test tabs: one testcase per claim verdict and per threshold.

A claim whose verdict --fail-on names is a failure, an inconclusive or unmeasured one is
skipped, any other passes; a failed threshold is a failure, an unmeasured one an error (the run
could not check it). Pure: results in, XML text out.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from hermes_bench.redaction import redact_text
from hermes_bench.results.model import INCONCLUSIVE, NOT_MEASURED, Claim, Results, ThresholdCheck

SUITE_PREFIX = "hermes-bench"
_SKIPPED_VERDICTS = (INCONCLUSIVE, NOT_MEASURED)


@dataclass(frozen=True)
class Case:
    """One testcase: its outcome is "passed", "failure", "error" or "skipped"."""

    name: str
    outcome: str
    message: str
    details: str
    kind: str  # the type attribute of a failure or an error


def claim_case(claim: Claim, fail_on: Sequence[str]) -> Case:
    """A claim's verdict as a testcase."""
    text = f"{claim.verdict}: {claim.summary}"
    details = "\n".join(
        line for line in (text, claim.holds_when, f"the guide says: {claim.guide}") if line
    )
    if claim.verdict in fail_on:
        outcome = "failure"
        text = f"--fail-on {claim.verdict!r}: {claim.summary}"
    elif claim.verdict in _SKIPPED_VERDICTS:
        outcome = "skipped"
    else:
        outcome = "passed"
    return Case(f"{claim.id}: {claim.title}", outcome, text, details, claim.verdict)


def threshold_case(check: ThresholdCheck) -> Case:
    """A threshold as a testcase."""
    outcome = {"passed": "passed", "failed": "failure", "unmeasured": "error"}[check.status]
    return Case(
        check.expression, outcome, check.message, check.message, f"threshold {check.status}"
    )


def junit_xml(results: Results, fail_on: Sequence[str] | None = None) -> str:
    """The JUnit XML document of the run: suites claims, Redis faults (if any), thresholds."""
    verdicts = results.run.options.fail_on if fail_on is None else fail_on
    suites = [("claims", [claim_case(c, verdicts) for c in results.claims])]
    if results.outages:
        suites.append(("redis-faults", [claim_case(c, verdicts) for c in results.outages]))
    suites.append(("thresholds", [threshold_case(t) for t in results.thresholds]))
    root = ET.Element("testsuites", name=f"{SUITE_PREFIX} {results.run.id}")
    _counts(root, [case for _, cases in suites for case in cases])
    root.set("time", f"{results.run.wall_s or 0:g}")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(results.run.started_at))
    for name, cases in suites:
        suite = ET.SubElement(root, "testsuite", name=f"{SUITE_PREFIX}.{name}", timestamp=stamp)
        _counts(suite, cases)
        suite.set("time", "0")
        properties = ET.SubElement(suite, "properties")
        for key, value in _properties(results).items():
            ET.SubElement(properties, "property", name=key, value=value)
        for case in cases:
            _testcase(suite, f"{SUITE_PREFIX}.{name}", case)
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode", xml_declaration=False)
    return redact_text('<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n")


def _counts(element: ET.Element, cases: list[Case]) -> None:
    element.set("tests", str(len(cases)))
    for attribute, outcome in (("failures", "failure"), ("errors", "error"),
                               ("skipped", "skipped")):  # fmt: skip
        element.set(attribute, str(sum(case.outcome == outcome for case in cases)))


def _testcase(suite: ET.Element, classname: str, case: Case) -> None:
    element = ET.SubElement(suite, "testcase", name=case.name, classname=classname, time="0")
    if case.outcome == "passed":
        ET.SubElement(element, "system-out").text = case.details
        return
    outcome = ET.SubElement(element, case.outcome, message=case.message)
    if case.outcome != "skipped":
        outcome.set("type", case.kind)
        outcome.text = case.details


def _properties(results: Results) -> dict[str, str]:
    options = results.run.options
    return {
        "run": results.run.id,
        "status": results.run.status,
        "profile": results.run.profile,
        "backends": ",".join(options.backends),
        "workload": options.workload,
        "redis": options.redis,
        "fail-on": ",".join(options.fail_on),
    }
