"""SessionUser writes over the version it read (If-Match) and counts the conflicts: through a
proxy that writes to each session just before the user does, as another client would."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_servers import serving

from hermes_bench.stack.stack import Stack, StackConfig

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent


def _proxy_handler(target: str, raced: list[str]) -> type[BaseHTTPRequestHandler]:
    class Proxy(BaseHTTPRequestHandler):
        """Passes every call on; before a PATCH, writes to the same session once itself."""

        def _pass_on(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            names = ("Authorization", "Content-Type", "If-Match")
            headers = {n: self.headers[n] for n in names if self.headers[n] is not None}
            with httpx.Client(timeout=30, trust_env=False) as http:
                if self.command == "PATCH":
                    auth = {"Authorization": headers["Authorization"]}
                    http.patch(target + self.path, json={"data": {"other": 1}}, headers=auth)
                    raced.append(self.path)
                answer = http.request(self.command, target + self.path, content=body,
                                      headers=headers)  # fmt: skip
            self.send_response(answer.status_code)
            for name in ("Content-Type", "ETag"):
                if name in answer.headers:
                    self.send_header(name, answer.headers[name])
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _pass_on

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Proxy


@pytest.fixture
def racing_proxy() -> Iterator[tuple[str, Stack, list[str]]]:
    config = StackConfig(backend="memory", instances=1, upstream_latency="zero")
    with Stack(config) as stack:
        raced: list[str] = []
        with serving(_proxy_handler(stack.target_urls[0], raced)) as url:
            yield url, stack, raced


def test_a_write_between_read_and_update_is_a_counted_conflict(
    tmp_path: Path, racing_proxy: tuple[str, Stack, list[str]]
) -> None:
    proxy, stack, raced = racing_proxy
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless",
         "--only-summary", "-u", "1", "-r", "1", "-t", "3s", "--host", proxy,
         "--hermes-upstream-url", stack.upstream_url, "--hermes-metrics-json", "m.json",
         "SessionUser"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    counters = json.loads((tmp_path / "m.json").read_text())["metrics"]["counters"]
    updates = len(raced)
    assert updates > 0, done.stderr
    # Every update came after another write: each was refused, none overwrote it.
    assert counters["sessions_conflict"] == updates, (counters, done.stderr[-2000:])
    assert stack.target_stats()[0]["session_conflicts"] == updates
    assert "changed since it was read (412)" in done.stdout + done.stderr
