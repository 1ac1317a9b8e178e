"""A MISS's trip to the upstream: the client's bytes through the OpenAI SDK's raw request API,
on its aiohttp transport, and the upstream's failures answered as before (502, 504, passed on).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest

from hermes_bench.app.settings import TargetSettings
from hermes_bench.app.web import create_app
from hermes_bench.stack.stack import Stack, StackConfig
from hermes_bench.wire.answer import answer_text
from hermes_bench.wire.chat import request_hash

pytestmark = pytest.mark.e2e

HEADERS = {"Authorization": "Bearer sk-test", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    config = StackConfig(
        backend="memory", upstream_latency="fixed:5ms", target_env={"RATE_LIMIT": "none"}
    )
    with Stack(config) as running:
        yield running


@asynccontextmanager
async def _in_process(settings: TargetSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The app in this process with its lifespan run: its own SDK client and transport."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://target") as client,
    ):
        yield client


def test_the_client_body_reaches_the_upstream_as_sent(stack: Stack) -> None:
    """Parameters the app does not know (seed, user, top_p) arrive, so they count in the hash."""
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "pass me on"}],
        "seed": 7,
        "top_p": 0.5,
        "user": "u-1",
        "max_tokens": 20,
    }
    url = stack.target_urls[0] + "/v1/chat/completions"
    with httpx.Client(timeout=30, trust_env=False) as client:
        miss = client.post(url, content=json.dumps(body).encode(), headers=HEADERS)
        hit = client.post(url, content=json.dumps(body).encode(), headers=HEADERS)
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    assert miss.json()["choices"][0]["message"]["content"] == answer_text(body)
    assert hit.content == miss.content  # the upstream's bytes, cached and served as they came
    calls = stack.ground_truth(per_hash=True)["calls_per_hash"]
    assert calls.get(request_hash(body)) == 1


async def test_an_unreachable_upstream_is_a_502_never_cached() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: every connect is refused
        port = closed.getsockname()[1]
        settings = TargetSettings(
            openai_base_url=f"http://127.0.0.1:{port}/v1", rate_limit="none", instance_id="u"
        )
        async with _in_process(settings) as client:
            body = {"model": "m", "messages": [{"role": "user", "content": "anyone?"}]}
            answers = [
                await client.post("/v1/chat/completions", json=body, headers=HEADERS)
                for _ in range(2)
            ]
            stats = (await client.get("/stats")).json()
    assert [a.status_code for a in answers] == [502, 502]
    assert answers[0].json()["error"]["type"] == "upstream_unreachable"
    assert all(a.headers["x-cache"] == "MISS" for a in answers)  # nothing was cached
    assert stats["upstream_errors"] == 2 and stats["misses"] == 2


async def test_an_upstream_slower_than_openai_timeout_is_a_504(stack: Stack) -> None:
    settings = TargetSettings(
        openai_base_url=stack.upstream_url + "/v1",
        openai_timeout_s=0.3,
        rate_limit="none",
        instance_id="u",
    )
    latency = stack.upstream_url + "/latency"
    async with httpx.AsyncClient(trust_env=False) as direct:
        (await direct.put(latency, json={"spec": "fixed:3s"})).raise_for_status()
        try:
            async with _in_process(settings) as client:
                body = {"model": "m", "messages": [{"role": "user", "content": "slow?"}]}
                answer = await client.post("/v1/chat/completions", json=body, headers=HEADERS)
        finally:
            (await direct.put(latency, json={"spec": "fixed:5ms"})).raise_for_status()
    assert answer.status_code == 504
    assert answer.json()["error"]["type"] == "upstream_timeout"


async def test_an_upstream_refusal_is_passed_on_with_its_retry_after(stack: Stack) -> None:
    settings = TargetSettings(
        openai_base_url=stack.upstream_url + "/v1", rate_limit="none", instance_id="u"
    )
    faults = stack.upstream_url + "/faults"
    async with httpx.AsyncClient(trust_env=False) as direct:
        (await direct.put(faults, json={"error_rate": 1.0, "error_status": 429})).raise_for_status()
        try:
            async with _in_process(settings) as client:
                body = {"model": "m", "messages": [{"role": "user", "content": "busy?"}]}
                answer = await client.post("/v1/chat/completions", json=body, headers=HEADERS)
        finally:
            (await direct.put(faults, json={"error_rate": 0.0})).raise_for_status()
    assert answer.status_code == 429 and answer.headers["x-upstream-status"] == "429"
    assert answer.headers["retry-after"] == "1"  # the fake upstream's default Retry-After


async def _cut_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An upstream that starts a streamed answer, sends one event and hangs up mid-stream."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hel"}}],
    }
    event = b"data: " + json.dumps(chunk).encode() + b"\n\n"
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"transfer-encoding: chunked\r\n\r\n" + f"{len(event):x}\r\n".encode() + event + b"\r\n"
    )
    await writer.drain()
    writer.close()  # no last chunk: the stream broke off


async def test_a_stream_the_upstream_cuts_ends_with_an_error_event_and_is_not_cached() -> None:
    server = await asyncio.start_server(_cut_stream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = TargetSettings(
        openai_base_url=f"http://127.0.0.1:{port}/v1", rate_limit="none", instance_id="u"
    )
    body = {"model": "m", "messages": [{"role": "user", "content": "cut"}], "stream": True}
    try:
        async with _in_process(settings) as client:
            answers = [
                await client.post("/v1/chat/completions", json=body, headers=HEADERS)
                for _ in range(2)
            ]
            stats = (await client.get("/stats")).json()
    finally:
        server.close()
        await server.wait_closed()
    for answer in answers:
        assert answer.status_code == 200 and answer.headers["x-cache"] == "MISS"
        events = [line for line in answer.text.split("\n\n") if line]
        assert (
            json.loads(events[0].removeprefix("data: "))["choices"][0]["delta"]["content"] == "hel"
        )
        assert json.loads(events[-1].removeprefix("data: "))["error"]["type"] == (
            "upstream_stream_error"
        )
    assert stats["upstream_errors"] == 2 and stats["misses"] == 2
