"""What a chat request of one item sends and must get back, worked out once per item."""

from __future__ import annotations

import json

import pytest

from hermes_bench.scenarios.prepared_chat import prepared_chat
from hermes_bench.scenarios.workload import WorkItem, catalogue_prompt
from hermes_bench.wire.answer import answer_text
from hermes_bench.wire.chat import request_hash

ITEMS = [
    WorkItem(catalogue_prompt(1)),
    WorkItem("one-off 0.0.7: a question asked exactly once"),
    WorkItem('¿Qué guarda una caché? 日本語 "quoted" \\ back\nslash', model="gpt-4o"),
    WorkItem("from a trace", api_key="sk-trace-1", offset_s=2.5),
    WorkItem(""),
]


@pytest.mark.parametrize("item", ITEMS)
def test_the_body_is_what_json_equals_would_send(item: WorkItem) -> None:
    prepared = prepared_chat(item)
    assert prepared.body == json.dumps(item.body()).encode()
    assert json.loads(prepared.body) == item.body()
    assert prepared.stream_body() == json.dumps({**item.body(), "stream": True}).encode()


@pytest.mark.parametrize("item", ITEMS)
def test_the_answer_and_hash_are_the_upstreams(item: WorkItem) -> None:
    prepared = prepared_chat(item)
    assert prepared.answer == answer_text(item.body())
    assert prepared.request_hash() == request_hash(item.body())
    assert prepared.request_hash() is prepared.request_hash()  # one string for every lookup


def test_an_equal_item_gets_the_same_prepared_chat() -> None:
    first = prepared_chat(WorkItem("asked twice"))
    first.checked_body = b"a body found right"
    again = prepared_chat(WorkItem("asked twice"))
    assert again is first and again.checked_body == b"a body found right"
    assert prepared_chat(WorkItem("asked twice", model="other")) is not first
