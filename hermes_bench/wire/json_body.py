"""Strict JSON for request bodies: whatever parses here re-encodes as standard JSON in UTF-8.

Python's json module accepts NaN, Infinity, numbers too large for a float (1e400 becomes inf)
and lone surrogates ("\\ud800"), and raises RecursionError on deep nesting. Each of those
later breaks hashing, the OpenAI SDK or the JSON answer with a 500, so the target and the fake
upstream both read bodies through `parse_json_body` and answer 400 with its message.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from hermes_bench.errors import HermesBenchError

# Only a \uD800-\uDFFF escape can put a surrogate into a str decoded strictly from UTF-8, so
# bodies without one (nearly all) skip the full re-encoding check.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonBodyError(HermesBenchError):
    """A request body is not strict JSON; the message says what is wrong, for a 400 answer.
    `reason` is the message alone and `column` where the decoder stopped, when it did."""

    def __init__(self, message: str, reason: str | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message
        self.column = column


def _reject_constant(name: str) -> Any:
    raise JsonBodyError(f"{name} is not a JSON number; send a finite number or null")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonBodyError(f"the number {text[:40]} is out of the range of a 64-bit float")
    return value


def parse_json_body(raw: bytes) -> Any:
    """`raw` parsed as strict JSON in UTF-8; JsonBodyError says why when it is not."""
    try:
        text = raw.decode("utf-8-sig")  # a leading BOM is tolerated, as RFC 8259 allows
    except UnicodeDecodeError as exc:
        raise JsonBodyError(f"the body is not UTF-8: {exc}") from None
    return parse_json_text(text, "the body")


def parse_json_text(text: str, what: str = "the text") -> Any:
    """`text` parsed as strict JSON; JsonBodyError says why when it is not, naming `what`."""
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise JsonBodyError(f"{what} is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise JsonBodyError(str(exc), exc.msg, exc.colno) from None
    except ValueError as exc:  # int strings past Python's digit limit
        raise JsonBodyError(str(exc)) from None
    if _SURROGATE_ESCAPE.search(text):
        _check_encodable(value)
    return value


def _check_encodable(value: Any) -> None:
    """Raise JsonBodyError unless `value` encodes as UTF-8 JSON (valid surrogate pairs do)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise JsonBodyError(
            "the body holds a lone UTF-16 surrogate escape (such as \\ud800), "
            "which is not a Unicode character"
        ) from None
    except RecursionError:
        raise JsonBodyError("the body is nested too deeply") from None
