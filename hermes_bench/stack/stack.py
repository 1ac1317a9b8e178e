"""The system under test as processes: Redis (embedded or external), fake upstream, N targets."""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hermes_bench.errors import ConfigError, HermesBenchError, ProcessStartError
from hermes_bench.http_json import get_json
from hermes_bench.latency_spec import DEFAULT_LATENCY
from hermes_bench.redaction import redact_url
from hermes_bench.results.vocabulary import BACKENDS, PERSISTENCE_MODES, RDB_SAVE
from hermes_bench.stack.embedded_redis import EmbeddedRedis
from hermes_bench.stack.processes import ManagedProcess, ProcessGroup
from hermes_bench.stack.temp_dirs import owned_prefix, remove_orphans

log = logging.getLogger("hermes_bench")

# What a child may inherit from the harness: what Python needs to find and run the package,
# locale, temporary directory and certificates. Settings such as CACHE_TTL_S, RATE_LIMIT or
# HERMES_API_KEYS exported in the shell would silently change what a run measures; proxies
# would intercept the loopback calls to the upstream.
_INHERITED_ENV = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ",
        "TMPDIR", "TEMP", "TMP",
        "PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE", "PYTHONUSERBASE", "PYTHONSAFEPATH",
        "PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE", "PYTHONUTF8", "PYTHONIOENCODING",
        "VIRTUAL_ENV", "CONDA_PREFIX", "LD_LIBRARY_PATH",
        "SSL_CERT_FILE", "SSL_CERT_DIR",
    }
)  # fmt: skip
_INHERITED_PREFIXES = ("LC_",)
# The line hermes_bench.serving prints once a server answers; the port is the one it bound.
_READY_LINE = re.compile(r" listening on http://(?:\[[^\]\s]*\]|[^\s:/]+):(\d+)")
_EXTERNAL_REDIS_TIMEOUT_S = 3.0


def inherited_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of `environ` a child process of the stack keeps (see _INHERITED_ENV)."""
    return {
        name: value
        for name, value in environ.items()
        if name in _INHERITED_ENV or name.startswith(_INHERITED_PREFIXES)
    }


@dataclass(frozen=True)
class StackConfig:
    """What to start. `redis_url` None with backend 'redis' starts a private redis-server.

    Targets get only `target_env` on top of a minimal inherited environment; set
    HERMES_KEY_PREFIX there to choose the key prefix (default: one of the stack's own).
    """

    backend: str = "redis"
    instances: int = 1
    redis_url: str | None = None
    upstream_latency: str = DEFAULT_LATENCY
    time_scale: float = 1.0
    upstream_seed: int = 0
    target_env: Mapping[str, str] = field(default_factory=dict)
    redis_maxmemory: str | None = None
    redis_policy: str | None = None
    host: str = "127.0.0.1"
    run_dir: Path | None = None
    start_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend {self.backend!r} is unknown: use one of {BACKENDS}")
        if self.instances < 1:
            raise ConfigError(f"instances must be at least 1, got {self.instances}")


class Stack:
    """Starts and stops the processes of one StackConfig; a context manager.

    Logs go to `run_dir` (a temporary directory unless the config names one). It is removed
    by stop(), except after a failed start, whose error says where the logs are kept.
    """

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.redis: EmbeddedRedis | None = None
        self.upstream: ManagedProcess | None = None
        self.targets: list[ManagedProcess] = []
        self.target_urls: list[str] = []
        self.upstream_url = ""
        self.redis_url: str | None = None
        # A prefix of its own, so stacks sharing one Redis never see each other's keys.
        self.key_prefix = (
            config.target_env.get("HERMES_KEY_PREFIX") or f"hermes-bench:{secrets.token_hex(4)}"
        )
        self._target_ports: list[int] = []
        self._group = ProcessGroup()
        self._owned_run_dir: Path | None = None
        self._keep_run_dir = False
        if config.run_dir is not None:
            self.run_dir = config.run_dir
        else:
            remove_orphans()  # what an earlier, killed process left behind
            self.run_dir = self._owned_run_dir = Path(
                tempfile.mkdtemp(prefix=owned_prefix("stack"))
            )

    def __repr__(self) -> str:
        redis_url = redact_url(self.redis_url) if self.redis_url else None
        return (
            f"Stack(backend={self.config.backend}, redis={redis_url}, targets={self.target_urls})"
        )

    def start(self) -> Stack:
        """Start Redis (if embedded), the upstream and every target; stop all again on failure."""
        try:
            self._check_external_redis()
            self._start_redis()
            self._start_upstream()
            self._start_targets()
        except Exception as exc:
            kept = self._stop_after_failed_start()
            if kept is None:
                raise
            if isinstance(exc, HermesBenchError):
                kind = ConfigError if isinstance(exc, ConfigError) else ProcessStartError
                raise kind(f"{exc}\nThe stack's logs are kept in {kept}.") from exc
            log.error("the stack did not start; its logs are kept in %s", kept)
            raise
        except BaseException:  # Ctrl-C: the user gave up, leave nothing behind
            self.stop()
            raise
        return self

    def _stop_after_failed_start(self) -> Path | None:
        """Stop what started; keep the run dir if it holds logs. Returns it when kept."""
        try:
            self._group.stop_all()
        finally:
            run_dir = self._owned_run_dir
            if run_dir is not None and any(run_dir.iterdir()):
                self._keep_run_dir = True
            else:
                self._remove_run_dir()
        return self.run_dir if self._keep_run_dir else None

    def _check_external_redis(self) -> None:
        """PING a Redis given by URL before starting anything: targets would only log it."""
        url = self.config.redis_url
        if self.config.backend != "redis" or not url:
            return
        try:
            client = redis.Redis.from_url(
                url,
                socket_connect_timeout=_EXTERNAL_REDIS_TIMEOUT_S,
                socket_timeout=_EXTERNAL_REDIS_TIMEOUT_S,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as exc:
            raise ConfigError(
                f"Redis URL {redact_url(url)!r} is not valid ({exc}): write it like "
                "redis://host:port/db, rediss://host:port/db or unix:///path/redis.sock"
            ) from None
        try:
            with client:
                client.ping()
        except (redis.RedisError, OSError) as exc:
            raise HermesBenchError(
                f"the Redis at {redact_url(url)} did not answer PING ({exc}). Start it or fix "
                "the URL (host, port, password), or give no Redis URL and hermes-bench starts "
                "a private Redis."
            ) from None

    def _start_redis(self) -> None:
        config = self.config
        if config.backend != "redis":
            return
        if config.redis_url:
            self.redis_url = config.redis_url
            return
        self.redis = EmbeddedRedis(
            maxmemory=config.redis_maxmemory,
            maxmemory_policy=config.redis_policy,
            log_path=self.run_dir / "redis-server.log",
        )
        self._group.add(self.redis)
        self.redis.start()
        self.redis_url = self.redis.url

    def _start_upstream(self) -> None:
        argv = [
            *_hermes_bench_argv(),
            "upstream",
            "--host", self.config.host,
            # Port 0: the child binds a free port itself, so no other stack can take it first.
            "--port", "0",
            "--latency", self.config.upstream_latency,
            "--time-scale", str(self.config.time_scale),
            "--seed", str(self.config.upstream_seed),
        ]  # fmt: skip
        self.upstream = ManagedProcess(
            "fake upstream", argv, self.run_dir / "upstream.log", env=inherited_env(os.environ)
        )
        self._group.add(self.upstream).start()
        self.upstream_url = self._url(self._wait_listening(self.upstream))

    def _start_targets(self) -> None:
        env = self._target_env()
        for index in range(self.config.instances):
            name = f"target-{index}"
            process = ManagedProcess(
                name,
                self._target_argv(0),
                self.run_dir / f"{name}.log",
                env={**env, "HERMES_INSTANCE_ID": name},
            )
            self._group.add(process).start()
            self.targets.append(process)
        for process in self.targets:
            port = self._wait_listening(process)
            self._target_ports.append(port)
            self.target_urls.append(self._url(port))

    def _target_argv(self, port: int) -> list[str]:
        return [*_hermes_bench_argv(), "target", "--host", self.config.host, "--port", str(port)]

    def _target_env(self) -> dict[str, str]:
        env = inherited_env(os.environ)
        env.update(self.config.target_env)
        env["OPENAI_BASE_URL"] = self.upstream_url + "/v1"
        env["OPENAI_API_KEY"] = "sk-fake-upstream"
        env["HERMES_KEY_PREFIX"] = self.key_prefix
        if self.redis_url is not None:
            env["REDIS_URL"] = self.redis_url
        return env

    def _wait_listening(self, process: ManagedProcess) -> int:
        """The port `process` announces in its ready line, once it serves."""
        match = process.wait_for_log(_READY_LINE, self.config.start_timeout_s)
        return int(match.group(1))

    def _url(self, port: int) -> str:
        host = self.config.host
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def restart_targets(self) -> None:
        """Stop every target, then start each again on its port (what a deploy does)."""
        for process in self.targets:
            process.stop()
        for process, port in zip(self.targets, self._target_ports, strict=True):
            # The same port again: clients (and Locust users) know the target by its URL.
            process.argv = self._target_argv(port)
            process.start()
        for process, port in zip(self.targets, self._target_ports, strict=True):
            try:
                self._wait_listening(process)
            except ProcessStartError as exc:
                if "already in use" not in process.log_since_start():
                    raise
                raise ProcessStartError(
                    f"{process.name} cannot start again on port {port}, its port before the "
                    "restart: something else took it meanwhile (`ss -ltnp 'sport = "
                    f":{port}'` shows what). Free the port, or stop this stack and start a new "
                    f"one.\n{exc}"
                ) from exc

    def restart_redis(self, persistence: str) -> None:
        """Restart the private Redis as an operator would, with `persistence` (none, aof, rdb)
        set first; HermesBenchError when the Redis is not one this stack started."""
        if self.redis is None:
            raise HermesBenchError(
                "this stack's Redis was not started by it (--redis-url): it cannot restart it"
            )
        if persistence not in PERSISTENCE_MODES:
            raise ConfigError(f"persistence {persistence!r}: use one of {PERSISTENCE_MODES}")
        self.redis.set_persistence(
            appendonly=persistence == "aof", rdb_save=RDB_SAVE if persistence == "rdb" else None
        )
        self.redis.restart()

    def process_pids(self) -> dict[str, int]:
        """The pid of each process this stack started and runs now: redis, upstream, target-N."""
        started: list[tuple[str, int | None]] = [
            ("redis", self.redis.pid if self.redis is not None else None),
            ("upstream", self.upstream.pid if self.upstream and self.upstream.running else None),
            *((p.name, p.pid if p.running else None) for p in self.targets),
        ]
        return {name: pid for name, pid in started if pid is not None}

    def ground_truth(self, per_hash: bool = False) -> dict[str, Any]:
        """The fake upstream's counters: every OpenAI call that really arrived."""
        suffix = "?per_hash=1" if per_hash else ""
        return get_json(self.upstream_url + "/ground-truth" + suffix)

    def target_stats(self) -> list[dict[str, Any]]:
        """Each target's /stats counters, in instance order."""
        return [get_json(url + "/stats") for url in self.target_urls]

    def stop(self) -> None:
        """Stop everything this stack started, last started first. Idempotent."""
        try:
            self._group.stop_all()
        finally:
            # Even when a second Ctrl-C interrupts the stopping above.
            if not self._keep_run_dir:
                self._remove_run_dir()

    def _remove_run_dir(self) -> None:
        if self._owned_run_dir is not None:
            shutil.rmtree(self._owned_run_dir, ignore_errors=True)
            self._owned_run_dir = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _hermes_bench_argv() -> list[str]:
    # The same interpreter as the harness, so a virtualenv or an editable install just works.
    return [sys.executable, "-m", "hermes_bench"]
