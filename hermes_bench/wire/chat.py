"""Canonical form and hash of an OpenAI chat-completion request.

The target's cache key, the fake upstream's ground truth and its deterministic answer all use
this one definition, so "the same request" means the same thing everywhere.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# Parameters whose OpenAI default is the same as leaving them out: filled in so that
# {"temperature": 1} and {}, or {"logprobs": false} and {}, hash alike.
_DEFAULTS: dict[str, Any] = {
    "temperature": 1.0,
    "top_p": 1.0,
    "n": 1,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "logprobs": False,
}
_FLOAT_PARAMS = frozenset({"temperature", "top_p", "presence_penalty", "frequency_penalty"})
# Fields that never change the answer: who asked, bookkeeping, and how it is delivered (a
# streamed answer and a whole one are the same answer: one cache entry serves both).
_IGNORED = frozenset({"user", "metadata", "store", "stream", "stream_options", "service_tier"})


def canonical_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """Return the request with defaults filled in, None dropped and answer-neutral fields removed.

    Every other field is kept: a parameter we do not know might change the answer, and a wrong
    cache hit is worse than a miss.
    """
    canonical: dict[str, Any] = dict(_DEFAULTS)
    for name, value in body.items():
        if name in _IGNORED or value is None:
            continue
        if name in _FLOAT_PARAMS and isinstance(value, int) and not isinstance(value, bool):
            value = _as_float(value)
        canonical[name] = value
    return canonical


def _as_float(value: int) -> float | int:
    # An integer past the float range (10**400) stays as it is: still one canonical form.
    try:
        return float(value)
    except OverflowError:
        return value


def request_hash(body: Mapping[str, Any]) -> str:
    """SHA-256 hex digest of the canonical request, as compact sorted JSON."""
    encoded = json.dumps(
        canonical_request(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()
