"""Streamed answers in the app: a replay is the cached answer's events, an upstream stream is
passed on whole and put together for the cache, a broken one is said and not cached."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import openai
from chat_bodies import body

from hermes_bench.app.streaming import Assembled, pass_on, replay
from hermes_bench.upstream.completion import completion_response
from hermes_bench.wire.answer import answer_text
from hermes_bench.wire.stream import DONE, completion_chunks


def _events(raw: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(e.removeprefix(b"data: ")) for e in raw if e != DONE]


def _text(events: list[dict[str, Any]]) -> str:
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])


async def _collect(stream: AsyncIterator[bytes]) -> list[bytes]:
    return [event async for event in stream]


async def test_a_replay_is_the_cached_answer_as_events() -> None:
    completion = completion_response(body(n=2), completion_id="c", created=1)
    raw = await _collect(replay(json.dumps(completion).encode(), include_usage=True))
    assert raw[-1] == DONE
    events = _events(raw)
    assert events[-1]["usage"] == completion["usage"]
    first = [e for e in events if e["choices"] and e["choices"][0]["index"] == 0]
    assert _text(first) == answer_text(body(n=2))


async def test_a_whole_stream_is_passed_on_and_assembled_for_the_cache() -> None:
    completion = completion_response(body(n=2), completion_id="c", created=1)
    chunks = completion_chunks(completion, include_usage=True)
    cached: list[bytes] = []

    async def upstream() -> AsyncIterator[Mapping[str, Any]]:
        for chunk in chunks:
            yield chunk

    async def whole(content: bytes) -> None:
        cached.append(content)

    raw = await _collect(pass_on(upstream(), whole, lambda exc: {}))
    assert _events(raw) == chunks and raw[-1] == DONE
    (content,) = cached
    assembled = json.loads(content)
    assert [c["message"]["content"] for c in assembled["choices"]] == [
        c["message"]["content"] for c in completion["choices"]
    ]
    assert assembled["usage"] == completion["usage"] and assembled["object"] == "chat.completion"


async def test_a_broken_stream_ends_with_an_error_event_and_is_not_cached() -> None:
    completion = completion_response(body(), completion_id="c", created=1)
    chunks = completion_chunks(completion, include_usage=False)
    cached: list[bytes] = []

    async def upstream() -> AsyncIterator[Mapping[str, Any]]:
        yield chunks[0]
        yield chunks[1]
        raise openai.APIConnectionError(request=httpx.Request("POST", "http://upstream/v1"))

    async def whole(content: bytes) -> None:
        cached.append(content)

    raw = await _collect(pass_on(upstream(), whole, lambda exc: {"error": {"message": "broke"}}))
    assert _events(raw)[-1] == {"error": {"message": "broke"}} and DONE not in raw
    assert cached == []


def test_an_unfinished_stream_is_not_whole() -> None:
    assembled = Assembled()
    assembled.add({"id": "c", "choices": [{"index": 0, "delta": {"content": "half"}}]})
    assert not assembled.complete
    assembled.add({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    assert assembled.complete and json.loads(assembled.completion())["id"] == "c"
