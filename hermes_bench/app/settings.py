"""Settings of the reference target, read from the environment as the guide names them.

Precedence: command-line options (applied by the CLI on top) > environment > the defaults here.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import limits

from hermes_bench.errors import ConfigError

MEMORY_URL = "memory://"
# The fake upstream's default address: the target must never reach the real OpenAI.
DEFAULT_UPSTREAM_URL = "http://127.0.0.1:8900/v1"
# Any host of this domain is the real OpenAI (api., eu.api., ...).
_FORBIDDEN_UPSTREAM_DOMAIN = "openai.com"
_POOL_MODES = ("blocking", "nonblocking")
_STRATEGIES = ("fixed-window", "moving-window", "sliding-window-counter")


@dataclass(frozen=True)
class TargetSettings:
    """Everything one target instance needs to know; see `from_env` for the variable names."""

    redis_url: str | None = None
    redis_max_connections: int = 10
    redis_timeout_s: float = 5.0
    redis_pool_mode: str = "blocking"
    openai_base_url: str = DEFAULT_UPSTREAM_URL
    openai_api_key: str = "sk-fake-upstream"
    openai_timeout_s: float = 60.0
    openai_max_retries: int = 0
    cache_ttl_s: int = 3600
    cache_max_entries: int = 10_000
    rate_limit: str = "60/minute"
    rate_limit_strategy: str = "fixed-window"
    session_ttl_s: int = 1800
    session_max_entries: int = 100_000
    max_body_bytes: int = 1_048_576
    fault_cache_delay_ms: float = 0.0
    fault_cache_miss_share: float = 0.0
    api_keys: frozenset[str] = frozenset()
    instance_id: str = ""
    key_prefix: str = "hermes"

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
        return self.rate_limit.strip().lower() not in ("", "none", "off")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TargetSettings:
        """Settings from `env` (default os.environ); ConfigError names a bad variable."""
        env = os.environ if env is None else env
        reader = _EnvReader(env)
        settings = cls(
            redis_url=env.get("REDIS_URL") or None,
            redis_max_connections=reader.integer("REDIS_MAX_CONNECTIONS", 10, minimum=1),
            redis_timeout_s=reader.number("REDIS_TIMEOUT", 5.0),
            redis_pool_mode=reader.choice("REDIS_POOL_MODE", "blocking", _POOL_MODES),
            openai_base_url=env.get("OPENAI_BASE_URL") or DEFAULT_UPSTREAM_URL,
            openai_api_key=env.get("OPENAI_API_KEY") or "sk-fake-upstream",
            openai_timeout_s=reader.number("OPENAI_TIMEOUT", 60.0),
            openai_max_retries=reader.integer("OPENAI_MAX_RETRIES", 0, minimum=0),
            cache_ttl_s=reader.integer("CACHE_TTL_S", 3600, minimum=0),
            cache_max_entries=reader.integer("CACHE_MAX_ENTRIES", 10_000, minimum=1),
            rate_limit=env.get("RATE_LIMIT", "60/minute"),
            rate_limit_strategy=reader.choice("RATE_LIMIT_STRATEGY", "fixed-window", _STRATEGIES),
            session_ttl_s=reader.integer("SESSION_TTL_S", 1800, minimum=1),
            session_max_entries=reader.integer("SESSION_MAX_ENTRIES", 100_000, minimum=1),
            max_body_bytes=reader.integer("MAX_BODY_BYTES", 1_048_576, minimum=1024),
            fault_cache_delay_ms=reader.share_or_ms("HERMES_FAULT_CACHE_DELAY_MS", upper=60_000),
            fault_cache_miss_share=reader.share_or_ms("HERMES_FAULT_CACHE_MISS_SHARE", upper=1),
            api_keys=_api_keys(env.get("HERMES_API_KEYS", "")),
            instance_id=env.get("HERMES_INSTANCE_ID") or f"{socket.gethostname()}:{os.getpid()}",
            key_prefix=env.get("HERMES_KEY_PREFIX", "hermes"),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise ConfigError for values that cannot work."""
        # A trailing dot names the same host to DNS, so it must not slip past the check.
        host = (urlsplit(self.openai_base_url).hostname or "").rstrip(".")
        if host == _FORBIDDEN_UPSTREAM_DOMAIN or host.endswith("." + _FORBIDDEN_UPSTREAM_DOMAIN):
            raise ConfigError(
                f"OPENAI_BASE_URL points at {host}: hermes-bench never calls the real OpenAI. "
                "Point it at the fake upstream (hermes-bench upstream) or another test double."
            )
        if self.redis_pool_mode not in _POOL_MODES:
            raise ConfigError(f"REDIS_POOL_MODE must be one of {', '.join(_POOL_MODES)}")
        if self.rate_limit_strategy not in _STRATEGIES:
            raise ConfigError(f"RATE_LIMIT_STRATEGY must be one of {', '.join(_STRATEGIES)}")
        if self.rate_limit_enabled:
            parse_rate_limit(self.rate_limit)


def parse_rate_limit(spec: str) -> limits.RateLimitItem:
    """Parse '60/minute', '10 per second' and the like; ConfigError names the accepted form."""
    try:
        return limits.parse(spec)
    except ValueError:
        raise ConfigError(
            f"RATE_LIMIT={spec!r} is not a rate limit; write it like '60/minute' or '5/second', "
            "or 'none' to turn it off"
        ) from None


def _api_keys(raw: str) -> frozenset[str]:
    """HERMES_API_KEYS as a set; unset or empty accepts any key, but a list of blanks is a
    mistake that would silently accept every key."""
    keys = frozenset(k.strip() for k in raw.split(",") if k.strip())
    if raw.strip() and not keys:
        raise ConfigError(
            f"HERMES_API_KEYS={raw!r} lists no key: write keys separated by commas, "
            "or unset it to accept any key"
        )
    return keys


class _EnvReader:
    """Typed reads of environment variables with errors that name the variable."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        raw = self._env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a whole number") from None
        if value < minimum:
            raise ConfigError(f"{name}={value} is below the minimum of {minimum}")
        return value

    def number(self, name: str, default: float) -> float:
        raw = self._env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a number of seconds") from None
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{name}={raw!r} must be a finite number of seconds above 0")
        return value

    def share_or_ms(self, name: str, *, upper: float) -> float:
        """A number from 0 to `upper` (a share, or milliseconds); unset means 0."""
        raw = self._env.get(name)
        if raw is None or raw.strip() == "":
            return 0.0
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a number") from None
        if not 0 <= value <= upper:
            raise ConfigError(f"{name}={value} must be from 0 to {upper:g}")
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self._env.get(name) or default
        if value not in allowed:
            raise ConfigError(f"{name}={value!r} must be one of {', '.join(allowed)}")
        return value
