"""Cells of the guide's memory and pool advice, on the redis backend.

- memory (C11): sessions the app stored, as its hash and as the guide's JSON string, small,
  typical and past the server's compact-hash limits; the app's cache entries (MemoryFigures).
- pool (C13): chat requests that hit the cache, swept from a few in flight to many, through
  targets of the cell's own with the guide's pool of 10: the plain pool and the blocking one
  (PoolFigures), with each step's waits for a pooled connection as the app timed them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from statistics import fmean
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
import psutil
import redis

from hermes_bench.app.server_timing import LOOKUP_STEPS, parse_server_timing
from hermes_bench.app.sessions import CREATED_FIELD, MAX_SESSION_FIELDS, OWNER_FIELD
from hermes_bench.errors import HermesBenchError
from hermes_bench.harness.cells import CellEnv, CellError, CellPlan, Measured, TargetSet, ask_all
from hermes_bench.histograms import clamp_us, latency_summary, new_histogram
from hermes_bench.http_json import get_json, post_json
from hermes_bench.redaction import redact_text
from hermes_bench.results.model import (
    CacheEntryBytes,
    LatencySummary,
    MemoryFigures,
    MemoryRecord,
    PoolFigures,
    PoolStep,
)
from hermes_bench.scenarios.workload import catalogue_prompt
from hermes_bench.stack.stack import Stack, StackConfig
from hermes_bench.wire.answer import answer_text
from hermes_bench.wire.chat import request_hash

MEMORY_RECORDS = 50  # sessions per size, and cache entries
SESSION_SIZES = ("small", "typical", "long value", "many fields")
LONG_VALUE_BYTES = 1000  # a conversation summary: past the default value limit of 64 B
MAX_LONG_VALUE_BYTES = 16_000
# The guide's pool: REDIS_MAX_CONNECTIONS=10, REDIS_TIMEOUT=5, and its plain ConnectionPool
# ("nonblocking": raises "Too many connections"); "blocking" waits up to the timeout.
GUIDE_MAX_CONNECTIONS = 10
GUIDE_TIMEOUT_S = 5
POOL_MODES = ("nonblocking", "blocking")
POOL_WARM_PROMPTS = 20
MIN_REQUESTS_PER_CONNECTION = 2  # every connection reused; the top steps stay short
OPEN_ROUNDS = 5  # requests per connection that open the pool before the sweep
REQUEST_TIMEOUT_S = 30.0  # well past REDIS_TIMEOUT: a slow answer is measured, not cut
STEP_TIMEOUT_S = 300.0
_CAUSE_CHARS = 80
# What the reference app's /stats holds on its pool: the waits' summary, and the refusals.
WAIT_SUMMARY = "redis_pool_wait_us"
REFUSALS_COUNTER = "redis_pool_refusals"
# The cell resets its own targets' counters before each step, from loopback: no admin key.
_POOL_DROPS = frozenset({"CACHE_TTL_S", "HERMES_API_KEYS", "HERMES_ADMIN_KEY"})
_MODEL = "gpt-4o-mini"


# --- memory (C11) ---------------------------------------------------------------------------


def session_data(size: str, n: int, max_entries: int, max_value_bytes: int) -> dict[str, Any]:
    """Client fields of session `n` of one size; "long value" and "many fields" pass the
    server's compact-hash limits (a value longer than `max_value_bytes`, more fields than
    `max_entries`) as far as the app allows."""
    data: dict[str, Any] = {"user_id": f"user-{n:06d}", "name": f"User {n}"}
    if size == "small":
        return data
    # The guide's user record: an id, who they are, a few settings and counters.
    data |= {
        "email": f"user{n}@example.com",
        "plan": "pro" if n % 2 else "free",
        "locale": "en-GB",
        "model": _MODEL,
        "theme": "dark",
        "messages": n * 7 % 500,
        "tokens_today": n * 1234 % 100_000,
        "last_seen": 1_700_000_000.5 + n,
    }
    if size == "typical":
        return data
    if size == "long value":
        length = min(max(LONG_VALUE_BYTES, max_value_bytes + 1), MAX_LONG_VALUE_BYTES)
        words = " ".join(f"user asked about topic {n}-{i}; assistant answered." for i in range(400))
        return data | {"history": words[:length]}
    if size == "many fields":
        count = min(max_entries + 8, MAX_SESSION_FIELDS) - len(data)
        return data | {f"pref_{i:04d}": i for i in range(max(0, count))}
    raise ValueError(f"unknown session size {size!r}: one of {', '.join(SESSION_SIZES)}")


def json_record(stored: dict[bytes, bytes]) -> dict[str, Any]:
    """The session the app stored as a hash, as one dict: what `json.dumps` would store."""
    record: dict[str, Any] = {}
    for raw_name, raw_value in stored.items():
        name, value = raw_name.decode(), raw_value.decode()
        if name == OWNER_FIELD:
            record[name] = value
        elif name == CREATED_FIELD:
            record[name] = float(value)
        else:
            record[name] = json.loads(value)  # the app JSON-encodes each client field
    return record


def run_memory_cell(plan: CellPlan, stack: TargetSet, env: CellEnv) -> Measured:
    """MEMORY USAGE of sessions as the app stores them (hash) and as JSON strings, per size,
    and of the app's cache entries."""
    if stack.redis_url is None:
        raise CellError("the memory cell measures Redis: it runs on the redis backend only")
    client = redis.Redis.from_url(stack.redis_url, socket_timeout=5)
    copies = f"{stack.key_prefix}:memory"
    measured_keys: list[bytes] = []
    try:
        version, allocator = _server(client)
        config, max_entries, max_value = _hash_limits(client)
        target = stack.target_urls[0]
        headers = {"Authorization": f"Bearer sk-hermes-memory-{plan.id}"}
        prompts = [catalogue_prompt(rank) for rank in range(1, MEMORY_RECORDS + 1)]
        with httpx.Client(timeout=30, trust_env=False, headers=headers) as http:
            created = {
                size: [
                    _create_session(http, target, session_data(size, n, max_entries, max_value))
                    for n in range(MEMORY_RECORDS)
                ]
                for size in SESSION_SIZES
            }
            for response in ask_all(http, [target], prompts, shift=0):
                if response.status_code != 200:
                    raise CellError(f"caching a completion: HTTP {response.status_code}")
        keys = _keys_by_last_part(client, stack.key_prefix)
        sessions = {}
        for size, ids in created.items():
            found = [_the_key(keys, session_id, "session") for session_id in ids]
            measured_keys += found
            sessions[size] = _measure_sessions(client, found, f"{copies}:{size[0]}")
        entries = [_the_key(keys, request_hash(_chat(p)), "cache entry") for p in prompts]
        measured_keys += entries
        cache_entry = _measure_cache_entries(client, entries)
    except redis.ResponseError as exc:
        raise CellError(
            f"Redis refused a command the memory cell needs ({exc}): it reads CONFIG GET, "
            "MEMORY USAGE and OBJECT ENCODING, which some managed services turn off"
        ) from exc
    finally:
        for key in client.scan_iter(match=f"{copies}:*", count=500):
            client.delete(key)
        if measured_keys:
            client.delete(*measured_keys)
        client.close()
    return Measured(
        conditions={"records per size": MEMORY_RECORDS, "cache entries": MEMORY_RECORDS},
        figures=MemoryFigures(
            redis_version=version,
            allocator=allocator,
            limits_config=config,
            max_entries=max_entries,
            max_value_bytes=max_value,
            sessions=sessions,
            cache_entry=cache_entry,
        ),
    )


def _server(client: redis.Redis) -> tuple[str, str]:
    """Redis version and allocator: jemalloc rounds every allocation up to a size class."""
    server, memory = client.info("server"), client.info("memory")
    return str(server.get("redis_version", "?")), str(memory.get("mem_allocator", "?"))


def _hash_limits(client: redis.Redis) -> tuple[str, int, int]:
    """The names read, and the most fields and longest value a compact hash holds."""
    for family in ("listpack", "ziplist"):  # ziplist before Redis 7; 7 answers both
        found = client.config_get(f"hash-max-{family}-*")
        entries, value = (found.get(f"hash-max-{family}-{part}") for part in ("entries", "value"))
        if entries is not None and value is not None:
            return f"hash-max-{family}-*", int(entries), int(value)
    raise CellError(
        "CONFIG GET answered neither hash-max-listpack-* nor hash-max-ziplist-*: the memory "
        "cell cannot tell where a hash stops being compact"
    )


def _create_session(http: httpx.Client, target: str, data: dict[str, Any]) -> str:
    response = http.post(target + "/v1/sessions", json={"data": data})
    if response.status_code != 201:
        raise CellError(f"create a session: HTTP {response.status_code}: {response.text[:200]}")
    session_id: str = response.json()["id"]
    return session_id


def _keys_by_last_part(client: redis.Redis, prefix: str) -> dict[str, list[bytes]]:
    """Every key of the stack by its last `:` part: the app names its keys after a session id
    or a request hash, under a part of its own that this cell need not know."""
    keys: dict[str, list[bytes]] = {}
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        keys.setdefault(key.rsplit(b":", 1)[-1].decode(), []).append(key)
    return keys


def _the_key(keys: dict[str, list[bytes]], name: str, what: str) -> bytes:
    found = keys.get(name, [])
    if len(found) != 1:
        raise CellError(f"expected one Redis key of the app's {what} {name!r}, found {found}")
    return found[0]


def _measure_sessions(client: redis.Redis, keys: list[bytes], copies: str) -> MemoryRecord:
    """Each session copied as the app stored it (HSET) and as the guide's JSON string (SET),
    under keys of the same length, then MEMORY USAGE of both."""
    hash_bytes, json_bytes, json_lengths = [], [], []
    fields, longest, encodings = 0, 0, set()
    for n, key in enumerate(keys):
        stored = cast(dict[bytes, bytes], client.hgetall(key))
        text = json.dumps(json_record(stored))  # the guide: json.dumps(user_dict)
        hash_key, json_key = f"{copies}:h:{n:06d}", f"{copies}:j:{n:06d}"
        pipe = client.pipeline(transaction=False)
        pipe.hset(hash_key, mapping=stored)  # type: ignore[arg-type]
        pipe.set(json_key, text)
        pipe.memory_usage(hash_key, samples=0)
        pipe.memory_usage(json_key, samples=0)
        pipe.object("encoding", hash_key)
        pipe.object("encoding", json_key)
        _, _, hash_usage, json_usage, hash_encoding, json_encoding = pipe.execute()
        hash_bytes.append(int(hash_usage))
        json_bytes.append(int(json_usage))
        json_lengths.append(len(text.encode()))
        fields = max(fields, len(stored))
        longest = max([longest, *(len(value) for value in stored.values())])
        encodings.add((_text(hash_encoding), _text(json_encoding)))
    return MemoryRecord(
        records=len(keys),
        fields=fields,
        longest_value_bytes=longest,
        json_length_bytes=round(fmean(json_lengths), 1),
        hash_bytes=round(fmean(hash_bytes), 1),
        json_bytes=round(fmean(json_bytes), 1),
        hash_encoding="/".join(sorted({h for h, _ in encodings})),
        json_encoding="/".join(sorted({j for _, j in encodings})),
    )


def _measure_cache_entries(client: redis.Redis, keys: list[bytes]) -> CacheEntryBytes:
    usage, lengths, encodings = [], [], set()
    for key in keys:
        pipe = client.pipeline(transaction=False)
        pipe.memory_usage(key, samples=0)
        pipe.strlen(key)
        pipe.object("encoding", key)
        used, length, encoding = pipe.execute()
        usage.append(int(used))
        lengths.append(int(length))
        encodings.add(_text(encoding))
    return CacheEntryBytes(
        entries=len(keys),
        entry_bytes=round(fmean(usage), 1),
        value_bytes=round(fmean(lengths), 1),
        key_bytes=round(fmean(len(key) for key in keys), 1),
        encoding="/".join(sorted(encodings)),
    )


def _chat(prompt: str) -> dict[str, Any]:
    """The chat request ask_all sends for `prompt` (its hash is the app's cache key)."""
    return {"model": _MODEL, "messages": [{"role": "user", "content": prompt}]}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- pool (C13) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One chat request of a pool step as the client saw it."""

    status: str  # "200", "503"..., or the transport error's name
    elapsed_us: int
    hit: bool = False
    limited: bool = False  # the rate limiter's headers were there: it counted the request
    right_answer: bool = True
    redis_steps_us: int | None = None  # Server-Timing rate limit + cache read


def pool_in_flight(steps: tuple[int, ...], users: int) -> list[int]:
    """The sweep: the profile's steps and the run's own user count, in order."""
    return sorted({*steps, users})


def pool_step(
    in_flight: int,
    wall_s: float,
    answers: list[Answer],
    app_counters: dict[str, int],
    cpu_pct: dict[str, float],
    app_warnings: dict[str, int] | None = None,
    connection_wait: dict[str, Any] | None = None,
) -> PoolStep:
    """What one step measured, from its answers, the counts that changed in the target's
    /stats and its waits for a pooled connection (its `redis_pool_wait_us`): pure."""
    latency, redis_steps = new_histogram(), new_histogram()
    statuses: dict[str, int] = {}
    served = cache_open = limiter_open = wrong = 0
    for answer in answers:
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
        latency.record_value(clamp_us(answer.elapsed_us))
        if answer.redis_steps_us is not None:
            redis_steps.record_value(clamp_us(answer.redis_steps_us))
        if answer.status != "200":
            continue
        wrong += not answer.right_answer
        cache_open += not answer.hit
        limiter_open += not answer.limited
        served += answer.hit and answer.limited and answer.right_answer
    requests = len(answers)
    return PoolStep(
        in_flight=in_flight,
        requests=requests,
        wall_s=round(wall_s, 3),
        throughput_rps=round(requests / wall_s, 1) if wall_s > 0 else 0.0,
        served_by_redis=served,
        cache_failed_open=cache_open,
        limiter_failed_open=limiter_open,
        wrong_answers=wrong,
        statuses=dict(sorted(statuses.items())),
        lost_redis_share=round(1 - served / requests, 4) if requests else 0.0,
        latency=LatencySummary.model_validate(latency_summary(latency)),
        redis_steps=LatencySummary.model_validate(latency_summary(redis_steps)),
        connection_wait=(
            None if connection_wait is None else LatencySummary.model_validate(connection_wait)
        ),
        connection_refusals=(
            None if connection_wait is None else app_counters.get(REFUSALS_COUNTER, 0)
        ),
        app_counters=app_counters,
        app_warnings=app_warnings or {},
        cpu_pct=cpu_pct,
    )


def warnings_by_cause(log_text: str) -> dict[str, int]:
    """The app's warning and error lines by their last clause, most frequent first:
    "[WARNING] cache failed open: Redis ... failed: Too many connections" is a
    "Too many connections"."""
    causes: dict[str, int] = {}
    for line in log_text.splitlines():
        level, _, message = line.partition("] ")
        if level in ("[WARNING", "[ERROR"):
            cause = redact_text(message.rsplit(": ", 1)[-1].strip())[:_CAUSE_CHARS]
            causes[cause] = causes.get(cause, 0) + 1
    return dict(sorted(causes.items(), key=lambda item: -item[1]))


def counter_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """The counts of /stats that changed: whatever the app counts (breaker, errors...)."""
    changes = {}
    for name, value in after.items():
        old = before.get(name)
        if _count(value) and _count(old) and value != old:
            changes[name] = value - old
    return changes


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def run_pool_cell(plan: CellPlan, stack: TargetSet, env: CellEnv) -> Measured:
    """Chat requests that hit the cache, more and more in flight, through one target per
    pool mode with the guide's pool of 10; steps alternate between the modes."""
    if stack.redis_url is None or not isinstance(stack, Stack):
        raise CellError("the pool cell starts targets of its own on the redis backend's stack")
    p = env.profile
    in_flight = pool_in_flight(p.pool_in_flight, p.users)
    prefix = f"{stack.key_prefix}:pool"
    bodies = pool_bodies()
    steps: dict[str, list[PoolStep]] = {mode: [] for mode in POOL_MODES}
    with ExitStack() as started:
        targets = {}
        for mode in POOL_MODES:
            pool_stack = Stack(_pool_config(stack, mode, prefix, env, plan))
            started.callback(pool_stack.stop)
            try:
                pool_stack.start()
            except HermesBenchError as exc:
                raise CellError(f"the {mode} pool's target did not start: {exc}") from exc
            targets[mode] = pool_stack
        started.callback(_forget_keys, stack.redis_url, prefix)
        warm_pool_cache(targets[POOL_MODES[0]].target_urls[0], bodies)
        for mode, pool_stack in targets.items():
            open_pool(pool_stack.target_urls[0], bodies, GUIDE_MAX_CONNECTIONS, mode)
        for count in in_flight:
            requests = max(p.pool_requests, MIN_REQUESTS_PER_CONNECTION * count)
            for mode, pool_stack in targets.items():
                steps[mode].append(
                    measure_pool_step(pool_stack, stack, mode, count, requests, bodies)
                )
    return Measured(
        conditions={
            "REDIS_MAX_CONNECTIONS": GUIDE_MAX_CONNECTIONS,
            "REDIS_TIMEOUT": GUIDE_TIMEOUT_S,
            "in flight": in_flight,
            "requests per step": f"at least {p.pool_requests}, "
            f"{MIN_REQUESTS_PER_CONNECTION} per connection",
            "rate limit": _rate_limit(stack, env),
        },
        figures=PoolFigures(
            max_connections=GUIDE_MAX_CONNECTIONS,
            timeout_s=GUIDE_TIMEOUT_S,
            warm_prompts=len(bodies),
            modes=steps,
        ),
    )


def _rate_limit(stack: Stack, env: CellEnv) -> str:
    """The run's limit, or the profile's when the run turned it off: the limiter is a Redis
    call of every request, part of what the pool serves."""
    spec = stack.config.target_env.get("RATE_LIMIT", "")
    return spec if spec.strip().lower() not in ("", "none", "off") else env.profile.rate_limit


def _pool_config(stack: Stack, mode: str, prefix: str, env: CellEnv, plan: CellPlan) -> StackConfig:
    """One target on the stack's Redis with the guide's pool in `mode`; the run's other
    settings kept. Its own fake upstream: only the warm-up's misses reach it."""
    # The sweep needs its prompts cached and an API key per request: no run setting may stop
    # either (CACHE_TTL_S=0, a list of accepted keys).
    kept = {k: v for k, v in stack.config.target_env.items() if k not in _POOL_DROPS}
    target_env = {
        **kept,
        "REDIS_MAX_CONNECTIONS": str(GUIDE_MAX_CONNECTIONS),
        "REDIS_TIMEOUT": str(GUIDE_TIMEOUT_S),
        "REDIS_POOL_MODE": mode,
        "RATE_LIMIT": _rate_limit(stack, env),
        "HERMES_KEY_PREFIX": prefix,  # both modes share one cache, warmed once
    }
    return dataclasses.replace(
        stack.config,
        instances=1,
        redis_url=stack.redis_url,
        target_env=target_env,
        run_dir=env.out_dir / "cells" / plan.id / mode,
    )


def pool_bodies(count: int = POOL_WARM_PROMPTS) -> list[dict[str, Any]]:
    """The chat requests of the sweep: the catalogue's `count` first prompts."""
    return [_chat(catalogue_prompt(rank)) for rank in range(1, count + 1)]


def warm_pool_cache(target: str, bodies: list[dict[str, Any]]) -> None:
    """Cache every prompt of the sweep, at most 10 at a time (no pool can refuse that)."""
    headers = {"Authorization": "Bearer sk-hermes-pool-warm"}
    prompts = [body["messages"][0]["content"] for body in bodies]
    with httpx.Client(timeout=REQUEST_TIMEOUT_S, trust_env=False, headers=headers) as http:
        for response in ask_all(http, [target], prompts, shift=0):
            if response.status_code != 200:
                raise CellError(f"warming the pool cell's cache: HTTP {response.status_code}")


def open_pool(target: str, bodies: list[dict[str, Any]], connections: int, tag: str) -> None:
    """Cached prompts, `connections` at a time and unmeasured, so the target's pool has its
    connections open before the sweep: a step's waits are then waits, not connects (opening
    one on a busy target took ~3 ms in a quick run)."""
    requests = OPEN_ROUNDS * connections
    asyncio.run(_drive(target, connections, requests, bodies, key_tag=f"{tag}-open"))


def _forget_keys(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
    finally:
        client.close()


def measure_pool_step(
    pool_stack: Stack,
    stack: Stack,
    mode: str,
    in_flight: int,
    requests: int,
    bodies: list[dict[str, Any]],
) -> PoolStep:
    """One step through `pool_stack`'s target (its counters reset first): `requests` cached
    prompts of `bodies`, `in_flight` at a time; `stack` runs the Redis whose CPU is read."""
    target = pool_stack.target_urls[0]
    pids = {"load generator": os.getpid(), "target": pool_stack.process_pids().get("target-0")}
    pids["redis"] = stack.process_pids().get("redis")  # None: a Redis this run did not start
    cpu = _CpuClock({role: pid for role, pid in pids.items() if pid is not None})
    log_path = pool_stack.targets[0].log_path
    logged = log_path.stat().st_size
    # Zeroed so the waits' summary is this step's alone; counts are read as changes anyway.
    post_json(target + "/stats/reset")
    before = get_json(target + "/stats")
    cpu.start()
    started = time.perf_counter()
    answers = asyncio.run(
        _drive(target, in_flight, requests, bodies, key_tag=f"{mode[0]}{in_flight}")
    )
    wall_s = time.perf_counter() - started
    usage = cpu.stop(wall_s)
    after = get_json(target + "/stats")
    with open(log_path, "rb") as log_file:
        log_file.seek(logged)
        warnings = warnings_by_cause(log_file.read().decode("utf-8", errors="replace"))
    waits = after.get(WAIT_SUMMARY)
    changes = counter_changes(before, after)
    return pool_step(
        in_flight,
        wall_s,
        answers,
        changes,
        usage,
        warnings,
        waits if isinstance(waits, dict) else None,
    )


class _CpuClock:
    """CPU of a few processes and of the whole machine over one step, in % of one core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._processes = {role: psutil.Process(pid) for role, pid in pids.items()}
        self._before: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        times = psutil.cpu_times()
        # Busy: not idle, waiting or stolen; guest time is already counted in user time.
        spare = sum(getattr(times, name, 0.0) for name in ("idle", "iowait", "steal"))
        guest = sum(getattr(times, name, 0.0) for name in ("guest", "guest_nice"))
        readings = {"machine": sum(times) - spare - guest}
        for role, process in self._processes.items():
            try:
                used = process.cpu_times()
                readings[role] = used.user + used.system
            except psutil.Error:
                continue
        return readings

    def start(self) -> None:
        self._before = self._read()

    def stop(self, wall_s: float) -> dict[str, float]:
        after = self._read()
        return {
            role: round((after[role] - self._before[role]) / wall_s * 100, 1)
            for role in after
            if role in self._before and wall_s > 0
        }


async def _drive(
    target: str, in_flight: int, requests: int, bodies: list[dict[str, Any]], key_tag: str
) -> list[Answer]:
    """`requests` chat requests, `in_flight` at a time, each with an API key of its own (the
    limiter counts every one and refuses none)."""
    url = urlsplit(target)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    payloads = [json.dumps(body).encode() for body in bodies]
    expected = [answer_text(body) for body in bodies]
    connections = [LoopbackConnection(host, port, url.netloc) for _ in range(in_flight)]
    # Connected before the clock starts: a step measures requests, not TCP handshakes.
    await asyncio.gather(*(connection.open() for connection in connections))
    answers: list[Answer] = []
    numbers: Iterator[int] = iter(range(requests))

    async def keep_asking(connection: LoopbackConnection) -> None:
        for i in numbers:
            k = i % len(payloads)
            answers.append(await connection.ask(payloads[k], expected[k], f"{key_tag}-{i}"))

    try:
        await asyncio.wait_for(
            asyncio.gather(*(keep_asking(c) for c in connections)), STEP_TIMEOUT_S
        )
    except TimeoutError:
        raise CellError(
            f"{requests} requests at {in_flight} in flight did not finish in {STEP_TIMEOUT_S:g} s"
        ) from None
    finally:
        for connection in connections:
            connection.close()
    return answers


class LoopbackConnection:
    """One keep-alive HTTP/1.1 connection to a loopback target, on asyncio streams.

    Not httpx: its AsyncClient took a whole core here at ~400 requests/s and slowed as
    connections were added (65 requests/s at 100 in flight), so it, not the pool, was measured.
    The reference target always answers with a Content-Length.
    """

    def __init__(self, host: str, port: int, netloc: str) -> None:
        self._host, self._port, self._netloc = host, port, netloc
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self._streams = await asyncio.open_connection(self._host, self._port)
        return self._streams

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None

    async def ask(self, payload: bytes, expected: str, key: str) -> Answer:
        """POST one chat completion; a transport failure is an answer too, and reconnects."""
        started = time.perf_counter_ns()
        try:
            status, headers, body = await asyncio.wait_for(
                self.request("POST", "/v1/chat/completions", payload, f"sk-hermes-pool-{key}"),
                REQUEST_TIMEOUT_S,
            )
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError, KeyError) as exc:
            self.close()
            return Answer(type(exc).__name__, (time.perf_counter_ns() - started) // 1000)
        elapsed_us = (time.perf_counter_ns() - started) // 1000
        steps = parse_server_timing(headers.get("server-timing", "")) or {}
        timed = [steps[name] for name in LOOKUP_STEPS if name in steps]
        return Answer(
            status=str(status),
            elapsed_us=elapsed_us,
            hit=headers.get("x-cache") == "HIT",
            limited="x-ratelimit-limit" in headers,
            right_answer=status != 200 or answer_content(body) == expected,
            redis_steps_us=sum(timed) if timed else None,
        )

    async def request(
        self, method: str, path: str, payload: bytes, api_key: str
    ) -> tuple[int, dict[str, str], bytes]:
        """One request with a JSON body (may be empty): the answer's status, headers (names in
        lower case) and body; the driver's error when the connection fails."""
        reader, writer = self._streams or await self.open()
        writer.write(
            (
                f"{method} {path} HTTP/1.1\r\nHost: {self._netloc}\r\n"
                f"Authorization: Bearer {api_key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
            ).encode()
            + payload
        )
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers["content-length"]))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body


def answer_content(body: bytes) -> str | None:
    """The completion's text in a chat answer's body; None when it holds none."""
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None
