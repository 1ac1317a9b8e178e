"""--hermes-hit-header: how a target marks a cache hit on its answers, and reading it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hermes_bench.errors import ConfigError
from hermes_bench.results.vocabulary import HIT, MISS

# The reference app's header, whose value is the outcome itself (HIT, MISS or BYPASS).
DEFAULT_HIT_HEADER = "X-Cache"
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)


@dataclass(frozen=True, slots=True)
class HitHeader:
    """How a target marks its cache outcome on a chat answer: a header, and what it says.

    X-Cache alone (the default): its value is the outcome. NAME=VALUE: VALUE (any case) is a
    HIT, another value a MISS. NAME alone: present is a HIT, absent a MISS. In the first two an
    answer without the header has no outcome (None): the upstream's call log tells.
    """

    name: str  # lower case, as the response headers are looked up
    value: str | None  # lower case; None: the header's presence, or its own value, tells
    value_is_outcome: bool  # X-Cache alone: HIT, MISS, BYPASS as sent

    def outcome(self, sent: str | None) -> str | None:
        """The outcome an answer's header value `sent` (None: no such header) gives."""
        if self.value_is_outcome:
            return sent or None
        if self.value is None:
            return HIT if sent is not None else MISS
        if sent is None:
            return None
        return HIT if sent.strip().lower() == self.value else MISS


def parse_hit_header(spec: str) -> HitHeader:
    """HitHeader of --hermes-hit-header NAME[=VALUE]; ConfigError for a malformed one."""
    name, equals, value = str(spec).partition("=")
    name, value = name.strip(), value.strip()
    if not _TOKEN.fullmatch(name) or (equals and not value):
        raise ConfigError(
            f"--hermes-hit-header {spec!r} is not NAME or NAME=VALUE: give the header that marks "
            "a hit, e.g. X-From-Cache (present = hit) or cf-cache-status=HIT (that value = hit)"
        )
    if not equals:
        return HitHeader(name.lower(), None, name.lower() == DEFAULT_HIT_HEADER.lower())
    return HitHeader(name.lower(), value.lower(), False)
