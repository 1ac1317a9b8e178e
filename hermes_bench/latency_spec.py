"""The fake upstream's latency model: zero, fixed, or lognormal around a median; a leaf, so that
the reports can project a run onto the real upstream it stands for."""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

from hermes_bench.errors import ConfigError

# Close to a real short gpt-4o-mini chat completion: median 0.7 s, a long right tail.
DEFAULT_LATENCY = "lognormal:700ms:0.45"
KINDS = ("zero", "fixed", "lognormal")
ACCEPTED_FORMS = '"zero", "fixed:20ms", "fixed:0.02s", "lognormal:700ms:0.45" (median:sigma)'

# Past sigma 3 the tail is absurd (sigma 400 draws 1e121 s); real completions sit near 0.3-1.
MAX_SIGMA = 3.0
# No single call of the model lasts longer than this (before time_scale), whatever the draw:
# a client would have timed out long before.
MAX_LATENCY_S = 300.0
# A slower upstream than the model (a scale above 1) is for probing timeouts, not for hours.
MAX_TIME_SCALE = 10.0

_DURATION = re.compile(r"^\s*(?P<value>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>ms|s)\s*$")


@dataclass(frozen=True)
class LatencyModel:
    """How long the upstream takes per call; `time_scale` shrinks it for quick runs."""

    kind: str = "zero"
    median_ms: float = 0.0
    sigma: float = 0.0
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"latency kind {self.kind!r} is unknown: use one of {KINDS}")
        if not (math.isfinite(self.median_ms) and 0 <= self.median_ms <= MAX_LATENCY_S * 1000):
            raise ConfigError(
                f"latency (median) {self.median_ms:g} ms must be from 0 to {MAX_LATENCY_S:g} s"
            )
        if not (math.isfinite(self.sigma) and 0 <= self.sigma <= MAX_SIGMA):
            raise ConfigError(
                f"latency sigma {self.sigma:g} must be from 0 to {MAX_SIGMA:g} "
                "(0.45 is close to a real short completion)"
            )
        if not (math.isfinite(self.time_scale) and 0 <= self.time_scale <= MAX_TIME_SCALE):
            raise ConfigError(
                f"time_scale {self.time_scale!r} must be a number from 0 to {MAX_TIME_SCALE:g}"
            )

    def sample_s(self, rng: random.Random) -> float:
        """One latency draw in seconds, at most MAX_LATENCY_S before time_scale is applied."""
        if self.kind == "zero":
            return 0.0
        if self.kind == "fixed" or self.sigma == 0:
            return self.median_ms / 1000 * self.time_scale
        # The median of a lognormal is exp(mu), so mu = ln(median).
        if self.median_ms == 0:
            return 0.0
        draw_ms = rng.lognormvariate(math.log(self.median_ms), self.sigma)
        return min(draw_ms / 1000, MAX_LATENCY_S) * self.time_scale

    def mean_ms(self) -> float:
        """Expected latency of one call in ms, time_scale and the MAX_LATENCY_S cap applied."""
        if self.kind == "zero" or self.median_ms == 0:
            return 0.0
        cap_ms = MAX_LATENCY_S * 1000
        if self.kind == "fixed" or self.sigma == 0:
            return min(self.median_ms, cap_ms) * self.time_scale
        # E[min(X, c)] of a lognormal X: its mean below the cap plus c times P(X > c).
        mu, sigma = math.log(self.median_ms), self.sigma
        log_cap = math.log(cap_ms)
        below = math.exp(mu + sigma**2 / 2) * _normal_cdf((log_cap - mu - sigma**2) / sigma)
        above = cap_ms * (1 - _normal_cdf((log_cap - mu) / sigma))
        return (below + above) * self.time_scale

    def p50_ms(self) -> float:
        """Median latency of one call in ms, time_scale applied."""
        if self.kind == "zero":
            return 0.0
        return min(self.median_ms, MAX_LATENCY_S * 1000) * self.time_scale

    def unscaled(self) -> LatencyModel:
        """The same model at time_scale 1: the real upstream a scaled run stands for."""
        return LatencyModel(self.kind, self.median_ms, self.sigma)

    def describe(self) -> str:
        """A short human description, e.g. "lognormal median 700 ms sigma 0.45 (x0.1)"."""
        if self.kind == "zero":
            text = "zero"
        elif self.kind == "fixed":
            text = f"fixed {self.median_ms:g} ms"
        else:
            text = f"lognormal median {self.median_ms:g} ms sigma {self.sigma:g}"
        return text if self.time_scale == 1 else f"{text} (x{self.time_scale:g})"


def _normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _parse_duration_ms(text: str, spec: str) -> float:
    match = _DURATION.match(text)
    if match is None:
        raise ConfigError(
            f"latency {spec!r}: duration {text!r} needs a unit, as in 20ms or 0.02s; "
            f"accepted forms: {ACCEPTED_FORMS}"
        )
    value = float(match["value"])
    return value * 1000 if match["unit"] == "s" else value


def parse_latency(spec: str, time_scale: float = 1.0) -> LatencyModel:
    """Parse a latency spec such as "fixed:20ms" or "lognormal:700ms:0.45" (median, sigma)."""
    try:
        return _parse_latency(spec, time_scale)
    except ConfigError as exc:
        if ACCEPTED_FORMS in str(exc):
            raise
        raise ConfigError(f"latency {spec!r}: {exc}; accepted forms: {ACCEPTED_FORMS}") from None


def _parse_latency(spec: str, time_scale: float) -> LatencyModel:
    parts = spec.strip().lower().split(":")
    kind = parts[0]
    if kind == "zero" and len(parts) == 1:
        return LatencyModel("zero", time_scale=time_scale)
    if kind == "fixed" and len(parts) == 2:
        return LatencyModel("fixed", _parse_duration_ms(parts[1], spec), time_scale=time_scale)
    if kind == "lognormal" and len(parts) == 3:
        try:
            sigma = float(parts[2])
        except ValueError:
            raise ConfigError(
                f"latency {spec!r}: sigma {parts[2]!r} is not a number; "
                f"accepted forms: {ACCEPTED_FORMS}"
            ) from None
        median_ms = _parse_duration_ms(parts[1], spec)
        return LatencyModel("lognormal", median_ms, sigma, time_scale)
    raise ConfigError(f"latency {spec!r} is not understood; accepted forms: {ACCEPTED_FORMS}")
