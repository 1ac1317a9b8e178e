"""Secrets never survive redaction: URL passwords (userinfo or query), bearer tokens, sk- keys."""

from __future__ import annotations

import pytest

from hermes_bench import redaction
from hermes_bench.redaction import redact_text, redact_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:sekret@host:6379/0", "redis://:***@host:6379/0"),
        ("rediss://default:sekret@host:6380/1", "rediss://default:***@host:6380/1"),
        ("redis://sekret@host:6379/0", "redis://***@host:6379/0"),
        ("redis://host:6379/0?password=sekret", "redis://host:6379/0?password=***"),
        (
            "redis://host/0?db=2&username=bob&password=sekret&ssl_cert_reqs=none",
            "redis://host/0?db=2&username=***&password=***&ssl_cert_reqs=none",
        ),
        ("redis://host/0?PASSWORD=sekret#frag", "redis://host/0?PASSWORD=***#frag"),
        ("unix://:sekret@/tmp/redis.sock?db=0", "unix://:***@/tmp/redis.sock?db=0"),
        ("unix:///tmp/redis.sock?db=0&password=sekret", "unix:///tmp/redis.sock?db=0&password=***"),
        # IPv6 keeps its brackets; a port out of range is still redacted, not an error.
        ("redis://:sekret@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
        ("redis://:sekret@h:99999/0", "redis://:***@h:99999/0"),
        # An unencoded @ in the password: everything up to the last @ is userinfo.
        ("redis://:sek@ret@host:6379/0", "redis://:***@host:6379/0"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert "sek" not in redact_url(url)


@pytest.mark.parametrize(
    "url",
    ["redis://host:6379/0", "memory://", "http://127.0.0.1:8900/v1", "unix:///tmp/r.sock?db=0"],
)
def test_urls_without_secrets_are_unchanged(url: str) -> None:
    assert redact_url(url) == url


def test_unparseable_url_falls_back_to_text_redaction() -> None:
    # urlsplit raises on the unbalanced bracket; the password must still go.
    assert redact_url("redis://:sekret@[::1:6379/0") == "redis://:***@[::1:6379/0"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Error connecting to redis://:sekret@10.0.0.5:6379/0: refused", "sekret"),
        ("cannot reach redis://10.0.0.5:6379/0?password=sekret (timeout)", "sekret"),
        ("retry failed for rediss://app:s3kr3t@cache.internal:6380 after 3 tries", "s3kr3t"),
        ("header was Authorization: Bearer abcdefgh12345678", "abcdefgh12345678"),
        ("header was authorization: bearer abcdefgh12345678", "abcdefgh12345678"),
        ("Incorrect API key provided: sk-proj-AbC123xyz_987-q", "AbC123xyz_987-q"),
        ("two: redis://:one1@a/0 and redis://:two2@b/0", "one1"),
        ("two: redis://:one1@a/0 and redis://:two2@b/0", "two2"),
    ],
)
def test_redact_text_removes_secrets_inside_messages(text: str, secret: str) -> None:
    redacted = redact_text(text)
    assert secret not in redacted
    assert redaction.REDACTED in redacted


def test_redact_text_keeps_what_helps_debugging() -> None:
    text = "Error 111 connecting to redis://:sekret@10.0.0.5:6379/0. Connection refused."
    assert redact_text(text) == (
        "Error 111 connecting to redis://:***@10.0.0.5:6379/0. Connection refused."
    )
    plain = "Timeout reading from 127.0.0.1:6379 after 5 s (see http://example.com/help)"
    assert redact_text(plain) == plain


def test_redact_key_is_gone() -> None:
    # It was never used: API keys are hashed (owner_id), never shown in part.
    assert not hasattr(redaction, "redact_key")
