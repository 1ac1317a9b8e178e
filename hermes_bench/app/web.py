"""The reference HERMES app: OpenAI-compatible chat completions behind auth, limit and cache.

Request path: API key (401) -> rate limit per key (429) -> body (413/400/422) -> response cache
-> upstream through the official OpenAI SDK. Upstream errors are passed on and never cached.
With the fixed window on Redis the limit and the cache read are one round trip
(redis_fixed_window.py), so the body is read first (its hash is the cache key); a bad body is
still counted and a refusal still wins over its 4xx, as when the limit came first.
`"stream": true` answers with server-sent events (streaming.py): a HIT replays the cached answer,
a MISS passes the upstream's stream on and caches the whole answer once it ended.

When Redis fails (see redis_guard.py for the budget and the breaker), an answer says so:
- the limiter fails open by default (RATE_LIMIT_ON_REDIS_ERROR=open: admitted, counted in
  `rate_limit_fail_open`, `X-RateLimit-Status: fail-open`, no X-RateLimit-* figures it does not
  have); `closed` answers 503 `rate_limiter_unavailable` (`X-RateLimit-Status: fail-closed`)
  without Retry-After, since it is not a rate limit the client could wait out, whether Redis
  is away, hung or full (see `fail_closed_answer`);
- a failed cache read answers from the upstream as `X-Cache: BYPASS`; a failed cache write
  keeps `X-Cache: MISS` (the answer is a miss, and the harness reads only HIT/MISS/BYPASS
  there) and adds `X-Cache-Write: failed` (Redis failed or refused, `cache_write_errors`) or
  `skipped` (not tried: the breaker is open or this request's Redis budget is gone);
- `/healthz` is 200 `ok`, or 503 `degraded` when Redis does not answer PING within
  min(REDIS_TIMEOUT, 0.5 s) or the breaker is open. Where Redis is and its errors' text (in
  /healthz and /stats `redis_last_error`) go only to callers on this machine or with
  HERMES_ADMIN_KEY; others get the state without them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any

import openai
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from hermes_bench import __version__
from hermes_bench.app.backends import Backends, backends_from_settings
from hermes_bench.app.counters import Counters
from hermes_bench.app.header_limit import HeaderLimit
from hermes_bench.app.rate_limit import RateDecision, now_s
from hermes_bench.app.redis_fixed_window import RedisFixedWindowLimiter
from hermes_bench.app.redis_guard import (
    HEALTH_TIMEOUT_S,
    RedisGuard,
    RedisSkippedError,
    RequestBudget,
    fail_closed_answer,
)
from hermes_bench.app.request_body import (
    ApiError,
    ChatRequest,
    bearer_key,
    parse_json,
    read_body,
    validate,
)
from hermes_bench.app.server_timing import (
    CACHE_READ,
    CACHE_WRITE,
    RATELIMIT,
    RATELIMIT_CACHE_READ,
    TOTAL,
    UPSTREAM,
    timing_entry,
)
from hermes_bench.app.server_timing import HEADER as SERVER_TIMING
from hermes_bench.app.session_routes import add_session_routes
from hermes_bench.app.settings import TargetSettings
from hermes_bench.app.streaming import EVENT_STREAM, pass_on, replay
from hermes_bench.errors import BackendUnavailableError, causes
from hermes_bench.redaction import redact_text, redact_url
from hermes_bench.sockets import is_loopback
from hermes_bench.wire.chat import request_hash
from hermes_bench.wire.openai_error import error_body

log = logging.getLogger("hermes_bench.app")

JSON = "application/json"
# The upstream's chat completions, under the SDK's base URL (OPENAI_BASE_URL).
_UPSTREAM_CHAT_PATH = "/chat/completions"
_NO_CACHE = ("no-cache", "no-store")
_ROUTE_ERROR_KINDS = {404: "not_found", 405: "method_not_allowed"}
# Set only when Redis failed: absent means the limiter decided, or the cache write landed.
RATE_LIMIT_STATUS = "X-RateLimit-Status"
CACHE_WRITE_STATUS = "X-Cache-Write"


@dataclass
class TargetState:
    """What the request handlers share: settings, stores, counters and the upstream client."""

    settings: TargetSettings
    backends: Backends
    counters: Counters
    upstream: openai.AsyncOpenAI
    guard: RedisGuard

    def authenticate(self, request: Request) -> str:
        """The caller's owner id; 401 for a missing key or one outside HERMES_API_KEYS."""
        key = bearer_key(request)
        if self.settings.api_keys and key not in self.settings.api_keys:
            raise ApiError(401, "unknown API key", kind="invalid_api_key")
        return owner_id(key)


def owner_id(api_key: str) -> str:
    """A stable, non-reversible id for an API key: keys themselves are never stored, nor
    kept in a cache (a hash of at most MAX_API_KEY_CHARS costs about a microsecond)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:24]


def create_app(settings: TargetSettings) -> FastAPI:
    """A FastAPI app serving one target instance with `settings`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        counters = Counters()
        backends = backends_from_settings(settings, counters.op_timings, counters.pool_waits)
        upstream = openai.AsyncOpenAI(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key.get_secret_value(),
            timeout=settings.openai_timeout_s,
            max_retries=settings.openai_max_retries,
            # The SDK's aiohttp transport: ~0.1-0.15 ms less per call than its default
            # httpx one, measured on a MISS (bench/test_app_paths.py). One client per instance.
            http_client=openai.DefaultAioHttpClient(),
        )
        guard = RedisGuard.from_settings(settings, backends.redis, counters)
        app.state.target = TargetState(settings, backends, counters, upstream, guard)
        await _warn_if_redis_down(guard)
        try:
            yield
        finally:
            await upstream.close()
            await backends.close()

    app = FastAPI(title="HERMES reference target", version=__version__, lifespan=lifespan)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        request.app.state.target.counters.bad_requests += 1
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def _no_route(request: Request, exc: HTTPException) -> Response:
        # Unknown paths (404) and wrong methods (405, with Allow) in the OpenAI error envelope.
        request.app.state.target.counters.bad_requests += 1
        kind = _ROUTE_ERROR_KINDS.get(exc.status_code, "invalid_request_error")
        body = ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", kind)
        return JSONResponse(body.body(), status_code=exc.status_code, headers=exc.headers)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await _chat(request.app.state.target, request)

    @app.get("/healthz")
    async def healthz(request: Request) -> Response:
        state: TargetState = request.app.state.target
        healthy, report = await _health(state)
        if not _sees_details(request, state.settings):
            report = _without_redis_details(report)
        return JSONResponse(report, status_code=200 if healthy else 503)

    @app.get("/stats")
    async def stats(request: Request) -> dict[str, Any]:
        state: TargetState = request.app.state.target
        counts = state.counters.snapshot()
        if counts.get("redis_last_error") and not _sees_details(request, state.settings):
            counts["redis_last_error"] = _DETAILS_HIDDEN
        return {"instance": settings.instance_id, "backend": state.backends.name, **counts}

    @app.post("/stats/reset")
    async def stats_reset(request: Request) -> dict[str, Any]:
        state: TargetState = request.app.state.target
        _check_admin(request, state.settings)
        before = state.counters.snapshot()
        state.counters.reset()
        return before

    @app.post("/_bare")
    async def bare(request: Request) -> Response:
        # The floor of this app and server: reads the body, touches nothing, answers.
        await request.body()
        return Response(b'{"ok":true}', media_type=JSON)

    add_session_routes(app)
    app.add_middleware(HeaderLimit)
    return app


def _is_admin(request: Request, settings: TargetSettings) -> bool:
    """The caller sent HERMES_ADMIN_KEY, or, with none set, calls from loopback."""
    admin_key = settings.admin_key
    if admin_key is None:
        return is_loopback(request.client.host if request.client else "")
    sent = request.headers.get("authorization", "").partition(" ")[2].strip()
    return hmac.compare_digest(sent.encode(), admin_key.get_secret_value().encode())


def _sees_details(request: Request, settings: TargetSettings) -> bool:
    """Where Redis is and its errors' text: for callers on this machine, or with the admin key
    (reading them changes nothing, unlike a reset, so loopback is enough with a key set too)."""
    return is_loopback(request.client.host if request.client else "") or _is_admin(
        request, settings
    )


def _check_admin(request: Request, settings: TargetSettings) -> None:
    """403 unless _is_admin."""
    if _is_admin(request, settings):
        return
    if settings.admin_key is None:
        raise ApiError(
            403,
            "only callers on this machine may reset the counters: set HERMES_ADMIN_KEY on the "
            "target and send it as 'Authorization: Bearer <key>'",
            kind="permission_denied",
        )
    raise ApiError(
        403,
        "resetting the counters needs HERMES_ADMIN_KEY as 'Authorization: Bearer <key>'",
        kind="permission_denied",
    )


# Where Redis is (host, port, database) and its errors' text are for operators: a caller that
# is neither on this machine nor sends HERMES_ADMIN_KEY gets the state without them.
_DETAILS_HIDDEN = "hidden: call from this machine or send HERMES_ADMIN_KEY to see it"
_PUBLIC_REDIS_FIELDS = ("reachable", "ping_us", "breaker")


def _without_redis_details(report: dict[str, Any]) -> dict[str, Any]:
    """A /healthz report without Redis's address and error texts."""
    redis_report = report.get("redis")
    if not redis_report:
        return report
    public = {k: v for k, v in redis_report.items() if k in _PUBLIC_REDIS_FIELDS}
    return {**report, "redis": {**public, "details": _DETAILS_HIDDEN}}


async def _chat(state: TargetState, request: Request) -> Response:
    # Each step is timed for the Server-Timing header, cheaply (a few perf_counter_ns calls and
    # short f-strings): a HIT spends well under a millisecond in the app.
    started = perf_counter_ns()
    counters = state.counters
    counters.requests += 1
    owner = state.authenticate(request)
    headers = {"X-Instance": state.settings.instance_id}
    budget = state.guard.budget()
    use_cache = state.settings.cache_ttl_s > 0 and not _client_refuses_cache(request)
    # With a limiter that can read the cache in its own round trip, the body comes first: the
    # cache key is in it. Otherwise the limit comes first, so a refused body is never read.
    one_trip = state.backends.limit_and_read if use_cache else None
    timing = ""
    if one_trip is None and state.backends.limiter is not None:
        timing, refusal = await _limit(state, budget, owner, headers, started)
        if refusal is not None:
            return refusal
    try:
        raw = await read_body(request, state.settings.max_body_bytes)
        payload = parse_json(raw)
        validated: ChatRequest = validate(ChatRequest, payload)
    except ApiError:
        if one_trip is not None:
            # Counted, and refused first, as when the limit came before the body.
            _, refusal = await _limit(state, budget, owner, headers, started)
            if refusal is not None:
                return refusal
        raise
    streaming = bool(validated.stream)
    options = payload.get("stream_options")
    include_usage = isinstance(options, dict) and bool(options.get("include_usage"))

    key = request_hash(payload)
    cache_state = "MISS" if use_cache else "BYPASS"
    cached: bytes | None = None
    if one_trip is not None:
        timing, refusal, cached, cache_state = await _limit_and_read(
            state, one_trip, budget, owner, key, headers, started
        )
        if refusal is not None:
            return refusal
    elif use_cache:
        entry, cached, cache_state = await _read_cache(state, budget, key)
        timing += entry
    if cached is not None:
        counters.hits += 1
        headers["X-Cache"] = "HIT"
        headers[SERVER_TIMING] = timing + timing_entry(TOTAL, perf_counter_ns() - started)
        if streaming:
            return StreamingResponse(
                replay(cached, include_usage), media_type=EVENT_STREAM, headers=headers
            )
        return Response(cached, media_type=JSON, headers=headers)
    headers["X-Cache"] = cache_state
    if streaming:
        return await _stream(state, budget, raw, key, cache_state, headers, timing, started)

    before = perf_counter_ns()
    status, content, upstream_headers = await _call_upstream(state, raw)
    timing += timing_entry(UPSTREAM, perf_counter_ns() - before) + ", "
    # Counted once the call has really gone out, so /stats matches the upstream's ground truth.
    if cache_state == "MISS":
        counters.misses += 1
    else:
        counters.bypasses += 1
    headers.update(upstream_headers)
    if status == 200 and cache_state == "MISS":
        before = perf_counter_ns()
        await _write_cache(state, budget, key, content, headers)
        timing += timing_entry(CACHE_WRITE, perf_counter_ns() - before) + ", "
    headers[SERVER_TIMING] = timing + timing_entry(TOTAL, perf_counter_ns() - started)
    return Response(content, status_code=status, media_type=JSON, headers=headers)


async def _limit(
    state: TargetState, budget: RequestBudget, owner: str, headers: dict[str, str], started: int
) -> tuple[str, Response | None]:
    """The limiter's check alone: its Server-Timing entry, and the answer when the request is
    refused (429, or 503 when the limiter failed closed)."""
    limiter = state.backends.limiter
    assert limiter is not None
    before = perf_counter_ns()
    try:
        decision = await state.guard.run(budget, lambda: limiter.hit(owner))
    except BackendUnavailableError as exc:
        timing = timing_entry(RATELIMIT, perf_counter_ns() - before) + ", "
        return timing, _limiter_failed(state, exc, headers, timing, started)
    timing = timing_entry(RATELIMIT, perf_counter_ns() - before) + ", "
    return timing, _decided(state, decision, headers, timing, started)


async def _limit_and_read(
    state: TargetState,
    limiter: RedisFixedWindowLimiter,
    budget: RequestBudget,
    owner: str,
    key: str,
    headers: dict[str, str],
    started: int,
) -> tuple[str, Response | None, bytes | None, str]:
    """The limiter's check and the cache read in one Redis round trip: the Server-Timing
    entry, the refusal if any, the cached answer and the X-Cache state of a non-HIT."""
    before = perf_counter_ns()
    try:
        lookup = await state.guard.run(budget, lambda: limiter.hit_and_read(owner, key))
    except BackendUnavailableError as exc:
        # One call failed for both: the limiter failed (counted once), the read is a BYPASS.
        timing = timing_entry(RATELIMIT_CACHE_READ, perf_counter_ns() - before) + ", "
        return timing, _limiter_failed(state, exc, headers, timing, started), None, "BYPASS"
    elapsed = perf_counter_ns() - before
    decision = lookup.decision
    # A refused request's cache entry is not read: its step is the limiter's alone.
    refused = decision is not None and not decision.allowed
    timing = timing_entry(RATELIMIT if refused else RATELIMIT_CACHE_READ, elapsed) + ", "
    if decision is None:
        # Redis refused the count (OOM under noeviction) but answered, and may still have read.
        assert lookup.limiter_error is not None
        state.counters.redis_last_error = str(lookup.limiter_error)
        refusal = _limiter_failed(state, lookup.limiter_error, headers, timing, started)
    else:
        refusal = _decided(state, decision, headers, timing, started)
    if refusal is not None:
        return timing, refusal, None, "MISS"
    if lookup.read_error is not None:
        state.counters.cache_errors += 1
        state.counters.redis_last_error = str(lookup.read_error)
        log.warning("cache failed open: %s", lookup.read_error)
        return timing, None, None, "BYPASS"
    return timing, None, lookup.cached, "MISS"


def _limiter_failed(
    state: TargetState,
    exc: BackendUnavailableError,
    headers: dict[str, str],
    timing: str,
    started: int,
) -> Response | None:
    """Fail open (None, the request goes on, marked) or closed (the refusal of
    fail_closed_answer), as configured."""
    counters = state.counters
    if not isinstance(exc, RedisSkippedError):
        counters.rate_limit_errors += 1
        log.warning("rate limiter failed: %s", exc)
    if state.settings.rate_limit_on_redis_error == "closed":
        counters.rate_limit_fail_closed += 1
        headers[RATE_LIMIT_STATUS] = "fail-closed"
        headers[SERVER_TIMING] = timing + timing_entry(TOTAL, perf_counter_ns() - started)
        answer = fail_closed_answer(exc)
        body = ApiError(answer.status, answer.message, answer.kind)
        return JSONResponse(body.body(), status_code=answer.status, headers=headers)
    counters.rate_limit_fail_open += 1
    headers[RATE_LIMIT_STATUS] = "fail-open"
    return None


def _decided(
    state: TargetState, decision: RateDecision, headers: dict[str, str], timing: str, started: int
) -> Response | None:
    """The X-RateLimit-* headers of a decision, and the 429 when it refuses."""
    headers.update(decision.headers(now_s()))
    if decision.allowed:
        return None
    state.counters.rate_limited += 1
    body = ApiError(429, "rate limit exceeded for this API key", "rate_limit_exceeded")
    headers[SERVER_TIMING] = timing + timing_entry(TOTAL, perf_counter_ns() - started)
    return JSONResponse(body.body(), status_code=429, headers=headers)


async def _read_cache(
    state: TargetState, budget: RequestBudget, key: str
) -> tuple[str, bytes | None, str]:
    """The cache read alone: its Server-Timing entry, the cached answer and the X-Cache state
    of a non-HIT (BYPASS when the read failed)."""
    before = perf_counter_ns()
    try:
        cached = await state.guard.run(budget, lambda: state.backends.cache.get(key))
    except BackendUnavailableError as exc:
        timing = timing_entry(CACHE_READ, perf_counter_ns() - before) + ", "
        if not isinstance(exc, RedisSkippedError):
            state.counters.cache_errors += 1
            log.warning("cache failed open: %s", exc)
        return timing, None, "BYPASS"
    return timing_entry(CACHE_READ, perf_counter_ns() - before) + ", ", cached, "MISS"


async def _stream(
    state: TargetState,
    budget: RequestBudget,
    body: bytes,
    key: str,
    cache_state: str,
    headers: dict[str, str],
    timing: str,
    started: int,
) -> Response:
    """A streamed MISS or BYPASS: the upstream's events passed on as they come, the whole
    answer cached once it ended (a MISS); an upstream that refuses is answered as JSON.

    The client's bytes go out as they came (they ask for the stream), and each event comes
    back as the JSON object it holds: no chunk models built only to be turned back into dicts.
    The write spends what is left of the request's own `budget`: a hung Redis must not hold the
    stream open another REDIS_TIMEOUT after its last event.
    """
    counters = state.counters
    before = perf_counter_ns()
    try:
        stream = await state.upstream.post(
            _UPSTREAM_CHAT_PATH,
            cast_to=object,
            content=body,
            stream=True,
            stream_cls=openai.AsyncStream[object],
        )
    except openai.APIError as exc:
        counters.upstream_calls += 1
        counters.upstream_errors += 1
        status, content, passed = _upstream_failure(state, exc)
        headers.update(passed)
        return Response(content, status_code=status, media_type=JSON, headers=headers)
    counters.upstream_calls += 1
    if cache_state == "MISS":
        counters.misses += 1
    else:
        counters.bypasses += 1
    # Headers go before the answer: the steps up to the stream's start are all they can hold.
    headers[SERVER_TIMING] = (
        f"{timing}{timing_entry(UPSTREAM, perf_counter_ns() - before)}, "
        f"{timing_entry(TOTAL, perf_counter_ns() - started)}"
    )

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        async with stream:
            async for chunk in stream:
                if isinstance(chunk, dict):
                    yield chunk

    async def whole(content: bytes) -> None:
        if cache_state == "MISS":
            await _write_cache(state, budget, key, content, None)

    def failure(exc: Exception) -> dict[str, Any]:
        counters.upstream_errors += 1
        log.warning("upstream stream broke off: %s", redact_text(str(exc)))
        return error_body("the upstream stream broke off", "upstream_stream_error", code=502)

    return StreamingResponse(
        pass_on(chunks(), whole, failure), media_type=EVENT_STREAM, headers=headers
    )


async def _call_upstream(state: TargetState, body: bytes) -> tuple[int, bytes, dict[str, str]]:
    """Forward the client's own bytes through the OpenAI SDK's raw request API; returns status,
    the answer's bytes as the upstream sent them, and headers to add.

    `chat.completions.create` would build its parameters' models and write the JSON again, and
    its answer's models unless asked for the raw response: the body is already validated JSON,
    and the answer is passed on and cached as bytes, so neither is needed (measured: ~0.25 ms
    less client CPU per call on a 2-core machine). Errors are the SDK's, as with `create`.
    """
    try:
        content = await state.upstream.post(_UPSTREAM_CHAT_PATH, cast_to=bytes, content=body)
    except openai.APIError as exc:
        state.counters.upstream_calls += 1
        state.counters.upstream_errors += 1
        return _upstream_failure(state, exc)
    state.counters.upstream_calls += 1
    return 200, content, {}


async def _write_cache(
    state: TargetState,
    budget: RequestBudget,
    key: str,
    content: bytes,
    headers: dict[str, str] | None,
) -> None:
    """Cache `content`; a write skipped or failed is counted (and marked, when the headers
    have not gone yet: a stream's write comes after its answer)."""
    counters = state.counters
    try:
        await state.guard.run(budget, lambda: state.backends.cache.set(key, content))
    except RedisSkippedError:
        counters.cache_write_skips += 1
        if headers is not None:
            headers[CACHE_WRITE_STATUS] = "skipped"
    except BackendUnavailableError as exc:
        counters.cache_errors += 1
        counters.cache_write_errors += 1
        if headers is not None:
            headers[CACHE_WRITE_STATUS] = "failed"
        log.warning("cache write failed: %s", exc)


def _upstream_failure(
    state: TargetState, exc: openai.APIError
) -> tuple[int, bytes, dict[str, str]]:
    """Status, body and headers that pass an upstream failure on to the client."""
    if isinstance(exc, openai.APIStatusError):
        passed = {"X-Upstream-Status": str(exc.status_code)}
        if "retry-after" in exc.response.headers:
            passed["Retry-After"] = exc.response.headers["retry-after"]
        return exc.status_code, exc.response.content, passed
    refused = _refused_connection(exc)
    if isinstance(exc, openai.APITimeoutError) and refused is None:
        body = error_body("upstream did not answer in time", "upstream_timeout", code=504)
        return 504, json.dumps(body).encode(), {}
    where = redact_url(state.settings.openai_base_url)
    message = f"upstream unreachable at {where}: {redact_text(str(refused or exc))}"
    body = error_body(message, "upstream_unreachable", code=502)
    return 502, json.dumps(body).encode(), {}


def _refused_connection(exc: BaseException) -> OSError | None:
    """The refused or failed connection behind an SDK error, if that is what it was.

    The SDK's aiohttp transport reports a refused connection as a connect *timeout*; the
    refusal is still there in the chain of causes, and it is no reason to say "did not answer
    in time" of an upstream that is not there at all.
    """
    return next((c for c in causes(exc) if isinstance(c, ConnectionError | socket.gaierror)), None)


def _client_refuses_cache(request: Request) -> bool:
    control = request.headers.get("cache-control", "").lower()
    return any(word in control for word in _NO_CACHE)


async def _health(state: TargetState) -> tuple[bool, dict[str, Any]]:
    healthy, redis_report = await state.guard.health()
    report: dict[str, Any] = {
        "status": "ok" if healthy else "degraded",
        "instance": state.settings.instance_id,
        "backend": state.backends.name,
        "version": __version__,
        "redis": redis_report,
    }
    return healthy, report


async def _warn_if_redis_down(guard: RedisGuard) -> None:
    # Bounded like /healthz, so a hung Redis cannot hold up the start; not a breaker probe.
    healthy, report = await guard.health()
    if not healthy and report is not None:
        log.warning(
            "Redis did not answer PING within %g s (%s): the cache and rate limiter fail open "
            "and sessions answer 503 until it does",
            min(guard.timeout_s, HEALTH_TIMEOUT_S),
            report.get("error"),
        )
