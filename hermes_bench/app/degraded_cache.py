"""Deliberate regressions of the cache path, for showing that regression checks catch them.

Off unless HERMES_FAULT_CACHE_DELAY_MS or HERMES_FAULT_CACHE_MISS_SHARE is set; a target with
either on says so in its log at start.
"""

from __future__ import annotations

import asyncio
import random

from hermes_bench.app.cache import ResponseCache


class DegradedCache:
    """A cache that answers late (`delay_s` per lookup) or forgets (`miss_share` of lookups)."""

    def __init__(self, inner: ResponseCache, delay_s: float, miss_share: float) -> None:
        self._inner = inner
        self._delay_s = delay_s
        self._miss_share = miss_share
        self._rng = random.Random()
        self.backend = inner.backend

    async def get(self, key: str) -> bytes | None:
        if self._delay_s:
            await asyncio.sleep(self._delay_s)
        if self._miss_share and self._rng.random() < self._miss_share:
            return None
        return await self._inner.get(key)

    async def set(self, key: str, value: bytes) -> None:
        await self._inner.set(key, value)
