"""Fault injection of the fake upstream: error responses and stalls, drawn per call."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields
from typing import Any

from hermes_bench.errors import ConfigError
from hermes_bench.latency_spec import MAX_LATENCY_S

ERROR_STATUSES = (429, 500, 503)
# An hour: OpenAI's own Retry-After is seconds to minutes.
MAX_RETRY_AFTER_S = 3600


@dataclass(frozen=True)
class FaultConfig:
    """Share of calls that fail (with `error_status`) or stall `stall_s` before answering."""

    error_rate: float = 0.0
    error_status: int = 500
    stall_rate: float = 0.0
    stall_s: float = 0.0
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        for name in ("error_rate", "stall_rate"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 <= value <= 1:
                raise ConfigError(f"{name} must be a number from 0 to 1, got {value!r}")
        if self.error_status not in ERROR_STATUSES or isinstance(self.error_status, bool):
            raise ConfigError(
                f"error_status must be one of {ERROR_STATUSES}, got {self.error_status!r}"
            )
        if not _is_number(self.stall_s) or not 0 <= self.stall_s <= MAX_LATENCY_S:
            raise ConfigError(
                f"stall_s must be a number of seconds from 0 to {MAX_LATENCY_S:g}, "
                f"got {self.stall_s!r}"
            )
        valid_retry = isinstance(self.retry_after_s, int) and not isinstance(
            self.retry_after_s, bool
        )
        if not valid_retry or not 0 <= self.retry_after_s <= MAX_RETRY_AFTER_S:
            raise ConfigError(
                f"retry_after_s must be a whole number of seconds from 0 to {MAX_RETRY_AFTER_S}, "
                f"got {self.retry_after_s!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields."""
        return asdict(self)

    def updated(self, changes: dict[str, Any]) -> FaultConfig:
        """A copy with `changes` applied; unknown field names raise ConfigError."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"unknown fault field(s) {unknown}: the fields are {sorted(known)}")
        return FaultConfig(**{**self.to_dict(), **changes})


@dataclass(frozen=True)
class Fault:
    """What happens to one call: an error status, or a stall before a normal answer."""

    kind: str  # "error" or "stall"
    status: int = 0
    stall_s: float = 0.0
    retry_after_s: int | None = None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def draw_fault(config: FaultConfig, rng: random.Random) -> Fault | None:
    """Decide one call's fault from a single draw: an error band, then a stall band.

    When error_rate + stall_rate exceeds 1, errors win and stalls get what is left.
    """
    draw = rng.random()
    if draw < config.error_rate:
        retry = config.retry_after_s if config.error_status == 429 else None
        return Fault("error", status=config.error_status, retry_after_s=retry)
    if draw < config.error_rate + config.stall_rate:
        return Fault("stall", stall_s=config.stall_s)
    return None
