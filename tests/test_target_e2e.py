"""The reference target over real processes: private Redis, fake upstream, two target instances."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hermes_bench.harness.stack import Stack, StackConfig
from hermes_bench.upstream.answer import answer_text

pytestmark = pytest.mark.e2e

LIMIT = 5


def _stack(backend: str) -> Stack:
    return Stack(
        StackConfig(
            backend=backend,
            instances=2,
            redis_url=os.environ.get("REDIS_URL") if backend == "redis" else None,
            upstream_latency="fixed:5ms",
            target_env={"RATE_LIMIT": f"{LIMIT}/minute", "MAX_BODY_BYTES": "4096"},
        )
    )


@pytest.fixture(scope="module", params=["redis", "memory"])
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    with _stack(request.param) as running:
        yield running


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, trust_env=False) as c:
        yield c


def _key() -> str:
    return "sk-test-" + secrets.token_hex(8)


def _prompt(text: str | None = None) -> dict[str, Any]:
    text = text or f"question {secrets.token_hex(6)}"
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}


def _chat(client: httpx.Client, url: str, body: Any, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or _key()}"}
    return client.post(url + "/v1/chat/completions", json=body, headers=headers)


def _calls_for(stack: Stack, body: dict[str, Any]) -> int:
    from hermes_bench.chat_request import request_hash

    per_hash = stack.ground_truth(per_hash=True)["calls_per_hash"]
    return int(per_hash.get(request_hash(body), 0))


def test_same_prompt_twice_is_one_upstream_call(stack: Stack, client: httpx.Client) -> None:
    body = _prompt()
    url = stack.target_urls[0]
    first, second = _chat(client, url, body), _chat(client, url, body)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.headers["x-cache"] == "MISS" and second.headers["x-cache"] == "HIT"
    for response in (first, second):
        assert response.json()["choices"][0]["message"]["content"] == answer_text(body)
    assert _calls_for(stack, body) == 1


def test_different_temperature_is_a_different_entry(stack: Stack, client: httpx.Client) -> None:
    body = _prompt()
    url = stack.target_urls[0]
    _chat(client, url, body)
    warmer = {**body, "temperature": 0.2}
    response = _chat(client, url, warmer)
    assert response.headers["x-cache"] == "MISS"
    assert response.json()["choices"][0]["message"]["content"] == answer_text(warmer)


def test_cache_is_shared_on_redis_and_isolated_in_memory(
    stack: Stack, client: httpx.Client
) -> None:
    body = _prompt()
    a, b = stack.target_urls
    assert _chat(client, a, body).headers["x-cache"] == "MISS"
    on_other = _chat(client, b, body)
    shared = stack.config.backend == "redis"
    assert on_other.headers["x-cache"] == ("HIT" if shared else "MISS")
    assert on_other.headers["x-instance"] == "target-1"
    assert _calls_for(stack, body) == (1 if shared else 2)


def test_rate_limit_is_global_on_redis_and_per_instance_in_memory(
    stack: Stack, client: httpx.Client
) -> None:
    key = _key()
    body = _prompt()
    responses = [_chat(client, url, body, key) for url in stack.target_urls * (2 * LIMIT)]
    admitted = sum(r.status_code == 200 for r in responses)
    assert admitted == (LIMIT if stack.config.backend == "redis" else 2 * LIMIT)
    refused = [r for r in responses if r.status_code == 429]
    assert refused and all(int(r.headers["retry-after"]) >= 1 for r in refused)
    assert all(r.headers["x-ratelimit-limit"] == str(LIMIT) for r in responses)


def test_upstream_error_is_passed_on_and_never_cached(stack: Stack, client: httpx.Client) -> None:
    body = _prompt()
    url = stack.target_urls[0]
    faults = stack.upstream_url + "/faults"
    client.put(faults, json={"error_rate": 1.0, "error_status": 500}).raise_for_status()
    try:
        failed = _chat(client, url, body)
    finally:
        client.put(faults, json={"error_rate": 0.0}).raise_for_status()
    assert failed.status_code == 500 and failed.headers["x-upstream-status"] == "500"
    retried = _chat(client, url, body)
    assert retried.status_code == 200 and retried.headers["x-cache"] == "MISS"
    assert _calls_for(stack, body) == 2


@pytest.mark.parametrize(
    ("send", "status"),
    [
        (lambda c, u: c.post(u + "/v1/chat/completions", json=_prompt()), 401),
        (
            lambda c, u: c.post(
                u + "/v1/chat/completions",
                content=b"{not json",
                headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
            ),
            400,
        ),
        (lambda c, u: _chat(c, u, {"model": "gpt-4o-mini"}), 422),
        (lambda c, u: _chat(c, u, {"model": "gpt-4o-mini", "messages": []}), 422),
        (lambda c, u: _chat(c, u, ["not", "an", "object"]), 422),
        (lambda c, u: _chat(c, u, _prompt("x" * 10_000)), 413),
        (
            lambda c, u: c.post(
                u + "/v1/chat/completions",
                content=iter([b'{"model": "gpt-4o-mini", "pad": "', b"x" * 8192, b'"}']),
                headers={"Authorization": "Bearer k"},
            ),
            413,
        ),
        (lambda c, u: _chat(c, u, {**_prompt(), "stream": True}), 400),
        (
            lambda c, u: c.get(
                u + "/v1/sessions/" + "A" * 22, headers={"Authorization": "Bearer k"}
            ),
            404,
        ),
        (
            lambda c, u: c.get(u + "/v1/sessions/../../etc", headers={"Authorization": "Bearer k"}),
            404,
        ),
        (
            lambda c, u: c.post(
                u + "/v1/sessions",
                json={"data": {"__owner": "me"}},
                headers={"Authorization": "Bearer k"},
            ),
            422,
        ),
        (
            lambda c, u: c.post(
                u + "/v1/sessions", json={"data": [1]}, headers={"Authorization": "Bearer k"}
            ),
            422,
        ),
    ],
    ids=[
        "no-key",
        "bad-json",
        "no-messages",
        "empty-messages",
        "not-an-object",
        "too-large",
        "too-large-chunked",
        "stream",
        "unknown-session",
        "odd-session-path",
        "reserved-field",
        "data-not-object",
    ],
)
def test_bad_input_gets_a_clear_4xx(
    stack: Stack, client: httpx.Client, send: Any, status: int
) -> None:
    response = send(client, stack.target_urls[0])
    assert response.status_code == status
    if status != 404 or "sessions/A" in str(response.request.url):
        assert response.json()["error"]["message"]


def test_no_secret_reaches_health_or_stats(stack: Stack, client: httpx.Client) -> None:
    health = client.get(stack.target_urls[0] + "/healthz").json()
    assert health["backend"] == stack.config.backend
    if stack.config.backend == "redis":
        assert health["redis"]["reachable"] is True
    stats = client.get(stack.target_urls[0] + "/stats").text
    assert "sk-test-" not in stats and "sk-fake-upstream" not in stats


def test_sessions_survive_a_restart_on_redis_only(stack: Stack, client: httpx.Client) -> None:
    # Runs last in the module: it restarts every target.
    key = _key()
    headers = {"Authorization": f"Bearer {key}"}
    a, b = stack.target_urls
    created = client.post(a + "/v1/sessions", json={"data": {"cart": [1, 2]}}, headers=headers)
    assert created.status_code == 201
    sid = created.json()["id"]
    assert client.get(f"{b}/v1/sessions/{sid}", headers=headers).status_code == (
        200 if stack.config.backend == "redis" else 404
    )
    stack.restart_targets()
    after = client.get(f"{a}/v1/sessions/{sid}", headers=headers)
    if stack.config.backend == "redis":
        assert after.status_code == 200 and after.json()["data"] == {"cart": [1, 2]}
    else:
        assert after.status_code == 404
