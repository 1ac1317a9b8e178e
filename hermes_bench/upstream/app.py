"""HTTP shell of the fake OpenAI upstream: validation, faults, latency, ground truth."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from hermes_bench.errors import ConfigError
from hermes_bench.latency_spec import LatencyModel, parse_latency
from hermes_bench.upstream.completion import completion_response
from hermes_bench.upstream.config import UpstreamConfig
from hermes_bench.upstream.faults import FaultConfig, draw_fault
from hermes_bench.upstream.ground_truth import GroundTruth
from hermes_bench.wire.chat import request_hash
from hermes_bench.wire.json_body import JsonBodyError, parse_json_body
from hermes_bench.wire.openai_error import error_body
from hermes_bench.wire.stream import DONE, completion_chunks, sse_event

_FAULT_ERRORS: dict[int, tuple[str, str, str | None]] = {
    429: (
        "Rate limit reached (fault injected by the fake upstream)",
        "requests",
        "rate_limit_exceeded",
    ),
    500: ("The server had an error processing your request (fault injected)", "server_error", None),
    503: ("The engine is currently overloaded (fault injected)", "server_error", None),
}
_MODELS_CREATED = 1_700_000_000
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_MAX_N = 128


class InvalidRequest(Exception):
    """A chat-completion body OpenAI would refuse with 400."""

    def __init__(self, message: str, param: str | None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def validate_chat_body(body: dict[str, Any]) -> None:
    """Raise InvalidRequest unless `body` has a model, messages and a usable n and stream."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' is required and must be a non-empty string", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' is required and must be a non-empty array", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise InvalidRequest(
                f"messages[{i}] must be an object whose 'role' is one of {sorted(_ROLES)}",
                f"messages.[{i}].role",
            )
        if not isinstance(message.get("content"), str | list | None):
            raise InvalidRequest(
                f"messages[{i}].content must be a string or an array of content parts",
                f"messages.[{i}].content",
            )
    n = body.get("n", 1)
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= _MAX_N):
        raise InvalidRequest(f"'n' must be an integer from 1 to {_MAX_N}, got {n!r}", "n")
    if not isinstance(body.get("stream", False), bool | None):
        raise InvalidRequest(f"'stream' must be a boolean, got {body['stream']!r}", "stream")
    if not isinstance(body.get("stream_options", {}), dict | None):
        raise InvalidRequest("'stream_options' must be an object", "stream_options")


@dataclass
class UpstreamState:
    """Everything that changes while the upstream runs; one per app, never a module global."""

    latency: LatencyModel
    faults: FaultConfig
    models: tuple[str, ...]
    rng: random.Random
    token_rate: float = 50.0
    truth: GroundTruth = field(default_factory=GroundTruth)
    next_id: int = 0

    def new_completion_id(self) -> str:
        self.next_id += 1
        return f"chatcmpl-hermesfake{self.next_id:012d}"


def openai_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A response in OpenAI's error shape: {"error": {message, type, param, code}}."""
    body = error_body(message, type_, param=param, code=code)
    return JSONResponse(body, status_code=status, headers=headers)


def _has_bearer_token(request: Request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


async def _json_object(request: Request) -> dict[str, Any] | JSONResponse:
    """The request body as a JSON object, or a 400 response saying why it is not one."""
    try:
        body = parse_json_body(await request.body())
    except JsonBodyError as exc:
        return openai_error(400, f"the request body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return openai_error(400, "the request body must be a JSON object")
    return body


def _answered(state: UpstreamState, completion: dict[str, Any], arrived: float) -> None:
    """Count one answered call: its time from arrival and the usage it bills."""
    state.truth.served((time.perf_counter() - arrived) * 1e6)
    usage = completion["usage"]
    state.truth.billed(completion["model"], usage["prompt_tokens"], usage["completion_tokens"])


async def _streamed(
    state: UpstreamState,
    completion: dict[str, Any],
    body: dict[str, Any],
    first_s: float,
    arrived: float,
) -> AsyncIterator[bytes]:
    """Server-sent events of `completion`: the first piece after the latency draw (time to
    first token), each next one 1 / token_rate later (time-scaled), then [DONE]."""
    options = body.get("stream_options") or {}
    chunks = completion_chunks(completion, include_usage=bool(options.get("include_usage")))
    gap_s = state.latency.time_scale / state.token_rate
    if first_s > 0:
        await asyncio.sleep(first_s)
    pieces = 0
    for chunk in chunks:
        content = chunk["choices"][0]["delta"].get("content") if chunk["choices"] else None
        if content:
            if pieces and gap_s > 0:
                await asyncio.sleep(gap_s)  # the pieces after the first come at the token rate
            if not pieces:
                state.truth.first_token((time.perf_counter() - arrived) * 1e6)
            pieces += 1
        yield sse_event(chunk)
    yield DONE
    _answered(state, completion, arrived)


def create_upstream_app(config: UpstreamConfig) -> Starlette:
    """Build the fake upstream's ASGI app; its state lives in the app, seeded by config.seed."""
    state = UpstreamState(
        latency=config.latency,
        faults=config.faults,
        models=config.models,
        rng=random.Random(config.seed),
        token_rate=config.token_rate,
    )

    async def chat_completions(request: Request) -> Response:
        if not _has_bearer_token(request):
            return openai_error(
                401,
                "no API key provided: send the header 'Authorization: Bearer <key>'",
                code="invalid_api_key",
            )
        body = await _json_object(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            validate_chat_body(body)
        except InvalidRequest as exc:
            return openai_error(400, exc.message, param=exc.param, code=exc.code)

        digest = request_hash(body)
        fault = draw_fault(state.faults, state.rng)
        if fault is not None and fault.kind == "error":
            state.truth.record(digest, fault.status, at_s=time.time())
            message, type_, code = _FAULT_ERRORS[fault.status]
            headers = None
            if fault.retry_after_s is not None:
                headers = {"Retry-After": str(fault.retry_after_s)}
            return openai_error(fault.status, message, type_=type_, code=code, headers=headers)

        # Counted and logged on arrival, so in-flight calls show in the ground truth too.
        state.truth.record(digest, 200, at_s=time.time())
        arrived = time.perf_counter()
        delay_s = state.latency.sample_s(state.rng)
        if fault is not None:
            delay_s += fault.stall_s
        completion = completion_response(
            body, completion_id=state.new_completion_id(), created=int(time.time())
        )
        if body.get("stream"):
            return StreamingResponse(
                _streamed(state, completion, body, delay_s, arrived),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        response = JSONResponse(completion)
        _answered(state, completion, arrived)
        return response

    async def list_models(request: Request) -> JSONResponse:
        data = [
            {"id": name, "object": "model", "created": _MODELS_CREATED, "owned_by": "hermes-fake"}
            for name in state.models
        ]
        return JSONResponse({"object": "list", "data": data})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "status": "ok",
                "latency": state.latency.describe(),
                "faults": state.faults.to_dict(),
            }
        )

    async def ground_truth(request: Request) -> JSONResponse:
        per_hash = _flag(request, "per_hash")
        return JSONResponse(state.truth.snapshot(per_hash=per_hash, log=_flag(request, "log")))

    async def reset_ground_truth(request: Request) -> JSONResponse:
        before = state.truth.snapshot(per_hash=False)
        state.truth.reset()
        return JSONResponse(before)

    async def get_faults(request: Request) -> JSONResponse:
        return JSONResponse(state.faults.to_dict())

    async def put_faults(request: Request) -> JSONResponse:
        changes = await _json_object(request)
        if isinstance(changes, JSONResponse):
            return changes
        try:
            state.faults = state.faults.updated(changes)
        except ConfigError as exc:
            return openai_error(400, str(exc))
        return JSONResponse(state.faults.to_dict())

    async def get_latency(request: Request) -> JSONResponse:
        return JSONResponse(_latency_dict(state.latency))

    async def put_latency(request: Request) -> JSONResponse:
        body = await _json_object(request)
        if isinstance(body, JSONResponse):
            return body
        spec = body.get("spec")
        time_scale = body.get("time_scale", state.latency.time_scale)
        if not isinstance(spec, str):
            return openai_error(
                400, 'latency needs "spec", e.g. {"spec": "fixed:20ms"}', param="spec"
            )
        if not isinstance(time_scale, int | float) or isinstance(time_scale, bool):
            return openai_error(400, f"time_scale must be a number, got {time_scale!r}")
        try:
            state.latency = parse_latency(spec, float(time_scale))
        except ConfigError as exc:
            return openai_error(400, str(exc), param="spec")
        return JSONResponse(_latency_dict(state.latency))

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return openai_error(status, f"{request.method} {request.url.path}: {exc}")

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/ground-truth", ground_truth, methods=["GET"]),
        Route("/ground-truth/reset", reset_ground_truth, methods=["POST"]),
        Route("/faults", get_faults, methods=["GET"]),
        Route("/faults", put_faults, methods=["PUT"]),
        Route("/latency", get_latency, methods=["GET"]),
        Route("/latency", put_latency, methods=["PUT"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: not_found})
    app.state.upstream = state
    return app


def _flag(request: Request, name: str) -> bool:
    """A yes/no query parameter: ?name=1 (or true, yes)."""
    return request.query_params.get(name, "0").lower() in {"1", "true", "yes"}


def _latency_dict(latency: LatencyModel) -> dict[str, Any]:
    return {
        "kind": latency.kind,
        "median_ms": latency.median_ms,
        "sigma": latency.sigma,
        "time_scale": latency.time_scale,
        "describe": latency.describe(),
    }
