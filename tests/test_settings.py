"""TargetSettings.from_env: defaults, overrides, and errors that name the variable at fault."""

from __future__ import annotations

import pytest

from hermes_bench.app.settings import DEFAULT_UPSTREAM_URL, MEMORY_URL, TargetSettings
from hermes_bench.errors import ConfigError


def test_defaults_from_an_empty_environment() -> None:
    settings = TargetSettings.from_env({})
    assert settings.redis_url is None and settings.backend_url == MEMORY_URL
    assert not settings.uses_redis
    assert settings.openai_base_url == DEFAULT_UPSTREAM_URL
    assert settings.rate_limit == "60/minute" and settings.rate_limit_enabled
    assert settings.api_keys == frozenset()
    assert settings.redis_timeout_s == 5.0 and settings.max_body_bytes == 1_048_576


def test_values_from_the_environment() -> None:
    settings = TargetSettings.from_env(
        {
            "REDIS_URL": "redis://:pw@127.0.0.1:6379/0",
            "REDIS_TIMEOUT": "0.5",
            "REDIS_POOL_MODE": "nonblocking",
            "RATE_LIMIT": "none",
            "CACHE_TTL_S": "0",
            "HERMES_API_KEYS": " key-a , key-b,, ",
            "HERMES_INSTANCE_ID": "t-1",
        }
    )
    assert settings.uses_redis and settings.backend_url == "redis://:pw@127.0.0.1:6379/0"
    assert settings.redis_timeout_s == 0.5 and settings.redis_pool_mode == "nonblocking"
    assert not settings.rate_limit_enabled and settings.cache_ttl_s == 0
    assert settings.api_keys == frozenset({"key-a", "key-b"})
    assert settings.instance_id == "t-1"


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1",
        "https://API.OpenAI.com/v1",
        "https://api.openai.com./v1",
        "https://eu.api.openai.com/v1",
        "http://api.openai.com:443",
    ],
)
def test_the_real_openai_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="never calls the real OpenAI"):
        TargetSettings.from_env({"OPENAI_BASE_URL": url})


def test_a_look_alike_host_is_not_refused() -> None:
    settings = TargetSettings.from_env({"OPENAI_BASE_URL": "http://notopenai.com.local/v1"})
    assert settings.openai_base_url == "http://notopenai.com.local/v1"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"REDIS_MAX_CONNECTIONS": "ten"}, ["REDIS_MAX_CONNECTIONS", "whole number"]),
        ({"REDIS_MAX_CONNECTIONS": "0"}, ["REDIS_MAX_CONNECTIONS", "minimum of 1"]),
        ({"REDIS_TIMEOUT": "soon"}, ["REDIS_TIMEOUT", "number of seconds"]),
        ({"REDIS_TIMEOUT": "0"}, ["REDIS_TIMEOUT", "above 0"]),
        ({"REDIS_TIMEOUT": "nan"}, ["REDIS_TIMEOUT", "finite"]),
        ({"OPENAI_TIMEOUT": "inf"}, ["OPENAI_TIMEOUT", "finite"]),
        ({"REDIS_POOL_MODE": "eager"}, ["REDIS_POOL_MODE", "blocking, nonblocking"]),
        ({"OPENAI_MAX_RETRIES": "-1"}, ["OPENAI_MAX_RETRIES", "minimum of 0"]),
        ({"CACHE_TTL_S": "1.5"}, ["CACHE_TTL_S", "whole number"]),
        ({"MAX_BODY_BYTES": "10"}, ["MAX_BODY_BYTES", "minimum of 1024"]),
        ({"RATE_LIMIT": "lots"}, ["RATE_LIMIT", "60/minute"]),
        ({"RATE_LIMIT_STRATEGY": "token-bucket"}, ["RATE_LIMIT_STRATEGY", "fixed-window"]),
        ({"HERMES_API_KEYS": " , "}, ["HERMES_API_KEYS", "no key"]),
    ],
)
def test_bad_values_name_the_variable_and_the_fix(env: dict[str, str], names: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        TargetSettings.from_env(env)
    for name in names:
        assert name in str(info.value)
