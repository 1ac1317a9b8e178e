"""Streamed answers (`"stream": true`): a cached answer replayed as server-sent events, and an
upstream stream passed on as it comes while it is put together for the cache.

A cached answer is the whole `chat.completion` JSON, whichever way it was asked for: `stream`
does not change the request hash (wire.chat), so a streamed and a whole request share one entry.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai

from hermes_bench.wire.stream import DONE, completion_chunks, sse_event

EVENT_STREAM = "text/event-stream"


async def replay(cached: bytes, include_usage: bool) -> AsyncIterator[bytes]:
    """A cached `chat.completion` as the events the upstream would have streamed."""
    for chunk in completion_chunks(json.loads(cached), include_usage=include_usage):
        yield sse_event(chunk)
    yield DONE


@dataclass
class _Choice:
    role: str = "assistant"
    pieces: list[str] = field(default_factory=list)
    finish_reason: str | None = None


@dataclass
class Assembled:
    """The whole completion of a stream, built chunk by chunk."""

    head: dict[str, Any] = field(default_factory=dict)
    choices: dict[int, _Choice] = field(default_factory=dict)
    usage: dict[str, Any] | None = None

    def add(self, chunk: Mapping[str, Any]) -> None:
        for name in ("id", "created", "model", "system_fingerprint"):
            if name in chunk and name not in self.head:
                self.head[name] = chunk[name]
        if chunk.get("usage"):
            self.usage = dict(chunk["usage"])
        for choice in chunk.get("choices") or []:
            built = self.choices.setdefault(int(choice.get("index", 0)), _Choice())
            delta = choice.get("delta") or {}
            if delta.get("role"):
                built.role = delta["role"]
            if delta.get("content"):
                built.pieces.append(delta["content"])
            if choice.get("finish_reason"):
                built.finish_reason = choice["finish_reason"]

    @property
    def complete(self) -> bool:
        """Every choice finished: the answer is whole and may be cached."""
        return bool(self.choices) and all(c.finish_reason for c in self.choices.values())

    def completion(self) -> bytes:
        """The `chat.completion` JSON a whole request would have got."""
        body = {
            **self.head,
            "object": "chat.completion",
            "choices": [
                {
                    "index": index,
                    "message": {"role": choice.role, "content": "".join(choice.pieces)},
                    "finish_reason": choice.finish_reason,
                    "logprobs": None,
                }
                for index, choice in sorted(self.choices.items())
            ],
            "usage": self.usage,
        }
        return json.dumps(body).encode()


async def pass_on(
    chunks: AsyncIterator[Mapping[str, Any]],
    on_whole: Callable[[bytes], Awaitable[None]],
    on_failure: Callable[[Exception], Mapping[str, Any]],
) -> AsyncIterator[bytes]:
    """Each upstream chunk as an event the moment it comes; once the stream ended whole,
    `on_whole` gets the assembled completion (to cache it). A failure mid-stream ends it with
    one error event (`on_failure`'s body) and nothing is cached."""
    assembled = Assembled()
    try:
        async for chunk in chunks:
            assembled.add(chunk)
            yield sse_event(chunk)
    except (openai.APIError, httpx.HTTPError) as exc:  # the upstream broke off: say so
        yield sse_event(on_failure(exc))
        return
    yield DONE
    if assembled.complete:
        await on_whole(assembled.completion())
