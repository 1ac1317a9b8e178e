"""Settings of the reference target, read from the environment as the guide names them.

Precedence: command-line options (applied by the CLI on top) > environment > the defaults here.
Each field names its variable, its default and its range once; `from_env` reads them.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit

import limits
from limits.aio.strategies import STRATEGIES
from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticUseDefault
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from hermes_bench.errors import ConfigError
from hermes_bench.redaction import REDACTED, redact_text, redact_url

MEMORY_URL = "memory://"
# The fake upstream's default address: the target must never reach the real OpenAI.
DEFAULT_UPSTREAM_URL = "http://127.0.0.1:8900/v1"
# Any host of this domain is the real OpenAI (api., eu.api., ...).
_FORBIDDEN_UPSTREAM_DOMAIN = "openai.com"
_POOL_MODES = ("blocking", "nonblocking")
# The default RATE_LIMIT_STRATEGY, and the one whose Redis check reads the cache in the same trip.
FIXED_WINDOW = "fixed-window"
# What the rate limiter does when Redis cannot decide: admit (open) or refuse with 503 (closed).
_ON_REDIS_ERROR = ("open", "closed")
_RATE_LIMIT_OFF = ("", "none", "off")
_RATE_LIMIT_FORM = (
    "is not a rate limit; write it like '60/minute' or '5/second', or 'none' to turn it off"
)
# Fields shown redacted in repr: URLs may carry a password.
_URL_FIELDS = ("redis_url", "openai_base_url")
# pydantic's error types for a number out of its range
_BOUNDS = ("greater_than", "greater_than_equal", "less_than_equal")


def _blank_is_unset(value: Any) -> Any:
    """A variable set to blanks means the default, as when it is not set at all."""
    if isinstance(value, str) and not value.strip():
        raise PydanticUseDefault()
    return value


def _one_of(allowed: Iterable[str]) -> Callable[[str], str]:
    names = tuple(allowed)

    def check(value: str) -> str:
        if value not in names:
            raise ValueError(f"must be one of {', '.join(names)}")
        return value

    return check


def _not_the_real_openai(url: str) -> str:
    try:
        hostname = urlsplit(url).hostname
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
        raise ValueError(f"is not a URL ({exc}); write it like {DEFAULT_UPSTREAM_URL}") from None
    # A trailing dot names the same host to DNS, so it must not slip past the check.
    host = (hostname or "").rstrip(".")
    if host == _FORBIDDEN_UPSTREAM_DOMAIN or host.endswith("." + _FORBIDDEN_UPSTREAM_DOMAIN):
        raise ValueError(
            f"points at {host}: hermes-bench never calls the real OpenAI. "
            "Point it at the fake upstream (hermes-bench upstream) or another test double."
        )
    return url


def _rate_limit(spec: str) -> str:
    if spec.strip().lower() not in _RATE_LIMIT_OFF:
        try:
            limits.parse(spec)
        except ValueError:
            raise ValueError(_RATE_LIMIT_FORM) from None
    return spec


def _api_keys(value: Any) -> Any:
    """HERMES_API_KEYS as a set; unset or empty accepts any key, but a list of blanks is a
    mistake that would silently accept every key."""
    if not isinstance(value, str):
        return value
    keys = frozenset(k.strip() for k in value.split(",") if k.strip())
    if value.strip() and not keys:
        raise ValueError(
            "lists no key: write keys separated by commas, or unset it to accept any key"
        )
    return keys


def _this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _env(name: str, default: Any = ..., **constraints: Any) -> Any:
    """The Field of a setting read from the variable `name`, with its default and range."""
    return Field(default, validation_alias=name, **constraints)


_Unset = BeforeValidator(_blank_is_unset)
_Int = Annotated[int, _Unset]
_Float = Annotated[float, _Unset, Field(allow_inf_nan=False)]
_Seconds = Annotated[float, _Unset, Field(gt=0, allow_inf_nan=False)]
_Text = Annotated[str, _Unset]
_PoolMode = Annotated[_Text, AfterValidator(_one_of(_POOL_MODES))]
_Strategy = Annotated[_Text, AfterValidator(_one_of(sorted(STRATEGIES)))]
_OnRedisError = Annotated[_Text, AfterValidator(_one_of(_ON_REDIS_ERROR))]


class TargetSettings(BaseSettings):
    """Everything one target instance needs to know; each field names its variable."""

    # Built directly (tests, benchmarks), settings hold what they are given and nothing of
    # os.environ; `from_env` is the one reader of an environment.
    model_config = SettingsConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    redis_url: Annotated[str | None, _Unset] = _env("REDIS_URL", None)
    redis_max_connections: _Int = _env("REDIS_MAX_CONNECTIONS", 10, ge=1)
    redis_timeout_s: _Seconds = _env("REDIS_TIMEOUT", 5.0)
    redis_pool_mode: _PoolMode = _env("REDIS_POOL_MODE", "blocking")
    # Consecutive Redis failures that open the breaker (0: never), and how long it stays open.
    redis_breaker_failures: _Int = _env("REDIS_BREAKER_FAILURES", 3, ge=0)
    redis_breaker_cooldown_s: _Seconds = _env("REDIS_BREAKER_COOLDOWN_S", 2.0)
    openai_base_url: Annotated[_Text, AfterValidator(_not_the_real_openai)] = _env(
        "OPENAI_BASE_URL", DEFAULT_UPSTREAM_URL
    )
    openai_api_key: Annotated[SecretStr, _Unset] = _env(
        "OPENAI_API_KEY", SecretStr("sk-fake-upstream")
    )
    openai_timeout_s: _Seconds = _env("OPENAI_TIMEOUT", 60.0)
    openai_max_retries: _Int = _env("OPENAI_MAX_RETRIES", 0, ge=0)
    cache_ttl_s: _Int = _env("CACHE_TTL_S", 3600, ge=0)
    cache_max_entries: _Int = _env("CACHE_MAX_ENTRIES", 10_000, ge=1)
    # Not blank-is-unset: RATE_LIMIT="" turns the limiter off.
    rate_limit: Annotated[str, AfterValidator(_rate_limit)] = _env("RATE_LIMIT", "60/minute")
    rate_limit_strategy: _Strategy = _env("RATE_LIMIT_STRATEGY", FIXED_WINDOW)
    rate_limit_on_redis_error: _OnRedisError = _env("RATE_LIMIT_ON_REDIS_ERROR", "open")
    session_ttl_s: _Int = _env("SESSION_TTL_S", 1800, ge=1)
    session_max_entries: _Int = _env("SESSION_MAX_ENTRIES", 100_000, ge=1)
    max_body_bytes: _Int = _env("MAX_BODY_BYTES", 1_048_576, ge=1024)
    fault_cache_delay_ms: _Float = _env("HERMES_FAULT_CACHE_DELAY_MS", 0.0, ge=0, le=60_000)
    fault_cache_miss_share: _Float = _env("HERMES_FAULT_CACHE_MISS_SHARE", 0.0, ge=0, le=1)
    api_keys: Annotated[frozenset[str], BeforeValidator(_api_keys)] = _env(
        "HERMES_API_KEYS", frozenset()
    )
    # The key POST /stats/reset wants (Authorization: Bearer ...); unset: loopback callers only.
    admin_key: Annotated[SecretStr | None, _Unset] = _env("HERMES_ADMIN_KEY", None)
    instance_id: _Text = _env("HERMES_INSTANCE_ID", default_factory=_this_process)
    key_prefix: str = _env("HERMES_KEY_PREFIX", "hermes")

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError(_explain(exc)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values given: the environment comes in through `from_env`."""
        return (init_settings,)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TargetSettings:
        """Settings from `env` (default os.environ); ConfigError names a bad variable."""
        source = EnvironmentSource(cls, os.environ if env is None else env)
        return cls(**source())

    @property
    def backend_url(self) -> str:
        """The storage URL: REDIS_URL, or memory:// when it is unset (the guide's fallback)."""
        return self.redis_url or MEMORY_URL

    @property
    def uses_redis(self) -> bool:
        """True when a Redis URL (not memory://) is configured."""
        return not self.backend_url.startswith(MEMORY_URL)

    @property
    def rate_limit_enabled(self) -> bool:
        """False when RATE_LIMIT is empty or 'none'."""
        return self.rate_limit.strip().lower() not in _RATE_LIMIT_OFF

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            if name in _URL_FIELDS and isinstance(value, str):
                value = redact_url(value)
            elif name == "api_keys" and value:
                value = REDACTED
            yield name, value


class EnvironmentSource(PydanticBaseSettingsSource):
    """The variables a settings class declares, taken as strings from one mapping (os.environ,
    or one a test hands in); its fields' validators parse them."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        name = str(field.validation_alias)
        return self._env.get(name), name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, name, _ = self.get_field_value(field, field_name)
            if value is not None:
                found[name] = value
        return found


def parse_rate_limit(spec: str) -> limits.RateLimitItem:
    """Parse '60/minute', '10 per second' and the like; ConfigError names the accepted form."""
    try:
        return limits.parse(spec)
    except ValueError:
        raise ConfigError(f"RATE_LIMIT={spec!r} {_RATE_LIMIT_FORM}") from None


def _explain(exc: ValidationError) -> str:
    """One line per bad value: the variable, what it was set to and what is expected."""
    fields = TargetSettings.model_fields
    lines = []
    for error in exc.errors():
        key = str(error["loc"][0]) if error["loc"] else ""
        field = fields.get(key)
        name = str(field.validation_alias) if field is not None else key
        shown = redact_text(repr(error["input"]))
        lines.append(f"{name}={shown} {_expected(error)}")
    return "; ".join(lines)


def _expected(error: ErrorDetails) -> str:
    ctx = error.get("ctx", {})
    kind = error["type"]
    if kind in ("int_parsing", "int_from_float", "int_type"):
        return "is not a whole number"
    if kind in ("float_parsing", "float_type"):
        return "is not a number"
    if kind == "finite_number" or (kind in _BOUNDS and not _finite(error["input"])):
        return "is not a finite number"  # NaN fails every bound: say what is really wrong
    if kind == "greater_than":
        return f"must be above {_number(ctx['gt'])}"
    if kind == "greater_than_equal":
        return f"is below the minimum of {_number(ctx['ge'])}"
    if kind == "less_than_equal":
        return f"is above the maximum of {_number(ctx['le'])}"
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "extra_forbidden":
        return "is not a setting of the target"
    return str(error["msg"])


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True  # not a number at all: some other check says so


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
