"""The fake upstream's completion object and the request checks it answers 400 to."""

from __future__ import annotations

from typing import Any

import pytest
from chat_bodies import body
from openai.types.chat import ChatCompletion

from hermes_bench.upstream.app import InvalidRequest, validate_chat_body
from hermes_bench.upstream.completion import completion_response, estimate_tokens
from hermes_bench.wire.answer import answer_text
from hermes_bench.wire.stream import completion_chunks, text_pieces


def test_completion_response_parses_as_openai_chat_completion() -> None:
    raw = completion_response(body(), completion_id="chatcmpl-1", created=1_700_000_000)
    completion = ChatCompletion.model_validate(raw)
    assert completion.choices[0].message.content == answer_text(body())
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o-mini"
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert raw == completion_response(body(), completion_id="chatcmpl-1", created=1_700_000_000)


def test_completion_response_with_n_choices() -> None:
    raw = completion_response(body(n=3), completion_id="c", created=0)
    completion = ChatCompletion.model_validate(raw)
    contents = [choice.message.content for choice in completion.choices]
    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    assert contents[0] == answer_text(body(n=3))
    assert len(set(contents)) == 3


def test_token_estimates_count_words_not_characters_or_spacing() -> None:
    assert estimate_tokens("") == estimate_tokens(" \n\t ") == 0
    assert estimate_tokens("a  b\tc\n") == estimate_tokens("a b c")
    assert estimate_tokens("internationalization") == estimate_tokens("a")
    counts = [estimate_tokens(" ".join(["word"] * words)) for words in range(1, 300)]
    assert min(counts) >= 1
    assert counts == sorted(counts)  # never fewer tokens for more words
    # More than a token per word, as real tokenizers give for English: 299 words.
    assert 299 < counts[-1] < 2 * 299


def test_usage_grows_with_the_prompt() -> None:
    short = completion_response(body(), completion_id="c", created=0)["usage"]
    long_prompt = body(messages=[*body()["messages"], {"role": "user", "content": "more " * 50}])
    longer = completion_response(long_prompt, completion_id="c", created=0)["usage"]
    assert longer["prompt_tokens"] > short["prompt_tokens"] + 50
    # Each message costs framing tokens, even an empty one.
    with_empty = body(messages=[*body()["messages"], {"role": "assistant", "content": ""}])
    framed = completion_response(with_empty, completion_id="c", created=0)["usage"]
    assert framed["prompt_tokens"] > short["prompt_tokens"]


@pytest.mark.parametrize(
    ("bad", "param"),
    [
        ({"model": None}, "model"),
        ({"model": ""}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages.[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.[0].content"),
        ({"n": 0}, "n"),
        ({"stream": "yes"}, "stream"),
        ({"stream": True, "stream_options": "usage"}, "stream_options"),
    ],
)
def test_validate_chat_body_rejects(bad: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_chat_body(body(**bad))
    assert info.value.param == param


def test_a_stream_is_the_same_answer_in_word_pieces_then_the_usage() -> None:
    request = body(stream=True, stream_options={"include_usage": True})
    validate_chat_body(request)
    completion = completion_response(request, completion_id="c1", created=7)
    chunks = completion_chunks(completion, include_usage=True)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    pieces = [c["choices"][0]["delta"].get("content", "") for c in chunks[1:-2]]
    assert pieces == text_pieces(answer_text(body()))  # a word each, the space after it kept
    assert "".join(pieces) == answer_text(body())  # the answer of the same request, whole
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == completion["usage"]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert "usage" not in completion_chunks(completion, include_usage=False)[-1]
