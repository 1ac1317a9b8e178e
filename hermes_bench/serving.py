"""Serve an ASGI app with uvicorn on a socket we bind first, so "port in use" is a clear error."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
from typing import Any

import uvicorn

from hermes_bench.errors import HermesBenchError
from hermes_bench.gc_pauses import keep_out_of_gc
from hermes_bench.sockets import bind_tcp
from hermes_bench.wire.openai_error import error_body

log = logging.getLogger("hermes_bench")
# On SIGINT/SIGTERM requests in flight get this long to finish, then they are cut: a stalled
# upstream call (up to 300 s) must not keep a server from stopping.
GRACEFUL_SHUTDOWN_S = 5


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a listening TCP socket; port 0 picks a free one. Raises ConfigError when taken."""
    sock = bind_tcp(host, port)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def ready_line(name: str, host: str, port: int) -> str:
    """The line a server prints once it serves; the harness reads the port from it."""
    shown = f"[{host}]" if ":" in host else host
    return f"{name} listening on http://{shown}:{port}"


class _CutAtShutdown:
    """An ASGI app whose requests, cut when they outlive GRACEFUL_SHUTDOWN_S, end with a 503
    (or the end of a stream already begun) instead of a CancelledError traceback."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except asyncio.CancelledError:
            if started:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            body = json.dumps(error_body(_CUT, "server_shutting_down", code=503))
            headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body.encode()})


_CUT = (
    f"the server is stopping and this request outlived the {GRACEFUL_SHUTDOWN_S:g} s it had "
    "to finish: send it again to another instance"
)


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that prints the ready line only once the app's startup has run."""

    def __init__(self, config: uvicorn.Config, announcement: str) -> None:
        super().__init__(config)
        self._announcement = announcement

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        # A failed lifespan exits inside startup(), so a target about to fail never says ready.
        if self.started:
            keep_out_of_gc()
            print(self._announcement, flush=True)


def serve(app: Any, host: str, port: int, *, name: str, log_level: str = "warning") -> None:
    """Run `app` until SIGINT/SIGTERM; prints one ready line with the real URL to stdout."""
    sock = bind_socket(host, port)
    actual_port = sock.getsockname()[1]
    config = uvicorn.Config(
        _CutAtShutdown(app),
        log_level=log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
        backlog=2048,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        lifespan="on",
    )
    server = _AnnouncingServer(config, ready_line(name, host, actual_port))
    try:
        server.run(sockets=[sock])
    except SystemExit:
        if server.started:
            raise
        # uvicorn has already logged why; say it in the project's one-line form too.
        raise HermesBenchError(
            f"{name} did not start: its startup failed (the lines above say why)"
        ) from None
    finally:
        sock.close()
        sys.stdout.flush()
