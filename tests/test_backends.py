"""The stores behave alike on memory:// and on a real Redis, and differ only where they must."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from fake_clock import FakeClock

from hermes_bench.app.backends import Backends, backends_from_settings
from hermes_bench.app.cache import MemoryCache
from hermes_bench.app.counters import OpTimings
from hermes_bench.app.redis_client import RedisCommandError, RedisConfigError, ping_us
from hermes_bench.app.sessions import (
    Conflict,
    MemorySessionStore,
    Session,
    Versions,
    if_match_versions,
)
from hermes_bench.app.settings import MEMORY_URL, TargetSettings
from hermes_bench.errors import BackendUnavailableError, UnknownSchemeError
from hermes_bench.stack.embedded_redis import EmbeddedRedis


def _settings(url: str, prefix: str, **changes: object) -> TargetSettings:
    base = {
        "redis_url": None if url == MEMORY_URL else url,
        "key_prefix": prefix,
        "rate_limit": "3/minute",
        "cache_ttl_s": 60,
        "session_ttl_s": 60,
    }
    base.update(changes)
    return TargetSettings(**base)


@pytest.fixture
async def backends(backend_url: str, key_prefix: str) -> AsyncIterator[Backends]:
    built = backends_from_settings(_settings(backend_url, key_prefix), OpTimings())
    yield built
    await built.close()


async def test_cache_round_trip(backends: Backends) -> None:
    assert await backends.cache.get("k") is None
    await backends.cache.set("k", b'{"answer": 1}')
    assert await backends.cache.get("k") == b'{"answer": 1}'
    assert await backends.cache.get("other") is None


async def test_memory_cache_entry_expires_after_its_ttl() -> None:
    clock = FakeClock()
    cache = MemoryCache(ttl_s=60, max_entries=10, clock=clock)
    await cache.set("k", b"v")
    clock.advance(59)
    assert await cache.get("k") == b"v"  # a read does not extend a cache entry
    clock.advance(2)
    assert await cache.get("k") is None


@pytest.mark.redis
@pytest.mark.e2e
async def test_redis_cache_entry_gets_the_ttl_and_reads_keep_it(
    redis_url: str, key_prefix: str
) -> None:
    built = backends_from_settings(_settings(redis_url, key_prefix, cache_ttl_s=60), OpTimings())
    assert built.redis is not None
    key = f"{key_prefix}:cache:k"
    try:
        await built.cache.set("k", b"v")
        assert 59_000 < await built.redis.pttl(key) <= 60_000
        await built.redis.pexpire(key, 5_000)  # as if 55 s had passed
        assert await built.cache.get("k") == b"v"
        assert await built.redis.pttl(key) <= 5_000  # a read does not extend a cache entry
    finally:
        await built.close()


async def test_limiter_admits_the_limit_then_refuses_with_headers(backends: Backends) -> None:
    assert backends.limiter is not None
    decisions = [await backends.limiter.hit("owner-a") for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    refused = decisions[-1]
    assert refused.headers(now=refused.reset_at - 30)["Retry-After"] == "30"
    # Another key has its own budget.
    assert (await backends.limiter.hit("owner-b")).allowed


async def test_session_crud_and_ownership(backends: Backends) -> None:
    store = backends.sessions
    created = await store.create("alice", {"name": "Ada", "turns": [1, 2], "prefs": {"x": True}})
    assert len(created.id) == 22

    read = await store.get("alice", created.id)
    assert read is not None and read.data == {"name": "Ada", "turns": [1, 2], "prefs": {"x": True}}
    assert await store.get("mallory", created.id) is None

    merged = await store.merge("alice", created.id, {"turns": [1, 2, 3]})
    assert merged is not None and merged.data["turns"] == [1, 2, 3] and merged.data["name"] == "Ada"
    replaced = await store.replace("alice", created.id, {"only": 1})
    assert replaced is not None and replaced.data == {"only": 1}
    assert await store.merge("mallory", created.id, {"evil": 1}) is None
    assert (await store.get("alice", created.id)).data == {"only": 1}  # type: ignore[union-attr]

    assert not await store.delete("mallory", created.id)
    assert await store.delete("alice", created.id)
    assert await store.get("alice", created.id) is None
    assert await store.replace("alice", created.id, {"a": 1}) is None


async def test_memory_session_ttl_is_refreshed_by_use() -> None:
    clock = FakeClock()
    store = MemorySessionStore(ttl_s=60, max_entries=10, clock=clock)
    session = await store.create("alice", {"n": 1})
    uses = [
        lambda: store.get("alice", session.id),
        lambda: store.merge("alice", session.id, {"n": 2}),
        lambda: store.replace("alice", session.id, {"n": 3}),
    ]
    for use in uses:  # 3 x 40 s > the 60 s TTL: only the refreshes keep it alive
        clock.advance(40)
        assert await use() is not None
    clock.advance(61)
    assert await store.get("alice", session.id) is None


@pytest.mark.redis
@pytest.mark.e2e
async def test_redis_session_ttl_is_set_and_refreshed_by_use(
    redis_url: str, key_prefix: str
) -> None:
    settings = _settings(redis_url, key_prefix, session_ttl_s=60)
    built = backends_from_settings(settings, OpTimings())
    assert built.redis is not None
    try:
        session = await built.sessions.create("alice", {"n": 1})
        key = f"{key_prefix}:session:{session.id}"
        assert 59_000 < await built.redis.pttl(key) <= 60_000
        uses = [
            lambda: built.sessions.get("alice", session.id),
            lambda: built.sessions.merge("alice", session.id, {"n": 2}),
            lambda: built.sessions.replace("alice", session.id, {"n": 3}),
        ]
        for use in uses:
            await built.redis.pexpire(key, 5_000)  # as if 55 s had passed
            assert await use() is not None
            assert 59_000 < await built.redis.pttl(key) <= 60_000
    finally:
        await built.close()


async def test_session_ids_are_distinct(backends: Backends) -> None:
    ids = {(await backends.sessions.create("o", {})).id for _ in range(200)}
    assert len(ids) == 200


@pytest.mark.redis
@pytest.mark.e2e
async def test_redis_ops_are_timed(redis_url: str, key_prefix: str) -> None:
    timings = OpTimings()
    built = backends_from_settings(_settings(redis_url, key_prefix), timings)
    try:
        await built.cache.set("k", b"v")
        await built.cache.get("k")
        assert built.limiter is not None
        await built.limiter.hit("o")
        await built.sessions.create("o", {"a": 1})
    finally:
        await built.close()
    summary = timings.snapshot()
    assert {"GET", "SET", "RATELIMIT_CHECK", "HSET"} <= set(summary)
    assert all(s["count"] == 1 and s["p50_us"] > 0 for s in summary.values())


async def test_a_write_larger_than_luas_unpack_limit_is_stored(backends: Backends) -> None:
    # Lua's unpack() fails past ~8000 values; the write script must not depend on it.
    many = {f"f{i}": i for i in range(5000)}
    session = await backends.sessions.create("o", {"a": 1})
    merged = await backends.sessions.merge("o", session.id, many)
    assert merged is not None and merged.data == {"a": 1, **many}
    replaced = await backends.sessions.replace("o", session.id, many)
    assert replaced is not None and replaced.data == many


@pytest.mark.redis
@pytest.mark.e2e
async def test_a_refused_command_is_told_apart_from_an_outage(
    redis_url: str, key_prefix: str
) -> None:
    built = backends_from_settings(_settings(redis_url, key_prefix), OpTimings())
    assert built.redis is not None
    try:
        session = await built.sessions.create("o", {"a": 1})
        # Another program wrote a string where the session's hash lives: WRONGTYPE.
        await built.redis.set(f"{key_prefix}:session:{session.id}", "not a hash")
        for operation in (
            built.sessions.get("o", session.id),
            built.sessions.merge("o", session.id, {"b": 2}),
        ):
            with pytest.raises(RedisCommandError, match=r"refused the command: .*WRONGTYPE"):
                await operation
        await built.redis.hset(f"{key_prefix}:cache:k", "f", "v")
        with pytest.raises(RedisCommandError, match="WRONGTYPE"):
            await built.cache.get("k")
    finally:
        await built.close()


@pytest.fixture(scope="module")
def unix_redis() -> Iterator[EmbeddedRedis]:
    """A private Redis with a password, reached over its unix socket."""
    with EmbeddedRedis(unix_socket=True, password=f"pw-{secrets.token_hex(8)}") as server:
        yield server


@pytest.mark.redis
@pytest.mark.e2e
async def test_unix_socket_url_serves_all_three_stores(
    unix_redis: EmbeddedRedis, key_prefix: str
) -> None:
    url = unix_redis.unix_url
    assert url is not None and url.startswith("unix://")
    timings = OpTimings()
    built = backends_from_settings(_settings(url, key_prefix), timings)
    try:
        assert built.name == "redis" and built.redis is not None
        assert await ping_us(built.redis) >= 0
        await built.cache.set("k", b"v")
        assert await built.cache.get("k") == b"v"
        assert built.limiter is not None
        assert [(await built.limiter.hit("o")).allowed for _ in range(4)] == [True] * 3 + [False]
        session = await built.sessions.create("o", {"a": 1})
        merged = await built.sessions.merge("o", session.id, {"b": 2})
        assert merged is not None and merged.data == {"a": 1, "b": 2}
        # Really on that server: its keys are there.
        assert await built.redis.exists(f"{key_prefix}:session:{session.id}") == 1
    finally:
        await built.close()
    assert {"GET", "SET", "RATELIMIT_CHECK", "HSET", "EVALSHA"} <= set(timings.snapshot())


async def test_unreachable_redis_raises_a_clear_error(key_prefix: str) -> None:
    url = "redis://:hunter2@127.0.0.1:1/0"  # nothing listens on port 1
    built = backends_from_settings(_settings(url, key_prefix, redis_timeout_s=1.0), OpTimings())
    try:
        for operation in (
            built.cache.get("k"),
            built.sessions.create("o", {}),
            built.limiter.hit("o"),  # type: ignore[union-attr]
        ):
            with pytest.raises(BackendUnavailableError) as info:
                await operation
            assert not isinstance(info.value, RedisCommandError)
            assert "127.0.0.1:1" in str(info.value) and "hunter2" not in str(info.value)
    finally:
        await built.close()


@pytest.mark.redis
async def test_a_pooled_connection_redis_closed_is_retried_once(
    redis_url: str, key_prefix: str
) -> None:
    built = backends_from_settings(_settings(redis_url, key_prefix), OpTimings())
    assert built.redis is not None
    try:
        await built.cache.set("k", b"v")
        connection_id = await built.redis.client_id()  # the pool's one idle connection
        # Closed under the app, as a Redis restart does; no await in between, so asyncio has
        # not seen the EOF yet and the pool hands the dead connection out.
        with redis.Redis.from_url(redis_url) as direct:
            assert direct.client_kill_filter(_id=connection_id) == 1
        assert await built.cache.get("k") == b"v"
    finally:
        await built.close()


@pytest.mark.redis
@pytest.mark.e2e
async def test_a_wrong_password_is_a_configuration_error(
    unix_redis: EmbeddedRedis, key_prefix: str
) -> None:
    url = f"redis://:wrong-{secrets.token_hex(4)}@127.0.0.1:{unix_redis.port}/0"
    built = backends_from_settings(_settings(url, key_prefix), OpTimings())
    try:
        for operation in (
            built.cache.get("k"),
            built.sessions.create("o", {}),
            built.limiter.hit("o"),  # type: ignore[union-attr]
        ):
            with pytest.raises(RedisConfigError) as info:
                await operation
            assert "wrong-" not in str(info.value)
    finally:
        await built.close()


def test_unknown_scheme_names_the_known_ones() -> None:
    with pytest.raises(UnknownSchemeError) as info:
        backends_from_settings(_settings("mongodb://u:pw@x", "p"), OpTimings())
    message = str(info.value)
    assert "redis://" in message and "memory://" in message and "pw" not in message


@pytest.mark.parametrize(
    ("header", "versions"),
    [
        (None, None), ("*", None), (' "3" ', frozenset({3})), ('"3", "5"', frozenset({3, 5})),
        ('W/"3"', frozenset()), ("3", frozenset()), ('""', frozenset()), ('"-1"', frozenset()),
    ],
)  # fmt: skip
def test_if_match_names_strong_versions_only(header: str | None, versions: Versions) -> None:
    assert if_match_versions(header) == versions


async def test_a_conditional_write_at_another_version_writes_nothing(backends: Backends) -> None:
    store = backends.sessions
    session = await store.create("owner", {"n": 0})
    assert session.version == 1
    assert await store.merge("owner", session.id, {"n": 1}, frozenset({7})) == Conflict(1)
    assert await store.replace("owner", session.id, {"n": 1}, frozenset()) == Conflict(1)
    written = await store.merge("owner", session.id, {"n": 2}, frozenset({1}))
    assert isinstance(written, Session) and written.version == 2
    again = await store.replace("owner", session.id, {"m": 3})  # no condition
    assert isinstance(again, Session) and again.version == 3 and again.data == {"m": 3}
    read = await store.get("owner", session.id)
    assert read is not None and read.version == 3 and read.data == {"m": 3}
    assert await store.merge("other", session.id, {"n": 1}, frozenset({3})) is None
