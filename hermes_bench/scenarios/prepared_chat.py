"""What a chat request of one WorkItem sends and must get back, worked out once per item.

Popular prompts repeat by design, so the JSON body, the fake upstream's answer and the request
hash are memoised per item instead of being rebuilt for every request, and so is the last 200
body found to hold the right answer: a HIT sends the very same bytes again, and bytes equal to
ones already checked hold the same answer, so the check needs no JSON parse.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from hermes_bench.scenarios.workload import WorkItem
from hermes_bench.wire.answer import answer_text
from hermes_bench.wire.chat import request_hash

# Items remembered: a catalogue's popular head, and room for the one-offs passing through.
MAX_ITEMS = 8192


@dataclass(slots=True)
class PreparedChat:
    """One item's request body, expected answer and request hash, and its checked answer."""

    item: WorkItem
    body: bytes  # json.dumps(item.body()), as Locust's json= would send it
    answer: str  # the fake upstream's answer to it
    checked_body: bytes | None = None  # the last 200 body whose answer was found right
    _hash: str | None = None

    def stream_body(self) -> bytes:
        """The body asking for a streamed answer (rare: built each time)."""
        return json.dumps({**self.item.body(), "stream": True}).encode()

    def request_hash(self) -> str:
        """The request hash the upstream logs for this item (the target forwards its body)."""
        if self._hash is None:
            self._hash = request_hash(self.item.body())
        return self._hash


@functools.lru_cache(maxsize=MAX_ITEMS)
def prepared_chat(item: WorkItem) -> PreparedChat:
    """The PreparedChat of `item`, built on its first request; memoised (one object per item
    while it stays among the MAX_ITEMS most recent, so its checked body is remembered)."""
    body = item.body()
    return PreparedChat(item, json.dumps(body).encode(), answer_text(body))
