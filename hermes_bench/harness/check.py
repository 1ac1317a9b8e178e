"""`hermes-bench check`: a one-minute look at the guide's headline claims on both backends.

Each backend gets its own stack of two target instances; the same small sequence runs on both
and every figure printed comes from a response header or the fake upstream's ground truth.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from hermes_bench.harness.stack import Stack, StackConfig
from hermes_bench.upstream.answer import answer_text

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


def run_check(backend: str, latency: str, redis_url: str | None) -> CheckResult:
    """Start a two-instance stack for `backend`, run the sequence, stop everything."""
    config = StackConfig(
        backend=backend,
        instances=2,
        redis_url=redis_url,
        upstream_latency=latency,
        target_env={"RATE_LIMIT": f"{RATE_LIMIT}/minute"},
    )
    result = CheckResult(backend)
    with Stack(config) as stack, httpx.Client(timeout=30, trust_env=False) as client:
        a, b = stack.target_urls
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is Redis?"}]}
        outcomes = [_chat(client, url, body, _new_key(), result) for url in (a, a, b)]
        result.first, result.repeat_same_instance, result.repeat_other_instance = outcomes
        result.requests = len(outcomes)
        result.upstream_calls = int(stack.ground_truth()["calls"])

        key = _new_key()
        targets = [a, b] * (RATE_LIMIT_TRIES // 2)
        statuses = [_post(client, url, body, key).status_code for url in targets]
        result.admitted = statuses.count(200)

        session_key = _new_key()
        created = _post(
            client, a + "/v1/sessions", {"data": {"user": "ada"}}, session_key, path=False
        ).json()
        stack.restart_targets()
        read = client.get(f"{b}/v1/sessions/{created['id']}", headers=_auth(session_key))
        intact = read.status_code == 200 and read.json()["data"] == {"user": "ada"}
        result.session_after_restart = "intact" if intact else f"lost ({read.status_code})"
    return result


def _chat(
    client: httpx.Client, url: str, body: dict[str, Any], key: str, result: CheckResult
) -> str:
    response = _post(client, url, body, key)
    response.raise_for_status()
    content = response.json()["choices"][0]["message"]["content"]
    if content != answer_text(body):
        result.wrong_answers += 1
    return response.headers.get("x-cache", "?")


def _post(
    client: httpx.Client, url: str, body: dict[str, Any], key: str, path: bool = True
) -> httpx.Response:
    target = url + "/v1/chat/completions" if path else url
    return client.post(target, json=body, headers=_auth(key))


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _new_key() -> str:
    return "hb-check-" + secrets.token_hex(8)


def print_results(results: list[CheckResult], wall_s: float) -> None:
    """A table of what each backend did, and the wall time."""
    from rich.console import Console
    from rich.table import Table

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
    console = Console()
    console.print(table)
    console.print(f"wall time {wall_s:.1f} s")
