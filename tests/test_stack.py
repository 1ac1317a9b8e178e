"""Stack over real processes: environment isolation, ports, failed starts, an external Redis."""

from __future__ import annotations

import secrets
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psutil
import pytest
import redis

from hermes_bench.app.backends import FALLBACK_LOG_LINE
from hermes_bench.errors import HermesBenchError, ProcessStartError
from hermes_bench.harness.check import run_check
from hermes_bench.stack.stack import Stack, StackConfig, inherited_env


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port held bound but not listening: a connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _chat(client: httpx.Client, url: str, body: dict[str, Any], key: str) -> httpx.Response:
    return client.post(
        url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    )


def _prompt() -> dict[str, Any]:
    text = f"question {secrets.token_hex(6)}"
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}


def _memory_config(**overrides: Any) -> StackConfig:
    return StackConfig(backend="memory", upstream_latency="zero", **overrides)


def test_inherited_env_keeps_only_what_python_needs() -> None:
    environ = {
        "PATH": "/bin",
        "PYTHONPATH": "/src",
        "LC_ALL": "C.UTF-8",
        "CACHE_TTL_S": "0",
        "HERMES_API_KEYS": "k",
        "http_proxy": "http://proxy:3128",
    }
    assert inherited_env(environ) == {"PATH": "/bin", "PYTHONPATH": "/src", "LC_ALL": "C.UTF-8"}


@pytest.mark.redis
@pytest.mark.e2e
def test_harness_environment_does_not_reach_targets(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each of these, inherited, would change what a run measures or break it.
    monkeypatch.setenv("CACHE_TTL_S", "0")
    monkeypatch.setenv("HERMES_KEY_PREFIX", "x")
    monkeypatch.setenv("HERMES_API_KEYS", "only-this-key")
    monkeypatch.setenv("RATE_LIMIT", "1/minute")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    config = StackConfig(backend="redis", redis_url=redis_url, upstream_latency="zero")
    body, key = _prompt(), f"sk-{secrets.token_hex(6)}"
    with (
        Stack(config) as first,
        Stack(config) as second,
        httpx.Client(timeout=30, trust_env=False) as client,
    ):
        assert first.key_prefix != second.key_prefix != "x"
        answers = [_chat(client, url, body, key) for url in [*first.target_urls] * 2]
        answers.append(_chat(client, second.target_urls[0], body, key))
        assert [a.status_code for a in answers] == [200, 200, 200], answers[0].text
        # Cached although CACHE_TTL_S=0 was exported; not shared with the other stack.
        assert [a.headers["x-cache"] for a in answers] == ["MISS", "HIT", "MISS"]
        target_log = first.targets[0].log_path.read_text()
    store = redis.Redis.from_url(redis_url)
    try:
        assert list(store.scan_iter(match="x:*", count=1000)) == []
        assert list(store.scan_iter(match=f"{first.key_prefix}:*", count=1000))
    finally:
        store.close()
    # Our INFO lines are there; the OpenAI SDK's per-request INFO lines are not.
    assert "[INFO] Redis configured at" in target_log
    assert "HTTP Request" not in target_log


@pytest.mark.e2e
def test_memory_target_logs_the_guides_line_and_no_request_lines() -> None:
    with Stack(_memory_config()) as stack, httpx.Client(timeout=30, trust_env=False) as client:
        assert _chat(client, stack.target_urls[0], _prompt(), "sk-log-test").status_code == 200
        target_log = stack.targets[0].log_path.read_text()
    assert f"[INFO] {FALLBACK_LOG_LINE}\n" in target_log
    assert "HTTP Request" not in target_log


@pytest.mark.e2e
def test_restart_keeps_every_target_on_its_port() -> None:
    with Stack(_memory_config(instances=2)) as stack:
        run_dir = stack.run_dir
        urls = list(stack.target_urls)
        pids = [p.pid for p in stack.targets]
        stack.restart_targets()
        assert stack.target_urls == urls
        assert [p.pid for p in stack.targets] != pids
        with httpx.Client(timeout=30, trust_env=False) as client:
            for url in urls:
                assert client.get(url + "/healthz").json()["status"] == "ok"
    assert not run_dir.exists()  # a clean stop removes the logs


@pytest.mark.e2e
def test_restart_on_a_port_taken_meanwhile_is_a_clear_error() -> None:
    with Stack(_memory_config()) as stack:
        port = int(stack.target_urls[0].rsplit(":", 1)[1])
        stack.targets[0].stop()
        with socket.socket() as thief:
            thief.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            thief.bind(("127.0.0.1", port))
            thief.listen()
            with pytest.raises(ProcessStartError, match=f"port {port}") as info:
                stack.restart_targets()
    assert "took it" in str(info.value)


@pytest.mark.e2e
def test_failed_start_keeps_the_logs_and_says_where() -> None:
    stack = Stack(_memory_config(target_env={"RATE_LIMIT": "abc"}))
    try:
        with pytest.raises(ProcessStartError) as info:
            stack.start()
        message = str(info.value)
        assert str(stack.run_dir) in message
        assert "RATE_LIMIT='abc'" in (stack.run_dir / "target-0.log").read_text()
        assert stack.upstream is not None and not stack.upstream.running
        stack.stop()
        assert stack.run_dir.is_dir()  # still there to be read
    finally:
        shutil.rmtree(stack.run_dir, ignore_errors=True)


@pytest.mark.redis
def test_unreachable_external_redis_fails_before_anything_starts() -> None:
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    with refused_port() as port:
        stack = Stack(StackConfig(redis_url=f"redis://:s3cret@127.0.0.1:{port}/0"))
        with pytest.raises(HermesBenchError) as info:
            stack.start()
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "PING" in message
    assert "s3cret" not in message
    assert stack.upstream is None and stack.redis is None
    assert {p.pid for p in psutil.Process().children(recursive=True)} == children_before
    assert not stack.run_dir.exists()


@pytest.mark.e2e
def test_check_names_the_http_step_that_failed() -> None:
    # Targets that accept one key only: the check's first request gets a 401.
    with pytest.raises(HermesBenchError) as info:
        run_check("memory", "zero", None, target_env={"HERMES_API_KEYS": "only-this-key"})
    message = str(info.value)
    assert "'1st request'" in message and "401" in message and "unknown API key" in message
