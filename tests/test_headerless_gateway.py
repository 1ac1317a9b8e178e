"""A gateway that marks no hits is still told HIT or MISS: from the fake upstream's call log."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from http_servers import serving

from hermes_bench.http_json import HttpJsonError, get_json
from hermes_bench.stack.ports import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = 60
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class _Cache:
    """What the gateway knows and tells no one: its answers and its own hit and miss counts."""

    upstream: str
    answers: dict[bytes, bytes] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _gateway_handler(cache: _Cache) -> type[BaseHTTPRequestHandler]:
    class Gateway(BaseHTTPRequestHandler):
        """Caches chat answers by body; a miss goes to the upstream. No cache header, ever."""

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with cache.lock:
                content = cache.answers.get(body)
                if content is not None:
                    cache.hits += 1
            if content is None:
                request = urllib.request.Request(
                    cache.upstream + "/v1/chat/completions",
                    data=body,
                    headers={
                        "Authorization": "Bearer sk-gateway",
                        "Content-Type": "application/json",
                    },
                )
                with _NO_PROXY.open(request, timeout=30) as response:
                    content = response.read()
                with cache.lock:
                    cache.misses += 1
                    cache.answers[body] = content
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Gateway


@pytest.fixture
def upstream() -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # 20 ms per call: far above the attribution's clock tolerance, so a HIT right after a MISS
    # is sent long after the MISS's call arrived.
    process = subprocess.Popen(
        [sys.executable, "-m", "hermes_bench", "upstream", "--host", "127.0.0.1",
         "--port", str(port), "--latency", "fixed:20ms"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                get_json(url + "/healthz", timeout_s=1)
                break
            except HttpJsonError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def gateway(upstream: str) -> Iterator[tuple[str, _Cache]]:
    cache = _Cache(upstream)
    with serving(_gateway_handler(cache)) as url:
        yield url, cache


def test_hits_and_misses_from_the_call_log_are_the_gateways_own(
    tmp_path: Path, upstream: str, gateway: tuple[str, _Cache]
) -> None:
    url, cache = gateway
    metrics = tmp_path / "metrics.json"
    # One user: requests never overlap, so each window holds its own call or none.
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless",
         "--only-summary", "-u", "1", "-r", "1", "-t", "60s", "CacheUser", "--host", url,
         "--hermes-upstream-url", upstream, "--hermes-requests", str(REQUESTS),
         "--hermes-catalogue-size", "8", "--hermes-metrics-json", str(metrics)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    document = json.loads(metrics.read_text())
    accounting = document["cache"]
    assert cache.hits > 0 and cache.misses > 0 and cache.hits + cache.misses == REQUESTS
    assert accounting["outcome_source"] == "upstream log", output
    assert accounting["chat_outcomes"] == {"HIT": cache.hits, "MISS": cache.misses}
    assert accounting["log_attributed"] == REQUESTS and accounting["not_attributed"] == 0
    assert accounting["log_compared"] == 0 and accounting["log_agreement"] is None
    assert accounting["upstream_calls"] == cache.misses
    assert accounting["calls_avoided"] == accounting["hits"] == cache.hits
    outcomes = document["metrics"]["scenarios"]["cache"]["outcomes"]
    assert outcomes["HIT"]["service"]["count"] == cache.hits
    assert "hit rate (upstream call log)" in output
