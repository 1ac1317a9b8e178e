"""A server stops within its graceful-shutdown bound, whatever its requests wait for."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import httpx
import pytest

pytestmark = pytest.mark.e2e

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "stall"}]}


@pytest.fixture
def stalled_upstream() -> Iterator[tuple[subprocess.Popen[str], list[httpx.Response]]]:
    """A fake upstream whose every call stalls 300 s, with one call in flight."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hermes_bench", "upstream", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = re.search(r"http://\S+", proc.stdout.readline())
        assert url is not None
        httpx.put(url[0] + "/faults", json={"stall_rate": 1, "stall_s": 300}).raise_for_status()
        answers: list[httpx.Response] = []
        arrived = threading.Event()

        def call() -> None:
            with httpx.Client(timeout=400) as client:
                request = client.build_request(
                    "POST", url[0] + "/v1/chat/completions", json=BODY,
                    headers={"Authorization": "Bearer k"},
                )  # fmt: skip
                arrived.set()
                answers.append(client.send(request))

        threading.Thread(target=call, daemon=True).start()
        arrived.wait(10)
        for _ in range(100):  # until the upstream has counted the call
            if httpx.get(url[0] + "/ground-truth").json()["calls"] == 1:
                break
            threading.Event().wait(0.05)
        yield proc, answers
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("signals", [1, 2])
def test_a_stalled_request_does_not_keep_the_server_from_stopping(
    stalled_upstream: tuple[subprocess.Popen[str], list[httpx.Response]], signals: int
) -> None:
    proc, answers = stalled_upstream
    for _ in range(signals):
        proc.send_signal(signal.SIGTERM)
    # Far below the 300 s stall: the server cut the request after its bound.
    proc.wait(timeout=60)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    assert "Traceback" not in stderr and "CancelledError" not in stderr, stderr
    for _ in range(100):
        if answers:
            break
        threading.Event().wait(0.05)
    assert answers and answers[0].status_code == 503
    assert answers[0].json()["error"]["type"] == "server_shutting_down"
