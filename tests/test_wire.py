"""The wire leaves: the one right answer, the canonical request hash, strict JSON bodies."""

from __future__ import annotations

from typing import Any

import pytest
from chat_bodies import body

from hermes_bench.wire.answer import answer_text
from hermes_bench.wire.chat import canonical_request, request_hash
from hermes_bench.wire.json_body import JsonBodyError, parse_json_body


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
