"""`hermes-bench check`: a one-minute look at the guide's headline claims on both backends.

Each backend gets its own stack of two target instances; the same small sequence runs on both
and every figure printed comes from a response header or the fake upstream's ground truth.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from hermes_bench.errors import HermesBenchError
from hermes_bench.stack.stack import Stack, StackConfig
from hermes_bench.wire.answer import answer_text

RATE_LIMIT = 5
RATE_LIMIT_TRIES = 10


@dataclass
class CheckResult:
    """What one backend did in the check sequence."""

    backend: str
    first: str = ""
    repeat_same_instance: str = ""
    repeat_other_instance: str = ""
    upstream_calls: int = 0
    requests: int = 0
    wrong_answers: int = 0
    admitted: int = 0
    session_after_restart: str = ""


def run_check(
    backend: str,
    latency: str,
    redis_url: str | None,
    target_env: Mapping[str, str] | None = None,
) -> CheckResult:
    """Start a two-instance stack for `backend`, run the sequence, stop everything.

    `target_env` adds settings of the targets. Any HTTP step that fails raises a
    HermesBenchError naming the step, the status and the error the body gave.
    """
    config = StackConfig(
        backend=backend,
        instances=2,
        redis_url=redis_url,
        upstream_latency=latency,
        target_env={"RATE_LIMIT": f"{RATE_LIMIT}/minute", **(target_env or {})},
    )
    result = CheckResult(backend)
    with Stack(config) as stack, httpx.Client(timeout=30, trust_env=False) as client:
        a, b = stack.target_urls
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is Redis?"}]}
        steps = ("1st request", "same prompt, same instance", "same prompt, other instance")
        outcomes = [
            _chat(client, step, url, body, _new_key(), result)
            for step, url in zip(steps, (a, a, b), strict=True)
        ]
        result.first, result.repeat_same_instance, result.repeat_other_instance = outcomes
        result.requests = len(outcomes)
        result.upstream_calls = int(_field(_ground_truth(stack), "calls", "ground truth"))

        key = _new_key()
        targets = [a, b] * (RATE_LIMIT_TRIES // 2)
        statuses = [
            _step(
                client, "rate limit", "POST", _chat_url(url), body, key, ok=(200, 429)
            ).status_code
            for url in targets
        ]
        result.admitted = statuses.count(200)

        session_key = _new_key()
        created = _step(
            client, "session create", "POST", a + "/v1/sessions", {"data": {"user": "ada"}},
            session_key, ok=(201,),
        )  # fmt: skip
        session_id = _field(_json(created, "session create"), "id", "session create")
        stack.restart_targets()
        read = _step(
            client, "session read after restart", "GET", f"{b}/v1/sessions/{session_id}",
            None, session_key, ok=(200, 404),
        )  # fmt: skip
        intact = read.status_code == 200 and (
            _field(_json(read, "session read after restart"), "data", "session read")
            == {"user": "ada"}
        )
        result.session_after_restart = "intact" if intact else f"lost ({read.status_code})"
    return result


def _chat(
    client: httpx.Client,
    step: str,
    url: str,
    body: dict[str, Any],
    key: str,
    result: CheckResult,
) -> str:
    response = _step(client, step, "POST", _chat_url(url), body, key, ok=(200,))
    try:
        content = _json(response, step)["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise HermesBenchError(
            f"check step {step!r}: the answer is not a chat completion: {response.text[:200]!r}"
        ) from None
    if content != answer_text(body):
        result.wrong_answers += 1
    return response.headers.get("x-cache", "?")


def _chat_url(url: str) -> str:
    return url + "/v1/chat/completions"


def _step(
    client: httpx.Client,
    step: str,
    method: str,
    url: str,
    body: dict[str, Any] | None,
    key: str,
    *,
    ok: tuple[int, ...],
) -> httpx.Response:
    """One HTTP call of the sequence; HermesBenchError unless it answers one of `ok`."""
    try:
        response = client.request(method, url, json=body, headers=_auth(key))
    except httpx.HTTPError as exc:
        raise HermesBenchError(
            f"check step {step!r}: {method} {url} got no answer: {exc or type(exc).__name__}"
        ) from None
    if response.status_code not in ok:
        raise HermesBenchError(
            f"check step {step!r}: {method} {url} answered {response.status_code}: "
            f"{_error_message(response)}"
        )
    return response


def _error_message(response: httpx.Response) -> str:
    """The message of an error body ({"error": {"message"}} or FastAPI's "detail"), or its text."""
    try:
        payload = response.json()
    except ValueError:
        return repr(response.text[:200])
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if payload.get("detail"):
            return str(payload["detail"])
    return repr(response.text[:200])


def _json(response: httpx.Response, step: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise HermesBenchError(
            f"check step {step!r}: the answer is not JSON: {response.text[:200]!r}"
        ) from None


def _field(payload: Any, name: str, step: str) -> Any:
    if not isinstance(payload, dict) or name not in payload:
        raise HermesBenchError(f"check step {step!r}: the answer has no {name!r}: {payload!r}")
    return payload[name]


def _ground_truth(stack: Stack) -> dict[str, Any]:
    try:
        return stack.ground_truth()
    except HermesBenchError as exc:
        raise HermesBenchError(f"check step 'ground truth': {exc}") from exc


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _new_key() -> str:
    return "hb-check-" + secrets.token_hex(8)


def print_results(results: list[CheckResult], wall_s: float) -> None:
    """A table of what each backend did, and the wall time."""
    from rich.table import Table

    from hermes_bench.harness.console import output_console

    table = Table(title="hermes-bench check: two instances per backend")
    table.add_column("backend")
    table.add_column("1st request")
    table.add_column("same prompt,\nsame instance")
    table.add_column("same prompt,\nother instance")
    table.add_column("OpenAI calls\n(ground truth)", justify="right")
    table.add_column(f"admitted of {RATE_LIMIT_TRIES}\n(limit {RATE_LIMIT}/min)", justify="right")
    table.add_column("session after\nrestart")
    table.add_column("wrong answers", justify="right")
    for r in results:
        table.add_row(
            r.backend,
            r.first,
            r.repeat_same_instance,
            r.repeat_other_instance,
            f"{r.upstream_calls} of {r.requests}",
            str(r.admitted),
            r.session_after_restart,
            str(r.wrong_answers),
        )
    console = output_console()
    console.print(table)
    console.print(f"wall time {wall_s:.1f} s")
