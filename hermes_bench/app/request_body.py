"""Reading and validating request bodies: size limit, JSON, and the shapes the target accepts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError
from starlette.requests import Request

from hermes_bench.wire.api_key import api_key_problem
from hermes_bench.wire.json_body import JsonBodyError, parse_json_body
from hermes_bench.wire.openai_error import error_body


class ApiError(Exception):
    """An error answer of the app (401, 404, 413, 422, 429, 5xx...): HTTP status and kind."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind

    def body(self) -> dict[str, Any]:
        """The OpenAI error envelope; its code is the HTTP status, as the app has always sent."""
        return error_body(str(self), self.kind, code=self.status)


class ChatMessage(BaseModel):
    """One message of a chat request; extra fields (name, tool calls) pass through."""

    model_config = ConfigDict(extra="allow")
    role: str = Field(min_length=1)
    content: str | list[Any] | None = None


class ChatRequest(BaseModel):
    """The fields the target needs; every other field passes to the upstream untouched."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    # Strict: "yes" is not a yes; the fake upstream (and OpenAI) refuse it as well.
    stream: StrictBool | None = None


class SessionBody(BaseModel):
    """Body of session create/replace/merge: a JSON object of client fields."""

    model_config = ConfigDict(extra="forbid")
    data: dict[str, Any] = Field(default_factory=dict)


async def read_json(request: Request, max_bytes: int) -> Any:
    """The body parsed as strict JSON; 413 past `max_bytes` (without reading it all), 400 if bad."""
    return parse_json(await read_body(request, max_bytes))


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body's bytes; 413 past `max_bytes`, told by Content-Length before reading any."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        if int(declared) > max_bytes:
            raise ApiError(
                413, f"request body of {declared} bytes exceeds the {max_bytes}-byte limit"
            )
        return await request.body()
    return await _read_limited(request, max_bytes)


def parse_json(raw: bytes) -> Any:
    """`raw` parsed as strict JSON (None when empty); 400 when it is not JSON."""
    if not raw:
        return None
    try:
        return parse_json_body(raw)
    except JsonBodyError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None


async def _read_limited(request: Request, max_bytes: int) -> bytes:
    """A body of unknown length (chunked), read only as far as the limit allows."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, f"request body exceeds the {max_bytes}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def validate(model: type[BaseModel], payload: Any) -> Any:
    """`payload` checked against `model`; 422 listing each wrong field."""
    if payload is None:
        payload = {}
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ApiError(422, f"invalid request: {problems}") from None


def bearer_key(request: Request) -> str:
    """The API key from `Authorization: Bearer …`; 401 when absent, malformed, longer than
    wire.api_key.MAX_API_KEY_CHARS or holding anything but printable ASCII."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise ApiError(
            401,
            "missing API key: send 'Authorization: Bearer <key>'",
            kind="invalid_api_key",
        )
    problem = api_key_problem(key)
    if problem is not None:
        raise ApiError(401, f"not an API key: {problem}", kind="invalid_api_key")
    return key
