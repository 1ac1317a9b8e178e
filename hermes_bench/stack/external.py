"""Targets someone else runs (a real HERMES, a gateway): the stack interface the cells need.

Nothing is started or stopped, and nothing can be reset or restarted: cells that need that do
not run against external targets, and the results say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hermes_bench.errors import HermesBenchError
from hermes_bench.http_json import HttpJsonError, get_json


@dataclass
class ExternalTargets:
    """Target URLs and, when they call it, the fake upstream whose ground truth to read."""

    target_urls: list[str]
    upstream_url: str = ""
    redis_url: str | None = None  # their Redis is theirs: never probed, never flushed
    key_prefix: str = ""

    def check(self) -> None:
        """Fail early, with the URL, when a target does not answer at all."""
        for url in self.target_urls:
            try:
                get_json(url + "/healthz", timeout_s=5)
            except HttpJsonError as exc:
                if "answered" not in str(exc):  # a 404 still means something listens there
                    raise HermesBenchError(
                        f"target {url} does not answer ({exc}); check the URL and that it runs"
                    ) from exc

    def target_stats(self) -> list[dict[str, Any]]:
        """Each target's /stats when it has one (the reference target does), else nothing."""
        stats = []
        for url in self.target_urls:
            try:
                stats.append(get_json(url + "/stats", timeout_s=5))
            except HttpJsonError:
                return []
        return stats

    def process_pids(self) -> dict[str, int]:
        """None of their processes are ours: nothing to sample (their load is unknown)."""
        return {}

    def restart_redis(self, persistence: str) -> None:
        """Their Redis is not ours to restart."""
        raise HermesBenchError("the Redis of external targets is not ours to restart")

    def restart_targets(self) -> None:
        """External targets are not ours to restart: cells must not rely on a reset."""
