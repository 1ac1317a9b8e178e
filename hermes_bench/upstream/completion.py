"""The fake upstream's chat.completion object: choices, usage and ids around the one answer."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hermes_bench.wire.answer import answer_text, message_text
from hermes_bench.wire.chat import canonical_request


def choice_text(body: Mapping[str, Any], index: int) -> str:
    """Content of choice `index`: the answer, suffixed with the index when n > 1."""
    text = answer_text(body)
    return text if index == 0 else f"{text} #{index}"


def estimate_tokens(text: str) -> int:
    """A plausible token count: about 4 tokens per 3 words, at least 1 for non-empty text."""
    words = len(text.split())
    return math.ceil(words * 4 / 3) if words else 0


def _choice_count(body: Mapping[str, Any]) -> int:
    n = canonical_request(body).get("n", 1)
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else 1


def completion_response(
    body: Mapping[str, Any], *, completion_id: str, created: int
) -> dict[str, Any]:
    """A full OpenAI `chat.completion` object answering `body` (n choices, usage included)."""
    messages = body.get("messages")
    prompt_tokens = 0
    if isinstance(messages, list):
        # A few tokens of framing per message, as OpenAI's own counts carry.
        for message in messages:
            if isinstance(message, Mapping):
                prompt_tokens += 3 + estimate_tokens(message_text(message.get("content")))
    texts = [choice_text(body, index) for index in range(_choice_count(body))]
    choices = [
        {
            "index": index,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop",
            "logprobs": None,
        }
        for index, text in enumerate(texts)
    ]
    completion_tokens = sum(estimate_tokens(text) for text in texts)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": str(body.get("model", "")),
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": "fp_hermes_fake",
    }
