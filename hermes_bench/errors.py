"""The project's errors: one base class, each message says what happened and what to do."""

from __future__ import annotations

from collections.abc import Iterator


class HermesBenchError(Exception):
    """Base of every error hermes-bench raises on purpose."""


class ConfigError(HermesBenchError):
    """A setting, URL or option has a value that cannot work."""


class UnknownSchemeError(ConfigError):
    """A backend URL names a scheme no backend serves."""

    def __init__(self, url: str, known: list[str]) -> None:
        from hermes_bench.redaction import redact_url

        super().__init__(
            f"unknown backend URL {redact_url(url)!r}: the scheme must be one of "
            f"{', '.join(s + '://' for s in known)}"
        )


class BackendUnavailableError(HermesBenchError):
    """A storage backend (Redis) failed or could not be reached while serving a request."""


class ProcessStartError(HermesBenchError):
    """A process the harness started exited or never became ready."""


class RedisBinaryNotFoundError(HermesBenchError):
    """No redis-server binary could be found to start a private Redis."""


def causes(exc: BaseException, depth: int = 8) -> Iterator[BaseException]:
    """`exc`, then what caused it, each in turn: a short walk, as drivers chain a few deep
    (SDK error -> transport -> aiohttp -> socket; redis-py's ConnectionError -> ssl)."""
    seen: BaseException | None = exc
    for _ in range(depth):
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or seen.__context__
