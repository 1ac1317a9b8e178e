"""Small JSON-over-HTTP calls with the standard library only.

The harness also runs inside Locust, whose gevent monkey-patching breaks some async HTTP
stacks at import time; urllib works everywhere. Proxies are ignored: every call is loopback.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from hermes_bench.errors import HermesBenchError

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class HttpJsonError(HermesBenchError):
    """A JSON call failed: no answer, a non-2xx status, or a body that is not JSON."""


def request_json(
    method: str, url: str, body: Any = None, timeout_s: float = 10.0
) -> dict[str, Any]:
    """Send `body` as JSON (if any) and return the JSON object answered."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            payload = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise HttpJsonError(f"{method} {url} answered {exc.code}: {exc.read()[:200]!r}") from exc
    except (OSError, ValueError) as exc:
        raise HttpJsonError(f"{method} {url} failed: {exc}") from exc
    if not isinstance(payload, dict):
        raise HttpJsonError(f"{method} {url} did not answer a JSON object")
    return payload


def get_json(url: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """GET `url` and return its JSON object."""
    return request_json("GET", url, timeout_s=timeout_s)


def post_json(url: str, body: Any = None, timeout_s: float = 10.0) -> dict[str, Any]:
    """POST `body` to `url` and return its JSON object."""
    return request_json("POST", url, body, timeout_s=timeout_s)
