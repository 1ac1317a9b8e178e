"""Whether the targets answer at all, checked before any load; why a request got no answer.

Any HTTP answer counts as alive (a gateway may have no /healthz: a 404 still means something
listens); no answer (refused, timed out, a name DNS does not know, a TLS failure) is fatal.
"""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from hermes_bench.errors import HermesBenchError
from hermes_bench.http_json import HttpJsonError, get_json
from hermes_bench.redaction import redact_url

PROBE_PATH = "/healthz"
UPSTREAM_OPTION = "upstream (--hermes-upstream-url)"
PROBE_TIMEOUT_S = 5.0


class TargetDownError(HermesBenchError):
    """A target (or the upstream) did not answer before the load started."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A URL to check, and what it is to the run (target, upstream)."""

    role: str
    url: str


def transport_reason(error: BaseException | None, timeout_s: float | None = None) -> str:
    """Why a request got no HTTP answer, in a few words: connection refused, timed out, DNS..."""
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        error = error.reason
    if error is None:
        return "no answer (no reason given)"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (nothing listens on that port)"
    if isinstance(error, socket.gaierror):
        return f"name not resolved (DNS: {error.strerror or error})"
    if isinstance(error, TimeoutError) or type(error).__name__ == "Timeout":  # gevent's too
        within = f" within {timeout_s:g} s" if timeout_s is not None else ""
        return f"no answer{within} (timed out)"
    if isinstance(error, ConnectionResetError):
        return "connection reset by the peer"
    if type(error).__name__ == "HTTPConnectionClosed":  # geventhttpclient's
        return "connection closed before an answer"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed ({error.reason or error})"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror[:1].lower() + error.strerror[1:]
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def base_url(url: str) -> str:
    """scheme://host:port of `url`, its password redacted: what a failure names."""
    parts = urlsplit(url)
    return redact_url(f"{parts.scheme}://{parts.netloc}") if parts.netloc else redact_url(url)


def _opener() -> urllib.request.OpenerDirector:
    # As Locust's FastHttpUser: no proxy from the environment, no certificate check
    # (insecure=True is its default), so what answers here answers the users too.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )


def _without_credentials(url: str) -> str:
    """`url` without user:password@ (urllib would take them for the host): any answer, a 401
    included, tells the target is there."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def probe(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when `url` gives any HTTP answer; else why not (transport_reason)."""
    try:
        with _opener().open(_without_credentials(url), timeout=timeout_s):
            return None
    except urllib.error.HTTPError:
        return None  # an answer, whatever its status
    except (OSError, ValueError) as exc:
        return transport_reason(exc, timeout_s)


def check_endpoints(
    endpoints: Iterable[Endpoint], probe_of: Callable[[str], str | None] = probe
) -> None:
    """TargetDownError naming the first endpoint that gives no answer to GET /healthz, and why."""
    for endpoint in endpoints:
        reason = probe_of(endpoint.url.rstrip("/") + PROBE_PATH)
        if reason is not None:
            raise TargetDownError(
                f"{endpoint.role} {redact_url(endpoint.url)} does not answer: {reason}. Check "
                "the URL and that it runs; no load was sent"
            )


def upstream_problem(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when `url` answers GET /ground-truth as the fake upstream does; else why not and
    what to do, in words that follow its URL ("does not answer: connection refused ...")."""
    try:
        answer = get_json(_without_credentials(url.rstrip("/")) + "/ground-truth", timeout_s)
    except HttpJsonError as exc:
        cause = exc.__cause__
        if isinstance(cause, OSError) and not isinstance(cause, urllib.error.HTTPError):
            reason = transport_reason(cause, timeout_s)
            return f"does not answer: {reason}. Check the URL and that it runs"
        answer = {"error": str(exc)}
    if not isinstance(answer.get("calls"), int):
        return (
            "answers, but not as the fake upstream (its GET /ground-truth gives no count of "
            "calls): give the base URL of `hermes-bench upstream`, without /v1, or leave the "
            "option out"
        )
    return None


def check_upstream(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """TargetDownError unless `url` answers as the fake upstream: the run reads its counters,
    so an answer of another kind is no better than none."""
    problem = upstream_problem(url, timeout_s)
    if problem is not None:
        raise TargetDownError(f"{UPSTREAM_OPTION} {redact_url(url)} {problem}; no load was sent")
