"""Settings of one fake upstream process."""

from __future__ import annotations

from dataclasses import dataclass, field

from hermes_bench.errors import ConfigError
from hermes_bench.latency_spec import DEFAULT_LATENCY, LatencyModel, parse_latency
from hermes_bench.upstream.faults import FaultConfig

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o")
# Pieces (words) a second of a streamed answer, before time_scale: after the latency draw,
# which is the time to the first token, each further piece takes 1 / this.
DEFAULT_TOKEN_RATE = 50.0


@dataclass(frozen=True)
class UpstreamConfig:
    """Latency model, faults, random seed and the model names /v1/models lists (any is served)."""

    latency: LatencyModel = field(default_factory=lambda: parse_latency(DEFAULT_LATENCY))
    faults: FaultConfig = field(default_factory=FaultConfig)
    seed: int = 0
    models: tuple[str, ...] = DEFAULT_MODELS
    token_rate: float = DEFAULT_TOKEN_RATE

    def __post_init__(self) -> None:
        if not (self.token_rate > 0 and self.token_rate < float("inf")):
            raise ConfigError(
                f"token rate {self.token_rate!r}: a number of pieces a second, above 0"
            )
