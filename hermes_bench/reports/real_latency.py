"""The guide's latency figures projected onto the real upstream a run stands for: pure.

The fake upstream may run faster than the real one (a time scale below 1, for quick runs); the
parts measured per cell (latency_parts) do not depend on it, so the figures the guide quotes are
rebuilt from them at the un-scaled upstream: blended mean = h x HIT + (1 - h) x (upstream +
MISS overhead). Every function takes floats or numpy arrays of bootstrap draws alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from hermes_bench.latency_spec import parse_latency
from hermes_bench.results.model import CacheAccounting, RunOptionsRecord
from hermes_bench.results.vocabulary import BETTER, BORDERLINE, FAILS, HOLDS, Verdict

_N = TypeVar("_N", float, np.ndarray)


@dataclass(frozen=True)
class RealUpstream:
    """The upstream a run stands for: its latency model at time scale 1."""

    mean_ms: float
    p50_ms: float
    describe: str

    @classmethod
    def from_spec(cls, spec: str) -> RealUpstream:
        """From a latency spec such as "lognormal:700ms:0.45"; ConfigError if it is none."""
        model = parse_latency(spec).unscaled()
        return cls(model.mean_ms(), model.p50_ms(), model.describe())

    def streaming(self, tail_ms: float) -> RealUpstream:
        """The same upstream when it streams: the latency model is its time to first token and
        the whole answer takes `tail_ms` more on average (the median is left as the first
        token's: only means add up)."""
        return RealUpstream(
            self.mean_ms + tail_ms,
            self.p50_ms,
            f"streaming ({self.describe} to the first token, {tail_ms:.0f} ms more to the last)",
        )


class TailUnmeasured(Exception):
    """A streamed cell lacks the upstream's clock to its first token or to its last."""


def real_upstream(options: RunOptionsRecord, cache: CacheAccounting | None = None) -> RealUpstream:
    """The upstream a run stands for (ConfigError when its spec is unreadable); when the run
    streamed, with the time the answers of `cache`'s cell took after their first token."""
    real = RealUpstream.from_spec(options.upstream_latency)
    if cache is None or not options.stream:
        return real
    served = cache.upstream_served.mean_us if cache.upstream_served else None
    first = cache.upstream_first_token.mean_us if cache.upstream_first_token else None
    if served is None or first is None:
        raise TailUnmeasured(
            "the answers streamed, but the fake upstream did not time both its first tokens "
            "and its whole answers"
        )
    return real.streaming(stream_tail_ms(served, first, options.time_scale))


def stream_tail_ms(served_mean_us: float, first_token_mean_us: float, time_scale: float) -> float:
    """The mean time from a streamed answer's first token to its last at the real upstream: the
    fake upstream's own, measured at `time_scale` and un-scaled (its token gaps scale too)."""
    return max(served_mean_us - first_token_mean_us, 0.0) / 1000 / time_scale


def blended_mean_ms(hit_ms: _N, overhead_ms: _N, upstream_ms: float, hit_rate: _N) -> _N:
    """Mean response time when a share `hit_rate` is served from the cache."""
    return hit_rate * hit_ms + (1 - hit_rate) * (upstream_ms + overhead_ms)


def break_even_hit_rate(hit_ms: _N, overhead_ms: _N, upstream_ms: float, bound_ms: float) -> _N:
    """The hit rate at which the blended mean falls to `bound_ms`: 0 when a MISS is already
    below it, NaN when even a HIT is above it (no hit rate reaches it)."""
    miss_ms = upstream_ms + overhead_ms
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(
            miss_ms <= bound_ms,
            0.0,
            np.where(hit_ms >= bound_ms, np.nan, (miss_ms - bound_ms) / (miss_ms - hit_ms)),
        )
    return rate if isinstance(hit_ms, np.ndarray) else float(rate)


def repeat_speedup(hit_p50_ms: _N, overhead_p50_ms: _N, upstream_p50_ms: float) -> _N:
    """1 - p50(HIT) / p50(MISS), the MISS at the real upstream's median."""
    return 1 - hit_p50_ms / (upstream_p50_ms + overhead_p50_ms)


def upstream_for_speedup(hit_p50_ms: float, overhead_p50_ms: float, share: float) -> float:
    """The upstream median at and above which repeats are at least `share` faster."""
    return hit_p50_ms / (1 - share) - overhead_p50_ms


def band_verdict(interval: tuple[float, float], low: float, high: float) -> Verdict:
    """Against a band where lower is better: a verdict only when the interval is on one side
    of each bound; borderline when it straddles one."""
    lower, upper = interval
    if not (np.isfinite(lower) and np.isfinite(upper)):
        return BORDERLINE
    if upper < low:
        return BETTER
    if lower > high:
        return FAILS
    if low <= lower and upper <= high:
        return HOLDS
    return BORDERLINE


def at_least_verdict(interval: tuple[float, float], claimed: float) -> Verdict:
    """Against a share the guide promises at least: better when the whole interval clears it
    by a tenth, borderline when the interval straddles it."""
    lower, upper = interval
    if not (np.isfinite(lower) and np.isfinite(upper)):
        return BORDERLINE
    if upper < claimed:
        return FAILS
    if lower >= claimed:
        return BETTER if lower >= min(claimed * 1.1, 0.999) else HOLDS
    return BORDERLINE


def share_text(rate: float) -> str:
    """A hit rate as words: "93.8%", or "no hit rate" for a break-even nothing reaches."""
    return "no hit rate" if not np.isfinite(rate) else f"{rate:.1%}"
