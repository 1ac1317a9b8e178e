"""Checks before a run starts anything: the Redis URL and the targets are reached, the output
folders can be written. Each failure is one PreflightError: the URL (password redacted), why
it cannot be used and what to do, so a CI job stops in seconds instead of running failed cells.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hermes_bench.errors import ConfigError
from hermes_bench.redaction import redact_url
from hermes_bench.results.files import latest_problem
from hermes_bench.scenarios.options import http_url_problem
from hermes_bench.scenarios.target_health import PROBE_PATH, probe, upstream_problem

if TYPE_CHECKING:
    from hermes_bench.harness.claims_run import RunOptions

REDIS_TIMEOUT_S = 3.0  # to connect, and again for the answer to PING
HTTP_TIMEOUT_S = 5.0
# No user:password@ example: the redaction of every message would print it as ***.
REDIS_URL_FORMS = (
    "redis://HOST[:PORT][/DB] (a password as :PASSWORD@ before HOST), rediss://... for TLS, "
    "or unix:///path/redis.sock"
)
REDIS_URL_ENV = "HERMES_BENCH_REDIS_URL"
_REDIS_SCHEMES = ("redis", "rediss", "unix")
_NOT_RUN = "Nothing was run."


class PreflightError(ConfigError):
    """Something the run needs is missing or unreachable; found before the first cell."""


def check_run(options: RunOptions, junit: Path | None, sources: dict[str, str]) -> None:
    """Everything a run needs, checked before anything starts; the first failure stops it.

    `sources` names where each option came from, for messages (e.g. redis_url ->
    HERMES_BENCH_REDIS_URL).
    """
    from hermes_bench.harness.claims_run import plan_cells

    plans = plan_cells(options)
    if not plans:
        raise PreflightError(
            f"--cells {','.join(options.kinds)}: no cell of these kinds runs with these options "
            "(eviction only on the Redis the run starts; against --target only cache and "
            f"ratelimit). {_NOT_RUN}"
        )
    check_output_folder(options.output)
    if junit is not None:
        check_file_target(junit, "--junit")
    if options.targets:
        for url in options.targets:
            check_target(url)
        if options.upstream_url:
            check_upstream(options.upstream_url)
        return  # their Redis is theirs: the run never talks to it
    if not any(plan.backend == "redis" for plan in plans):
        return  # no cell talks to Redis: a Redis URL in the environment is not this run's
    from hermes_bench.errors import RedisBinaryNotFoundError
    from hermes_bench.stack.embedded_redis import NOT_FOUND_REASON, find_redis_server

    if not options.redis_url:
        find_redis_server()  # no binary: said now, with the ways to get one
        return
    check_redis(options.redis_url, sources.get("redis_url", "--redis-url"))
    if any(plan.kind == "outage" for plan in plans):
        try:
            find_redis_server()
        except RedisBinaryNotFoundError:
            raise PreflightError(
                "the outage cell stops and fills a Redis of its own, never the one --redis-url "
                f"names, and {NOT_FOUND_REASON}; or leave the cell out with --cells naming the "
                f"others. {_NOT_RUN}"
            ) from None


def redis_url_problem(url: str) -> str | None:
    """Why `url` is not a Redis URL redis-py can use, or None when its form is fine."""
    scheme = urlsplit(url).scheme if "://" in url else ""
    if scheme not in _REDIS_SCHEMES:
        shown = f"scheme {scheme + '://'!r}" if scheme else "no scheme"
        return f"it has {shown}, not redis://, rediss:// or unix://"
    try:
        redis.connection.parse_url(url)
    except ValueError as exc:
        return str(exc).rstrip(".")
    return None


def check_redis(url: str, source: str = "--redis-url") -> None:
    """Connect to the Redis at `url`, authenticate and PING it; PreflightError says why not.

    `source` names where the URL came from (an option, a variable, a config file).
    """
    shown = f"{redact_url(url)!r} ({source})"
    problem = redis_url_problem(url)
    if problem is not None:
        raise PreflightError(f"the Redis URL {shown} is not valid: {problem}. Write it as "
                             f"{REDIS_URL_FORMS}. {_NOT_RUN}")  # fmt: skip
    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        with client:
            client.ping()
    except redis.AuthenticationError as exc:
        raise PreflightError(f"the Redis at {shown} {_auth_problem(url, exc)} {_NOT_RUN}") from None
    except (redis.RedisError, OSError) as exc:
        raise PreflightError(
            f"the Redis at {shown} cannot be used: {_reason(exc)}. Start that Redis or fix the "
            "URL (host, port, database), or give no Redis URL and hermes-bench starts a "
            f"private one. {_NOT_RUN}"
        ) from None


def _auth_problem(url: str, exc: redis.AuthenticationError) -> str:
    """What the refusal means for this URL, and what to change."""
    if "@" in urlsplit(url).netloc or "password=" in url.lower():
        return f"refused the user name or password ({_reason(exc)}): fix them in the URL."
    # Without a password redis-py's words are about HELLO or NOAUTH: the cause is plainer.
    return (
        "wants a password and the URL gives none: put :PASSWORD@ before the host, and pass the "
        f"URL in {REDIS_URL_ENV} rather than on the command line to keep it out of `ps`."
    )


def _reason(exc: BaseException) -> str:
    """A driver error in a few words: redis-py's own text, a timeout said as one."""
    if isinstance(exc, redis.TimeoutError | TimeoutError):
        return f"no answer within {REDIS_TIMEOUT_S:g} s"
    text = " ".join(str(exc).split()).rstrip(".")
    return text or type(exc).__name__


def check_target(url: str, option: str = "--target") -> None:
    """GET the target's /healthz: any HTTP answer will do (a gateway may have no such path)."""
    problem = http_url_problem(url)
    if problem is not None:
        raise PreflightError(
            f"{option} {url!r} is not a URL: {problem}. Write it like http://HOST:8000. {_NOT_RUN}"
        )
    # The probe Locust's own check makes, so both commands say the same words.
    reason = probe(url.rstrip("/") + PROBE_PATH, HTTP_TIMEOUT_S)
    if reason is not None:
        raise PreflightError(
            f"{option} {redact_url(url)} does not answer ({reason}). Check the URL and that "
            f"the target runs. {_NOT_RUN}"
        )


def check_upstream(url: str) -> None:
    """The fake upstream answers at `url`: the run reads its counters after every cell."""
    option = "--upstream-url"
    problem = http_url_problem(url)
    if problem is not None:
        raise PreflightError(
            f"{option} {url!r} is not a URL: {problem}. Write it like http://HOST:8900. {_NOT_RUN}"
        )
    problem = upstream_problem(url, HTTP_TIMEOUT_S)
    if problem is not None:
        raise PreflightError(f"{option} {redact_url(url)} {problem}. {_NOT_RUN}")


def check_output_folder(path: Path, option: str = "--output") -> None:
    """The run's output folder can be made and written to, and its `latest` can be a link."""
    _check_creatable(path, option)
    problem = latest_problem(path)
    if problem is not None:
        raise PreflightError(f"{option} {path}: {problem}. {_NOT_RUN}")


def check_file_target(path: Path, option: str) -> None:
    """A file the run writes at its end (e.g. --junit) can be written: found now, not then."""
    if path.is_dir():
        raise PreflightError(f"{option} {path} is a folder: give a file name. {_NOT_RUN}")
    _check_creatable(path.parent, option)


def _check_creatable(path: Path, option: str) -> None:
    """`path` is a writable folder, or can be made as one under the nearest folder that is."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise PreflightError(f"{option} {path}: {existing} is a file, not a folder. {_NOT_RUN}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PreflightError(
            f"{option} {path}: {existing} is not writable for this user. {_NOT_RUN}"
        )
