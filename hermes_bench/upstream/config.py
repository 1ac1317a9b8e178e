"""Settings of one fake upstream process."""

from __future__ import annotations

from dataclasses import dataclass, field

from hermes_bench.latency_spec import DEFAULT_LATENCY, LatencyModel, parse_latency
from hermes_bench.upstream.faults import FaultConfig

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o")


@dataclass(frozen=True)
class UpstreamConfig:
    """Latency model, faults, random seed and the model names /v1/models lists (any is served)."""

    latency: LatencyModel = field(default_factory=lambda: parse_latency(DEFAULT_LATENCY))
    faults: FaultConfig = field(default_factory=FaultConfig)
    seed: int = 0
    models: tuple[str, ...] = DEFAULT_MODELS
