"""TargetSettings.from_env: defaults, overrides, and errors that name the variable at fault."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from limits.aio.strategies import STRATEGIES
from pydantic import SecretStr

from hermes_bench.app.settings import MEMORY_URL, TargetSettings
from hermes_bench.errors import ConfigError

# The variables the guide names, as a user sets them (and the app's own, beside them).
GUIDE_VARIABLES = {
    "REDIS_URL",
    "REDIS_MAX_CONNECTIONS",
    "REDIS_TIMEOUT",
    "REDIS_POOL_MODE",
    "REDIS_BREAKER_FAILURES",
    "REDIS_BREAKER_COOLDOWN_S",
    "RATE_LIMIT_ON_REDIS_ERROR",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_TIMEOUT",
    "OPENAI_MAX_RETRIES",
    "CACHE_TTL_S",
    "CACHE_MAX_ENTRIES",
    "RATE_LIMIT",
    "RATE_LIMIT_STRATEGY",
    "SESSION_TTL_S",
    "SESSION_MAX_ENTRIES",
    "MAX_BODY_BYTES",
    "HERMES_FAULT_CACHE_DELAY_MS",
    "HERMES_FAULT_CACHE_MISS_SHARE",
    "HERMES_API_KEYS",
    "HERMES_ADMIN_KEY",
    "HERMES_INSTANCE_ID",
    "HERMES_KEY_PREFIX",
}
# Each variable set to a valid value other than its default, and what the setting becomes.
READ_VALUES: list[tuple[str, str, str, Any]] = [
    ("REDIS_URL", "redis://127.0.0.1:6390/2", "redis_url", "redis://127.0.0.1:6390/2"),
    ("REDIS_MAX_CONNECTIONS", "3", "redis_max_connections", 3),
    ("REDIS_TIMEOUT", "0.5", "redis_timeout_s", 0.5),
    ("REDIS_POOL_MODE", "nonblocking", "redis_pool_mode", "nonblocking"),
    ("REDIS_BREAKER_FAILURES", "0", "redis_breaker_failures", 0),
    ("REDIS_BREAKER_COOLDOWN_S", "0.25", "redis_breaker_cooldown_s", 0.25),
    ("RATE_LIMIT_ON_REDIS_ERROR", "closed", "rate_limit_on_redis_error", "closed"),
    ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1", "openai_base_url", "http://127.0.0.1:9/v1"),
    ("OPENAI_API_KEY", "sk-other", "openai_api_key", SecretStr("sk-other")),
    ("OPENAI_TIMEOUT", " 2.5 ", "openai_timeout_s", 2.5),
    ("OPENAI_MAX_RETRIES", "2", "openai_max_retries", 2),
    ("CACHE_TTL_S", "0", "cache_ttl_s", 0),
    ("CACHE_MAX_ENTRIES", "7", "cache_max_entries", 7),
    ("RATE_LIMIT", "5/second", "rate_limit", "5/second"),
    ("RATE_LIMIT_STRATEGY", "moving-window", "rate_limit_strategy", "moving-window"),
    ("SESSION_TTL_S", "9", "session_ttl_s", 9),
    ("SESSION_MAX_ENTRIES", "11", "session_max_entries", 11),
    ("MAX_BODY_BYTES", "2048", "max_body_bytes", 2048),
    ("HERMES_FAULT_CACHE_DELAY_MS", "12.5", "fault_cache_delay_ms", 12.5),
    ("HERMES_FAULT_CACHE_MISS_SHARE", "0.25", "fault_cache_miss_share", 0.25),
    ("HERMES_API_KEYS", " key-a , key-b,, ", "api_keys", frozenset({"key-a", "key-b"})),
    ("HERMES_ADMIN_KEY", "adm-1", "admin_key", SecretStr("adm-1")),
    ("HERMES_INSTANCE_ID", "t-1", "instance_id", "t-1"),
    ("HERMES_KEY_PREFIX", "other", "key_prefix", "other"),
]
# Set but blank, these mean "unset"; RATE_LIMIT and HERMES_KEY_PREFIX take "" as a value.
BLANK_IS_UNSET = sorted(GUIDE_VARIABLES - {"RATE_LIMIT", "HERMES_KEY_PREFIX"})


def test_every_variable_of_the_guide_is_a_setting() -> None:
    declared = {str(f.validation_alias) for f in TargetSettings.model_fields.values()}
    assert declared == GUIDE_VARIABLES
    assert {name for name, *_ in READ_VALUES} == GUIDE_VARIABLES


def test_an_empty_environment_gives_the_declared_defaults() -> None:
    assert TargetSettings.from_env({}) == TargetSettings()


def test_the_defaults_fall_back_to_memory_and_the_local_fake_upstream() -> None:
    settings = TargetSettings.from_env({})
    assert settings.redis_url is None and settings.backend_url == MEMORY_URL
    assert not settings.uses_redis
    assert urlsplit(settings.openai_base_url).hostname == "127.0.0.1"
    assert settings.rate_limit_enabled
    assert settings.api_keys == frozenset()  # any key is accepted
    assert settings.instance_id  # names this process when HERMES_INSTANCE_ID is unset


@pytest.mark.parametrize(("variable", "raw", "name", "expected"), READ_VALUES)
def test_each_variable_is_read(variable: str, raw: str, name: str, expected: Any) -> None:
    default = getattr(TargetSettings.from_env({}), name)
    assert expected != default  # or this would not show the variable was read
    assert getattr(TargetSettings.from_env({variable: raw}), name) == expected


@pytest.mark.parametrize("variable", BLANK_IS_UNSET)
@pytest.mark.parametrize("blank", ["", "  "])
def test_a_blank_variable_means_its_default(variable: str, blank: str) -> None:
    assert TargetSettings.from_env({variable: blank}) == TargetSettings.from_env({})


@pytest.mark.parametrize("spec", ["", "none", "off", "NONE"])
def test_rate_limit_can_be_turned_off(spec: str) -> None:
    assert not TargetSettings.from_env({"RATE_LIMIT": spec}).rate_limit_enabled


def test_redis_url_turns_redis_on() -> None:
    settings = TargetSettings.from_env({"REDIS_URL": "redis://:pw@127.0.0.1:6379/0"})
    assert settings.uses_redis and settings.backend_url == "redis://:pw@127.0.0.1:6379/0"


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_of_limits_is_accepted(strategy: str) -> None:
    assert TargetSettings.from_env({"RATE_LIMIT_STRATEGY": strategy}).rate_limit_strategy == (
        strategy
    )


def test_os_environ_is_read_by_from_env_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_TTL_S", "7")
    assert TargetSettings.from_env().cache_ttl_s == 7
    # Built directly (tests, benchmarks), settings hold only what they are given.
    assert TargetSettings().cache_ttl_s == TargetSettings.from_env({}).cache_ttl_s


def test_settings_built_directly_are_checked_too() -> None:
    assert TargetSettings(cache_ttl_s=60, rate_limit="3/minute").cache_ttl_s == 60
    with pytest.raises(ConfigError, match="REDIS_MAX_CONNECTIONS=0 is below the minimum of 1"):
        TargetSettings(redis_max_connections=0)


def test_secrets_stay_out_of_repr() -> None:
    settings = TargetSettings.from_env(
        {
            "REDIS_URL": "redis://:hunter2@127.0.0.1:6379/0",
            "OPENAI_API_KEY": "sk-upstream-secret",
            "HERMES_API_KEYS": "sk-client-secret",
        }
    )
    for text in (repr(settings), str(settings)):
        assert "127.0.0.1:6379" in text
        for secret in ("hunter2", "sk-upstream-secret", "sk-client-secret"):
            assert secret not in text
    assert settings.openai_api_key.get_secret_value() == "sk-upstream-secret"


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
    with pytest.raises(ConfigError, match=r"OPENAI_BASE_URL=.*never calls the real OpenAI"):
        TargetSettings.from_env({"OPENAI_BASE_URL": url})


def test_a_look_alike_host_is_not_refused() -> None:
    settings = TargetSettings.from_env({"OPENAI_BASE_URL": "http://notopenai.com.local/v1"})
    assert settings.openai_base_url == "http://notopenai.com.local/v1"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"REDIS_MAX_CONNECTIONS": "ten"}, "REDIS_MAX_CONNECTIONS='ten' is not a whole number"),
        ({"REDIS_MAX_CONNECTIONS": "0"}, "REDIS_MAX_CONNECTIONS='0' is below the minimum of 1"),
        ({"REDIS_TIMEOUT": "soon"}, "REDIS_TIMEOUT='soon' is not a number"),
        ({"REDIS_TIMEOUT": "0"}, "REDIS_TIMEOUT='0' must be above 0"),
        ({"REDIS_TIMEOUT": "nan"}, "REDIS_TIMEOUT='nan' is not a finite number"),
        ({"OPENAI_TIMEOUT": "inf"}, "OPENAI_TIMEOUT='inf' is not a finite number"),
        ({"REDIS_POOL_MODE": "eager"}, "REDIS_POOL_MODE='eager' must be one of blocking, nonb"),
        ({"REDIS_BREAKER_FAILURES": "-1"}, "REDIS_BREAKER_FAILURES='-1' is below the minimum of 0"),
        ({"REDIS_BREAKER_COOLDOWN_S": "0"}, "REDIS_BREAKER_COOLDOWN_S='0' must be above 0"),
        ({"RATE_LIMIT_ON_REDIS_ERROR": "shut"}, "_ON_REDIS_ERROR='shut' must be one of open, clo"),
        ({"OPENAI_MAX_RETRIES": "-1"}, "OPENAI_MAX_RETRIES='-1' is below the minimum of 0"),
        ({"CACHE_TTL_S": "1.5"}, "CACHE_TTL_S='1.5' is not a whole number"),
        ({"MAX_BODY_BYTES": "10"}, "MAX_BODY_BYTES='10' is below the minimum of 1024"),
        ({"HERMES_FAULT_CACHE_MISS_SHARE": "2"}, "_MISS_SHARE='2' is above the maximum of 1"),
        ({"HERMES_FAULT_CACHE_DELAY_MS": "nan"}, "_DELAY_MS='nan' is not a finite number"),
        ({"RATE_LIMIT": "lots"}, "RATE_LIMIT='lots' is not a rate limit; write it like '60/m"),
        ({"RATE_LIMIT_STRATEGY": "token-bucket"}, "RATE_LIMIT_STRATEGY='token-bucket' must be"),
        ({"HERMES_API_KEYS": " , "}, "HERMES_API_KEYS=' , ' lists no key"),
        ({"OPENAI_BASE_URL": "http://[::1/v1"}, "OPENAI_BASE_URL='http://[::1/v1' is not a URL"),
    ],
)
def test_bad_values_name_the_variable_and_the_fix(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        TargetSettings.from_env(env)
    assert expected in str(info.value)


def test_every_bad_value_is_named_in_one_error() -> None:
    with pytest.raises(ConfigError) as info:
        TargetSettings.from_env({"CACHE_TTL_S": "-1", "SESSION_TTL_S": "x"})
    assert "CACHE_TTL_S" in str(info.value) and "SESSION_TTL_S" in str(info.value)


def test_a_bad_url_value_is_shown_without_its_password() -> None:
    with pytest.raises(ConfigError) as info:
        TargetSettings.from_env({"OPENAI_BASE_URL": "https://user:hunter2@api.openai.com/v1"})
    assert "OPENAI_BASE_URL" in str(info.value) and "hunter2" not in str(info.value)
