"""The cells of a claims run: each measures one thing on a running stack.

Kinds and what they measure (results.model names the figures):
- cache: a Locust run of CacheUser; the metrics document carries latencies and ground truth.
- ratelimit: a Locust run of RateLimitUser; admitted requests per window in its counters.
  Both Locust cells also sample the CPU of every process of the run and the machine's other
  load while they run (CellLoad, see load_watch).
- restart: sessions and cached answers, then every target restarted (RestartFigures).
- probe: direct Redis round trips per command (ProbeFigures).
- fallback: a target started without REDIS_URL, and its log line (FallbackFigures).
The memory (C11) and pool (C13) cells are in failure_cells, the eviction cell (C10) in
eviction_cell; the restart cell also restarts the embedded Redis itself per persistence.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import redis
from pydantic import ValidationError

from hermes_bench.app.backends import FALLBACK_LOG_LINE
from hermes_bench.errors import HermesBenchError
from hermes_bench.harness.load_watch import LOCUST, LoadWatch
from hermes_bench.harness.profiles import Profile
from hermes_bench.histograms import latency_summary, new_histogram
from hermes_bench.redaction import redact_text
from hermes_bench.results.model import (
    CellFigures,
    CellKind,
    CellLoad,
    FallbackFigures,
    LatencySummary,
    LocustFigures,
    MetricsDocument,
    NoFigures,
    ProbeFigures,
    RedisRestartFigures,
    RestartFigures,
    TargetStats,
)
from hermes_bench.results.vocabulary import PERSISTENCE_MODES
from hermes_bench.scenarios.workload import catalogue_prompt
from hermes_bench.stack.processes import ManagedProcess
from hermes_bench.wire.answer import answer_text

log = logging.getLogger("hermes_bench")
LOCUSTFILE = Path(__file__).resolve().parent.parent / "locustfile.py"
REDIS_INFO_FIELDS = (
    "keyspace_hits", "keyspace_misses", "evicted_keys", "expired_keys",
    "total_commands_processed", "rejected_connections",
)  # fmt: skip
RESTART_SESSIONS = 40
ASK_CONCURRENCY = 10


class CellError(HermesBenchError):
    """A cell could not measure what it set out to; the run records it and goes on."""


class TargetSet(Protocol):
    """What a cell needs of the system under test: a Stack we started, or ExternalTargets."""

    target_urls: list[str]
    upstream_url: str
    redis_url: str | None
    key_prefix: str

    def target_stats(self) -> list[dict[str, Any]]: ...  # GET /stats of each target

    def process_pids(self) -> dict[str, int]: ...  # the processes it started, by role

    def restart_targets(self) -> None: ...

    def restart_redis(self, persistence: str) -> None: ...  # HermesBenchError if not ours


@dataclass(frozen=True)
class CellPlan:
    """One cell to run: its id, kind and the stack shape it needs."""

    id: str
    kind: CellKind
    backend: str | None
    instances: int
    repeat: int = 1


@dataclass(frozen=True)
class Measured:
    """What one cell measured, before the run gives it an id and times."""

    conditions: dict[str, Any] = field(default_factory=dict)
    metrics: MetricsDocument | None = None
    targets: list[TargetStats] = field(default_factory=list)
    redis_info: dict[str, int] | None = None
    figures: CellFigures = field(default_factory=NoFigures)
    load: CellLoad | None = None


@dataclass(frozen=True)
class CellEnv:
    """What every cell of one run shares."""

    profile: Profile
    seed: int
    out_dir: Path
    # Called with live figures while a Locust cell runs: (requests, hits, misses).
    on_progress: Callable[[int, int, int], None] | None = None
    hit_header: str | None = None  # how external targets mark a hit; None: X-Cache


def run_cache_cell(plan: CellPlan, stack: TargetSet, env: CellEnv) -> Measured:
    """CacheUser on `plan.instances` targets; same workload and seed on every backend."""
    p = env.profile
    args = ["--hermes-requests", str(p.cache_requests), "CacheUser"]
    if p.stream:
        args = ["--hermes-stream", "on", *args]
    if not stack.key_prefix:
        # A cache we cannot empty (an external target): prompts of this cell's own start cold.
        args += ["--hermes-prompt-prefix", f"[{env.out_dir.name}/{plan.id}] "]
    return locust_cell(plan, stack, env, p.users, args, timeout_s=300)


def run_ratelimit_cell(plan: CellPlan, stack: TargetSet, env: CellEnv) -> Measured:
    """RateLimitUser bursts on every target for a fixed time."""
    p = env.profile
    users = max(2, min(4, p.users // 2))
    args = ["-t", f"{int(p.ratelimit_seconds)}s", "RateLimitUser"]
    return locust_cell(plan, stack, env, users, args, timeout_s=p.ratelimit_seconds + 120)


def locust_cell(
    plan: CellPlan,
    stack: TargetSet,
    env: CellEnv,
    users: int,
    args: list[str],
    timeout_s: float,
    locustfile: Path = LOCUSTFILE,
) -> Measured:
    cell_dir = env.out_dir / "cells" / plan.id
    cell_dir.mkdir(parents=True, exist_ok=True)
    p = env.profile
    targets = stack.target_urls[: plan.instances]
    metrics_path = cell_dir / "metrics.json"
    command = [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary",
        "-u", str(users), "-r", str(users), "--stop-timeout", "10",
        "--csv", str(cell_dir / "locust"), "--html", str(cell_dir / "locust.html"),
        "--hermes-targets", ",".join(targets), "--hermes-upstream-url", stack.upstream_url,
        "--hermes-metrics-json", str(metrics_path), "--hermes-seed", str(env.seed),
        "--hermes-zipf-alpha", str(p.zipf_alpha),
        "--hermes-catalogue-size", str(p.catalogue_size),
        "--hermes-one-off-share", str(p.one_off_share),
        *args,
    ]  # fmt: skip
    if env.hit_header:
        command += ["--hermes-hit-header", env.hit_header]
    if "-t" not in args:
        command += ["-t", f"{int(timeout_s)}s"]  # a bound in time as well as in count
    info_before = redis_info(stack)
    process = ManagedProcess("locust", command, cell_dir / "locust.log").start()
    load_watch = _load_watch(stack, process)
    try:
        _watch(process, stack, env, timeout_s + 30, load_watch)
    finally:
        exit_code = process.stop(timeout_s=15)  # a finished Locust: only reaps it
    if not metrics_path.exists():
        raise CellError(f"Locust wrote no metrics (exit {exit_code}):\n{process.log_tail(15)}")
    try:
        metrics = MetricsDocument.model_validate_json(metrics_path.read_bytes())
    except ValidationError as exc:
        raise CellError(f"Locust wrote metrics of the wrong shape ({metrics_path}): {exc}") from exc
    load = load_watch.summary(metrics.run.started_at, metrics.run.ended_at)
    return Measured(
        conditions={"users": users, "targets": len(targets), "locust_args": args},
        metrics=metrics,
        targets=_target_stats(stack, plan.instances),
        redis_info=_delta(info_before, redis_info(stack)),
        figures=LocustFigures(locust_exit_code=exit_code),
        load=load,
    )


def _load_watch(stack: TargetSet, locust: ManagedProcess) -> LoadWatch:
    """A watch on every process the stack started and on Locust; what is not ours is unknown."""
    roles = stack.process_pids()
    if locust.pid is not None:
        roles[LOCUST] = locust.pid
    unknown = []
    if stack.redis_url is not None and "redis" not in roles:
        unknown.append("redis (not started by this run)")
    if stack.upstream_url and "upstream" not in roles:
        unknown.append("upstream (not started by this run)")
    if not any(role.startswith("target") for role in roles):
        unknown.append("targets (not started by this run)")
    return LoadWatch(roles, unknown)


def _target_stats(stack: TargetSet, instances: int) -> list[TargetStats]:
    """Each target's /stats as the reference app reports them; none when a target's differ.

    They are the targets' own account, beside the ground truth: another gateway's /stats may
    say something else entirely, and that costs the cell nothing.
    """
    try:
        return [TargetStats.model_validate(s) for s in stack.target_stats()[:instances]]
    except ValidationError as exc:
        log.warning("the targets' /stats are not the reference app's, left out: %s", exc)
        return []


def _total(stats: list[dict[str, Any]], name: str) -> int:
    """The sum of one counter over the targets' /stats; what is not a count counts 0."""
    return sum(value for s in stats if isinstance(value := s.get(name), int))


def _watch(
    process: ManagedProcess,
    stack: TargetSet,
    env: CellEnv,
    timeout_s: float,
    load_watch: LoadWatch,
) -> None:
    """Wait for Locust, reporting live figures from the targets' counters twice a second
    and sampling the load about once a second."""
    deadline = time.monotonic() + timeout_s
    while process.running:
        load_watch.maybe_sample()
        if time.monotonic() > deadline:
            raise CellError(f"Locust did not finish within {timeout_s:.0f} s")
        if env.on_progress is not None:
            try:
                stats = stack.target_stats()
            except HermesBenchError:
                stats = []
            env.on_progress(
                *(
                    sum(int(s.get(name) or 0) for s in stats)
                    for name in ("requests", "hits", "misses")
                )
            )
        time.sleep(0.5)


def run_restart_cell(plan: CellPlan, stack: TargetSet, env: CellEnv) -> Measured:
    """Sessions and cached answers, then a restart of every target: what survives?"""
    targets = stack.target_urls[: plan.instances]
    key = f"sk-hermes-restart-{secrets.token_hex(6)}"
    headers = {"Authorization": f"Bearer {key}"}
    warm = min(50, env.profile.catalogue_size)
    prompts = [catalogue_prompt(rank) for rank in range(1, warm + 1)]
    with httpx.Client(timeout=30, trust_env=False, headers=headers) as client:
        sessions = {}
        for i in range(RESTART_SESSIONS):
            data = {"n": i, "note": f"session {i}"}
            response = client.post(targets[i % len(targets)] + "/v1/sessions", json={"data": data})
            _expect(response, 201, "create a session")
            sessions[response.json()["id"]] = data
        # Read back through another instance, as a non-sticky balancer would.
        intact_before = _intact(client, targets, sessions, offset=1)
        for response in ask_all(client, targets, prompts, shift=0):
            _expect(response, 200, "warm the cache")
        stack.restart_targets()
        intact_after = _intact(client, targets, sessions, offset=0)
        hits = 0
        for response in ask_all(client, targets, prompts, shift=1):
            _expect(response, 200, "ask again after the restart")
            hits += response.headers.get("x-cache") == "HIT"
        redis_restart: dict[str, RedisRestartFigures] = {}
        skipped = None
        if plan.backend == "redis":
            try:
                for persistence in PERSISTENCE_MODES:
                    redis_restart[persistence] = _across_redis_restart(
                        client, targets, stack, persistence, warm
                    )
            except HermesBenchError as exc:
                skipped = str(exc)
            finally:
                _restore_no_persistence(stack, redis_restart)
    return Measured(
        conditions={"targets": len(targets), "sessions": RESTART_SESSIONS},
        figures=RestartFigures(
            sessions=RESTART_SESSIONS,
            intact_before=intact_before,
            intact_after=intact_after,
            warm_prompts=warm,
            hits_after_restart=hits,
            hit_rate_after_restart=hits / warm,
            redis_restart=redis_restart,
            redis_restart_skipped=skipped,
        ),
    )


def _across_redis_restart(
    client: httpx.Client, targets: list[str], stack: TargetSet, persistence: str, warm: int
) -> RedisRestartFigures:
    """Fresh sessions and prompts, Redis restarted with `persistence`: what is still there."""
    sessions = {}
    for i in range(RESTART_SESSIONS):
        data = {"n": i, "persistence": persistence}
        response = client.post(targets[i % len(targets)] + "/v1/sessions", json={"data": data})
        _expect(response, 201, f"create a session before a Redis restart ({persistence})")
        sessions[response.json()["id"]] = data
    prompts = [f"[redis restart, {persistence}] {catalogue_prompt(r)}" for r in range(1, warm + 1)]
    for response in ask_all(client, targets, prompts, shift=0):
        _expect(response, 200, "warm the cache")
    stack.restart_redis(persistence)
    errors, intact = 0, 0
    for i, (session_id, data) in enumerate(sessions.items()):
        response = client.get(f"{targets[i % len(targets)]}/v1/sessions/{session_id}")
        errors += response.status_code >= 500
        intact += response.status_code == 200 and response.json().get("data") == data
    hits = 0
    for response in ask_all(client, targets, prompts, shift=1):
        errors += response.status_code >= 500
        hits += response.status_code == 200 and response.headers.get("x-cache") == "HIT"
    return RedisRestartFigures(
        sessions=len(sessions),
        intact_after=intact,
        warm_prompts=warm,
        hits_after_restart=hits,
        errors_after_restart=errors,
    )


def _restore_no_persistence(stack: TargetSet, measured: dict[str, RedisRestartFigures]) -> None:
    """The later cells run on a Redis that persists nothing, as before this cell."""
    if measured and list(measured)[-1] != "none":
        try:
            stack.restart_redis("none")
        except HermesBenchError as exc:
            raise CellError(f"could not put Redis back without persistence: {exc}") from exc


def ask_all(
    client: httpx.Client, targets: list[str], prompts: list[str], shift: int
) -> list[httpx.Response]:
    """Ask every prompt, a few at a time (misses wait for the upstream), spread over targets;
    CellError on a wrong answer."""
    with ThreadPoolExecutor(max_workers=ASK_CONCURRENCY) as pool:
        return list(
            pool.map(
                lambda i: _ask(client, targets[(i + shift) % len(targets)], prompts[i]),
                range(len(prompts)),
            )
        )


def _ask(client: httpx.Client, target: str, prompt: str) -> httpx.Response:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}
    # A key per request: this cell measures the cache, not the rate limiter.
    headers = {"Authorization": f"Bearer sk-hermes-restart-{secrets.token_hex(6)}"}
    response = client.post(target + "/v1/chat/completions", json=body, headers=headers)
    if response.status_code == 200:
        content = response.json()["choices"][0]["message"]["content"]
        if content != answer_text(body):
            raise CellError(f"wrong answer for {prompt!r}: {content[:60]!r}")
    return response


def _intact(
    client: httpx.Client, targets: list[str], sessions: dict[str, dict[str, Any]], offset: int
) -> int:
    intact = 0
    for i, (session_id, data) in enumerate(sessions.items()):
        response = client.get(f"{targets[(i + offset) % len(targets)]}/v1/sessions/{session_id}")
        intact += response.status_code == 200 and response.json().get("data") == data
    return intact


def _expect(response: httpx.Response, status: int, step: str) -> None:
    if response.status_code != status:
        raise CellError(f"{step}: HTTP {response.status_code}: {response.text[:200]}")


def run_probe_cell(plan: CellPlan, stack: TargetSet, env: CellEnv) -> Measured:
    """Direct Redis round trips (redis-py, sequential), the baseline for the app's own figures."""
    if stack.redis_url is None:
        raise CellError("the probe needs a Redis")
    client = redis.Redis.from_url(stack.redis_url, socket_timeout=5)
    prefix = f"{stack.key_prefix}:probe"
    ops: dict[str, Callable[[int], Any]] = {
        "SET": lambda i: client.set(f"{prefix}:s:{i % 100}", b"x" * 400, ex=60),
        "GET": lambda i: client.get(f"{prefix}:s:{i % 100}"),
        "HSET": lambda i: client.hset(f"{prefix}:h:{i % 100}", mapping={"a": "1", "b": "2"}),
        "INCR": lambda i: client.incr(f"{prefix}:c"),
    }
    direct: dict[str, LatencySummary] = {}
    try:
        for name, op in ops.items():
            for i in range(100):  # warm-up, excluded
                op(i)
            hist = new_histogram()
            for i in range(env.profile.probe_ops):
                started = time.perf_counter_ns()
                op(i)
                hist.record_value(max(1, (time.perf_counter_ns() - started) // 1000))
            direct[name] = LatencySummary.model_validate(latency_summary(hist))
    finally:
        # The probe's keys are ours to remove, even on someone else's Redis.
        for key in client.scan_iter(match=f"{prefix}:*", count=500):
            client.delete(key)
        client.close()
    return Measured(
        conditions={"ops_each": env.profile.probe_ops}, figures=ProbeFigures(direct=direct)
    )


def run_fallback_cell(plan: CellPlan, env: CellEnv) -> Measured:
    """Start a target without REDIS_URL and look for the guide's log line."""
    cell_dir = env.out_dir / "cells" / plan.id
    log_path = cell_dir / "target.log"
    environ = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    argv = [sys.executable, "-m", "hermes_bench", "target", "--port", "0"]
    process = ManagedProcess("fallback target", argv, log_path, env=environ)
    process.start()
    try:
        process.wait_ready(lambda: "listening on" in log_path.read_text(errors="replace"), 30)
    finally:
        process.stop()
    log = log_path.read_text(errors="replace")
    expected = f"[INFO] {FALLBACK_LOG_LINE}"
    return Measured(
        conditions={"REDIS_URL": "unset"},
        figures=FallbackFigures(
            line_logged=expected in log,
            expected_line=expected,
            log=redact_text("\n".join(log.splitlines()[:10])),
        ),
    )


def redis_info(stack: TargetSet) -> dict[str, int] | None:
    """The INFO counters the report uses, or None without Redis."""
    if stack.redis_url is None:
        return None
    client = redis.Redis.from_url(stack.redis_url, socket_timeout=5)
    try:
        info = client.info()
    except redis.RedisError:
        return None
    finally:
        client.close()
    return {name: int(info.get(name, 0)) for name in REDIS_INFO_FIELDS}


def _delta(before: dict[str, int] | None, after: dict[str, int] | None) -> dict[str, int] | None:
    if before is None or after is None:
        return None
    return {name: after[name] - before[name] for name in after}


def reset_state(stack: TargetSet) -> None:
    """Start a cell from nothing: empty caches, limits and sessions on every backend."""
    if stack.redis_url is not None:
        client = redis.Redis.from_url(stack.redis_url, socket_timeout=5)
        try:
            # Only this stack's keys: an external Redis may hold anyone's data.
            keys = list(client.scan_iter(match=f"{stack.key_prefix}:*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])
        finally:
            client.close()
    else:
        stack.restart_targets()  # in-memory caches, limiter counts and sessions go with it
