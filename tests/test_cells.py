"""Cell helpers that read what the targets say about themselves."""

from __future__ import annotations

from typing import Any

import pytest

from hermes_bench.harness.cells import _target_stats, _total


class _Targets:
    """Targets whose GET /stats answers `stats` (the TargetSet a cell reads)."""

    def __init__(self, stats: list[dict[str, Any]]) -> None:
        self.target_urls = [f"http://127.0.0.1:{1 + i}" for i in range(len(stats))]
        self.upstream_url = ""
        self.redis_url: str | None = None
        self.key_prefix = ""
        self._stats = stats

    def target_stats(self) -> list[dict[str, Any]]:
        return self._stats

    def restart_targets(self) -> None:
        raise AssertionError("not restarted here")


REFERENCE: dict[str, Any] = {
    "instance": "target-0",
    "backend": "redis",
    "requests": 10,
    "hits": 7,
    "misses": 3,
    "redis_op_latency_us": {"GET": {"count": 10, "p50_us": 120}},
}


def test_reference_stats_are_typed_per_instance_asked_for() -> None:
    stats = _target_stats(_Targets([REFERENCE, {**REFERENCE, "instance": "target-1"}]), 1)
    assert [s.instance for s in stats] == ["target-0"]
    assert stats[0].redis_op_latency_us["GET"].p50_us == 120


def test_another_gateways_stats_are_left_out_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    other = {"requests": "lots", "uptime": "3 days"}
    assert _target_stats(_Targets([other]), 1) == []
    assert "left out" in caplog.text


def test_live_totals_count_only_counts() -> None:
    stats: list[dict[str, Any]] = [REFERENCE, {"requests": "lots"}, {"hits": 2}]
    assert (_total(stats, "requests"), _total(stats, "hits"), _total(stats, "misses")) == (10, 9, 3)
