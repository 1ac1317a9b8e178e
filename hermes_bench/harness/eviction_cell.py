"""The eviction cell (C10): the run's own Redis made full under each maxmemory-policy.

Per policy, from no key of the cell's: sessions through the app; maxmemory set from measured
bytes per entry so that the cache holds a share of the workload's distinct prompts beside them;
a Zipf cache workload; one API key pushed past its limit, each request a new prompt; then the
sessions read back (EvictionFigures). maxmemory, maxmemory-policy and hz are restored and the
cell's keys removed, also on failure. A Redis this run did not start (--redis-url) is someone else's
to configure: the run plans no eviction cell then, and the cell refuses to run on one.

maxmemory counts every byte Redis holds, client buffers included: a connection holds a query
buffer of ~32 KB (Redis 6.2) from each command it sends until clientsCron next visits it, as
much as 50 cache entries. So the cell's target has one pooled connection (its buffer is there
whenever its commands run), the cell counts memory without buffers and adds that one, and its
own connection stays quiet while the target works: the room maxmemory leaves is the keys'.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from hermes_bench.errors import HermesBenchError
from hermes_bench.harness.cells import CellEnv, CellError, CellPlan, Measured, TargetSet
from hermes_bench.harness.failure_cells import LoopbackConnection, answer_content
from hermes_bench.hit_rate import ideal_hit_rate
from hermes_bench.reports.bounds import lru_hit_rate_curve
from hermes_bench.results.model import EvictionFigures, EvictionPolicyFigures
from hermes_bench.scenarios.workload import zipf_sequence
from hermes_bench.stack.stack import Stack, StackConfig
from hermes_bench.wire.answer import answer_text
from hermes_bench.wire.chat import request_hash

# The guide's allkeys-lru first; noeviction is Redis's default.
POLICIES = ("allkeys-lru", "allkeys-lfu", "volatile-lru", "volatile-ttl", "noeviction")
CACHE_SHARE = 0.3  # of the workload's distinct prompts, beside the sessions
SESSIONS = 100
SIZING_ENTRIES = 50  # cache entries and sessions written to measure bytes per entry
# The cell's own limit: a minute holds the whole burst, so a second window never opens in it
# unless the limiter lost its count.
BURST_LIMIT = 20
RATE_LIMIT = f"{BURST_LIMIT}/minute"
BURST_REQUESTS = BURST_LIMIT + 5
# Few in flight: the LRU bound is of the sequence in order. The upstream's latency changes no
# hit rate (only duplicates in flight at once would), so it is short, for a short cell.
IN_FLIGHT = 4
UPSTREAM_LATENCY = "fixed:2ms"
NEW_SESSIONS = 10  # created with Redis full: noeviction refuses them
# Redis's clientsCron runs this often while the cell runs (10 by default): it frees quiet
# clients' buffers sooner, so the cell waits less for them (see _quiet).
CRON_HZ = 100
REQUEST_TIMEOUT_S = 30.0
PHASE_TIMEOUT_S = 300.0
_MODEL = "gpt-4o-mini"
# The cell's target's own settings (its limit; one pooled connection, see above): the run's
# values of these, and its list of accepted API keys, are left out.
_OWN = {"REDIS_MAX_CONNECTIONS": "1", "REDIS_POOL_MODE": "blocking", "RATE_LIMIT": RATE_LIMIT}
_DROPS = frozenset({*_OWN, "HERMES_API_KEYS"})
_CHANGED = ("maxmemory", "maxmemory-policy", "hz")  # restored as they were


@dataclass(frozen=True)
class Ask:
    """One request the cell sends; `expected` is a chat answer's text (None: not a chat)."""

    method: str
    path: str
    api_key: str
    payload: bytes = b""
    expected: str | None = None


@dataclass(frozen=True)
class Reply:
    """One answer as the cell's client saw it; `right` is a chat's right answer, or a session
    read back with the data it was created with."""

    status: str  # "200", "404"..., or the transport error's name
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    right: bool = True


@dataclass(frozen=True)
class Workload:
    """The cell's request sequence and the cache it is sized for: `share` of its distinct
    prompts, in entries; the hit rates of an exact LRU cache of that size and of an unbounded
    one over the very sequence."""

    sequence: list[str]
    distinct: int
    entries: int
    lru_hit_rate: float
    ideal_hit_rate: float


def cache_sizing(sequence: list[str], share: float) -> Workload:
    """The cache `sequence` is measured with, holding `share` of its distinct prompts: pure."""
    distinct = len(set(sequence))
    entries = max(1, round(share * distinct))
    lru = lru_hit_rate_curve(sequence, [entries])[entries]
    ideal = ideal_hit_rate(len(sequence), distinct) or 0.0
    return Workload(sequence, distinct, entries, round(lru, 4), round(ideal, 4))


def policy_figures(
    *,
    baseline_bytes: int,
    maxmemory_bytes: int,
    used_memory_bytes: int,
    load: list[Reply],
    burst: list[Reply],
    sessions: list[Reply],
    new_sessions: list[Reply],
    cache_write_errors: int,
    evicted_keys: int,
    cache_entries_held: int,
    lru_held: float,
    load_s: float,
) -> EvictionPolicyFigures:
    """What one policy measured, from the answers and the counters read around them: pure."""
    answers = load + burst
    statuses: dict[str, int] = {}
    for reply in answers:
        statuses[reply.status] = statuses.get(reply.status, 0) + 1
    hits = sum(r.headers.get("x-cache") == "HIT" for r in load)
    admitted = [r for r in burst if r.status == "200"]
    intact = sum(r.status == "200" and r.right for r in sessions)
    lost = sum(r.status == "404" for r in sessions)
    return EvictionPolicyFigures(
        baseline_bytes=baseline_bytes,
        maxmemory_bytes=maxmemory_bytes,
        used_memory_bytes=used_memory_bytes,
        requests=len(load),
        hits=hits,
        hit_rate=round(hits / len(load), 4) if load else 0.0,
        statuses=dict(sorted(statuses.items())),
        server_errors=sum(not r.status.isdigit() or int(r.status) >= 500 for r in answers),
        wrong_answers=sum(r.status == "200" and not r.right for r in answers),
        cache_write_failed=sum(r.headers.get("x-cache-write") == "failed" for r in answers),
        cache_write_errors=cache_write_errors,
        limiter_failed_open=sum(_failed_open(r) for r in answers),
        load_s=round(load_s, 3),
        evicted_keys=evicted_keys,
        cache_entries_held=cache_entries_held,
        lru_hit_rate_held=round(lru_held, 4),
        sessions=len(sessions),
        sessions_intact=intact,
        sessions_lost=lost,
        session_errors=len(sessions) - intact - lost,
        new_sessions=len(new_sessions),
        new_sessions_refused=sum(r.status != "201" for r in new_sessions),
        burst_limit=BURST_LIMIT,
        burst_requests=len(burst),
        burst_admitted=len(admitted),
        burst_failed_open=sum(_failed_open(r) for r in admitted),
    )


def _failed_open(reply: Reply) -> bool:
    return reply.headers.get("x-ratelimit-status") == "fail-open"


def run_eviction_cell(plan: CellPlan, stack: TargetSet, env: CellEnv) -> Measured:
    """Every policy of POLICIES on the stack's Redis, through a target of the cell's own."""
    if stack.redis_url is None or not isinstance(stack, Stack):
        raise CellError("the eviction cell starts a target of its own on the redis backend's stack")
    if stack.redis is None:
        raise CellError(
            "the eviction cell sets maxmemory and maxmemory-policy, and only on a Redis this run "
            "started: the one given by --redis-url is someone else's to configure, so it was "
            "left alone. Run without --redis-url to measure C10."
        )
    p = env.profile
    sequence = zipf_sequence(
        p.zipf_alpha, p.catalogue_size, p.one_off_share, env.seed, p.eviction_requests
    )
    workload = cache_sizing(sequence, CACHE_SHARE)
    prefix = f"{stack.key_prefix}:eviction"
    own = Stack(_eviction_config(stack, env, plan, prefix))
    try:
        own.start()
    except HermesBenchError as exc:
        raise CellError(f"the eviction cell's target did not start: {exc}") from exc
    try:
        figures = asyncio.run(_measure(stack.redis_url, own.target_urls[0], prefix, workload))
    finally:
        own.stop()
    return Measured(
        conditions={
            "policies": list(POLICIES),
            "cache sized for": f"{CACHE_SHARE:.0%} of {workload.distinct} distinct prompts",
            "sessions": SESSIONS,
            "requests per policy": len(sequence),
            "burst": f"{BURST_REQUESTS} requests on one key at {RATE_LIMIT}, one at a time",
            "in flight": IN_FLIGHT,
            "upstream latency": UPSTREAM_LATENCY,
        },
        figures=figures,
    )


def _eviction_config(stack: Stack, env: CellEnv, plan: CellPlan, prefix: str) -> StackConfig:
    """One target on the stack's Redis with the cell's limit and one pooled connection, the
    run's other settings kept (its TTLs decide what volatile-* may evict); a short upstream."""
    kept = {k: v for k, v in stack.config.target_env.items() if k not in _DROPS}
    if kept.get("CACHE_TTL_S", "").strip() == "0":
        del kept["CACHE_TTL_S"]  # no cache at all: nothing for a policy to keep
    return dataclasses.replace(
        stack.config,
        instances=1,
        redis_url=stack.redis_url,
        upstream_latency=UPSTREAM_LATENCY,
        time_scale=1.0,
        target_env={**kept, **_OWN, "HERMES_KEY_PREFIX": prefix},
        run_dir=env.out_dir / "cells" / plan.id,
    )


async def _measure(redis_url: str, target: str, prefix: str, workload: Workload) -> EvictionFigures:
    """Sizing, then every policy; the server's configuration restored and the keys removed."""
    # One connection for every command of the cell's, pipelines included: its client and
    # its buffer are one, counted once.
    pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=1, socket_timeout=10)
    client = aioredis.Redis(connection_pool=pool)
    try:
        saved = {name: await _config(client, name) for name in _CHANGED}
    except RedisError as exc:
        await pool.disconnect()
        raise CellError(f"CONFIG GET maxmemory refused ({exc}): no policy can be set") from exc
    try:
        await client.config_set("hz", CRON_HZ)
        await client.config_set("maxmemory", 0)
        sequence = workload.sequence
        entry_bytes, usage_bytes, session_bytes, ttl_s = await _sizing(
            client, target, prefix, sequence
        )
        room = math.ceil(workload.entries * entry_bytes)
        policies = {
            policy: await _one_policy(client, target, prefix, policy, sequence, room)
            for policy in POLICIES
        }
        server, memory = await client.info("server"), await client.info("memory")
        samples = int(await _config(client, "maxmemory-samples"))
    except ResponseError as exc:
        raise CellError(
            f"Redis refused a command the eviction cell needs ({exc}): it runs CONFIG SET "
            "maxmemory, maxmemory-policy and hz, INFO, CLIENT LIST and MEMORY USAGE"
        ) from exc
    finally:
        try:
            await client.config_set("maxmemory", 0)  # so that nothing is evicted meanwhile
            await _forget(client, prefix)
            for name, value in saved.items():
                await client.config_set(name, value)
        finally:
            await pool.disconnect()
    return EvictionFigures(
        redis_version=str(server.get("redis_version", "?")),
        allocator=str(memory.get("mem_allocator", "?")),
        maxmemory_samples=samples,
        cache_share=CACHE_SHARE,
        requests=len(sequence),
        distinct_prompts=workload.distinct,
        cache_entries=workload.entries,
        entry_bytes=entry_bytes,
        entry_memory_usage_bytes=usage_bytes,
        session_bytes=session_bytes,
        lru_hit_rate=workload.lru_hit_rate,
        ideal_hit_rate=workload.ideal_hit_rate,
        rate_limit=RATE_LIMIT,
        ttl_s=ttl_s,
        policies=policies,
    )


@dataclass(frozen=True)
class _Memory:
    """used_memory at one instant without any client's query buffer, and the size of one
    (the cell's own, there while its command runs); evictions so far; clients connected."""

    keys_bytes: int
    buffer_bytes: int
    evicted_keys: int
    clients: int


async def _memory(client: aioredis.Redis) -> _Memory:
    # Not MULTI (Redis refuses to queue commands while it is full): one pipeline, read at once.
    async with client.pipeline(transaction=False) as pipe:
        pipe.info("memory")
        pipe.info("stats")
        pipe.client_list()
        pipe.client_id()
        memory, stats, clients, me = await pipe.execute()
    buffers = {int(c["id"]): int(c["qbuf"]) + int(c["qbuf-free"]) for c in clients}
    return _Memory(
        keys_bytes=int(memory["used_memory"]) - sum(buffers.values()),
        buffer_bytes=buffers.get(int(me), 0),
        evicted_keys=int(stats["evicted_keys"]),
        clients=len(clients),
    )


async def _quiet(memory: _Memory) -> None:
    """Wait for clientsCron to visit every client once: a quiet client's buffer is freed.

    Each of its CRON_HZ calls visits at least 5 clients, or clients / CRON_HZ; a margin on top.
    """
    per_call = max(min(memory.clients, 5), memory.clients // CRON_HZ, 1)
    await asyncio.sleep(min(2.0, 1.5 * math.ceil(memory.clients / per_call) / CRON_HZ + 0.01))


async def _config(client: aioredis.Redis, name: str) -> str:
    found = await client.config_get(name)
    return str(found[name])


async def _forget(client: aioredis.Redis, prefix: str) -> None:
    """Every key of the cell's target: cache entries, sessions and limiter counts."""
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
    for start in range(0, len(keys), 500):
        await client.delete(*keys[start : start + 500])


async def _stored(client: aioredis.Redis, prefix: str) -> dict[str, bytes]:
    """The target's keys by their last `:` part: a request hash, a session id, or else."""
    keys = client.scan_iter(match=f"{prefix}:*", count=1000)
    return {key.rsplit(b":", 1)[-1].decode(): key async for key in keys}


def _chat(prompt: str, api_key: str) -> Ask:
    body = {"model": _MODEL, "messages": [{"role": "user", "content": prompt}]}
    return Ask(
        "POST", "/v1/chat/completions", api_key, json.dumps(body).encode(), answer_text(body)
    )


def _hash(prompt: str) -> str:
    return request_hash({"model": _MODEL, "messages": [{"role": "user", "content": prompt}]})


async def _sizing(
    client: aioredis.Redis, target: str, prefix: str, sequence: list[str]
) -> tuple[float, float, float, dict[str, float | None]]:
    """Bytes of used_memory per cache entry and per session written through the app, MEMORY
    USAGE of an entry, and the TTL the app gave each kind of key; nothing is left behind."""
    prompts = list(dict.fromkeys(sequence))[:SIZING_ENTRIES]  # the workload's own mix
    if len(prompts) < 2:
        raise CellError(f"the workload has {len(prompts)} distinct prompt: nothing to size")
    # Each key asks once before the measure (creating its limiter key) and at most this many
    # times after it: never past its limit.
    per_key = BURST_LIMIT - 1
    keys = [f"sk-hermes-eviction-sizing-{n}" for n in range(math.ceil(len(prompts) / per_key))]
    # The first entry and every limiter key before the measure: only cache entries after it.
    _expect(await _send(target, [_chat(prompts[0], k) for k in keys], 1), "200", "cache")
    before = (await _memory(client)).keys_bytes
    asks = [_chat(p, keys[i // per_key]) for i, p in enumerate(prompts[1:])]
    _expect(await _send(target, asks, 1), "200", "write cache entries")
    cached = (await _memory(client)).keys_bytes
    created = await _send(target, _new_sessions(keys[0], SIZING_ENTRIES), 1)
    _expect(created, "201", "create sessions")
    with_sessions = (await _memory(client)).keys_bytes
    stored = await _stored(client, prefix)
    entry_keys = [stored[h] for h in map(_hash, prompts) if h in stored]
    session_keys = [stored[s] for s in map(_session_id, created) if s in stored]
    if len(entry_keys) != len(prompts) or len(session_keys) != len(created):
        raise CellError(
            f"expected {len(prompts)} cache entries and {len(created)} sessions under the "
            f"target's prefix, found {len(entry_keys)} and {len(session_keys)}"
        )
    others = [k for k in stored.values() if k not in {*entry_keys, *session_keys}]
    usage = [int(await client.memory_usage(k, samples=0) or 0) for k in entry_keys]
    ttl_s = {
        "cache entry": await _ttl_s(client, entry_keys),
        "session": await _ttl_s(client, session_keys),
        "limiter key": await _ttl_s(client, others) if others else None,
    }
    await _forget(client, prefix)
    entry_bytes = (cached - before) / (len(prompts) - 1)
    if entry_bytes <= 0:
        raise CellError(f"used_memory did not grow with {len(prompts) - 1} cache entries")
    return (
        round(entry_bytes, 1),
        round(sum(usage) / len(usage), 1),
        round((with_sessions - cached) / len(created), 1),
        ttl_s,
    )


async def _ttl_s(client: aioredis.Redis, keys: list[bytes]) -> float | None:
    """The longest remaining TTL of `keys` in seconds; None when one has none (PTTL -1)."""
    left = [int(await client.pttl(k)) for k in keys]
    return None if min(left) == -1 else round(max(left) / 1000, 1)


def _new_sessions(api_key: str, count: int) -> list[Ask]:
    return [
        Ask("POST", "/v1/sessions", api_key, json.dumps({"data": _session_data(n)}).encode())
        for n in range(count)
    ]


def _session_data(n: int) -> dict[str, Any]:
    return {"user_id": f"user-{n:06d}", "note": f"session {n}, created before Redis filled up"}


def _session_id(reply: Reply) -> str:
    session_id: str = json.loads(reply.body)["id"]
    return session_id


async def _one_policy(
    client: aioredis.Redis, target: str, prefix: str, policy: str, sequence: list[str], room: int
) -> EvictionPolicyFigures:
    """Sessions, then maxmemory at their used_memory plus `room`, the workload, the burst and
    new sessions under `policy`; then no limit again while the sessions are read back (a read
    must evict nothing) and the cache entries left are counted."""
    await _forget(client, prefix)
    await client.config_set("maxmemory", 0)
    await client.config_set("maxmemory-policy", policy)
    owner = f"sk-hermes-eviction-sessions-{policy}"
    created = await _send(target, _new_sessions(owner, SESSIONS), IN_FLIGHT)
    _expect(created, "201", f"create sessions ({policy})")
    before = await _memory(client)
    # The target's buffer is there whenever its commands run, the cell's is freed before them.
    baseline = before.keys_bytes + before.buffer_bytes
    await client.config_set("maxmemory", baseline + room)
    write_errors = -await _write_errors(target)
    asks = [_chat(p, f"sk-hermes-eviction-load-{i // BURST_LIMIT}") for i, p in enumerate(sequence)]
    burst_prompts = [f"[eviction burst, {policy}] request {n}" for n in range(BURST_REQUESTS)]
    owner_of_burst = f"sk-hermes-eviction-burst-{policy}"
    await _quiet(before)  # the cell's own buffer, freed: the room is the cache's alone
    started = time.perf_counter()
    # API keys in turn, `BURST_LIMIT` requests each: the limiter counts all and refuses none.
    load = await _send(target, asks, IN_FLIGHT)
    # One at a time: each write may evict before the next request's limiter check.
    burst = await _send(target, [_chat(p, owner_of_burst) for p in burst_prompts], 1)
    load_s = time.perf_counter() - started
    late = await _send(target, _new_sessions(owner, NEW_SESSIONS), 1)
    write_errors += await _write_errors(target)
    await _quiet(before)  # now the target's: the cell's own command takes its place
    after = await _memory(client)
    await client.config_set("maxmemory", 0)
    reads = [Ask("GET", f"/v1/sessions/{_session_id(reply)}", owner) for reply in created]
    sessions = [
        dataclasses.replace(reply, right=_intact(reply, n))
        for n, reply in enumerate(await _send(target, reads, IN_FLIGHT))
    ]
    hashes = {*map(_hash, sequence), *map(_hash, burst_prompts)}
    held = sum(name in hashes for name in await _stored(client, prefix))
    return policy_figures(
        baseline_bytes=baseline,
        maxmemory_bytes=baseline + room,
        used_memory_bytes=after.keys_bytes + after.buffer_bytes,
        load=load,
        burst=burst,
        sessions=sessions,
        new_sessions=late,
        cache_write_errors=write_errors,
        evicted_keys=after.evicted_keys - before.evicted_keys,
        cache_entries_held=held,
        lru_held=lru_hit_rate_curve(sequence, [held])[held],
        load_s=load_s,
    )


async def _write_errors(target: str) -> int:
    """The target's count of failed cache writes (GET /stats)."""
    (reply,) = await _send(target, [Ask("GET", "/stats", "sk-hermes-eviction-stats")], 1)
    _expect([reply], "200", "read the target's /stats")
    return int(json.loads(reply.body)["cache_write_errors"])


def _intact(reply: Reply, n: int) -> bool:
    if reply.status != "200":
        return False
    try:
        return bool(json.loads(reply.body).get("data") == _session_data(n))
    except ValueError:
        return False


def _expect(replies: list[Reply], status: str, step: str) -> None:
    wrong = [r for r in replies if r.status != status or not r.right]
    if wrong:
        first = wrong[0]
        raise CellError(
            f"{step}: {len(wrong)} of {len(replies)} answers were not {status} "
            f"(first: {first.status}, {first.body[:200]!r})"
        )


async def _send(target: str, asks: list[Ask], in_flight: int) -> list[Reply]:
    """Every ask, `in_flight` at a time in order, on keep-alive connections; replies in order."""
    url = urlsplit(target)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    connections = [LoopbackConnection(host, port, url.netloc) for _ in range(max(1, in_flight))]
    replies: dict[int, Reply] = {}
    numbers: Iterator[int] = iter(range(len(asks)))

    async def keep_sending(connection: LoopbackConnection) -> None:
        for i in numbers:
            replies[i] = await _one(connection, asks[i])

    try:
        await asyncio.wait_for(
            asyncio.gather(*(keep_sending(c) for c in connections)), PHASE_TIMEOUT_S
        )
    except TimeoutError:
        raise CellError(f"{len(asks)} requests did not finish in {PHASE_TIMEOUT_S:g} s") from None
    finally:
        for connection in connections:
            connection.close()
    return [replies[i] for i in range(len(asks))]


async def _one(connection: LoopbackConnection, ask: Ask) -> Reply:
    """One request; a transport failure is a reply too (the connection opens again)."""
    try:
        status, headers, body = await asyncio.wait_for(
            connection.request(ask.method, ask.path, ask.payload, ask.api_key), REQUEST_TIMEOUT_S
        )
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError, KeyError) as exc:
        connection.close()
        return Reply(type(exc).__name__)
    right = ask.expected is None or status != 200 or answer_content(body) == ask.expected
    return Reply(str(status), headers, body, right)
