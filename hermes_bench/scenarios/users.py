"""Locust users for the cache, rate-limit and session paths, and a mixed HERMES-like user.

Every request goes to a target picked at random (a non-sticky balancer), is timed in
microseconds into RunMetrics, and every response is checked: the answer must be the fake
upstream's answer to that very prompt, session payloads must come back intact, and a 429 must
carry Retry-After. A failed check is counted and marked failed in Locust's stats, never passed.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from typing import Any

import gevent
from locust import task
from locust.contrib.fasthttp import FastHttpUser, ResponseContextManager
from locust.runners import WorkerRunner

from hermes_bench.results.vocabulary import (
    ADMITTED_OUTCOME,
    BARE_SCENARIO,
    BURST_SCENARIO,
    CACHE_OUTCOMES,
    CACHE_SCENARIO,
    ERROR,
    REFUSED,
    TTFT_SCENARIO,
    WRONG_ANSWER,
)
from hermes_bench.scenarios.attribution import NO_OUTCOME
from hermes_bench.scenarios.hit_header import parse_hit_header
from hermes_bench.scenarios.prepared_chat import PreparedChat, prepared_chat
from hermes_bench.scenarios.rate_windows import RateResponse, count_windows, header_int
from hermes_bench.scenarios.run_context import HermesRun, run_of
from hermes_bench.scenarios.target_health import base_url, transport_reason
from hermes_bench.scenarios.workload import WorkItem

CHAT_PATH = "/v1/chat/completions"
# A counter: requests that got no HTTP answer at all (refused, timed out, reset...).
NO_ANSWER = "no_answer"
BARE_PATH = "/_bare"
_UNTIL_STOPPED_S = 60.0
SESSION_PATH = "/v1/sessions"
# The body goes out as bytes built once per item (see prepared_chat), so the JSON headers
# Locust's json= would add are added by chat() itself.
JSON_TYPE = "application/json"
# Outcomes of a chat that got no right answer: not a cache lookup, nothing to attribute.
_NOT_ANSWERED = frozenset({WRONG_ANSWER, REFUSED, ERROR})
_CACHE_OUTCOMES = frozenset(CACHE_OUTCOMES)


class HermesUser(FastHttpUser):
    """Shared client: target spreading, timing, arrival-rate pacing and response checks."""

    abstract = True
    # The plugin sets the host (or starts a stack); each request names its own target URL.
    host = ""

    # Paced users follow the run's arrival-rate schedule when --hermes-arrival-rate is set.
    paced = False

    def on_start(self) -> None:
        self.hermes: HermesRun = run_of(self.environment)
        self.targets = self.hermes.targets(self.environment)
        self.rng = random.Random(secrets.randbits(64))
        # A wait asked for by the last task; waiting in wait_time lets a stop interrupt it.
        self.pause_s = 0.0
        self._intended: float | None = None
        self.hit_header = parse_hit_header(self.hermes.options.hit_header)
        # Cache-path answers are kept for attribution only when there is a call log to read.
        self.attributing = bool(self.hermes.upstream_url(self.environment))
        self.hermes.fold_metrics_when_idle()
        if self._is_paced():
            self._intended = self.hermes.next_slot(self.environment)
            gevent.sleep(max(0.0, self._intended - time.monotonic()))

    def _is_paced(self) -> bool:
        return self.paced and self.hermes.options.arrival_rate > 0

    def wait_time(self) -> float:
        """Closed loop: no wait (or the task's pause). Paced: until the next intended slot."""
        if self.hermes.ending:
            return _UNTIL_STOPPED_S  # the stop under way ends this wait
        if self._is_paced():
            self._intended = self.hermes.next_slot(self.environment)
            return max(0.0, self._intended - time.monotonic())
        pause, self.pause_s = self.pause_s, 0.0
        return pause

    def intended_start(self) -> float | None:
        """Monotonic intended send time of the current request (arrival-rate mode only)."""
        return self._intended

    def workload_done(self) -> None:
        """The workload is used up: a local run ends (its test stops, in the web UI), a worker
        stops its users (and the master, seeing no users left, ends the test). Users
        mid-request finish within the stop timeout."""
        runner = self.environment.runner
        if not self.hermes.ending and runner is not None:
            self.hermes.ending = True
            keep_running = isinstance(runner, WorkerRunner) or self.environment.web_ui is not None
            gevent.spawn(runner.stop if keep_running else runner.quit)

    def target(self) -> str:
        """A target for the next request, chosen like a non-sticky load balancer."""
        return self.targets[0] if len(self.targets) == 1 else self.rng.choice(self.targets)

    def api_key(self) -> str:
        """One of the run's cache API keys: enough of them to stay under a per-key limit."""
        return self.hermes.options.api_keys.pick(self.rng)

    def record(
        self, scenario: str, outcome: str, started_ns: int, intended: float | None = None
    ) -> None:
        """Record one finished request in µs (and from its intended time when paced)."""
        done_ns = time.perf_counter_ns()
        latency_us = (done_ns - started_ns) // 1000
        intended_us = None
        if intended is not None:
            intended_us = int((time.monotonic() - intended) * 1_000_000)
        self.hermes.metrics.record(
            scenario, outcome, latency_us, intended_latency_us=intended_us, at_s=time.time()
        )

    def chat(
        self, scenario: str, item: WorkItem, *, key: str | None = None, expect_429: bool = False
    ) -> tuple[str, Any]:
        """Send one chat completion, check it, record it; returns (outcome, response)."""
        prepared = prepared_chat(item)
        streaming = scenario == CACHE_SCENARIO and self.hermes.options.stream == "on"
        body = prepared.stream_body() if streaming else prepared.body
        headers = {
            "Authorization": f"Bearer {key or item.api_key or self.api_key()}",
            "Content-Type": JSON_TYPE,
            "Accept": JSON_TYPE,
        }
        intended = self._intended
        metrics = self.hermes.metrics
        metrics.count("chat_started")
        started = time.perf_counter_ns()
        sent_s = time.time()
        target = self.target()
        with self.client.post(
            target + CHAT_PATH,
            data=body,  # type: ignore[arg-type]  # bytes go out as they are; the hint is narrow
            headers=headers,
            name=f"{scenario}: chat",
            catch_response=True,
            stream=streaming,
        ) as response:
            if response.status_code == 0:
                outcome = self._no_answer(response, target)
            elif streaming:
                outcome = self._check_stream(response, prepared, started)
            else:
                outcome = self._check_chat(response, prepared, expect_429)
        latency_us = (time.perf_counter_ns() - started) // 1000
        intended_us = None
        if intended is not None:
            intended_us = int((time.monotonic() - intended) * 1_000_000)
        # The steps the target timed itself (Server-Timing), per outcome, for cache outcomes.
        timing = _header(response, "server-timing") if outcome in _CACHE_OUTCOMES else None
        if self.attributing and scenario == CACHE_SCENARIO and outcome not in _NOT_ANSWERED:
            # A right answer of the cache path, with what attribution needs: its request hash
            # and wall-clock window; without a header outcome it waits for the call log.
            header = None if outcome == NO_OUTCOME else outcome
            metrics.lookup(
                prepared.request_hash(),
                sent_s,
                time.time(),
                latency_us,
                intended_us,
                header,
                timing,
            )
        else:
            metrics.record(
                scenario,
                outcome,
                latency_us,
                intended_latency_us=intended_us,
                at_s=time.time(),
                server_timing=timing,
            )
        return outcome, response

    def _no_answer(self, response: ResponseContextManager, target: str) -> str:
        """A request that got no HTTP answer: failed with the reason (refused, timed out...)."""
        self.hermes.metrics.count(NO_ANSWER)
        response.failure(no_answer_text(response, target, self.network_timeout))
        return ERROR

    def _check_chat(
        self, response: ResponseContextManager, prepared: PreparedChat, expect_429: bool
    ) -> str:
        status = response.status_code
        if status == 200:
            body: bytes | None = None
            try:
                body = response.content
                # Bytes already found to hold the right answer hold it again: no parse needed.
                if body is not None and body == prepared.checked_body:
                    content = prepared.answer
                else:
                    content = response.json()["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError):  # not JSON, not an answer
                content = None
            if content != prepared.answer:
                self.hermes.metrics.count("wrong_answers")
                response.failure(f"wrong answer for the prompt: {str(content)[:80]!r}")
                return "wrong_answer"
            prepared.checked_body = body
            response.success()
            hit_header = self.hit_header
            return hit_header.outcome(_header(response, hit_header.name)) or NO_OUTCOME
        if status == 429:
            return self._check_429(response, expect_429)
        self.hermes.metrics.count(f"status_{status}")
        response.failure(f"HTTP {status}: {_error_message(response)}")
        return "error"

    def _check_stream(
        self, response: ResponseContextManager, prepared: PreparedChat, started: int
    ) -> str:
        """Read a streamed answer to its end: the time to its first token is recorded per
        outcome (TTFT_SCENARIO), the text put together is checked like a whole answer's."""
        if response.status_code != 200:
            return self._check_chat(response, prepared, expect_429=False)
        first_ns = None
        pieces = []
        # A line as soon as it is there: iter_content would wait for a whole block, and the
        # first token's time is what is measured.
        raw = response._response
        if raw is None:
            return self._check_chat(response, prepared, expect_429=False)
        try:
            while line := raw.readline(b"\n"):
                piece = _stream_piece(line.decode("utf-8", "replace").rstrip("\r\n"))
                if piece:
                    first_ns = first_ns or time.perf_counter_ns()
                    pieces.append(piece)
        except Exception as exc:  # the stream broke off: an error, as a failed request is
            self.hermes.metrics.count("stream_broken")
            response.failure(f"stream broke off: {type(exc).__name__}")
            return "error"
        content = "".join(pieces)
        if content != prepared.answer:
            self.hermes.metrics.count("wrong_answers")
            response.failure(f"wrong answer for the prompt: {content[:80]!r}")
            return "wrong_answer"
        response.success()
        outcome = self.hit_header.outcome(_header(response, self.hit_header.name)) or NO_OUTCOME
        if first_ns is not None and outcome != NO_OUTCOME:
            self.hermes.metrics.record(
                TTFT_SCENARIO, outcome, (first_ns - started) // 1000, at_s=time.time()
            )
        return outcome

    def _check_429(self, response: ResponseContextManager, expected: bool) -> str:
        if not _header(response, "retry-after"):
            self.hermes.metrics.count("retry_after_missing")
            response.failure("429 without Retry-After")
        elif expected:
            response.success()
        else:
            response.failure("rate limited (429)")
        return "429"


class CacheUser(HermesUser):
    """Chat completions drawn from the workload: the response-cache path."""

    weight = 3
    paced = True

    @task
    def ask(self) -> None:
        item = self.hermes.next_item(self.environment)
        if item is None:  # the trace is replayed, or --hermes-requests are all sent
            self.workload_done()
            return
        if item.offset_s is not None:
            self._wait_for_offset(item.offset_s)
        self.chat("cache", item)

    def _wait_for_offset(self, offset_s: float) -> None:
        delay = self.hermes.started_at + offset_s - time.time()
        if delay > 0:
            gevent.sleep(delay)


class RateLimitUser(HermesUser):
    """Fresh keys, each pushed past its limit in one burst; 429s must carry Retry-After."""

    weight = 1
    pause_between_bursts_s = 0.2

    def on_start(self) -> None:
        super().on_start()
        self.limit: int | None = None

    @task
    def burst(self) -> None:
        # A key of its own per burst: its windows start with the burst, so admitted/limit
        # measures the limiter alone, whatever earlier bursts did.
        key = f"sk-hermes-limit-{secrets.token_hex(8)}"
        item = WorkItem("rate limit probe: what is a token bucket?")
        known_limit = self.limit
        # Past the limit once it is known (X-RateLimit-Limit): past N times it, even, so N
        # instances that each kept their own count would show it. A few requests until then.
        count = int(known_limit * (len(self.targets) + 0.5)) + 1 if known_limit else 5
        responses = []
        for _ in range(count):
            outcome, response = self.chat("ratelimit", item, key=key, expect_429=True)
            limit = header_int(_header(response, "x-ratelimit-limit"))
            if limit:
                self.limit = limit
            if outcome != ERROR:
                reset_s = header_int(_header(response, "x-ratelimit-reset"))
                responses.append(RateResponse(outcome != REFUSED, limit, reset_s))
        self._count_windows(responses)
        self.pause_s = self.pause_between_bursts_s  # in wait_time, where a stop can end it

    def _count_windows(self, responses: list[RateResponse]) -> None:
        """Admitted against the limit per window as the target reports it (X-RateLimit-Reset).

        Only windows the burst filled count (see WindowCount.filled); `ratelimit_bursts`
        counts those windows.
        """
        metrics = self.hermes.metrics
        key_windows = count_windows(responses)
        if key_windows.unattributed:
            metrics.count("ratelimit_admitted_without_window", key_windows.unattributed)
        for window in key_windows.windows:
            if not window.filled:
                metrics.count("ratelimit_windows_unfilled")
                continue
            metrics.count("ratelimit_bursts")
            metrics.count("ratelimit_admitted", window.admitted)
            metrics.count("ratelimit_limit_sum", window.limit)
            if window.over_limit:
                metrics.count("ratelimit_over_limit_bursts")
            # A count, not a latency: the histogram gives the distribution of admitted per window.
            metrics.record(
                BURST_SCENARIO, ADMITTED_OUTCOME, max(window.admitted, 1), at_s=time.time()
            )


class SessionCalls(HermesUser):
    """Session requests with their checks; users that need sessions build on it."""

    abstract = True

    def on_start(self) -> None:
        super().on_start()
        keys = self.hermes.options.api_keys
        # A key of its own (sessions belong to a key), or one a target with a list accepts.
        self.key = (
            keys.pick(self.rng) if keys.given else f"sk-hermes-session-{secrets.token_hex(6)}"
        )
        # The ETag the user's session last answered with; a new session forgets the old ones,
        # so a long run keeps one entry, not one per session it ever made.
        self.etags: dict[str, str] = {}

    def session_request(
        self,
        method: str,
        path: str,
        name: str,
        expected: dict[str, Any] | None,
        if_match: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any] | None:
        """One session call; outcome ok / lost (404) / conflict (412) / corrupt / error.
        Returns the JSON; the session's ETag, when the target sends one, is kept for the next
        write's If-Match."""
        headers = {"Authorization": f"Bearer {self.key}"}
        if if_match is not None:
            headers["If-Match"] = if_match
        started = time.perf_counter_ns()
        target = self.target()
        with self.client.request(
            method,
            target + path,
            headers=headers,
            name=f"session: {name}",
            catch_response=True,
            **kwargs,
        ) as response:
            if response.status_code == 0:
                payload, outcome = None, self._no_answer(response, target)
            else:
                payload, outcome = _check_session(response, expected)
                etag = response.headers.get("etag")
                if payload is not None and etag:
                    self.etags[str(payload["id"])] = etag
        if outcome != "ok":
            self.hermes.metrics.count(f"sessions_{outcome}")
        self.record("session", outcome, started)
        return payload

    def create_session(self, data: dict[str, Any]) -> str | None:
        self.etags.clear()
        payload = self.session_request("POST", SESSION_PATH, "create", data, json={"data": data})
        return None if payload is None else str(payload["id"])

    def read_session(self, session_id: str, expected: dict[str, Any]) -> bool:
        path = f"{SESSION_PATH}/{session_id}"
        return self.session_request("GET", path, "read", expected) is not None

    def update_session(self, session_id: str, change: dict[str, Any]) -> bool:
        """A merge over the version last read: a 412 means another writer came between."""
        path = f"{SESSION_PATH}/{session_id}"
        condition = self.etags.get(session_id)
        answer = self.session_request(
            "PATCH", path, "update", None, if_match=condition, json={"data": change}
        )
        return answer is not None


class SessionUser(SessionCalls):
    """Create a session, read it back, merge a change, read again: payloads must be intact."""

    weight = 1

    @task
    def lifecycle(self) -> None:
        data = {"user": secrets.token_hex(4), "turns": [], "prefs": {"lang": "en"}}
        session_id = self.create_session(data)
        if session_id is None:
            return
        self.read_session(session_id, data)
        turn = {"turns": [f"turn {self.rng.randrange(1000)}"]}
        if self.update_session(session_id, turn):
            self.read_session(session_id, {**data, **turn})


class MixedUser(SessionCalls):
    """A HERMES-like user: a session, a few chat turns recorded in it, an occasional burst."""

    weight = 1

    @task
    def conversation(self) -> None:
        data: dict[str, Any] = {"user": secrets.token_hex(4), "turns": []}
        session_id = self.create_session(data)
        for _ in range(self.rng.randint(2, 5)):
            item = self.hermes.next_item(self.environment)
            if item is None:
                self.workload_done()
                return
            self.chat("mixed", item)
            if session_id is not None:
                data["turns"] = [*data["turns"], item.prompt[:40]]
                self.update_session(session_id, {"turns": data["turns"]})
        if session_id is not None:
            self.read_session(session_id, data)
        if self.rng.random() < 0.1:  # the occasional burst: the same question, again and again
            item = self.hermes.next_item(self.environment)
            for _ in range(5):
                if item is not None:
                    self.chat("mixed", item)


def _check_session(
    response: ResponseContextManager, expected: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, str]:
    status = response.status_code
    if status in (200, 201):
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or "id" not in payload:
            response.failure("session answer is not a session object")
            return None, "corrupt"
        if expected is not None and payload.get("data") != expected:
            response.failure(f"session payload changed: {str(payload.get('data'))[:80]}")
            return None, "corrupt"
        response.success()
        return payload, "ok"
    if status == 404:
        response.failure("session lost (404): created but not found")
        return None, "lost"
    if status == 412:
        response.failure("session changed since it was read (412): a write would have been lost")
        return None, "conflict"
    response.failure(f"HTTP {status}: {_error_message(response)}")
    return None, "error"


def no_answer_text(response: Any, target: str, timeout_s: float | None = None) -> str:
    """The failure of a request that got no HTTP answer: the target and why, not "HTTP 0"."""
    reason = transport_reason(getattr(response, "error", None), timeout_s)
    return f"no answer from {base_url(target)}: {reason}"


def _error_message(response: Any) -> str:
    try:
        return str(response.json()["error"]["message"])[:120]
    except (ValueError, KeyError, TypeError):
        return (response.text or "")[:120] if hasattr(response, "text") else ""


def _header(response: Any, name: str) -> str | None:
    headers = response.headers
    value = headers.get(name) if headers is not None else None
    return value if isinstance(value, str) else None


class BareUser(HermesUser):
    """POST /_bare of the reference app, paced like CacheUser: the floor of the app and the
    load generator, against which a knee of the cache path is told from one of the generator.
    Not in locustfile.py (its users would join every run); the capacity sweep loads it from
    scenarios/bare_locustfile.py."""

    paced = True

    @task
    def bare(self) -> None:
        intended = self.intended_start()
        started = time.perf_counter_ns()
        target = self.target()
        with self.client.post(
            target + BARE_PATH, data="{}", name="bare", catch_response=True
        ) as response:
            ok = response.status_code == 200
            if response.status_code == 0:
                self._no_answer(response, target)
            elif not ok:
                response.failure(f"HTTP {response.status_code}")
        self.record(BARE_SCENARIO, "ok" if ok else ERROR, started, intended)


def _stream_piece(line: str) -> str:
    """The content of one server-sent event line of a chat stream; "" for anything else."""
    if not line.startswith("data: ") or line.startswith("data: [DONE]"):
        return ""
    try:
        choices = json.loads(line.removeprefix("data: ")).get("choices") or []
        return str(choices[0].get("delta", {}).get("content") or "") if choices else ""
    except (ValueError, AttributeError, IndexError):
        return ""
