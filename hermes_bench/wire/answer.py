"""The one right answer to a chat request: a pure function of the canonical request.

The fake upstream answers with it, and clients check with it that an answer served from a cache
belongs to the request it was served for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hermes_bench.wire.chat import request_hash

ANSWER_PREFIX = "hermes-fake"
_QUOTE_CHARS = 48


def message_text(content: Any) -> str:
    """Text of a message's content: a string, or the text parts of a content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        ]
        return " ".join(parts)
    return ""


def _last_user_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return message_text(message.get("content"))
    return ""


def answer_text(body: Mapping[str, Any]) -> str:
    """The one right answer to `body`: its hash prefix plus a quote of the last user message."""
    quote = " ".join(_last_user_text(body.get("messages")).split())[:_QUOTE_CHARS]
    return f"{ANSWER_PREFIX}:{request_hash(body)[:16]} re: {quote}"
