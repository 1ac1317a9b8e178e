"""Shared fixtures: a real Redis for the whole session (private, or REDIS_URL when set).

Markers: `e2e` on every test that starts a process (servers, Locust, Chromium, ruff and mypy);
`pytest -m "not e2e"` is the fast lane of pure units, memory backend only.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from hermes_bench.stack.embedded_redis import redis_from_env_or_private


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs Redis starts one (the private redis-server below): it is e2e too."""
    for item in items:
        if item.get_closest_marker("redis") and not item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """REDIS_URL when the environment sets it, else a private redis-server for this session."""
    with redis_from_env_or_private() as url:
        yield url


@pytest.fixture
def key_prefix() -> str:
    """A key prefix of this test's own, so tests sharing one Redis never see each other's keys."""
    return f"hermes-bench-test:{secrets.token_hex(4)}"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs twice: on memory:// and on a real Redis (marked `redis`)."""
    if request.param == "memory":
        return "memory://"
    url: str = request.getfixturevalue("redis_url")
    return url
