"""Targets checked before load: any HTTP answer is alive, no answer is fatal, with its reason."""

from __future__ import annotations

import http.server
import socket
from collections.abc import Iterator

import pytest
from http_servers import serving

from hermes_bench.scenarios.target_health import (
    Endpoint,
    TargetDownError,
    base_url,
    check_endpoints,
    check_upstream,
    probe,
    transport_reason,
)
from hermes_bench.stack.ports import free_port


class _NotFound(http.server.BaseHTTPRequestHandler):
    """A gateway without /healthz: every path is a 404."""

    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[str]:
    with serving(_NotFound) as url:
        yield url


@pytest.fixture
def silent() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_any_http_answer_counts_as_alive(gateway: str) -> None:
    assert probe(gateway + "/healthz") is None
    check_endpoints([Endpoint("target", gateway)])


def test_nothing_listening_is_refused() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    assert probe(dead + "/healthz") == "connection refused (nothing listens on that port)"


def test_a_name_dns_does_not_know() -> None:
    reason = probe("http://no-such-host.invalid:8000/healthz")
    assert reason is not None and reason.startswith("name not resolved (DNS")


def test_a_target_that_never_answers_times_out(silent: str) -> None:
    assert probe(silent + "/healthz", timeout_s=0.5) == "no answer within 0.5 s (timed out)"


def test_the_first_dead_endpoint_is_named_with_its_reason(gateway: str) -> None:
    dead = f"http://user:s3cret@127.0.0.1:{free_port()}"
    with pytest.raises(TargetDownError) as caught:
        check_endpoints([Endpoint("target", gateway), Endpoint("upstream", dead)])
    message = str(caught.value)
    assert message.startswith("upstream http://user:***@127.0.0.1:")
    assert "does not answer: connection refused" in message and "no load was sent" in message
    assert "s3cret" not in message


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (ConnectionResetError(104, "Connection reset by peer"), "connection reset by the peer"),
        (TimeoutError("timed out"), "no answer within 60 s (timed out)"),
        (socket.gaierror(-2, "Name or service not known"), "name not resolved (DNS: Name or"),
        (OSError(113, "No route to host"), "no route to host"),
        (ValueError("bad"), "ValueError: bad"),
        (None, "no answer (no reason given)"),
    ],
)
def test_each_transport_error_has_words(error: BaseException | None, reason: str) -> None:
    assert transport_reason(error, 60).startswith(reason)


def test_the_load_clients_own_errors_have_words_too() -> None:
    """FastHttpUser gives gevent's Timeout (not a TimeoutError) and geventhttpclient's
    HTTPConnectionClosed; named as they are, without importing gevent here."""

    class Timeout(BaseException):
        pass

    class HTTPConnectionClosed(Exception):
        pass

    assert transport_reason(Timeout(), 60) == "no answer within 60 s (timed out)"
    closed = HTTPConnectionClosed("connection closed.")
    assert transport_reason(closed) == "connection closed before an answer"


def test_a_failure_names_the_target_not_the_path() -> None:
    assert base_url("http://u:pw@10.0.0.1:8000/v1/chat/completions") == "http://u:***@10.0.0.1:8000"


def test_the_upstream_must_answer_as_the_fake_upstream(gateway: str) -> None:
    """Its counters are read: a server of another kind is refused, with what to give instead."""
    with pytest.raises(TargetDownError, match="answers, but not as the fake upstream"):
        check_upstream(gateway)
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TargetDownError) as caught:
        check_upstream(dead)
    assert str(caught.value).startswith(
        f"upstream (--hermes-upstream-url) {dead} does not answer: connection refused"
    )
