"""The system under test as processes: Redis (embedded or external), fake upstream, N targets."""

from __future__ import annotations

import logging
import os
import secrets
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from hermes_bench.harness.embedded_redis import EmbeddedRedis
from hermes_bench.harness.ports import free_port
from hermes_bench.harness.processes import ManagedProcess, ProcessGroup, http_ready
from hermes_bench.http_json import get_json, post_json
from hermes_bench.redaction import redact_url
from hermes_bench.upstream.latency import DEFAULT_LATENCY

log = logging.getLogger("hermes_bench")

BACKENDS = ("redis", "memory")
# Variables a target must not inherit from the harness's environment: the stack sets them.
_TARGET_OWNED_ENV = ("REDIS_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY", "HERMES_INSTANCE_ID")


@dataclass(frozen=True)
class StackConfig:
    """What to start. `redis_url` None with backend 'redis' starts a private redis-server."""

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
        from hermes_bench.errors import ConfigError

        if self.backend not in BACKENDS:
            raise ConfigError(f"backend {self.backend!r} is unknown: use one of {BACKENDS}")
        if self.instances < 1:
            raise ConfigError(f"instances must be at least 1, got {self.instances}")


class Stack:
    """Starts and stops the processes of one StackConfig; a context manager."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.redis: EmbeddedRedis | None = None
        self.upstream: ManagedProcess | None = None
        self.targets: list[ManagedProcess] = []
        self.target_urls: list[str] = []
        self.upstream_url = ""
        self.redis_url: str | None = None
        # A prefix of its own, so stacks sharing one Redis never see each other's keys.
        self.key_prefix = f"hermes-bench:{secrets.token_hex(4)}"
        self._group = ProcessGroup()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.run_dir = config.run_dir or Path(self._make_tmp())

    def _make_tmp(self) -> str:
        self._tmp = tempfile.TemporaryDirectory(prefix="hermes-bench-stack-")
        return self._tmp.name

    def __repr__(self) -> str:
        redis = redact_url(self.redis_url) if self.redis_url else None
        return f"Stack(backend={self.config.backend}, redis={redis}, targets={self.target_urls})"

    def start(self) -> Stack:
        """Start Redis (if embedded), the upstream and every target; stop all again on failure."""
        try:
            self._start_redis()
            self._start_upstream()
            self._start_targets()
        except BaseException:
            self.stop()
            raise
        return self

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
        port = free_port(self.config.host)
        self.upstream_url = f"http://{self.config.host}:{port}"
        argv = [
            *_hermes_bench_argv(),
            "upstream",
            "--host", self.config.host,
            "--port", str(port),
            "--latency", self.config.upstream_latency,
            "--time-scale", str(self.config.time_scale),
            "--seed", str(self.config.upstream_seed),
        ]  # fmt: skip
        self.upstream = ManagedProcess("fake upstream", argv, self.run_dir / "upstream.log")
        self._group.add(self.upstream).start()
        self.upstream.wait_ready(
            http_ready(self.upstream_url + "/healthz"), self.config.start_timeout_s
        )

    def _start_targets(self) -> None:
        for index in range(self.config.instances):
            port = free_port(self.config.host)
            url = f"http://{self.config.host}:{port}"
            argv = [
                *_hermes_bench_argv(),
                "target",
                "--host",
                self.config.host,
                "--port",
                str(port),
            ]
            name = f"target-{index}"
            process = ManagedProcess(
                name, argv, self.run_dir / f"{name}.log", env=self._target_env(name)
            )
            self._group.add(process).start()
            self.targets.append(process)
            self.target_urls.append(url)
        for process, url in zip(self.targets, self.target_urls, strict=True):
            process.wait_ready(http_ready(url + "/healthz"), self.config.start_timeout_s)

    def _target_env(self, instance_id: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _TARGET_OWNED_ENV}
        env.update(self.config.target_env)
        env["OPENAI_BASE_URL"] = self.upstream_url + "/v1"
        env["OPENAI_API_KEY"] = "sk-fake-upstream"
        env["HERMES_INSTANCE_ID"] = instance_id
        env.setdefault("HERMES_KEY_PREFIX", self.key_prefix)
        if self.redis_url is not None:
            env["REDIS_URL"] = self.redis_url
        return env

    def restart_targets(self) -> None:
        """Stop every target, then start each again on its port (what a deploy does)."""
        for process in self.targets:
            process.stop()
        for process in self.targets:
            process.start()
        for process, url in zip(self.targets, self.target_urls, strict=True):
            process.wait_ready(http_ready(url + "/healthz"), self.config.start_timeout_s)

    def ground_truth(self, per_hash: bool = False) -> dict[str, Any]:
        """The fake upstream's counters: every OpenAI call that really arrived."""
        suffix = "?per_hash=1" if per_hash else ""
        return get_json(self.upstream_url + "/ground-truth" + suffix)

    def reset_ground_truth(self) -> dict[str, Any]:
        """Zero the upstream's counters; returns them as they were."""
        return post_json(self.upstream_url + "/ground-truth/reset")

    def target_stats(self) -> list[dict[str, Any]]:
        """Each target's /stats counters, in instance order."""
        return [get_json(url + "/stats") for url in self.target_urls]

    def stop(self) -> None:
        """Stop everything this stack started, last started first. Idempotent."""
        self._group.stop_all()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

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
