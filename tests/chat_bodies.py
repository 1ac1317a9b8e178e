"""A chat-completion request body for the tests of the wire and the fake upstream."""

from __future__ import annotations

from typing import Any


def body(**overrides: Any) -> dict[str, Any]:
    """A two-message chat request, with `overrides` on top."""
    base: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
    }
    return {**base, **overrides}
