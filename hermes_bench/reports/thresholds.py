"""k6-style pass/fail thresholds for `hermes-bench run --threshold EXPR`.

Two forms: `SUBJECT AGG OP VALUE[UNIT]` for a latency (`redis.HIT p(95)<50ms`) and
`NAME OP NUMBER` for a scalar figure (`redis.hit_rate>0.8`). Percentiles are on the 0-100 scale,
as everywhere in hermes-bench. Pure: the caller supplies lookups into the run's results.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from hermes_bench.errors import ConfigError
from hermes_bench.results.model import ThresholdCheck

OPERATORS: Mapping[str, Callable[[float, float], bool]] = MappingProxyType(
    {
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
        "==": operator.eq,
        "!=": operator.ne,
    }
)
# Microseconds per unit; both micro signs, since keyboards give one or the other.
UNITS_US: Mapping[str, float] = MappingProxyType(
    {"us": 1.0, "µs": 1.0, "μs": 1.0, "ms": 1_000.0, "s": 1_000_000.0}
)
DEFAULT_UNIT = "ms"
EXAMPLES = ("redis.HIT p(95)<50ms", "redis.hit_rate>=0.8")

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_OPERATOR_RE = re.compile(r"[<>=!]+")
_TOKEN_RE = re.compile(r"\S+")
_NAME_RE = re.compile(r"[A-Za-z0-9_][\w.\-]*")
_VALUE_RE = re.compile(rf"(?P<number>{_NUMBER})\s*(?P<unit>[^\s\d.+-]*)")
_PERCENTILE_RE = re.compile(rf"p\(\s*(?P<n>{_NUMBER})\s*\)")
_AGGREGATES = ("avg", "min", "max", "med")
_AGGREGATE_HELP = "p(N) with 0 < N <= 100, avg, min, max or med"


class ThresholdError(ConfigError):
    """A threshold expression that cannot be parsed: quotes it, marks the fault, shows examples."""

    def __init__(self, text: str, problem: str, span: tuple[int, int] | None = None) -> None:
        lines = [f"invalid threshold {text!r}: {problem}"]
        if span is not None:
            start, end = span
            lines += [f"  {text}", "  " + " " * start + "^" * max(1, end - start)]
        lines.append("valid examples: " + ", ".join(repr(e) for e in EXAMPLES))
        super().__init__("\n".join(lines))
        self.text = text
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Threshold:
    """One parsed threshold; `value` is in µs for a latency, the plain number for a scalar."""

    text: str
    subject: str
    aggregate: str | None  # "p(95)", "avg", "min" or "max" (med is p(50)); None for a scalar
    op: str
    value: float


@dataclass(frozen=True, slots=True)
class ThresholdResult:
    """Outcome of one threshold; passed is None when the run did not measure the subject."""

    threshold: Threshold
    observed: float | None
    passed: bool | None
    message: str


def parse_threshold(text: str) -> Threshold:
    """Parse `redis.HIT p(95)<50ms` or `redis.hit_rate>0.8`; raise ThresholdError otherwise."""
    if not isinstance(text, str):
        raise ThresholdError(repr(text), f"expected a string, got {type(text).__name__}")
    found = _OPERATOR_RE.search(text)
    if found is None:
        raise ThresholdError(text, "no comparison operator; use one of " + " ".join(OPERATORS))
    op = found.group()
    if op not in OPERATORS:
        problem = f"unknown operator {op!r}; use one of " + " ".join(OPERATORS)
        raise ThresholdError(text, problem, found.span())
    subject, aggregate = _left(text, found.start())
    value = _right(text, found.end(), op, aggregate)
    return Threshold(text=text, subject=subject, aggregate=aggregate, op=op, value=value)


def _left(text: str, op_start: int) -> tuple[str, str | None]:
    """SUBJECT [AGG] before the operator."""
    tokens = list(_TOKEN_RE.finditer(text, 0, op_start))
    if not tokens:
        raise ThresholdError(text, "missing subject before the operator", (op_start, op_start + 1))
    if len(tokens) > 2:
        problem = "expected 'SUBJECT AGGREGATE' or 'NAME' before the operator"
        raise ThresholdError(text, problem, (tokens[2].start(), tokens[-1].end()))
    subject = tokens[0]
    if len(tokens) == 1 and _looks_like_aggregate(subject.group()):
        problem = "missing subject before the aggregate (e.g. redis.HIT)"
        raise ThresholdError(text, problem, subject.span())
    if not _NAME_RE.fullmatch(subject.group()):
        problem = f"invalid subject {subject.group()!r}: letters, digits, '_', '.' and '-' only"
        raise ThresholdError(text, problem, subject.span())
    if len(tokens) == 1:
        return subject.group(), None
    return subject.group(), _aggregate(text, tokens[1])


def _looks_like_aggregate(token: str) -> bool:
    return token in _AGGREGATES or token.startswith("p(")


def _aggregate(text: str, token: re.Match[str]) -> str:
    """Canonical aggregate: p(N) with N as short as it goes, med as p(50)."""
    word = token.group()
    if word == "med":
        return "p(50)"
    if word in _AGGREGATES:
        return word
    found = _PERCENTILE_RE.fullmatch(word)
    if found is None:
        problem = f"unknown aggregate {word!r}; use {_AGGREGATE_HELP}"
        raise ThresholdError(text, problem, token.span())
    n = float(found["n"])
    if not 0 < n <= 100:
        problem = f"percentile must be above 0 and at most 100, got {found['n']}"
        raise ThresholdError(text, problem, token.span())
    return f"p({n:g})"


def _right(text: str, op_end: int, op: str, aggregate: str | None) -> float:
    """VALUE[UNIT] after the operator, in µs for a latency."""
    rest = text[op_end:]
    start = op_end + len(rest) - len(rest.lstrip())
    word = rest.strip()
    if not word:
        raise ThresholdError(text, f"missing value after {op!r}", (op_end - len(op), op_end))
    span = (start, start + len(word))
    found = _VALUE_RE.fullmatch(word)
    if found is None:
        expected = "a number" + (" with an optional unit (ms, us, µs, s)" if aggregate else "")
        raise ThresholdError(text, f"invalid value {word!r}: expected {expected}", span)
    number, unit = float(found["number"]), found["unit"]
    if not math.isfinite(number):
        raise ThresholdError(text, f"value {word!r} is too large", span)
    if aggregate is None:
        if unit:
            problem = (
                f"a scalar figure takes no unit, got {unit!r}; for a latency name an aggregate "
                "after the subject, as in 'redis.HIT p(95)<50ms'"
            )
            raise ThresholdError(text, problem, span)
        return number
    if unit and unit not in UNITS_US:
        problem = f"unknown unit {unit!r}; use ms, us, µs or s (no unit means ms)"
        raise ThresholdError(text, problem, (start + found.start("unit"), span[1]))
    if number < 0:
        raise ThresholdError(text, "a latency cannot be negative", span)
    return number * UNITS_US[unit or DEFAULT_UNIT]


def summary_key(aggregate: str) -> str:
    """Field of a latency summary (scenarios.metrics) holding `aggregate`: p(99.9) → p99_9_us."""
    if aggregate == "avg":
        return "mean_us"
    if aggregate in ("min", "max"):
        return f"{aggregate}_us"
    found = _PERCENTILE_RE.fullmatch(aggregate)
    if found is None:
        raise ValueError(f"unknown aggregate {aggregate!r}; expected {_AGGREGATE_HELP}")
    return f"p{float(found['n']):g}".replace(".", "_") + "_us"


def evaluate(
    threshold: Threshold,
    latency: Callable[[str, str], float | None],
    scalar: Callable[[str], float | None],
) -> ThresholdResult:
    """Check one threshold against the run: latency(subject, aggregate) in µs, scalar(name).

    A lookup returning None (or NaN) means not measured: passed is None, never True.
    """
    if threshold.aggregate is not None:
        observed = latency(threshold.subject, threshold.aggregate)
        label = f"{threshold.subject} {threshold.aggregate}"
        show: Callable[[float], str] = _ms
    else:
        observed = scalar(threshold.subject)
        label = threshold.subject
        show = _number
    limit = f"{threshold.op} {show(threshold.value)}"
    if observed is None or math.isnan(observed):
        message = f"{label} not measured (threshold {limit}): not evaluated"
        return ThresholdResult(threshold, None, None, message)
    observed = float(observed)
    passed = OPERATORS[threshold.op](observed, threshold.value)
    if passed:
        message = f"{label} = {show(observed)} {limit}: passed"
    else:
        message = f"{label} = {show(observed)}, not {limit}: failed"
    return ThresholdResult(threshold, observed, passed, message)


def threshold_check(result: ThresholdResult) -> ThresholdCheck:
    """The result as results.json keeps it: expression, measured value, limit and status."""
    threshold = result.threshold
    status = "unmeasured" if result.passed is None else "passed" if result.passed else "failed"
    return ThresholdCheck(
        expression=threshold.text,
        subject=threshold.subject,
        aggregate=threshold.aggregate,
        op=threshold.op,
        limit=threshold.value,
        unit=None if threshold.aggregate is None else "us",
        measured=result.observed,
        status=status,
        message=result.message,
    )


def _ms(value_us: float) -> str:
    # Three decimals of a millisecond is one microsecond, the resolution latencies are kept in.
    return f"{value_us / 1000:.3f}".rstrip("0").rstrip(".") + " ms"


def _number(value: float) -> str:
    return f"{value:.6g}"
