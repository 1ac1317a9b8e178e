"""Response caches: an in-memory TTL cache and a Redis one, chosen by URL scheme."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from cachetools import TTLCache

from hermes_bench.app.redis_client import RedisStore


class ResponseCache(Protocol):
    """Stores serialized upstream answers by cache key for a fixed TTL."""

    backend: str

    async def get(self, key: str) -> bytes | None:
        """The cached value, or None on a miss; raises BackendUnavailableError when broken."""
        ...

    async def set(self, key: str, value: bytes) -> None:
        """Store `value` under `key` for the cache's TTL."""
        ...


class MemoryCache:
    """Per-process TTL + LRU cache (cachetools); lost on restart, not shared between instances."""

    backend = "memory"

    def __init__(
        self, ttl_s: int, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        # `clock` (seconds) decides expiry; tests pass a fake one instead of sleeping.
        self._entries: TTLCache[str, bytes] = TTLCache(maxsize=max_entries, ttl=ttl_s, timer=clock)

    async def get(self, key: str) -> bytes | None:
        return self._entries.get(key)

    async def set(self, key: str, value: bytes) -> None:
        self._entries[key] = value


class RedisCache(RedisStore):
    """Cache in Redis: GET, and SET with EX, each timed as the app sees it."""

    backend = "redis"
    key_kind = "cache"

    def key_of(self, key: str) -> str:
        """The Redis key of cache entry `key`."""
        return self._prefix + key

    async def get(self, key: str) -> bytes | None:
        value = await self._run("GET", self._client.get(self._prefix + key))
        return value if value is None or isinstance(value, bytes) else value.encode()

    async def set(self, key: str, value: bytes) -> None:
        await self._run("SET", self._client.set(self._prefix + key, value, ex=self._ttl_s))
