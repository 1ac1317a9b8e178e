"""Workloads: Zipf draws are reproducible and follow their law; traces are parsed or rejected
with the file, line and field at fault."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import traceback
from collections import Counter
from pathlib import Path

import pytest

from hermes_bench.errors import ConfigError
from hermes_bench.scenarios.trace_file import TraceError, TraceRow, load_trace
from hermes_bench.scenarios.workload import (
    TraceWorkload,
    WorkItem,
    ZipfWorkload,
    catalogue_prompt,
    zipf_sequence,
)

# More than one 4096-draw block, so refills are exercised too.
RUN = 10_000


def _prompts(workload: ZipfWorkload, n: int) -> list[str]:
    return [workload.next_item().prompt for _ in range(n)]


def _catalogue(size: int) -> set[str]:
    return {catalogue_prompt(k) for k in range(1, size + 1)}


def _rank_counts(workload: ZipfWorkload, n: int) -> Counter[int]:
    rank_of = {catalogue_prompt(k): k for k in range(1, workload.catalogue_size + 1)}
    return Counter(rank_of.get(workload.next_item().prompt, 0) for _ in range(n))  # 0: one-off


def _chi2_limit(df: int, z: float = 3.72) -> float:
    """Chi-square quantile (Wilson–Hilferty); z = 3.72 is the 99.99th percentile."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def _zipf_probabilities(alpha: float, size: int) -> list[float]:
    weights = [k**-alpha for k in range(1, size + 1)]
    total = sum(weights)
    return [w / total for w in weights]


def test_same_seed_and_stream_give_the_same_sequence() -> None:
    assert _prompts(ZipfWorkload(seed=7, stream=3), RUN) == _prompts(
        ZipfWorkload(seed=7, stream=3), RUN
    )


@pytest.mark.e2e
def test_sequence_is_the_same_in_another_process() -> None:
    code = (
        "from hermes_bench.scenarios.workload import ZipfWorkload\n"
        "w = ZipfWorkload(seed=5, stream=2)\n"
        "print('\\n'.join(w.next_item().prompt for _ in range(200)))\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert child.stdout.splitlines() == _prompts(ZipfWorkload(seed=5, stream=2), 200)


def test_streams_differ_but_share_the_catalogue() -> None:
    first = ZipfWorkload(seed=1, stream=0, catalogue_size=50)
    second = ZipfWorkload(seed=1, stream=1, catalogue_size=50)
    a, b = _prompts(first, RUN), _prompts(second, RUN)
    assert a != b
    catalogue = _catalogue(50)
    shared_a, shared_b = set(a) & catalogue, set(b) & catalogue
    assert shared_a & shared_b  # the popular prompts are the very same strings
    one_offs_a, one_offs_b = set(a) - catalogue, set(b) - catalogue
    assert one_offs_a and one_offs_b and not one_offs_a & one_offs_b


def test_catalogue_prompt_depends_on_the_rank_only() -> None:
    assert catalogue_prompt(12) == catalogue_prompt(12)
    assert catalogue_prompt(12).startswith("catalogue question 12:")
    assert len({catalogue_prompt(k) for k in range(1, 1001)}) == 1000


@pytest.mark.parametrize("alpha", [0.8, 1.0, 1.3])
def test_rank_frequencies_follow_zipf(alpha: float) -> None:
    size, draws, top = 1000, 200_000, 40
    counts = _rank_counts(ZipfWorkload(alpha=alpha, catalogue_size=size, one_off_share=0), draws)
    expected = [p * draws for p in _zipf_probabilities(alpha, size)]
    for k in range(1, 6):  # the head, where a cache earns its hits: 4 sigma is at most 7% here
        assert abs(counts[k] - expected[k - 1]) < 4 * math.sqrt(expected[k - 1]), k
    # Chi-square over the top ranks one by one and the tail as one bin.
    observed = [counts[k] for k in range(1, top + 1)] + [
        draws - sum(counts[k] for k in range(1, top + 1))
    ]
    wanted = [*expected[:top], sum(expected[top:])]
    chi2 = sum((o - e) ** 2 / e for o, e in zip(observed, wanted, strict=True))
    assert chi2 < _chi2_limit(df=top)


def test_alpha_zero_is_uniform() -> None:
    size, draws = 100, 100_000
    counts = _rank_counts(ZipfWorkload(alpha=0, catalogue_size=size, one_off_share=0), draws)
    assert set(counts) == set(range(1, size + 1))
    expected = draws / size
    chi2 = sum((counts[k] - expected) ** 2 / expected for k in range(1, size + 1))
    assert chi2 < _chi2_limit(df=size - 1)
    assert max(counts.values()) < 1.2 * expected and min(counts.values()) > 0.8 * expected


@pytest.mark.parametrize("share", [0.0, 0.1, 0.35, 1.0])
def test_one_off_share_is_respected(share: float) -> None:
    catalogue = _catalogue(1000)
    one_offs = sum(
        p not in catalogue for p in _prompts(ZipfWorkload(one_off_share=share, seed=3), 100_000)
    )
    assert one_offs / 100_000 == pytest.approx(share, abs=0.01)


def test_one_offs_never_repeat_and_catalogue_prompts_do() -> None:
    workload = ZipfWorkload(alpha=0.9, catalogue_size=300, one_off_share=0.2, seed=11)
    prompts, catalogue = _prompts(workload, RUN), _catalogue(300)
    one_offs = [p for p in prompts if p not in catalogue]
    assert len(set(one_offs)) == len(one_offs) > 0  # numbered on, across refills too
    assert len(prompts) - len(one_offs) > 300  # while catalogue prompts repeat


def test_describe_and_body() -> None:
    workload = ZipfWorkload(alpha=1.2, catalogue_size=10, one_off_share=0.5, seed=4, stream=2)
    assert workload.describe() == {
        "kind": "zipf",
        "alpha": 1.2,
        "catalogue_size": 10,
        "one_off_share": 0.5,
        "seed": 4,
        "stream": 2,
        "model": "gpt-4o-mini",
    }
    assert WorkItem("hi", model="m").body() == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert "sk-secret" not in repr(WorkItem("hi", api_key="sk-secret"))


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"alpha": -0.5}, "alpha"),
        ({"alpha": math.inf}, "alpha"),
        ({"catalogue_size": 0}, "catalogue_size"),
        ({"one_off_share": 1.5}, "one_off_share"),
        ({"one_off_share": -0.1}, "one_off_share"),
        ({"seed": -1}, "seed"),
        ({"stream": -1}, "stream"),
    ],
)
def test_bad_zipf_parameters_are_rejected(kwargs: dict[str, float], names: str) -> None:
    with pytest.raises(ConfigError, match=names) as caught:
        ZipfWorkload(**kwargs)  # type: ignore[arg-type]
    assert repr(next(iter(kwargs.values()))) in str(caught.value)


def test_good_jsonl_trace(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_text(
        '{"prompt": "a", "model": "m1", "key": "k1", "session": "s1", "offset_s": 0}\n'
        "\n"
        '{"prompt": "b", "model": null, "offset_s": 1.5}\n'
        '{"prompt": "a", "offset_s": 1.5}\n',
        encoding="utf-8",
    )
    assert load_trace(path) == [
        WorkItem("a", "m1", api_key="k1", offset_s=0.0),  # session: checked, not replayed
        WorkItem("b", offset_s=1.5),
        WorkItem("a", offset_s=1.5),
    ]


def test_good_csv_trace(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(
        'prompt,model,key,session\n"hello, world",,k1,\n"two\nlines",m2,,s2\n', encoding="utf-8"
    )
    assert load_trace(str(path)) == [
        WorkItem("hello, world", api_key="k1"),
        WorkItem("two\nlines", "m2"),
    ]


def test_ndjson_extension_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson"
    path.write_text('{"prompt": "x"}\n', encoding="utf-8")
    assert load_trace(path) == [WorkItem("x")]


BAD_TRACES = [
    # (file name, content, line, field, words the message must hold)
    ("t.jsonl", '{"prompt": "a"}\n{"model": "m"}\n', 2, "prompt", "missing"),
    ("t.jsonl", '{"prompt": "a"}\n{"prompt": ""}\n', 2, "prompt", "non-empty string"),
    ("t.jsonl", '{"prompt": 5}\n', 1, "prompt", "non-empty string, got 5"),
    ("t.csv", "prompt,model\na,m\n  ,m\n", 3, "prompt", "non-empty string"),
    ("t.jsonl", '{"prompt": "a", "offset_s": "soon"}\n', 1, "offset_s", "got 'soon'"),
    ("t.csv", "prompt,offset_s\na,0\nb,soon\n", 3, "offset_s", "expected a number >= 0"),
    ("t.jsonl", '{"prompt": "a", "offset_s": -1}\n', 1, "offset_s", "got -1"),
    ("t.jsonl", '{"prompt": "a", "offset_s": true}\n', 1, "offset_s", "got True"),
    (
        "t.jsonl",
        '{"prompt": "a", "offset_s": 2}\n{"prompt": "b", "offset_s": 1}\n',
        2,
        "offset_s",
        "line 1), got 1.0; rows go in send order",
    ),
    (
        "t.jsonl",
        '{"prompt": "a", "offset_s": 0}\n{"prompt": "b"}\n',
        2,
        "offset_s",
        "missing here but present on line 1",
    ),
    (
        "t.csv",
        "prompt,offset_s\na,\nb,3\n",
        3,
        "offset_s",
        "present here but absent on line 2",
    ),
    ("t.jsonl", '{"prompt": "a", "promt": "b", "x": 1}\n', 1, "promt", "also unknown: 'x'"),
    ("t.csv", "prompt,sesion\na,b\n", 1, "sesion", "unknown column"),
    ("t.csv", "model\nm\n", 1, "prompt", "no such column"),
    ("t.jsonl", '{"prompt": "a"}\n{"prompt": "b",}\n', 2, None, "invalid JSON"),
    ("t.jsonl", '["a"]\n', 1, None, "expected a JSON object"),
    ("t.csv", "prompt,model\na,m,extra\n", 2, None, "expected 2 cells"),
    ("t.jsonl", '{"prompt": "a", "key": ""}\n', 1, "key", "got a blank string"),
    ("t.jsonl", '{"prompt": "a", "key": "sk-1\\r\\nX-Evil: 1"}\n', 1, "key", "a control"),
    ("t.jsonl", '{"prompt": "a", "key": "%s"}\n' % ("k" * 600), 1, "key", "600 characters"),
    ("t.jsonl", '{"prompt": "a", "session": 5}\n', 1, "session", "non-empty string, got 5"),
    ("t.jsonl", '{"prompt": "a", "model": ""}\n', 1, "model", "non-empty string, got ''"),
]


@pytest.mark.parametrize(("name", "content", "line", "field", "words"), BAD_TRACES)
def test_malformed_trace_is_rejected_with_line_and_field(
    tmp_path: Path, name: str, content: str, line: int, field: str | None, words: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TraceError) as caught:
        load_trace(path)
    message = str(caught.value)
    assert message.startswith(f"{path} line {line}")
    if field is not None:
        assert f"field '{field}'" in message
    assert words in message
    assert (caught.value.line, caught.value.field) == (line, field)


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("t.txt", '{"prompt": "a"}\n', "use .jsonl, .ndjson or .csv"),
        ("t", '{"prompt": "a"}\n', r"'\(none\)'"),
        ("t.jsonl", "", "no requests"),
        ("t.jsonl", "\n  \n", "no requests"),
        ("t.csv", "", "no requests"),
        ("t.csv", "prompt,model\n", "no requests"),
    ],
)
def test_unusable_trace_file_is_rejected(
    tmp_path: Path, name: str, content: str, words: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TraceError, match=words) as caught:
        load_trace(path)
    assert str(caught.value).startswith(str(path))


def test_missing_trace_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.jsonl"
    with pytest.raises(TraceError, match="no such file") as caught:
        load_trace(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, ConfigError)


def test_key_is_never_echoed(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"prompt": "a", "key": 12345678}\n', encoding="utf-8")
    with pytest.raises(TraceError, match="field 'key'") as caught:
        load_trace(path)
    assert "12345678" not in str(caught.value)
    assert "got int" in str(caught.value)


@pytest.mark.parametrize(
    "row",
    [
        '{"prompt": 5, "key": "sk-live-0123456789"}',
        '{"key": "sk-live-0123456789"}',
        '{"prompt": "a", "key": "sk-live-0123456789", "offset_s": "soon"}',
        '{"prompt": "a", "key": "sk-live-0123456789", "extra": "sk-live-0123456789"}',
    ],
)
def test_a_good_key_stays_out_of_errors_about_other_fields(tmp_path: Path, row: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(row + "\n", encoding="utf-8")
    with pytest.raises(TraceError) as caught:
        load_trace(path)
    # Not in the message, nor in a chained pydantic error a traceback would print.
    shown = "".join(traceback.format_exception(caught.value))
    assert caught.value.field != "key"
    assert "sk-live-0123456789" not in shown


def test_trace_row_hides_the_key() -> None:
    row = TraceRow.model_validate({"prompt": "a", "key": "sk-live-0123456789", "session": "s"})
    assert "sk-live-0123456789" not in repr(row) and "sk-live-0123456789" not in str(row)
    assert row.key is not None and row.key.get_secret_value() == "sk-live-0123456789"
    assert (row.model, row.offset_s) == ("gpt-4o-mini", None)


def test_blank_optional_csv_cells_are_absent(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("prompt,model,key,session,offset_s\na, , ,\t,\n", encoding="utf-8")
    assert load_trace(path) == [WorkItem("a")]


def test_csv_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfprompt,session\r\nhi,s1\r\n")
    assert load_trace(path) == [WorkItem("hi")]


def _items(n: int) -> list[WorkItem]:
    return [WorkItem(f"p{i}", offset_s=float(i)) for i in range(n)]


def _drain(workload: TraceWorkload) -> list[WorkItem]:
    out = []
    while (item := workload.next_item()) is not None:
        out.append(item)
    return out


def test_three_parts_cover_every_item_exactly_once() -> None:
    items = _items(10)
    parts = [_drain(TraceWorkload(items, part=p, parts=3)) for p in range(3)]
    assert [len(p) for p in parts] == [4, 3, 3]
    assert sorted((i for p in parts for i in p), key=lambda i: i.offset_s or 0) == items
    for part in parts:  # each part keeps the trace's order
        assert part == sorted(part, key=lambda i: i.offset_s or 0)


def test_exhausted_trace_returns_none_and_stays_exhausted() -> None:
    workload = TraceWorkload(_items(2))
    assert _drain(workload) == _items(2)
    assert workload.next_item() is None


def test_trace_describe_counts_distinct_requests() -> None:
    items = [WorkItem("a"), WorkItem("a", api_key="k"), WorkItem("a", model="m2"), WorkItem("b")]
    assert TraceWorkload(items).describe() == {
        "kind": "trace",
        "items": 4,
        "trace_items": 4,
        "part": 0,
        "parts": 1,
        "loop": False,
        "distinct_prompts": 3,  # the key does not change the request, the model does
        "has_offsets": False,
    }
    assert TraceWorkload(_items(3), part=1, parts=2).describe()["has_offsets"] is True


@pytest.mark.parametrize(("part", "parts"), [(0, 0), (3, 3), (-1, 2)])
def test_bad_parts_are_rejected(part: int, parts: int) -> None:
    with pytest.raises(ConfigError, match="part"):
        TraceWorkload(_items(3), part=part, parts=parts)


def test_zipf_sequence_reproduces_the_workload_stream() -> None:
    params = {"alpha": 1.1, "catalogue_size": 300, "one_off_share": 0.2, "seed": 42}
    sequence = zipf_sequence(1.1, 300, 0.2, 42, 5000)
    stream = ZipfWorkload(**params, stream=0)  # type: ignore[arg-type]
    assert sequence == [stream.next_item().prompt for _ in range(5000)]
    assert zipf_sequence(1.1, 300, 0.2, 42, 5000) == sequence
    assert zipf_sequence(1.1, 300, 0.2, 43, 5000) != sequence
    assert zipf_sequence(1.1, 300, 0.2, 42, 0) == []
    other = ZipfWorkload(**params, stream=2)  # type: ignore[arg-type]
    assert zipf_sequence(1.1, 300, 0.2, 42, 100, stream=2) == [
        other.next_item().prompt for _ in range(100)
    ]


def test_zipf_sequence_rejects_bad_parameters() -> None:
    with pytest.raises(ConfigError, match="count"):
        zipf_sequence(1.0, 10, 0.1, 0, -1)
    with pytest.raises(ConfigError, match="alpha"):
        zipf_sequence(-1.0, 10, 0.1, 0, 5)
