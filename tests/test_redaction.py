"""Secrets never survive redaction: URL passwords (userinfo or query), bearer tokens, sk- keys."""

from __future__ import annotations

from collections.abc import Iterator

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


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("DB_PASSWD", True), ("MY_DSN", True), ("OPENAI_API_KEY", True), ("HERMES_API_KEYS", True),
        ("github-token", True), ("client_secret", True), ("AUTH", True), ("PGPASSWORD", True),
        ("aws_credentials", True), ("--redis-password", True),
        ("HERMES_KEY_PREFIX", False), ("TOKEN_FILE", False), ("REDIS_URL", False),
        ("MONKEY", False), ("PATH", False), ("AUTHOR", False),
    ],
)  # fmt: skip
def test_secret_looking_names(name: str, secret: bool) -> None:
    assert redaction.looks_secret(name) is secret


@pytest.fixture
def remembered() -> Iterator[None]:
    redaction.forget_secrets()
    yield
    redaction.forget_secrets()


def test_values_of_secret_names_are_hidden_wherever_they_appear(remembered: None) -> None:
    env = {
        "DB_PASSWD": "hunter2-db",
        "MY_DSN": "postgres://u:pg-pass-9@h/db",
        "REDIS_URL": "redis://:redis-pw-7@cache:6379/0",
        "SHORT_TOKEN": "abc",  # too short to hide by value: it would blank out words
        "HERMES_KEY_PREFIX": "hermes",
    }
    assert redaction.secrets_of(env) == {
        "hunter2-db", "postgres://u:pg-pass-9@h/db", "pg-pass-9", "redis-pw-7"
    }  # fmt: skip
    redaction.remember_secrets_of(env)
    text = "DB_PASSWD=hunter2-db; dsn postgres://u:pg-pass-9@h/db; said 'redis-pw-7' x abc"
    shown = redact_text(text)
    for secret in ("hunter2-db", "pg-pass-9", "redis-pw-7"):
        assert secret not in shown, shown
    assert "hermes" in redact_text("hermes-bench") and "abc" in shown
    assert "hunter2-db" not in redact_url("http://h/?q=hunter2-db")
    redaction.forget_secrets()
    assert redact_text("hunter2-db") == "hunter2-db"


def test_redact_text_is_linear_in_long_words() -> None:
    # The userinfo pattern used to retry at every letter of a word: 80 KB took seconds.
    for text in ("a" * 1_000_000, "a" * 500_000 + "://", "x://" * 100_000):
        assert redact_text(text) == text
    assert redact_text("a" * 100 + "://u:pw@h") == "a" * 100 + "://u:***@h"
