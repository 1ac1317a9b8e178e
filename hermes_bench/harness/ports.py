"""TCP ports on the loopback interface: pick a free one, check one, wait for a listener."""

from __future__ import annotations

import errno
import socket
import time

from hermes_bench.errors import ConfigError


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on `host` that nothing listens on right now (the OS picks it)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ensure_port_free(host: str, port: int) -> None:
    """Raise ConfigError when `port` on `host` cannot be bound because something holds it."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        # Servers (redis, uvicorn) bind with SO_REUSEADDR, so a port in TIME_WAIT is free to them.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on {host} is already in use: stop what listens there "
                    f"(`ss -ltnp 'sport = :{port}'` shows it), or choose another port "
                    "(0 picks a free one)"
                ) from exc
            raise ConfigError(f"cannot bind port {port} on {host}: {exc.strerror}") from exc


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    """Poll until a TCP connect to host:port succeeds; False when `timeout_s` passes first."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
