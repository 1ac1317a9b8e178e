"""The fake upstream's latency model: specs, ranges, draws."""

from __future__ import annotations

import random
import statistics

import pytest

from hermes_bench.errors import ConfigError
from hermes_bench.latency_spec import (
    DEFAULT_LATENCY,
    MAX_LATENCY_S,
    LatencyModel,
    parse_latency,
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("zero", LatencyModel("zero")),
        ("fixed:20ms", LatencyModel("fixed", 20.0)),
        ("fixed:0.02s", LatencyModel("fixed", 20.0)),
        ("FIXED:1.5s", LatencyModel("fixed", 1500.0)),
        ("lognormal:700ms:0.45", LatencyModel("lognormal", 700.0, 0.45)),
    ],
)
def test_parse_latency(spec: str, expected: LatencyModel) -> None:
    assert parse_latency(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "slow",
        "fixed",
        "fixed:20",
        "fixed:-5ms",
        "fixed:20min",
        "lognormal:700ms",
        "lognormal:700ms:wide",
        "lognormal:700ms:-1",
        "lognormal:700ms:nan",
        "fixed:20ms:0.4",
        "zero:1ms",
        "lognormal:700ms:400",
        "lognormal:700ms:3.5",
        "fixed:301s",
        "lognormal:400s:0.4",
    ],
)
def test_parse_latency_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(ConfigError, match="fixed:20ms"):
        parse_latency(spec)


def test_latency_model_validates_fields() -> None:
    with pytest.raises(ConfigError):
        LatencyModel("uniform", 1.0)
    for scale in (-1, 1e308, 10.5, float("inf")):
        with pytest.raises(ConfigError, match="from 0 to 10"):
            parse_latency("fixed:20ms", time_scale=scale)


def test_limits_are_named_in_the_error() -> None:
    with pytest.raises(ConfigError, match="sigma 400 must be from 0 to 3"):
        parse_latency("lognormal:700ms:400")
    with pytest.raises(ConfigError, match="from 0 to 300 s"):
        parse_latency("fixed:400s")


def test_a_single_draw_is_clamped_to_the_maximum() -> None:
    model = parse_latency("lognormal:200s:3")
    rng = random.Random(5)
    draws = [model.sample_s(rng) for _ in range(2000)]
    assert max(draws) == MAX_LATENCY_S  # sigma 3 around 200 s reaches the cap often
    scaled = parse_latency("lognormal:200s:3", time_scale=0.01)
    assert max(scaled.sample_s(rng) for _ in range(2000)) == pytest.approx(MAX_LATENCY_S * 0.01)


def test_fixed_and_zero_samples_apply_time_scale() -> None:
    rng = random.Random(0)
    assert parse_latency("zero").sample_s(rng) == 0.0
    assert parse_latency("fixed:20ms").sample_s(rng) == pytest.approx(0.020)
    assert parse_latency("fixed:20ms", time_scale=0.5).sample_s(rng) == pytest.approx(0.010)


def test_lognormal_sample_median_is_near_the_median() -> None:
    model = parse_latency(DEFAULT_LATENCY, time_scale=0.1)
    rng = random.Random(42)
    draws = [model.sample_s(rng) for _ in range(20_001)]
    assert statistics.median(draws) == pytest.approx(0.070, rel=0.03)
    # A real tail: the 90th percentile sits near exp(1.2816 * sigma) times the median.
    p90 = statistics.quantiles(draws, n=10)[-1]
    assert p90 == pytest.approx(0.070 * 1.78, rel=0.05)


def test_lognormal_draws_are_reproducible_with_a_seed() -> None:
    model = parse_latency("lognormal:100ms:0.5")
    first = [model.sample_s(random.Random(7)) for _ in range(3)]
    assert first == [model.sample_s(random.Random(7)) for _ in range(3)]


def test_describe() -> None:
    assert parse_latency("fixed:20ms").describe() == "fixed 20 ms"
    assert parse_latency("lognormal:700ms:0.45", 0.1).describe() == (
        "lognormal median 700 ms sigma 0.45 (x0.1)"
    )
