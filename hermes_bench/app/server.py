"""Run one target instance in this process."""

from __future__ import annotations

import logging

from hermes_bench.app.backends import check_scheme
from hermes_bench.app.rate_limit import parse_rate_limit
from hermes_bench.app.redis_client import create_pool
from hermes_bench.app.settings import TargetSettings
from hermes_bench.app.web import create_app
from hermes_bench.errors import ConfigError
from hermes_bench.redaction import redact_url
from hermes_bench.serving import serve


def configure_logging(level: str = "INFO") -> None:
    """Log lines as the guide prints them: '[INFO] message', for hermes-bench's own loggers.

    The root logger stays at WARNING: libraries on the measured path (the OpenAI SDK's HTTP
    client logs every call at INFO) must not write a line per request.
    """
    logging.basicConfig(level=logging.WARNING, format="[%(levelname)s] %(message)s", force=True)
    logging.getLogger("hermes_bench").setLevel(level.upper())


def validate_startup(settings: TargetSettings) -> None:
    """Raise ConfigError for anything the app's startup would fail on, before a port is bound."""
    check_scheme(settings.backend_url)  # names the known schemes
    if settings.rate_limit_enabled:
        parse_rate_limit(settings.rate_limit)
    if settings.uses_redis:
        try:
            # Builds the pool the app will use, which parses the URL; nothing connects yet.
            create_pool(settings)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"REDIS_URL={redact_url(settings.backend_url)!r} is not a Redis URL redis-py "
                f"accepts ({exc}); write it like redis://host:port/db, "
                "rediss://host:port/db or unix:///path/redis.sock"
            ) from None


def run_target(settings: TargetSettings, host: str, port: int) -> None:
    """Serve the reference target until SIGINT/SIGTERM."""
    configure_logging()
    validate_startup(settings)
    serve(create_app(settings), host, port, name=f"HERMES target {settings.instance_id}")
