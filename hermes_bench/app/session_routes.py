"""HTTP endpoints for sessions: create, read, replace (PUT), merge (PATCH), delete.

Every answer with a session carries its `ETag` (the count of its writes). A PUT or PATCH with
`If-Match` writes only when the session is still at a version it names, else 412
`session_changed` with the current ETag: a client that read, changed and writes back loses no
other client's write. Without If-Match a write is unconditional, as before.

Sessions cannot fail open. Each operation is one guarded Redis call (redis_guard.py): while the
breaker is open it answers 503 at once. A client never sees where Redis is, only a generic
reason: 503 `session_store_unavailable` with Retry-After (the breaker's remaining cool-down, at
least 1 s) when Redis is unreachable or slow; 500 `session_store_error` when Redis refused the
command (the Redis error code, e.g. OOM); 500 `session_store_misconfigured` without
Retry-After for a bad password or TLS failure, which no retry will cure.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hermes_bench.app.redis_guard import RedisSkippedError, failure_answer
from hermes_bench.app.request_body import ApiError, SessionBody, read_json, validate
from hermes_bench.app.sessions import (
    MAX_SESSION_FIELDS,
    RESERVED_PREFIX,
    Conflict,
    Session,
    etag,
    if_match_versions,
    is_session_id,
)
from hermes_bench.errors import BackendUnavailableError

log = logging.getLogger("hermes_bench.app")


def add_session_routes(app: FastAPI) -> None:
    """Register /v1/sessions routes on `app` (state in app.state.target)."""

    @app.post("/v1/sessions")
    async def create(request: Request) -> Response:
        state = request.app.state.target
        owner = state.authenticate(request)
        data = await _read_data(request, state.settings.max_body_bytes)
        try:
            session = await state.guard.run(
                state.guard.budget(), lambda: state.backends.sessions.create(owner, data)
            )
        except BackendUnavailableError as exc:
            return _unavailable(state, exc)
        state.counters.sessions_created += 1
        return _session_answer(session, state, status=201)

    @app.get("/v1/sessions/{session_id}")
    async def read(request: Request, session_id: str) -> Response:
        state = request.app.state.target
        owner = state.authenticate(request)
        return await _answer(state, session_id, lambda s: s.get(owner, session_id))

    @app.put("/v1/sessions/{session_id}")
    async def replace(request: Request, session_id: str) -> Response:
        state = request.app.state.target
        owner = state.authenticate(request)
        data = await _read_data(request, state.settings.max_body_bytes)
        versions = if_match_versions(request.headers.get("if-match"))
        return await _answer(
            state, session_id, lambda s: s.replace(owner, session_id, data, versions)
        )

    @app.patch("/v1/sessions/{session_id}")
    async def merge(request: Request, session_id: str) -> Response:
        state = request.app.state.target
        owner = state.authenticate(request)
        data = await _read_data(request, state.settings.max_body_bytes)
        versions = if_match_versions(request.headers.get("if-match"))
        return await _answer(
            state, session_id, lambda s: s.merge(owner, session_id, data, versions)
        )

    @app.delete("/v1/sessions/{session_id}")
    async def delete(request: Request, session_id: str) -> Response:
        state = request.app.state.target
        owner = state.authenticate(request)
        if not is_session_id(session_id):
            return _not_found(session_id)
        try:
            deleted = await state.guard.run(
                state.guard.budget(), lambda: state.backends.sessions.delete(owner, session_id)
            )
        except BackendUnavailableError as exc:
            return _unavailable(state, exc)
        return Response(status_code=204) if deleted else _not_found(session_id)


async def _read_data(request: Request, max_bytes: int) -> dict[str, Any]:
    body: SessionBody = validate(SessionBody, await read_json(request, max_bytes))
    if len(body.data) > MAX_SESSION_FIELDS:
        raise ApiError(
            422,
            f"session data has {len(body.data)} fields; one request may send at most "
            f"{MAX_SESSION_FIELDS}: nest them in fewer fields or send them in several PATCHes",
        )
    reserved = sorted(k for k in body.data if k.startswith(RESERVED_PREFIX))
    if reserved:
        raise ApiError(422, f"session field names may not start with '__': {', '.join(reserved)}")
    return body.data


async def _answer(state: Any, session_id: str, operation: Any) -> Response:
    if not is_session_id(session_id):
        return _not_found(session_id)
    try:
        session = await state.guard.run(
            state.guard.budget(), lambda: operation(state.backends.sessions)
        )
    except BackendUnavailableError as exc:
        return _unavailable(state, exc)
    if session is None:
        return _not_found(session_id)
    if isinstance(session, Conflict):
        state.counters.session_conflicts += 1
        body = ApiError(
            412,
            f"session {session_id} is at version {session.version}, not the one If-Match "
            "names: read it again (its ETag) and apply the change to what it holds now",
            "session_changed",
        )
        return JSONResponse(body.body(), status_code=412, headers={"ETag": etag(session.version)})
    return _session_answer(session, state)


def _session_answer(session: Session, state: Any, status: int = 200) -> Response:
    view = {
        "id": session.id,
        "data": session.data,
        "created_at": session.created_at,
        "version": session.version,
        "ttl_s": state.settings.session_ttl_s,
        "backend": state.backends.name,
    }
    return JSONResponse(view, status_code=status, headers={"ETag": etag(session.version)})


def _not_found(session_id: str) -> Response:
    body = ApiError(404, f"no session {session_id[:40]!r} for this API key", "session_not_found")
    return JSONResponse(body.body(), status_code=404)


def _unavailable(state: Any, exc: BackendUnavailableError) -> Response:
    # The details (which Redis, what it said) go to the log and /stats, not to the client.
    if not isinstance(exc, RedisSkippedError):
        state.counters.session_errors += 1
        log.warning("session store failed: %s", exc)
    answer = failure_answer(exc, "session store", "session_store", retry_after=True)
    body = ApiError(answer.status, answer.message, answer.kind)
    headers = {} if answer.retry_after_s is None else {"Retry-After": str(answer.retry_after_s)}
    return JSONResponse(body.body(), status_code=answer.status, headers=headers)
