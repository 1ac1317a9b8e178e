"""The reference target over real processes: private Redis, fake upstream, two target instances."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import redis

from hermes_bench.app.server_timing import parse_server_timing
from hermes_bench.app.sessions import MAX_SESSION_FIELDS
from hermes_bench.stack.embedded_redis import EmbeddedRedis
from hermes_bench.stack.stack import Stack, StackConfig
from hermes_bench.wire.answer import answer_text

pytestmark = pytest.mark.e2e

LIMIT = 5
# Room for the bad bodies below (50 000 '[', 4000 session fields) to reach the JSON reader.
MAX_BODY_BYTES = 65_536


def _stack(backend: str) -> Stack:
    return Stack(
        StackConfig(
            backend=backend,
            instances=2,
            redis_url=os.environ.get("REDIS_URL") if backend == "redis" else None,
            upstream_latency="fixed:5ms",
            target_env={"RATE_LIMIT": f"{LIMIT}/minute", "MAX_BODY_BYTES": str(MAX_BODY_BYTES)},
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
    from hermes_bench.wire.chat import request_hash

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


_SERVER_TIMING = re.compile(r"[a-z+-]+;dur=[0-9]+\.[0-9]{3}(, [a-z+-]+;dur=[0-9]+\.[0-9]{3})*")


def _steps(response: httpx.Response) -> dict[str, int]:
    """The Server-Timing steps of a response, in µs, after checking the header's form."""
    header = response.headers["server-timing"]
    assert _SERVER_TIMING.fullmatch(header), header
    steps = parse_server_timing(header)
    assert steps is not None, header
    return steps


def test_server_timing_names_each_step_taken(stack: Stack, client: httpx.Client) -> None:
    body = _prompt()
    url = stack.target_urls[0]
    miss, hit = _chat(client, url, body), _chat(client, url, body)
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    miss_steps, hit_steps = _steps(miss), _steps(hit)
    # On Redis the fixed window's check and the cache read are one round trip: one step.
    lookup = (
        ["ratelimit+cache-read"] if stack.config.backend == "redis" else ["ratelimit", "cache-read"]
    )
    assert list(miss_steps) == [*lookup, "upstream", "cache-write", "total"]
    assert list(hit_steps) == [*lookup, "total"]  # no upstream on a HIT
    for steps in (miss_steps, hit_steps):
        parts = [us for name, us in steps.items() if name != "total"]
        assert all(us >= 0 for us in parts)
        # The steps lie inside the total; each entry is rounded to the µs.
        assert steps["total"] >= sum(parts) - len(parts)
    assert miss_steps["upstream"] >= 5000  # the fake upstream answers after a fixed 5 ms


def test_a_refused_request_times_only_the_rate_limit(stack: Stack, client: httpx.Client) -> None:
    key, url = _key(), stack.target_urls[0]
    responses = [_chat(client, url, _prompt(), key) for _ in range(LIMIT + 1)]
    assert responses[-1].status_code == 429
    assert list(_steps(responses[-1])) == ["ratelimit", "total"]


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


def _raw_chat(client: httpx.Client, url: str, content: bytes) -> httpx.Response:
    """POST bytes as they are (json= would refuse NaN or a lone surrogate)."""
    headers = {"Authorization": f"Bearer {_key()}", "Content-Type": "application/json"}
    return client.post(url + "/v1/chat/completions", content=content, headers=headers)


def _session_call(
    client: httpx.Client, url: str, method: str, path: str = "", content: bytes = b"{}"
) -> httpx.Response:
    headers = {"Authorization": "Bearer k", "Content-Type": "application/json"}
    return client.request(method, f"{url}/v1/sessions{path}", content=content, headers=headers)


def _write_session(client: httpx.Client, url: str, method: str, content: bytes) -> httpx.Response:
    """PUT or PATCH `content` to a session that exists, so only the body can be at fault."""
    created = _session_call(client, url, "POST", content=b'{"data": {"a": 1}}')
    assert created.status_code == 201
    return _session_call(client, url, method, "/" + created.json()["id"], content)


def _fields(count: int) -> bytes:
    return json.dumps({"data": {f"f{i}": i for i in range(count)}}).encode()


_CHAT = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": '
_BAD_NUMBERS = {
    "nan": _CHAT + b'"x"}], "temperature": NaN}',
    "float-overflow": _CHAT + b'"x"}], "temperature": 1e400}',
    "infinity": _CHAT + b'"x"}], "top_p": Infinity}',
    "lone-surrogate": _CHAT + b'"\\ud800"}]}',
    "deeply-nested": b"[" * 50_000,
}


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
        (lambda c, u: _chat(c, u, _prompt("x" * MAX_BODY_BYTES)), 413),
        (
            lambda c, u: c.post(
                u + "/v1/chat/completions",
                content=iter([b'{"model": "gpt-4o-mini", "pad": "', b"x" * MAX_BODY_BYTES, b'"}']),
                headers={"Authorization": "Bearer k"},
            ),
            413,
        ),
        (lambda c, u: _chat(c, u, {**_prompt(), "stream": "yes"}), 422),
        *[(lambda c, u, raw=raw: _raw_chat(c, u, raw), 400) for raw in _BAD_NUMBERS.values()],
        (lambda c, u: _session_call(c, u, "GET", "/" + "A" * 22), 404),
        # Right length, wrong characters; and dots that reach the handler encoded (httpx would
        # resolve a literal ../ before sending).
        (lambda c, u: _session_call(c, u, "GET", "/" + "A" * 20 + "$!"), 404),
        (lambda c, u: _session_call(c, u, "DELETE", "/%2E%2E"), 404),
        (lambda c, u: _session_call(c, u, "POST", content=b'{"data": {"__owner": "me"}}'), 422),
        (lambda c, u: _session_call(c, u, "POST", content=b'{"data": [1]}'), 422),
        (lambda c, u: _session_call(c, u, "POST", content=b'{"data": {"x": NaN}}'), 400),
        (lambda c, u: _session_call(c, u, "POST", content=b'{"data": {"x": "\\udc00"}}'), 400),
        (lambda c, u: _session_call(c, u, "POST", content=b"[" * 50_000), 400),
        (lambda c, u: _write_session(c, u, "PUT", b"{not json"), 400),
        (lambda c, u: _write_session(c, u, "PATCH", b'{"data": {"x": 1e400}}'), 400),
        (lambda c, u: _write_session(c, u, "PUT", b'{"data": {"x": "\\ud800"}}'), 400),
        (lambda c, u: _write_session(c, u, "PATCH", b'{"data": "text"}'), 422),
        (lambda c, u: _write_session(c, u, "PUT", b'{"data": {"__created_at": 0}}'), 422),
        (lambda c, u: _write_session(c, u, "PATCH", b'{"data": {}, "extra": 1}'), 422),
        (lambda c, u: _write_session(c, u, "PATCH", _fields(4000)), 422),
        (lambda c, u: c.get(u + "/v1/nothing"), 404),
        (lambda c, u: c.get(u + "/v1/chat/completions"), 405),
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
        *(f"chat-{name}" for name in _BAD_NUMBERS),
        "unknown-session",
        "session-id-wrong-characters",
        "session-id-encoded-dots",
        "reserved-field",
        "data-not-object",
        "session-nan",
        "session-lone-surrogate",
        "session-deeply-nested",
        "put-bad-json",
        "patch-float-overflow",
        "put-lone-surrogate",
        "patch-data-not-object",
        "put-reserved-field",
        "patch-unknown-member",
        "patch-too-many-fields",
        "unknown-route",
        "wrong-method",
    ],
)
def test_bad_input_gets_a_clear_4xx(
    stack: Stack, client: httpx.Client, send: Any, status: int
) -> None:
    response = send(client, stack.target_urls[0])
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"] and error["code"] == status and error["type"]
    if "/v1/sessions/" in str(response.request.url) and status == 404:
        # Reached the session handler, not only the router.
        assert error["type"] == "session_not_found"


def test_too_many_session_fields_names_the_limit(stack: Stack, client: httpx.Client) -> None:
    refused = _write_session(client, stack.target_urls[0], "PATCH", _fields(MAX_SESSION_FIELDS + 1))
    assert refused.status_code == 422
    assert f"at most {MAX_SESSION_FIELDS}" in refused.json()["error"]["message"]
    accepted = _write_session(client, stack.target_urls[0], "PUT", _fields(MAX_SESSION_FIELDS))
    assert accepted.status_code == 200 and len(accepted.json()["data"]) == MAX_SESSION_FIELDS


def test_rejected_bodies_never_count_as_upstream_calls(stack: Stack, client: httpx.Client) -> None:
    url = stack.target_urls[0]
    before, calls_before = client.get(url + "/stats").json(), stack.ground_truth()["calls"]
    for raw in _BAD_NUMBERS.values():
        assert _raw_chat(client, url, raw).status_code == 400
    after = client.get(url + "/stats").json()
    for name in ("hits", "misses", "bypasses", "upstream_calls", "upstream_errors"):
        assert after[name] == before[name], name
    assert after["bad_requests"] == before["bad_requests"] + len(_BAD_NUMBERS)
    assert stack.ground_truth()["calls"] == calls_before


def test_a_refused_redis_command_is_not_called_an_outage(
    stack: Stack, client: httpx.Client
) -> None:
    if stack.config.backend != "redis":
        pytest.skip("only Redis can refuse a command")
    url = stack.target_urls[0]
    headers = {"Authorization": f"Bearer {_key()}"}
    sid = client.post(url + "/v1/sessions", json={"data": {}}, headers=headers).json()["id"]
    assert stack.redis_url is not None
    # Another program wrote a string where the session's hash lives: Redis answers WRONGTYPE.
    with redis.Redis.from_url(stack.redis_url) as direct:
        direct.set(f"{stack.key_prefix}:session:{sid}", "not a hash")
    errors_before = client.get(url + "/stats").json()["redis_errors"]
    response = client.get(f"{url}/v1/sessions/{sid}", headers=headers)
    assert response.status_code == 500 and "retry-after" not in response.headers
    error = response.json()["error"]
    assert error["type"] == "session_store_error" and "WRONGTYPE" in error["message"]
    assert "retry once it answers" not in error["message"]
    assert client.get(url + "/stats").json()["redis_errors"] == errors_before + 1


def test_if_match_writes_only_over_the_version_read(stack: Stack, client: httpx.Client) -> None:
    url = stack.target_urls[0]
    created = _session_call(client, url, "POST", content=b'{"data": {"n": 0}}')
    assert created.headers["ETag"] == '"1"' and created.json()["version"] == 1
    path = "/" + created.json()["id"]
    for stale in ('"7"', 'W/"1"', "not an etag", '"3" , "2"'):
        refused = client.request(
            "PATCH", f"{url}/v1/sessions{path}", json={"data": {"n": 9}},
            headers={"Authorization": "Bearer k", "If-Match": stale},
        )  # fmt: skip
        assert refused.status_code == 412, stale
        assert refused.headers["ETag"] == '"1"'
        assert refused.json()["error"]["type"] == "session_changed"
    read = _session_call(client, url, "GET", path)
    assert read.json()["data"] == {"n": 0} and read.headers["ETag"] == '"1"'
    for match, version in (('"1"', 2), ("*", 3), ('"9", "3"', 4)):
        written = client.request(
            "PUT", f"{url}/v1/sessions{path}", json={"data": {"n": version}},
            headers={"Authorization": "Bearer k", "If-Match": match},
        )  # fmt: skip
        assert written.status_code == 200, (match, written.text)
        assert written.headers["ETag"] == f'"{version}"' and written.json()["data"] == {
            "n": version
        }
    assert _session_call(client, url, "PATCH", path, b'{"data": {"m": 1}}').headers["ETag"] == '"5"'


async def test_read_modify_write_with_if_match_loses_no_update(stack: Stack) -> None:
    url, headers, writers = stack.target_urls[0], {"Authorization": "Bearer rmw"}, 20
    async with httpx.AsyncClient(timeout=30, trust_env=False, headers=headers) as http:
        created = await http.post(url + "/v1/sessions", json={"data": {"n": 0}})
        session = f"{url}/v1/sessions/{created.json()['id']}"
        conflicts_before = (await http.get(url + "/stats")).json()["session_conflicts"]

        async def increment() -> int:
            """Read, add one, write back over what was read; again after each 412."""
            for attempt in range(200):
                read = await http.get(session)
                body = {"data": {"n": read.json()["data"]["n"] + 1}}
                written = await http.put(
                    session, json=body, headers={"If-Match": read.headers["ETag"]}
                )
                if written.status_code == 200:
                    return attempt
                assert written.status_code == 412, written.text
            raise AssertionError("no write landed in 200 tries")

        retries = await asyncio.gather(*(increment() for _ in range(writers)))
        final = await http.get(session)
        conflicts = (await http.get(url + "/stats")).json()["session_conflicts"]
    assert final.json()["data"]["n"] == writers  # every increment landed once
    assert final.headers["ETag"] == f'"{writers + 1}"'
    assert conflicts - conflicts_before == sum(retries)


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


def test_odd_keys_and_huge_headers_are_refused_before_any_work(
    stack: Stack, client: httpx.Client
) -> None:
    url = stack.target_urls[0]
    calls = stack.ground_truth()["calls"]
    for key, status in (("k" * 513, 401), ("k\tk", 401), ("ключ", 401), ("k" * 20_000, 431)):
        headers = {"Authorization": f"Bearer {key}".encode()}
        answer = client.post(url + "/v1/chat/completions", json=_prompt(), headers=headers)
        assert answer.status_code == status, (key[:10], answer.text)
        assert "error" in answer.json()
    padding = {f"X-Pad-{i}": "p" * 1000 for i in range(20)}  # 20 KB over many lines
    assert _chat(client, url, _prompt()).status_code == 200
    assert client.get(url + "/healthz", headers=padding).status_code == 431
    assert _chat(client, url, _prompt(), "k" * 512).status_code == 200  # the longest key allowed
    assert stack.ground_truth()["calls"] == calls + 2


def test_many_large_distinct_keys_do_not_grow_the_app(stack: Stack, client: httpx.Client) -> None:
    url = stack.target_urls[0]
    process = psutil.Process(stack.process_pids()["target-0"])
    body = _prompt("one question for every key")
    for _ in range(20):  # warm: the cache entry, the allocator's first arenas
        _chat(client, url, body, secrets.token_hex(256))
    before = process.memory_info().rss
    for _ in range(200):
        _chat(client, url, body, secrets.token_hex(32 * 1024))  # 64 KB: refused by size
        _chat(client, url, body, secrets.token_hex(256))  # 512 characters: served
    grown_mib = (process.memory_info().rss - before) / 2**20
    print(f"RSS grew {grown_mib:.1f} MiB over 200 keys of 64 KB and 200 of 512 characters")
    assert grown_mib < 10


def test_only_the_admin_key_or_a_loopback_caller_resets_the_counters(
    client: httpx.Client,
) -> None:
    config = StackConfig(
        backend="memory", upstream_latency="zero", target_env={"HERMES_ADMIN_KEY": "adm-123"}
    )
    with Stack(config) as running:
        reset = running.target_urls[0] + "/stats/reset"
        for sent in ({}, {"Authorization": "Bearer adm-12"}, {"Authorization": "Bearer k"}):
            refused = client.post(reset, headers=sent)
            assert refused.status_code == 403 and "HERMES_ADMIN_KEY" in refused.text
            assert "adm-123" not in refused.text
        assert client.post(reset, headers={"Authorization": "Bearer adm-123"}).status_code == 200


# --- targets of their own: API keys, the real OpenAI refused, secrets never shown ------------


def test_hermes_api_keys_admits_listed_keys_only(client: httpx.Client) -> None:
    config = StackConfig(
        backend="memory",
        upstream_latency="zero",
        target_env={"HERMES_API_KEYS": "sk-team-one, sk-team-two"},
    )
    with Stack(config) as running:
        url = running.target_urls[0]
        for key in ("sk-team-one", "sk-team-two"):
            assert _chat(client, url, _prompt(), key).status_code == 200
        refused = _chat(client, url, _prompt(), "sk-someone-else")
        assert refused.status_code == 401
        assert refused.json()["error"]["type"] == "invalid_api_key"
        session = client.post(
            url + "/v1/sessions", json={}, headers={"Authorization": "Bearer sk-someone-else"}
        )
        assert session.status_code == 401
        assert running.ground_truth()["calls"] == 2


def test_target_refuses_to_call_the_real_openai(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["OPENAI_BASE_URL"] = "https://api.openai.com/v1"
    done = subprocess.run(
        [sys.executable, "-m", "hermes_bench", "target", "--port", "0"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "never calls the real OpenAI" in done.stderr
    assert "listening" not in done.stdout


def _secret_url(server: EmbeddedRedis, form: str) -> str:
    if form == "unix":
        assert server.unix_url is not None
        return server.unix_url
    if form == "query":
        return f"redis://127.0.0.1:{server.port}/0?password={server.password}"
    return server.url


@pytest.mark.redis
@pytest.mark.parametrize("form", ["userinfo", "query", "unix"])
def test_no_secret_reaches_health_stats_logs_or_errors(client: httpx.Client, form: str) -> None:
    secret = f"pw-{secrets.token_hex(8)}"
    api_key = _key()
    with EmbeddedRedis(password=secret, unix_socket=form == "unix") as server:
        url_with_secret = _secret_url(server, form)
        assert secret in url_with_secret
        config = StackConfig(backend="redis", redis_url=url_with_secret, upstream_latency="zero")
        with Stack(config) as running:
            url = running.target_urls[0]
            health = client.get(url + "/healthz")
            assert health.json()["redis"]["reachable"] is True  # the password really works
            assert _chat(client, url, _prompt(), api_key).headers["x-cache"] == "MISS"
            seen = [health.text, client.get(url + "/stats").text]

            server.stop()  # Redis gone: sessions answer 503 and health says why
            unavailable = client.post(
                url + "/v1/sessions", json={}, headers={"Authorization": f"Bearer {api_key}"}
            )
            assert unavailable.status_code == 503
            # Where Redis is stays in the logs and /stats: the client gets a generic reason.
            assert "127.0.0.1" not in unavailable.text and "redis" not in unavailable.text
            degraded = client.get(url + "/healthz")
            assert degraded.status_code == 503 and degraded.json()["status"] == "degraded"
            seen += [unavailable.text, degraded.text, client.get(url + "/stats").text]
            target_log = running.targets[0].log_path.read_text()
            assert "Redis configured at" in target_log and "session store failed" in target_log
            seen.append(target_log)
    for text in seen:
        assert secret not in text and api_key not in text


def _streamed(
    client: httpx.Client, url: str, body: dict[str, Any]
) -> tuple[httpx.Response, str, list[dict[str, Any]]]:
    """A streamed chat request: the response, its text put together, and its events."""
    headers = {"Authorization": f"Bearer {_key()}"}
    events = []
    with client.stream("POST", url + "/v1/chat/completions", json=body, headers=headers) as r:
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                events.append(json.loads(line.removeprefix("data: ")))
    text = "".join(
        e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices")
    )
    return r, text, events


def test_a_stream_misses_once_then_replays_the_cached_answer(
    stack: Stack, client: httpx.Client
) -> None:
    body = {**_prompt(), "stream": True, "stream_options": {"include_usage": True}}
    whole = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    url = stack.target_urls[0]
    first, text, events = _streamed(client, url, body)
    assert first.status_code == 200 and first.headers["x-cache"] == "MISS"
    assert first.headers["content-type"].startswith("text/event-stream")
    assert text == answer_text(whole) and events[-1].get("usage")
    again, replayed, replay_events = _streamed(client, url, body)
    assert again.headers["x-cache"] == "HIT" and replayed == text
    assert replay_events[-1].get("usage") == events[-1]["usage"]
    # The streamed answer was cached whole: a plain request is a HIT with the same text.
    plain = _chat(client, url, whole)
    assert plain.headers["x-cache"] == "HIT"
    assert plain.json()["choices"][0]["message"]["content"] == text
    assert _calls_for(stack, whole) == 1
