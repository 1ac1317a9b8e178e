"""Run the fake upstream as a process."""

from __future__ import annotations

from hermes_bench.serving import serve
from hermes_bench.upstream.app import create_upstream_app
from hermes_bench.upstream.config import UpstreamConfig


def run_upstream(config: UpstreamConfig, host: str, port: int) -> None:
    """Serve the fake upstream on host:port until SIGINT/SIGTERM (port 0 picks a free one)."""
    serve(create_upstream_app(config), host, port, name="fake OpenAI upstream")
