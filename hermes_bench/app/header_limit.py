"""A bound on the size of a request's headers, before any route reads them."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from hermes_bench.app.request_body import ApiError

# All of a request's header lines together, past which it gets 431: uvicorn's httptools
# parser itself sets no bound.
MAX_HEADER_BYTES = 16_384


class HeaderLimit:
    """Answers 431 to a request whose header lines together pass MAX_HEADER_BYTES."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = sum(len(name) + len(value) for name, value in scope["headers"])
            if size > MAX_HEADER_BYTES:
                error = ApiError(
                    431,
                    f"request headers of {size} bytes exceed the {MAX_HEADER_BYTES}-byte limit",
                    kind="request_header_fields_too_large",
                )
                await JSONResponse(error.body(), status_code=431)(scope, receive, send)
                return
        await self.app(scope, receive, send)
