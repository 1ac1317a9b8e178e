"""Free TCP ports on the loopback interface, for the processes the stack starts."""

from __future__ import annotations

import socket

from hermes_bench.sockets import address_family, bind_tcp


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on `host` that nothing listens on right now (the OS picks it)."""
    with socket.socket(address_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ensure_port_free(host: str, port: int) -> None:
    """Raise ConfigError when `port` on `host` cannot be bound because something holds it."""
    bind_tcp(host, port).close()
