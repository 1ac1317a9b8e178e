"""The fake upstream over a real server process, called through the official OpenAI SDK."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from hermes_bench.wire.answer import answer_text
from hermes_bench.wire.chat import request_hash

# Every test here talks to the fake upstream in a process of its own.
pytestmark = pytest.mark.e2e

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SERVER_CODE = """
import sys
from hermes_bench.upstream.config import UpstreamConfig
from hermes_bench.latency_spec import parse_latency
from hermes_bench.upstream.server import run_upstream
run_upstream(UpstreamConfig(latency=parse_latency("zero"), seed=1), "127.0.0.1", int(sys.argv[1]))
"""
AUTH = {"Authorization": "Bearer test"}
CHAT_PREFIX = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": '


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(proc: subprocess.Popen[bytes], url: str, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"fake upstream exited early with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"fake upstream not healthy at {url} after {timeout_s} s")


@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    port = free_port()
    # The child imports hermes_bench from this checkout, installed or not.
    inherited = os.environ.get("PYTHONPATH")
    pythonpath = os.pathsep.join(p for p in (str(PROJECT_ROOT), inherited) if p)
    env = {**os.environ, "PYTHONPATH": pythonpath}
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER_CODE, str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(autouse=True)
def clean_upstream(upstream_url: str) -> None:
    """Each test starts with zero latency, no faults and empty ground truth."""
    no_faults = {"error_rate": 0, "stall_rate": 0, "error_status": 500, "stall_s": 0}
    httpx.put(f"{upstream_url}/faults", json=no_faults).raise_for_status()
    httpx.put(f"{upstream_url}/latency", json={"spec": "zero", "time_scale": 1}).raise_for_status()
    httpx.post(f"{upstream_url}/ground-truth/reset").raise_for_status()


@pytest.fixture
def client(upstream_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{upstream_url}/v1", api_key="test", max_retries=0) as sdk:
        yield sdk


def ground_truth(url: str, per_hash: bool = False) -> dict[str, Any]:
    response = httpx.get(f"{url}/ground-truth", params={"per_hash": int(per_hash)})
    response.raise_for_status()
    return dict(response.json())


def chat(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}], **extra}


def test_sdk_gets_the_deterministic_answer(client: openai.OpenAI, upstream_url: str) -> None:
    request = chat("What is Redis?", temperature=0.2)
    first = client.chat.completions.create(**request)
    again = client.chat.completions.create(**request)
    other = client.chat.completions.create(**chat("What is Memcached?"))
    assert first.choices[0].message.content == answer_text(request)
    assert again.choices[0].message.content == answer_text(request)
    assert other.choices[0].message.content != answer_text(request)
    assert first.usage is not None and first.usage.total_tokens > 0
    assert first.id != again.id

    truth = ground_truth(upstream_url, per_hash=True)
    assert truth["calls"] == 3 and truth["ok_calls"] == 3 and truth["error_calls"] == 0
    assert truth["distinct_requests"] == 2 and truth["duplicate_calls"] == 1
    assert truth["calls_per_hash"][request_hash(request)] == 2
    assert "calls_per_hash" not in ground_truth(upstream_url)


def test_n_choices(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(**chat("hi", n=2))
    assert len(completion.choices) == 2
    assert completion.choices[0].message.content == answer_text(chat("hi", n=2))


def test_reset_returns_the_counts_before(client: openai.OpenAI, upstream_url: str) -> None:
    client.chat.completions.create(**chat("one"))
    before = httpx.post(f"{upstream_url}/ground-truth/reset").json()
    assert before["calls"] == 1
    assert ground_truth(upstream_url)["calls"] == 0


def test_models_list(client: openai.OpenAI) -> None:
    assert [model.id for model in client.models.list()] == ["gpt-4o-mini", "gpt-4o"]


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
        (429, openai.RateLimitError),
    ],
)
def test_faults_switched_at_run_time(
    client: openai.OpenAI, upstream_url: str, status: int, error_class: type[Exception]
) -> None:
    faults = {"error_rate": 1.0, "error_status": status, "retry_after_s": 7}
    assert httpx.put(f"{upstream_url}/faults", json=faults).json()["error_status"] == status
    with pytest.raises(error_class) as info:
        client.chat.completions.create(**chat("fail please"))
    error = info.value
    assert isinstance(error, openai.APIStatusError) and error.status_code == status
    retry_after = error.response.headers.get("retry-after")
    assert retry_after == ("7" if status == 429 else None)

    truth = ground_truth(upstream_url)
    assert truth["calls"] == 1 and truth["ok_calls"] == 0
    assert truth["error_calls_by_status"] == {str(status): 1}


def test_stall_delays_but_answers(client: openai.OpenAI, upstream_url: str) -> None:
    httpx.put(f"{upstream_url}/faults", json={"stall_rate": 1.0, "stall_s": 0.3})
    started = time.monotonic()
    completion = client.chat.completions.create(**chat("slow"))
    assert time.monotonic() - started >= 0.3
    assert completion.choices[0].message.content == answer_text(chat("slow"))


def test_bad_fault_and_latency_settings_are_refused(upstream_url: str) -> None:
    response = httpx.put(f"{upstream_url}/faults", json={"error_rate": 2})
    assert response.status_code == 400
    assert "error_rate" in response.json()["error"]["message"]
    response = httpx.put(f"{upstream_url}/latency", json={"spec": "sometimes"})
    assert response.status_code == 400
    assert "fixed:20ms" in response.json()["error"]["message"]
    assert httpx.get(f"{upstream_url}/faults").json()["error_rate"] == 0

    response = httpx.put(f"{upstream_url}/latency", json={"spec": "fixed:20ms", "time_scale": 0.5})
    assert response.json()["describe"] == "fixed 20 ms (x0.5)"
    assert httpx.get(f"{upstream_url}/healthz").json()["latency"] == "fixed 20 ms (x0.5)"


@pytest.mark.parametrize(
    ("headers", "content", "status"),
    [
        ({}, b'{"model": "gpt-4o-mini", "messages": []}', 401),
        ({"Authorization": "Basic dGVzdA=="}, b"{}", 401),
        (AUTH, b"{not json", 400),
        (AUTH, b"[1, 2]", 400),
        (AUTH, b'{"model": "gpt-4o-mini"}', 400),
        (AUTH, b'{"messages": [{"role": "user", "content": "hi"}]}', 400),
        (
            AUTH,
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            400,
        ),
        (AUTH, b"[" * 50_000, 400),
        (AUTH, CHAT_PREFIX + b'"\\ud800"}]}', 400),
        (AUTH, CHAT_PREFIX + b'"x"}], "temperature": NaN}', 400),
        (AUTH, CHAT_PREFIX + b'"x"}], "temperature": 1e400}', 400),
        (AUTH, CHAT_PREFIX + b'"x"}], "top_p": -Infinity}', 400),
    ],
    ids=[
        "no-key",
        "basic-auth",
        "bad-json",
        "not-an-object",
        "no-messages",
        "no-model",
        "stream-not-a-boolean",
        "deeply-nested",
        "lone-surrogate",
        "nan",
        "float-overflow",
        "infinity",
    ],
)
def test_bad_requests_are_refused_and_not_counted(
    upstream_url: str, headers: dict[str, str], content: bytes, status: int
) -> None:
    response = httpx.post(
        f"{upstream_url}/v1/chat/completions",
        content=content,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert ground_truth(upstream_url)["calls"] == 0


def test_unknown_path_gets_an_openai_error(upstream_url: str) -> None:
    response = httpx.get(f"{upstream_url}/v1/nothing")
    assert response.status_code == 404
    assert "message" in response.json()["error"]


def test_bad_fault_and_latency_bodies_get_a_400(upstream_url: str) -> None:
    for path in ("/faults", "/latency"):
        response = httpx.put(f"{upstream_url}{path}", content=b'{"error_rate": NaN}')
        assert response.status_code == 400
        assert "NaN" in response.json()["error"]["message"]
    response = httpx.put(f"{upstream_url}/latency", json={"spec": "lognormal:700ms:400"})
    assert response.status_code == 400 and "sigma" in response.json()["error"]["message"]


async def test_2000_concurrent_requests_all_succeed(upstream_url: str) -> None:
    httpx.put(f"{upstream_url}/latency", json={"spec": "fixed:200ms"}).raise_for_status()
    requests = [chat(f"prompt {i % 500}") for i in range(2000)]
    # One httpx pool slows down quadratically with thousands of waiting requests, so the load
    # is spread over 100 clients of 20 connections each: still 2000 in flight at once.
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
    tls = ssl.create_default_context()  # shared: building one per client costs ~25 ms
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=upstream_url, limits=limits, timeout=60, verify=tls)
            )
            for _ in range(100)
        ]
        responses = await asyncio.gather(
            *(
                clients[i % len(clients)].post("/v1/chat/completions", json=body, headers=AUTH)
                for i, body in enumerate(requests)
            )
        )
    assert [r.status_code for r in responses] == [200] * 2000
    assert all(
        r.json()["choices"][0]["message"]["content"] == answer_text(body)
        for r, body in zip(responses, requests, strict=True)
    )
    truth = ground_truth(upstream_url)
    assert truth["calls"] == 2000 and truth["distinct_requests"] == 500


def test_a_streamed_answer_is_the_whole_answer_counted_once(
    client: openai.OpenAI, upstream_url: str
) -> None:
    httpx.put(f"{upstream_url}/latency", json={"spec": "fixed:50ms"}).raise_for_status()
    request = chat("Stream it", stream_options={"include_usage": True})
    started = time.perf_counter()
    stream = client.chat.completions.create(**request, stream=True)
    first_s, pieces, usage = None, [], None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        if chunk.choices and chunk.choices[0].delta.content:
            first_s = first_s or time.perf_counter() - started
            pieces.append(chunk.choices[0].delta.content)
    # The same answer as a whole request, the same request hash: one cache entry serves both.
    assert "".join(pieces) == answer_text(chat("Stream it"))
    assert first_s is not None and first_s >= 0.045  # the latency draw is time to first token
    assert usage is not None and usage.completion_tokens > 0
    truth = ground_truth(upstream_url, per_hash=True)
    assert truth["calls"] == 1 and truth["calls_per_hash"] == {request_hash(chat("Stream it")): 1}
    assert truth["usage_by_model"]["gpt-4o-mini"]["calls"] == 1
    # It times its own first piece, after the draw and before the whole answer.
    first_us, served_us = truth["first_token_us"], truth["served_us"]
    assert first_us["count"] == served_us["count"] == 1
    assert 45_000 <= first_us["p50_us"] <= served_us["p50_us"]
    assert truth["first_token_histogram"].startswith("HIST")
