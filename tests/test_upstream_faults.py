"""The fake upstream's faults, drawn per call."""

from __future__ import annotations

import random
from typing import Any

import pytest

from hermes_bench.errors import ConfigError
from hermes_bench.upstream.faults import FaultConfig, draw_fault


@pytest.mark.parametrize(
    "fields",
    [
        {"error_rate": 1.5},
        {"error_rate": -0.1},
        {"stall_rate": "half"},
        {"error_status": 404},
        {"stall_s": -1},
        {"stall_s": 1e308},
        {"stall_s": float("nan")},
        {"stall_s": 301},
        {"retry_after_s": 1.5},
        {"retry_after_s": 10**30},
        {"retry_after_s": 3601},
        {"error_rate": True},
    ],
)
def test_fault_config_validation(fields: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        FaultConfig(**fields)


def test_fault_config_update_rejects_unknown_fields() -> None:
    with pytest.raises(ConfigError, match="error_rate"):
        FaultConfig().updated({"eror_rate": 0.5})
    assert FaultConfig().updated({"error_rate": 0.5}).error_rate == 0.5


def test_no_faults_by_default() -> None:
    rng = random.Random(1)
    assert all(draw_fault(FaultConfig(), rng) is None for _ in range(1000))


def test_fault_frequencies_follow_the_rates() -> None:
    config = FaultConfig(error_rate=0.2, error_status=429, stall_rate=0.1, stall_s=0.5)
    rng = random.Random(3)
    faults = [draw_fault(config, rng) for _ in range(20_000)]
    errors = [f for f in faults if f is not None and f.kind == "error"]
    stalls = [f for f in faults if f is not None and f.kind == "stall"]
    assert len(errors) / len(faults) == pytest.approx(0.2, abs=0.015)
    assert len(stalls) / len(faults) == pytest.approx(0.1, abs=0.015)
    assert all(f.status == 429 and f.retry_after_s == 1 for f in errors)
    assert all(f.stall_s == 0.5 for f in stalls)


def test_retry_after_only_on_429() -> None:
    fault = draw_fault(FaultConfig(error_rate=1.0, error_status=503), random.Random(0))
    assert fault is not None and fault.status == 503 and fault.retry_after_s is None
