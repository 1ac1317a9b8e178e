"""Listening TCP sockets bound with a clear error: shared by the servers and the stack."""

from __future__ import annotations

import errno
import ipaddress
import socket

from hermes_bench.errors import ConfigError

MAX_PORT = 65535


def address_family(host: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 literal, else AF_INET."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bind_tcp(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (0 picks a free port); ConfigError when it cannot be."""
    if not 0 <= port <= MAX_PORT:
        raise ConfigError(
            f"port {port} is not a TCP port: use 0 to {MAX_PORT} (0 picks a free one)"
        )
    sock = socket.socket(address_family(host), socket.SOCK_STREAM)
    # Servers (redis, uvicorn) bind with SO_REUSEADDR, so a port in TIME_WAIT is free to them.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use: stop what listens there "
                f"(`ss -ltnp 'sport = :{port}'` shows it), or choose another port "
                "(0 picks a free one)"
            ) from exc
        raise ConfigError(f"cannot bind port {port} on {host}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # a host with characters no address can have
        sock.close()
        raise ConfigError(f"cannot bind port {port} on {host}: {exc}") from exc
    return sock


def is_loopback(host: str) -> bool:
    """True for an address of this machine's loopback interface (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False
