"""Generated requests against a real target: whatever the body, headers or path, no 5xx.

Hypothesis draws JSON of every shape (and bytes that are not JSON), chat requests with fields
of the wrong types, sessions with odd ids and If-Match values, and headers of any printable
Latin-1 text; each goes over HTTP to a target process on the memory backend.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hermes_bench.stack.stack import Stack, StackConfig

pytestmark = pytest.mark.e2e

EXAMPLES = 150
_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)  # fmt: skip
# What HTTP lets a header value be: no leading or trailing space (the client refuses it).
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60
).map(str.strip)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "system", "assistant", "", "tool"]) | json_values},
        optional={"content": st.text(max_size=40) | json_values, "name": json_values},
    ),
    max_size=3,
)
chat_bodies = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["gpt-4o-mini", ""]) | json_values,
        "messages": messages | json_values,
    },
    optional={
        "temperature": json_values, "stream": st.booleans() | json_values, "n": json_values,
        "max_tokens": json_values, "stream_options": json_values,
    },
)  # fmt: skip
raw_bodies = (
    chat_bodies.map(lambda b: json.dumps(b).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
)


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    config = StackConfig(
        backend="memory", instances=1, upstream_latency="zero", target_env={"RATE_LIMIT": "none"}
    )
    with Stack(config) as stack:
        yield stack.target_urls[0]


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, trust_env=False) as client:
        yield client


def _headers(auth: str, extra: dict[str, str]) -> dict[str, bytes]:
    """As bytes: httpx sends a str value only when it is ASCII."""
    headers = {"Authorization": auth, "Content-Type": "application/json", **extra}
    return {name: value.encode("latin-1") for name, value in headers.items()}


@_SETTINGS
@given(
    body=raw_bodies,
    auth=st.just("Bearer sk-prop") | header_text.map(lambda t: f"Bearer {t}".strip()) | header_text,
    extra=st.dictionaries(
        st.sampled_from(["Cache-Control", "Content-Type", "Accept", "X-Request-Id", "Pragma"]),
        header_text, max_size=3,
    ),
)  # fmt: skip
def test_chat_completions_never_answer_5xx(
    target: str, http: httpx.Client, body: bytes, auth: str, extra: dict[str, str]
) -> None:
    answer = http.post(target + "/v1/chat/completions", content=body, headers=_headers(auth, extra))
    assert answer.status_code < 500, (answer.status_code, answer.text[:300])
    if answer.status_code >= 400:
        assert "error" in answer.json()


@_SETTINGS
@given(
    method=st.sampled_from(["GET", "PUT", "PATCH", "DELETE", "POST"]),
    session=st.sampled_from(["new"]) | st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#%"),
        max_size=30,
    ),
    body=json_values.map(lambda v: {"data": v}) | json_values,
    if_match=st.none() | header_text,
)  # fmt: skip
def test_sessions_never_answer_5xx(
    target: str, http: httpx.Client, method: str, session: str, body: Any, if_match: str | None
) -> None:
    headers = _headers("Bearer sk-prop", {} if if_match is None else {"If-Match": if_match})
    if session == "new":
        created = http.post(target + "/v1/sessions", json={"data": {"n": 1}}, headers=headers)
        session = created.json()["id"]
    path = target + "/v1/sessions" + ("" if method == "POST" else f"/{session}")
    answer = http.request(method, path, content=json.dumps(body).encode(), headers=headers)
    assert answer.status_code < 500, (answer.status_code, answer.text[:300])
