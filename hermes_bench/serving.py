"""Serve an ASGI app with uvicorn on a socket we bind first, so "port in use" is a clear error."""

from __future__ import annotations

import errno
import logging
import socket
import sys
from typing import Any

import uvicorn

from hermes_bench.errors import ConfigError

log = logging.getLogger("hermes_bench")


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a listening TCP socket; port 0 picks a free one. Raises ConfigError when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use: stop what listens there, "
                "or choose another port with --port (0 picks a free one)"
            ) from exc
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(app: Any, host: str, port: int, *, name: str, log_level: str = "warning") -> None:
    """Run `app` until SIGINT/SIGTERM; prints one ready line with the real URL to stdout."""
    sock = bind_socket(host, port)
    actual_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
        backlog=2048,
        timeout_keep_alive=30,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    print(f"{name} listening on http://{host}:{actual_port}", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        sys.stdout.flush()
