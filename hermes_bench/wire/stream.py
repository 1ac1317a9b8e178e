"""A chat completion as a stream: the `chat.completion.chunk` events of server-sent events.

The fake upstream streams its answers this way, and the reference app replays a cached answer
the same way, so a client cannot tell a replayed stream from one of the upstream.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

DONE = b"data: [DONE]\n\n"


def text_pieces(text: str) -> list[str]:
    """The answer as a stream sends it: one piece per word, each with the space after it."""
    return re.findall(r"\S+\s*", text) or [text]


def completion_chunks(
    completion: Mapping[str, Any], *, include_usage: bool
) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` objects that stream `completion`: a role chunk, a chunk per
    piece of each choice, a finish chunk per choice, and the usage when asked for
    (stream_options.include_usage), as OpenAI sends them."""
    head = {
        "id": completion["id"],
        "object": "chat.completion.chunk",
        "created": completion["created"],
        "model": completion["model"],
        "system_fingerprint": completion.get("system_fingerprint"),
    }

    def chunk(index: int, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**head, "choices": [choice]}

    chunks = []
    for choice in completion["choices"]:
        index = choice["index"]
        chunks.append(chunk(index, {"role": "assistant", "content": ""}, None))
        chunks += [
            chunk(index, {"content": p}, None) for p in text_pieces(choice["message"]["content"])
        ]
        chunks.append(chunk(index, {}, choice["finish_reason"]))
    if include_usage:
        chunks.append({**head, "choices": [], "usage": completion["usage"]})
    return chunks


def sse_event(chunk: Mapping[str, Any]) -> bytes:
    """One server-sent event holding `chunk` as compact JSON."""
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"
