"""The answer check of the cache users against a gateway that sometimes answers wrong.

A 200 body byte-equal to one already found right is right without a parse; any other body is
parsed and checked, so a wrong answer after many right ones is still caught.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_servers import QuietHandler, serving
from locust_runs import run_locust

from hermes_bench.wire.answer import answer_text

# In turn, request by request: the same right bytes twice, a wrong answer, the right answer in
# other bytes, a body that is not JSON.
_KINDS = ("right", "right", "wrong", "right, other bytes", "not json")
REQUESTS = 30


class _Gateway(QuietHandler):
    served = itertools.count()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        n = next(self.served)
        kind = _KINDS[n % len(_KINDS)]
        content = answer_text(body) if kind != "wrong" else "a cached answer to another prompt"
        answer: dict[str, Any] = {"choices": [{"message": {"content": content}}]}
        if kind == "right, other bytes":
            answer["id"] = f"chatcmpl-{n}"
        raw = b"{not json" if kind == "not json" else json.dumps(answer).encode()
        self.send_json(raw, X_Cache="HIT")


@pytest.fixture
def gateway() -> Iterator[str]:
    with serving(_Gateway) as url:
        yield url


@pytest.mark.e2e
def test_wrong_answers_are_caught_between_right_ones(tmp_path: Path, gateway: str) -> None:
    _, output, document = run_locust(
        tmp_path, "-u", "1", "-r", "1", "-t", "60s", "CacheUser", "--host", gateway,
        "--hermes-requests", str(REQUESTS), "--hermes-catalogue-size", "1",
        "--hermes-one-off-share", "0", timeout_s=120,
    )  # fmt: skip
    right = sum(1 for n in range(REQUESTS) if _KINDS[n % len(_KINDS)].startswith("right"))
    cache = document["metrics"]["scenarios"]["cache"]["outcomes"]
    assert cache["HIT"]["service"]["count"] == right, output
    assert cache["wrong_answer"]["service"]["count"] == REQUESTS - right
    assert document["metrics"]["counters"]["wrong_answers"] == REQUESTS - right
    assert "wrong answer for the prompt: 'a cached answer to another prompt'" in output
    assert "wrong answer for the prompt: 'None'" in output  # the body that is not JSON
