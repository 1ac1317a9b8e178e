"""The outage cell: Redis slowed, filled, hung and killed under a steady load.

The cell starts a target of its own on a private Redis (never the run's: a fault there would
reach the other cells, and a Redis given by --redis-url is not ours to break), with the run's
settings and a REDIS_TIMEOUT short enough for a fault to outlast it. For each fault it sends
chat requests (cached prompts and new ones), session reads and writes at a fixed rate, and
/healthz every HEALTH_PERIOD_S, from before the fault until after Redis is back; what each
request met is in outage_figures.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import redis

from hermes_bench.app.redis_guard import HEALTH_TIMEOUT_S
from hermes_bench.app.server_timing import UPSTREAM, parse_server_timing
from hermes_bench.app.settings import TargetSettings
from hermes_bench.errors import HermesBenchError
from hermes_bench.harness.cells import (
    CellEnv,
    CellError,
    CellPlan,
    Measured,
    TargetSet,
    _intact,
    ask_all,
)
from hermes_bench.harness.failure_cells import (
    LoopbackConnection,
    _chat,
    _create_session,
    _rate_limit,
    answer_content,
    counter_changes,
    warnings_by_cause,
)
from hermes_bench.harness.load_watch import LOCUST, LoadWatch
from hermes_bench.harness.outage_figures import (
    CHAT,
    HEALTHZ,
    SESSION_READ,
    SESSION_WRITE,
    Sent,
    detected_s,
    healthy_again_s,
    outage_phases,
    recovered_s,
)
from hermes_bench.http_json import get_json
from hermes_bench.redaction import redact_text
from hermes_bench.results.model import OutageFault, OutageFigures
from hermes_bench.results.vocabulary import OUTAGE_FAULTS
from hermes_bench.scenarios.workload import catalogue_prompt
from hermes_bench.stack.embedded_redis import EmbeddedRedis
from hermes_bench.stack.stack import Stack, StackConfig
from hermes_bench.wire.answer import answer_text

# A request may wait on Redis this long, once (the app's REDIS_TIMEOUT), unless the run sets
# it: short, so that a fault of a few seconds outlasts it and the breaker's part shows.
OUTAGE_REDIS_TIMEOUT_S = 1.0
RATE_PER_CONNECTION = 25.0  # requests per second on each connection of the load
HEALTH_PERIOD_S = 0.1
WARM_PROMPTS = 30  # cached before each fault and asked during the load: hits
KEPT_PROMPTS = 20  # cached before each fault and not asked until after it: data kept or lost
SESSIONS = 20  # created before each fault: half only read (data kept or lost), half written
# The slowed Redis: every SLOW_PERIOD_S, CLIENT PAUSE for SLOW_PAUSE_MS, as a slow command
# (KEYS on a large keyspace, a big DEL, a fork) blocks every client; well within the timeout.
SLOW_PAUSE_MS = 100
SLOW_PERIOD_S = 0.2
REQUEST_TIMEOUT_S = 30.0  # far past REDIS_TIMEOUT: a slow answer is measured, not cut
SETTLE_TIMEOUT_S = 30.0  # for the app to serve from Redis again before the next fault
SESSION_KEY = "sk-hermes-outage-sessions"
# Of every 10 requests: 6 cached prompts, 2 new prompts (a miss and a cache write), a session
# read and a session write.
_MIX = (CHAT, CHAT, CHAT, CHAT, CHAT, CHAT, "new", "new", SESSION_READ, SESSION_WRITE)
_DROPS = frozenset({"CACHE_TTL_S", "HERMES_API_KEYS", "HERMES_ADMIN_KEY", "REDIS_URL"})


class Fault(Protocol):
    """Something done to Redis: `begin` returns at once, `end` once Redis answers again."""

    how: str

    def begin(self) -> None: ...

    def end(self) -> None: ...


class KilledRedis:
    """SIGKILL, then the same redis-server started again on its port: a crash and a restart."""

    def __init__(self, server: EmbeddedRedis) -> None:
        self.server = server
        self.how = "redis-server killed (SIGKILL) and started again on its port, no persistence"

    def begin(self) -> None:
        self.server.kill()

    def end(self) -> None:
        self.server.start()


class HungRedis:
    """SIGSTOP, then SIGCONT: connections are accepted and nothing answers, as on a frozen VM."""

    how = "redis-server stopped (SIGSTOP), then continued (SIGCONT)"

    def __init__(self, server: EmbeddedRedis) -> None:
        self.server = server
        self._stopped: int | None = None

    def begin(self) -> None:
        pid = self.server.pid
        if pid is None:
            raise CellError("the outage cell's redis-server is not running")
        os.kill(pid, signal.SIGSTOP)
        self._stopped = pid

    def end(self) -> None:
        if self._stopped is not None:
            with suppress(ProcessLookupError):
                os.kill(self._stopped, signal.SIGCONT)
            self._stopped = None


class SlowedRedis:
    """Every client paused for SLOW_PAUSE_MS of every SLOW_PERIOD_S (CLIENT PAUSE)."""

    how = (
        f"every client of Redis paused {SLOW_PAUSE_MS} ms in every "
        f"{SLOW_PERIOD_S * 1000:g} ms (CLIENT PAUSE), as a slow command blocks them"
    )

    def __init__(self, url: str) -> None:
        self.url = url
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self) -> None:
        self._done.clear()
        self._thread = threading.Thread(target=self._pause, name="slowed-redis", daemon=True)
        self._thread.start()

    def _pause(self) -> None:
        client = redis.Redis.from_url(self.url, socket_timeout=5)
        try:
            while not self._done.is_set():
                client.client_pause(SLOW_PAUSE_MS)
                self._done.wait(SLOW_PERIOD_S)
        finally:
            with suppress(redis.RedisError):
                client.client_unpause()
            client.close()

    def end(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


class FullRedis:
    """maxmemory below what Redis holds, with noeviction: every write refused (OOM)."""

    how = "maxmemory set below the memory in use, maxmemory-policy noeviction (writes refused)"

    def __init__(self, url: str) -> None:
        self.url = url
        self._saved: dict[str, str] = {}

    def begin(self) -> None:
        with redis.Redis.from_url(self.url, socket_timeout=5, decode_responses=True) as client:
            for name in ("maxmemory", "maxmemory-policy"):
                self._saved[name] = str(client.config_get(name)[name])
            client.config_set("maxmemory-policy", "noeviction")
            client.config_set("maxmemory", 1)

    def end(self) -> None:
        with redis.Redis.from_url(self.url, socket_timeout=5, decode_responses=True) as client:
            for name, value in self._saved.items():
                client.config_set(name, value)


@dataclass(frozen=True)
class LoadPlan:
    """The timing of one fault's load, in seconds."""

    before_s: float
    fault_s: float
    after_s: float
    in_flight: int
    rate_rps: float


def run_outage_cell(plan: CellPlan, stack: TargetSet, env: CellEnv) -> Measured:
    """Each fault of the profile in turn on a target and private Redis of the cell's own."""
    if not isinstance(stack, Stack):
        raise CellError("the outage cell starts a target of its own: not with --target")
    p = env.profile
    config = _outage_config(stack, env, plan)
    settings = TargetSettings.from_env(config.target_env)
    own = Stack(config)
    try:
        own.start()
    except HermesBenchError as exc:
        raise CellError(f"the outage cell's target or Redis did not start: {exc}") from exc
    in_flight = max(1, p.users)
    # A fault outlasts one REDIS_TIMEOUT; after it, the breaker's cool-down and one probe fit.
    timing = LoadPlan(
        before_s=p.outage_calm_s,
        fault_s=max(p.outage_fault_s, settings.redis_timeout_s + 1),
        after_s=max(
            p.outage_calm_s, settings.redis_breaker_cooldown_s + settings.redis_timeout_s + 1
        ),
        in_flight=in_flight,
        rate_rps=in_flight * RATE_PER_CONNECTION,
    )
    try:
        server = own.redis
        assert server is not None and own.redis_url is not None  # a redis stack, embedded
        faults: dict[str, Fault] = {
            "killed": KilledRedis(server),
            "hung": HungRedis(server),
            "slowed": SlowedRedis(own.redis_url),
            "full": FullRedis(own.redis_url),
        }
        # The load generator is this process (its load thread); the machine's other work
        # makes the timed checks inconclusive.
        watch = LoadWatch({**own.process_pids(), LOCUST: os.getpid()})
        measured = {}
        for name in (f for f in OUTAGE_FAULTS if f in p.outage_faults):
            measured[name] = _measure_fault(own, name, faults[name], timing, watch)
        version = server.version
    finally:
        own.stop()
    return Measured(
        conditions={
            "REDIS_TIMEOUT": settings.redis_timeout_s,
            "REDIS_BREAKER_FAILURES": settings.redis_breaker_failures,
            "REDIS_BREAKER_COOLDOWN_S": settings.redis_breaker_cooldown_s,
            "RATE_LIMIT_ON_REDIS_ERROR": settings.rate_limit_on_redis_error,
            "Redis": "a private redis-server of the cell's own, no persistence",
            "load": f"up to {timing.rate_rps:g} requests/s on {in_flight} connections (a slot a "
            "slow answer took is skipped): 60% cached prompts, 20% new prompts, 10% session "
            f"reads, 10% session writes; /healthz every {HEALTH_PERIOD_S:g} s",
            "phases": f"{timing.before_s:g} s before, {timing.fault_s:g} s of fault, "
            f"{timing.after_s:g} s after",
        },
        figures=OutageFigures(
            redis_version=version,
            redis_timeout_s=settings.redis_timeout_s,
            health_timeout_s=min(settings.redis_timeout_s, HEALTH_TIMEOUT_S),
            breaker_failures=settings.redis_breaker_failures,
            breaker_cooldown_s=settings.redis_breaker_cooldown_s,
            rate_limit_on_redis_error=settings.rate_limit_on_redis_error,
            in_flight=in_flight,
            rate_rps=timing.rate_rps,
            faults=measured,
        ),
        load=watch.summary(),
    )


def _outage_config(stack: Stack, env: CellEnv, plan: CellPlan) -> StackConfig:
    """One target on a private Redis with the run's settings; REDIS_TIMEOUT the run's or
    OUTAGE_REDIS_TIMEOUT_S; the cache on and every API key accepted (the load needs both)."""
    kept = {k: v for k, v in stack.config.target_env.items() if k not in _DROPS}
    kept.setdefault("REDIS_TIMEOUT", f"{OUTAGE_REDIS_TIMEOUT_S:g}")
    kept["RATE_LIMIT"] = _rate_limit(stack, env)  # the limiter is a Redis call of each chat
    return dataclasses.replace(
        stack.config,
        backend="redis",
        instances=1,
        redis_url=None,
        redis_maxmemory=None,
        redis_policy=None,
        target_env=kept,
        run_dir=env.out_dir / "cells" / plan.id,
    )


def _measure_fault(
    own: Stack, name: str, fault: Fault, timing: LoadPlan, watch: LoadWatch
) -> OutageFault:
    target = own.target_urls[0]
    _settle(target)
    tag = f"{name}-{time.time_ns():x}"
    warm = [_chat(catalogue_prompt(rank)) for rank in range(1, WARM_PROMPTS + 1)]
    kept = [_chat(f"[outage {tag}] kept {i}") for i in range(KEPT_PROMPTS)]
    # The sessions' key on the client; each chat request sends a key of its own (ask_all).
    with _client() as http:
        _ask(http, target, warm + kept)
        sessions = {
            _create_session(http, target, {"n": i, "fault": name}): {"n": i, "fault": name}
            for i in range(SESSIONS)
        }
    ids = list(sessions)
    read_only, written = ids[: SESSIONS // 2], ids[SESSIONS // 2 :]
    log_path = own.targets[0].log_path
    logged = log_path.stat().st_size
    before = get_json(target + "/stats")
    sent, bounds = _load(target, fault, timing, watch, (warm, read_only, written, tag))
    after = get_json(target + "/stats")
    _settle(target)
    with _client() as http:
        kept_hits = sum(cache == "HIT" for cache in _ask(http, target, kept))
        intact = _intact(http, [target], {i: sessions[i] for i in read_only}, offset=0)
        health = http.get(target + "/healthz").json()
    with open(log_path, "rb") as log_file:
        log_file.seek(logged)
        warnings = warnings_by_cause(log_file.read().decode("utf-8", errors="replace"))
    fault_start, fault_end, load_end = bounds
    # The cause only: the address of the cell's private Redis says nothing to a reader.
    last_error = str((health.get("redis") or {}).get("last_error") or "").rsplit(": ", 1)[-1]
    return OutageFault(
        how=fault.how,
        fault_s=round(fault_end - fault_start, 3),
        phases=outage_phases(sent, fault_start, fault_end, load_end),
        detected_s=detected_s(sent, fault_start, fault_end),
        healthy_again_s=healthy_again_s(sent, fault_end),
        recovered_s=recovered_s(sent, fault_end),
        sessions=len(read_only),
        sessions_intact=intact,
        cache_entries=len(kept),
        cache_entries_intact=kept_hits,
        app_counters=counter_changes(before, after),
        app_warnings=warnings,
        last_error=redact_text(last_error.lstrip("-"))[:200] or None,
    )


def _settle(target: str) -> None:
    """Wait until the target serves from Redis again (a fault before may have left its
    breaker open); CellError past SETTLE_TIMEOUT_S."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    with httpx.Client(timeout=5, trust_env=False) as http:
        while time.monotonic() < deadline:
            with suppress(httpx.HTTPError):
                if http.get(target + "/healthz").status_code == 200:
                    return
            time.sleep(0.1)
    raise CellError(f"the target did not report Redis healthy within {SETTLE_TIMEOUT_S:g} s")


def _load(
    target: str,
    fault: Fault,
    timing: LoadPlan,
    watch: LoadWatch,
    requests: tuple[list[dict[str, Any]], list[str], list[str], str],
) -> tuple[list[Sent], tuple[float, float, float]]:
    """The load from before the fault until after it; the fault's start, end and the load's
    end in seconds from its start.

    The load runs in a thread of its own, the fault in this one: a redis-server started again
    from a passing thread would get its parent-death signal when that thread ends, and the
    load's event loop never waits on what is done to Redis.
    """
    load = _Load(target, timing, *requests)
    failure: list[BaseException] = []

    def drive() -> None:
        try:
            asyncio.run(load.run())
        except BaseException as exc:  # reported in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=drive, name="outage-load", daemon=True)
    thread.start()
    try:
        _wait(timing.before_s, watch)
        fault_start = load.now()
        fault.begin()
        try:
            _wait(fault_start + timing.fault_s - load.now(), watch)
        finally:
            fault.end()  # Redis is never left broken
        fault_end = load.now()
        _wait(timing.after_s, watch)
    finally:
        load_end = load.now()
        load.stop.set()
        thread.join()
    if failure:
        raise CellError(f"the outage load failed: {failure[0]!r}") from failure[0]
    return load.sent, (fault_start, fault_end, load_end)


def _wait(seconds: float, watch: LoadWatch) -> None:
    """Sleep `seconds`, sampling the machine's load meanwhile."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        watch.maybe_sample()
        time.sleep(min(left, 0.1))


class _Load:
    """Requests at a fixed rate on `in_flight` connections, and /healthz every
    HEALTH_PERIOD_S on one more, until `stop` is set."""

    def __init__(
        self,
        target: str,
        timing: LoadPlan,
        warm: list[dict[str, Any]],
        read_only: list[str],
        written: list[str],
        tag: str,
    ) -> None:
        url = urlsplit(target)
        self.host, self.port, self.netloc = url.hostname or "127.0.0.1", url.port or 80, url.netloc
        self.timing, self.read_only, self.written, self.tag = timing, read_only, written, tag
        self.payloads = [json.dumps(body).encode() for body in warm]
        self.expected = [answer_text(body) for body in warm]
        self.sent: list[Sent] = []  # appended to by the load's one thread only
        self.stop = threading.Event()
        self._started = time.perf_counter()

    def now(self) -> float:
        """Seconds since the load began."""
        return time.perf_counter() - self._started

    async def run(self) -> None:
        tasks = [self._worker(i) for i in range(self.timing.in_flight)]
        await asyncio.gather(*tasks, self._health())

    async def _pause(self, seconds: float) -> None:
        # Short steps: `stop` is set from another thread.
        deadline = self.now() + seconds
        while not self.stop.is_set() and (left := deadline - self.now()) > 0:
            await asyncio.sleep(min(left, 0.05))

    async def _worker(self, first: int) -> None:
        timing = self.timing
        connection = LoopbackConnection(self.host, self.port, self.netloc)
        n = first
        try:
            while not self.stop.is_set():
                late = self.now() - n / timing.rate_rps
                if late > timing.in_flight / timing.rate_rps:
                    # Behind by a whole slot (a request waited on Redis): the next slot, not
                    # a burst of every missed one.
                    n += (int(late * timing.rate_rps) // timing.in_flight) * timing.in_flight
                    continue
                if late < 0:
                    await self._pause(-late)
                    continue
                await self._one(n, connection)
                n += timing.in_flight
        finally:
            connection.close()

    async def _one(self, n: int, connection: LoopbackConnection) -> None:
        kind = _MIX[n % len(_MIX)]
        key = f"sk-hermes-outage-{self.tag}-{n}"  # a key per request: the limiter refuses none
        chat = "/v1/chat/completions"
        if kind == CHAT:
            k = n % len(self.payloads)
            await self._send(connection, CHAT, "POST", chat, self.payloads[k], key,
                             self.expected[k])  # fmt: skip
        elif kind == "new":
            body = _chat(f"[outage {self.tag}] new {n}")
            await self._send(connection, CHAT, "POST", chat, json.dumps(body).encode(), key,
                             answer_text(body))  # fmt: skip
        elif kind == SESSION_READ:
            path = f"/v1/sessions/{self.read_only[n % len(self.read_only)]}"
            await self._send(connection, SESSION_READ, "GET", path, b"", SESSION_KEY)
        else:
            path = f"/v1/sessions/{self.written[n % len(self.written)]}"
            payload = json.dumps({"data": {"last": n}}).encode()
            await self._send(connection, SESSION_WRITE, "PATCH", path, payload, SESSION_KEY)

    async def _health(self) -> None:
        connection = LoopbackConnection(self.host, self.port, self.netloc)
        try:
            while not self.stop.is_set():
                due = self.now() + HEALTH_PERIOD_S
                await self._send(connection, HEALTHZ, "GET", "/healthz", b"", SESSION_KEY)
                await self._pause(due - self.now())
        finally:
            connection.close()

    async def _send(
        self,
        connection: LoopbackConnection,
        kind: str,
        method: str,
        path: str,
        payload: bytes,
        key: str,
        answer: str | None = None,
    ) -> None:
        at = self.now()
        begun = time.perf_counter_ns()
        try:
            status, headers, body = await asyncio.wait_for(
                connection.request(method, path, payload, key), REQUEST_TIMEOUT_S
            )
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError, KeyError) as exc:
            connection.close()
            elapsed = (time.perf_counter_ns() - begun) // 1000
            self.sent.append(Sent(kind, at, elapsed, type(exc).__name__, {}))
            return
        elapsed = (time.perf_counter_ns() - begun) // 1000
        right = answer is None or status != 200 or answer_content(body) == answer
        steps = parse_server_timing(headers.get("server-timing", "")) or {}
        self.sent.append(
            Sent(kind, at, elapsed, str(status), headers, right, steps.get(UPSTREAM, 0))
        )


def _client() -> httpx.Client:
    headers = {"Authorization": f"Bearer {SESSION_KEY}"}
    return httpx.Client(timeout=REQUEST_TIMEOUT_S, trust_env=False, headers=headers)


def _ask(http: httpx.Client, target: str, bodies: list[dict[str, Any]]) -> list[str]:
    """X-Cache of each chat request, a few at a time; CellError unless every one is a right
    200."""
    prompts = [body["messages"][0]["content"] for body in bodies]
    answers = ask_all(http, [target], prompts, shift=0)
    for answer in answers:
        if answer.status_code != 200:
            raise CellError(f"a chat request before or after a fault: HTTP {answer.status_code}")
    return [answer.headers.get("x-cache", "") for answer in answers]
