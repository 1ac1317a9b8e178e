"""Session stores: a Redis hash per session (as the guide recommends) or an in-memory TTL map.

A session belongs to the API key that created it; another key sees it as unknown. Reading or
writing a session refreshes its TTL.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as aioredis
from cachetools import TTLCache

from hermes_bench.app.counters import OpTimings
from hermes_bench.app.redis_client import RedisStore

# Fields of the stored hash that are ours, not the client's: client keys may not start with "__".
OWNER_FIELD = "__owner"
CREATED_FIELD = "__created_at"
# Counts the writes of a session (1 at its creation): its ETag, checked against If-Match.
VERSION_FIELD = "__version"
RESERVED_PREFIX = "__"
# Most client fields one create, replace or merge may carry: a bound on the work and memory
# one request can cost, checked by the routes before any store is touched.
MAX_SESSION_FIELDS = 1000
# 16 random bytes = 128 bits, URL-safe base64 without padding = 22 characters.
SESSION_ID_BYTES = 16
_ID_LENGTH = 22
_ID_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def new_session_id() -> str:
    """A session id from the OS CSPRNG: 128 bits, 22 URL-safe characters."""
    return secrets.token_urlsafe(SESSION_ID_BYTES)


def is_session_id(value: str) -> bool:
    """True when `value` has the shape of an id we issue (anything else is simply unknown)."""
    return len(value) == _ID_LENGTH and set(value) <= _ID_ALPHABET


@dataclass
class Session:
    """One session: who owns it, when it began, the client's data and how often it was written."""

    id: str
    owner: str
    created_at: float
    data: dict[str, Any] = field(default_factory=dict)
    version: int = 1


@dataclass(frozen=True)
class Conflict:
    """A conditional write that found the session at another version: nothing was written."""

    version: int


# What a replace or merge may depend on: None writes whatever the version, else the session
# must be at one of these versions (an empty set never matches).
Versions = frozenset[int] | None


def if_match_versions(header: str | None) -> Versions:
    """The versions an If-Match header accepts: None when absent or "*"; the strong ETags
    ("3") of a list otherwise; a weak (W/"3") or malformed one matches nothing."""
    if header is None or header.strip() == "*":
        return None
    versions = set()
    for tag in header.split(","):
        tag = tag.strip()
        if len(tag) > 2 and tag[0] == tag[-1] == '"' and tag[1:-1].isdigit():
            versions.add(int(tag[1:-1]))
    return frozenset(versions)


def etag(version: int) -> str:
    """The ETag header value of a session at `version`."""
    return f'"{version}"'


class SessionStore(Protocol):
    """Create, read, replace, merge and delete sessions; None/False means unknown to this owner."""

    backend: str

    async def create(self, owner: str, data: dict[str, Any]) -> Session: ...

    async def get(self, owner: str, session_id: str) -> Session | None: ...

    async def replace(
        self, owner: str, session_id: str, data: dict[str, Any], versions: Versions = None
    ) -> Session | Conflict | None: ...

    async def merge(
        self, owner: str, session_id: str, data: dict[str, Any], versions: Versions = None
    ) -> Session | Conflict | None: ...

    async def delete(self, owner: str, session_id: str) -> bool: ...


class MemorySessionStore:
    """Sessions in this process (cachetools TTLCache): lost when the instance restarts."""

    backend = "memory"

    def __init__(
        self, ttl_s: int, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        # `clock` (seconds) decides expiry; tests pass a fake one instead of sleeping.
        self._sessions: TTLCache[str, Session] = TTLCache(
            maxsize=max_entries, ttl=ttl_s, timer=clock
        )

    async def create(self, owner: str, data: dict[str, Any]) -> Session:
        session = Session(new_session_id(), owner, time.time(), dict(data))
        self._sessions[session.id] = session
        return session

    async def get(self, owner: str, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        if session is None or session.owner != owner:
            return None
        self._sessions[session_id] = session  # re-inserting refreshes the TTL
        return session

    async def replace(
        self, owner: str, session_id: str, data: dict[str, Any], versions: Versions = None
    ) -> Session | Conflict | None:
        return await self._write(owner, session_id, dict(data), versions, replace=True)

    async def merge(
        self, owner: str, session_id: str, data: dict[str, Any], versions: Versions = None
    ) -> Session | Conflict | None:
        return await self._write(owner, session_id, data, versions, replace=False)

    async def _write(
        self,
        owner: str,
        session_id: str,
        data: dict[str, Any],
        versions: Versions,
        *,
        replace: bool,
    ) -> Session | Conflict | None:
        # No await between the check and the write: atomic on the event loop.
        session = await self.get(owner, session_id)
        if session is None:
            return None
        if versions is not None and session.version not in versions:
            return Conflict(session.version)
        if replace:
            session.data = data
        else:
            session.data.update(data)
        session.version += 1
        return session

    async def delete(self, owner: str, session_id: str) -> bool:
        if await self.get(owner, session_id) is None:
            return False
        del self._sessions[session_id]
        return True


# Read-modify-write of one session in one round trip, atomically: returns the new hash, nil
# when the session is missing or owned by someone else, or {'__conflict', version} when it is
# at none of the versions asked for. ARGV: owner, ttl_s, mode, versions ("*" for any, else the
# numbers in any text: "none" matches nothing), field/value...
# HSET takes the pairs in slices: unpack() of a whole large ARGV overflows Lua's C stack
# ("too many results to unpack"), whatever MAX_SESSION_FIELDS allows.
_WRITE_SCRIPT = """
if redis.call('HGET', KEYS[1], '__owner') ~= ARGV[1] then
  return nil
end
local version = tonumber(redis.call('HGET', KEYS[1], '__version') or '0')
if ARGV[4] ~= '*' then
  local matched = false
  for wanted in string.gmatch(ARGV[4], '%d+') do
    if tonumber(wanted) == version then matched = true end
  end
  if not matched then
    return {'__conflict', tostring(version)}
  end
end
if ARGV[3] == 'replace' then
  local created = redis.call('HGET', KEYS[1], '__created_at')
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], '__owner', ARGV[1], '__created_at', created)
end
redis.call('HSET', KEYS[1], '__version', version + 1)
for first = 5, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, first, math.min(first + 999, #ARGV)))
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return redis.call('HGETALL', KEYS[1])
"""
# The script's answer when the session is at a version If-Match did not name: no client
# field can be called so (they may not start with "__"), and HGETALL starts with one.
_CONFLICT = b"__conflict"


class RedisSessionStore(RedisStore):
    """Each session is a Redis hash of JSON-encoded fields with a TTL; survives target restarts."""

    backend = "redis"
    key_kind = "session"

    def __init__(
        self, client: aioredis.Redis, url: str, ttl_s: int, prefix: str, timings: OpTimings
    ) -> None:
        super().__init__(client, url, ttl_s, prefix, timings)
        self._write = client.register_script(_WRITE_SCRIPT)

    async def create(self, owner: str, data: dict[str, Any]) -> Session:
        session = Session(new_session_id(), owner, time.time(), dict(data))
        mapping: dict[Any, Any] = {
            OWNER_FIELD: owner,
            CREATED_FIELD: repr(session.created_at),
            VERSION_FIELD: "1",
            **_encode(data),
        }
        key = self._prefix + session.id
        pipe = self._client.pipeline(transaction=True)
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, self._ttl_s)
        await self._run("HSET", pipe.execute())
        return session

    async def get(self, owner: str, session_id: str) -> Session | None:
        key = self._prefix + session_id
        # One round trip: read the hash and refresh its TTL.
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(key)
        pipe.expire(key, self._ttl_s)
        raw, _ = await self._run("HGETALL", pipe.execute())
        return _decode(session_id, owner, raw)

    async def replace(
        self, owner: str, session_id: str, data: dict[str, Any], versions: Versions = None
    ) -> Session | Conflict | None:
        return await self._run_write(owner, session_id, data, "replace", versions)

    async def merge(
        self, owner: str, session_id: str, data: dict[str, Any], versions: Versions = None
    ) -> Session | Conflict | None:
        return await self._run_write(owner, session_id, data, "merge", versions)

    async def delete(self, owner: str, session_id: str) -> bool:
        if await self.get(owner, session_id) is None:
            return False
        await self._run("DEL", self._client.delete(self._prefix + session_id))
        return True

    async def _run_write(
        self, owner: str, session_id: str, data: dict[str, Any], mode: str, versions: Versions
    ) -> Session | Conflict | None:
        wanted = "*" if versions is None else ",".join(map(str, sorted(versions))) or "none"
        args: list[str] = [owner, str(self._ttl_s), mode, wanted]
        for name, value in _encode(data).items():
            args += [name, value]
        flat = await self._run("EVALSHA", self._write(keys=[self._prefix + session_id], args=args))
        if not flat:
            return None
        if flat[0] == _CONFLICT:
            return Conflict(int(flat[1]))
        raw = dict(zip(flat[::2], flat[1::2], strict=True))
        return _decode(session_id, owner, raw)


def _encode(data: dict[str, Any]) -> dict[str, str]:
    return {name: json.dumps(value, separators=(",", ":")) for name, value in data.items()}


def _decode(session_id: str, owner: str, raw: dict[bytes, bytes]) -> Session | None:
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    if fields.get(OWNER_FIELD) != owner:
        return None
    created_at = float(fields.get(CREATED_FIELD, "0") or 0)
    version = int(fields.get(VERSION_FIELD, "0") or 0)  # sessions written before versions: 0
    data = {k: json.loads(v) for k, v in fields.items() if not k.startswith(RESERVED_PREFIX)}
    return Session(session_id, owner, created_at, data, version)
