"""Unit tests of the fake upstream's pure parts: answers, latency, faults, ground truth."""

from __future__ import annotations

import random
import statistics
from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from hermes_bench.errors import ConfigError
from hermes_bench.upstream.app import InvalidRequest, validate_chat_body
from hermes_bench.upstream.completion import completion_response, estimate_tokens
from hermes_bench.upstream.faults import FaultConfig, draw_fault
from hermes_bench.upstream.ground_truth import GroundTruth
from hermes_bench.upstream.latency import (
    DEFAULT_LATENCY,
    MAX_LATENCY_S,
    LatencyModel,
    parse_latency,
)
from hermes_bench.wire.answer import answer_text
from hermes_bench.wire.chat import canonical_request, request_hash
from hermes_bench.wire.json_body import JsonBodyError, parse_json_body


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
    }
    return {**base, **overrides}


# --- answers -------------------------------------------------------------------------------


def test_answer_is_deterministic_and_readable() -> None:
    text = answer_text(body())
    assert text == answer_text(body())
    assert text.startswith("hermes-fake:")
    assert text.endswith(" re: What is the capital of France?")


@pytest.mark.parametrize(
    "change",
    [
        {"model": "gpt-4o"},
        {"temperature": 0.2},
        {"messages": [{"role": "user", "content": "What is the capital of Spain?"}]},
        {"max_tokens": 10},
    ],
)
def test_answer_changes_with_what_changes_the_answer(change: dict[str, Any]) -> None:
    assert answer_text(body(**change)) != answer_text(body())


def test_answer_ignores_user_and_default_parameters() -> None:
    assert answer_text(body(user="alice")) == answer_text(body(user="bob"))
    assert answer_text(body(temperature=1)) == answer_text(body())


@pytest.mark.parametrize(
    "defaults",
    [{"stream": False}, {"logprobs": False}, {"stream": False, "logprobs": False, "n": 1}],
)
def test_explicit_defaults_hash_like_leaving_them_out(defaults: dict[str, Any]) -> None:
    assert request_hash(body(**defaults)) == request_hash(body())
    assert canonical_request(body(**defaults)) == canonical_request(body())
    # The upstream's answer is built on the same canonical form.
    assert answer_text(body(**defaults)) == answer_text(body())


def test_non_default_flags_hash_differently() -> None:
    assert request_hash(body(logprobs=True)) != request_hash(body())


def test_an_integer_past_the_float_range_still_hashes() -> None:
    huge = 10**400
    assert request_hash(body(temperature=huge)) != request_hash(body(temperature=2))
    assert answer_text(body(temperature=huge)).startswith("hermes-fake:")


def test_answer_quotes_at_most_48_chars_of_content_parts() -> None:
    parts = [{"type": "text", "text": "x" * 100}, {"type": "image_url", "image_url": {}}]
    text = answer_text(body(messages=[{"role": "user", "content": parts}]))
    assert text.endswith(" re: " + "x" * 48)


def test_completion_response_parses_as_openai_chat_completion() -> None:
    raw = completion_response(body(), completion_id="chatcmpl-1", created=1_700_000_000)
    completion = ChatCompletion.model_validate(raw)
    assert completion.choices[0].message.content == answer_text(body())
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o-mini"
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert raw == completion_response(body(), completion_id="chatcmpl-1", created=1_700_000_000)


def test_completion_response_with_n_choices() -> None:
    raw = completion_response(body(n=3), completion_id="c", created=0)
    completion = ChatCompletion.model_validate(raw)
    contents = [choice.message.content for choice in completion.choices]
    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    assert contents[0] == answer_text(body(n=3))
    assert len(set(contents)) == 3


def test_token_estimates_count_words_not_characters_or_spacing() -> None:
    assert estimate_tokens("") == estimate_tokens(" \n\t ") == 0
    assert estimate_tokens("a  b\tc\n") == estimate_tokens("a b c")
    assert estimate_tokens("internationalization") == estimate_tokens("a")
    counts = [estimate_tokens(" ".join(["word"] * words)) for words in range(1, 300)]
    assert min(counts) >= 1
    assert counts == sorted(counts)  # never fewer tokens for more words
    # More than a token per word, as real tokenizers give for English: 299 words.
    assert 299 < counts[-1] < 2 * 299


def test_usage_grows_with_the_prompt() -> None:
    short = completion_response(body(), completion_id="c", created=0)["usage"]
    long_prompt = body(messages=[*body()["messages"], {"role": "user", "content": "more " * 50}])
    longer = completion_response(long_prompt, completion_id="c", created=0)["usage"]
    assert longer["prompt_tokens"] > short["prompt_tokens"] + 50
    # Each message costs framing tokens, even an empty one.
    with_empty = body(messages=[*body()["messages"], {"role": "assistant", "content": ""}])
    framed = completion_response(with_empty, completion_id="c", created=0)["usage"]
    assert framed["prompt_tokens"] > short["prompt_tokens"]


@pytest.mark.parametrize(
    ("bad", "param"),
    [
        ({"model": None}, "model"),
        ({"model": ""}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages.[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.[0].content"),
        ({"n": 0}, "n"),
        ({"stream": True}, "stream"),
    ],
)
def test_validate_chat_body_rejects(bad: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_chat_body(body(**bad))
    assert info.value.param == param


# --- request bodies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"a": [1, 2.5, "x", null, true]}', {"a": [1, 2.5, "x", None, True]}),
        (b'"\\ud83d\\ude00"', "\U0001f600"),  # a valid surrogate pair is one character
        (b'"\\\\ud800"', "\\ud800"),  # an escaped backslash, not a surrogate escape
        (b'\xef\xbb\xbf{"a": 1}', {"a": 1}),  # a UTF-8 byte order mark is tolerated
        (b"1e308", 1e308),
    ],
)
def test_parse_json_body_accepts_standard_json(raw: bytes, expected: Any) -> None:
    assert parse_json_body(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[" * 50_000, "nested too deeply"),
        (b'{"t": NaN}', "NaN is not a JSON number"),
        (b'{"t": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"t": 1e400}', "out of the range of a 64-bit float"),
        (b'{"t": -1e400}', "out of the range of a 64-bit float"),
        (b'{"c": "\\ud800"}', "lone UTF-16 surrogate"),
        (b'{"c": "\\uDFFFx"}', "lone UTF-16 surrogate"),
        (b'{"c": "\xed\xa0\x80"}', "not UTF-8"),
        (b"\xff", "not UTF-8"),
        (b"{not json", "Expecting property name"),
        (b"1" * 5000, "digits"),
    ],
)
def test_parse_json_body_refuses_what_cannot_be_re_encoded(raw: bytes, reason: str) -> None:
    with pytest.raises(JsonBodyError, match=reason):
        parse_json_body(raw)


# --- latency -------------------------------------------------------------------------------


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
    with pytest.raises(ConfigError):
        parse_latency("fixed:20ms", time_scale=-1)


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


# --- faults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"error_rate": 1.5},
        {"error_rate": -0.1},
        {"stall_rate": "half"},
        {"error_status": 404},
        {"stall_s": -1},
        {"retry_after_s": 1.5},
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


# --- ground truth --------------------------------------------------------------------------


def test_ground_truth_counts_calls_distinct_and_duplicates() -> None:
    truth = GroundTruth()
    for digest, status in [("a", 200), ("a", 200), ("b", 500), ("c", 429), ("a", 429)]:
        truth.record(digest, status)
    assert truth.snapshot() == {
        "calls": 5,
        "ok_calls": 2,
        "error_calls": 3,
        "error_calls_by_status": {"429": 2, "500": 1},
        "distinct_requests": 3,
        "duplicate_calls": 2,
    }
    assert truth.snapshot(per_hash=True)["calls_per_hash"] == {"a": 3, "b": 1, "c": 1}


def test_ground_truth_reset() -> None:
    truth = GroundTruth()
    truth.record("a", 200)
    truth.reset()
    assert truth.snapshot(per_hash=True) == {
        "calls": 0,
        "ok_calls": 0,
        "error_calls": 0,
        "error_calls_by_status": {},
        "distinct_requests": 0,
        "duplicate_calls": 0,
        "calls_per_hash": {},
    }
