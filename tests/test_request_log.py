"""A gateway's request log read as the cache sees it, its repetition, and the trace made of it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hermes_bench.harness.trace_stats_command import repetition
from hermes_bench.scenarios.request_log import read_request_log, trace_rows
from hermes_bench.scenarios.trace_file import TraceError, load_trace
from hermes_bench.wire.chat import request_hash


def _body(prompt: str, model: str = "gpt-4o-mini") -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}]}


def _write(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_bodies_are_found_wherever_the_gateway_put_them(tmp_path: Path) -> None:
    log = _write(tmp_path / "log.jsonl", [
        {**_body("a"), "timestamp": 1_700_000_000},
        {"request": _body("b"), "ts": 1_700_000_001_500},  # milliseconds
        {"body": json.dumps(_body("a")), "time": "2023-11-14T22:13:22Z"},
        {"payload": {"model": "gpt-4o", "messages": [
            {"role": "user", "content": "first"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]}]}},
        {"event": "health", "status": "ok"},
    ])  # fmt: skip
    read = read_request_log(log)
    assert [r.prompt for r in read.requests] == ["a", "b", "a", "second"]
    assert read.requests[0].key == request_hash(_body("a")) == read.requests[2].key
    assert read.requests[1].at_s == 1_700_000_001.5 and read.requests[3].model == "gpt-4o"
    assert (read.skipped, read.multi_turn) == (1, 1)


def test_repetition_is_counted_on_the_caches_own_key() -> None:
    figures = repetition(["a", "b", "a", "a", "c", "b"])
    assert (figures["requests"], figures["distinct"], figures["ideal_hit_rate"]) == (6, 3, 0.5)
    assert figures["lru"]["3"] == 0.5  # a cache of every distinct request reaches the ideal
    assert figures["lru"]["1"] == pytest.approx(1 / 6, abs=1e-4)  # only a, a back to back
    assert figures["entries_for_share_of_ideal"]["99%"] == 3


def test_the_log_becomes_a_trace_without_keys_that_replay_reads(tmp_path: Path) -> None:
    secret = {"Authorization": "Bearer sk-live-secret"}
    records = [{"timestamp": 100 + i, "request": _body(f"q{i % 2}"), "headers": secret}
               for i in range(4)]  # fmt: skip
    read = read_request_log(_write(tmp_path / "log.jsonl", records))
    rows = list(trace_rows(read))
    assert rows[1] == {"prompt": "q1", "model": "gpt-4o-mini", "offset_s": 1.0}
    trace = _write(tmp_path / "trace.jsonl", list(rows))
    assert "sk-live" not in trace.read_text()
    assert [item.prompt for item in load_trace(trace)] == ["q0", "q1", "q0", "q1"]
    # Times that go back are not offsets to replay: the trace then has none.
    back = [{"timestamp": t, "request": _body("x")} for t in (5, 3)]
    assert "offset_s" not in next(trace_rows(read_request_log(_write(tmp_path / "b.jsonl", back))))


def test_a_trace_is_read_as_replay_would_send_it(tmp_path: Path) -> None:
    trace = _write(tmp_path / "t.jsonl", [{"prompt": "hello"}, {"prompt": "hello"}])
    read = read_request_log(trace)
    assert [r.key for r in read.requests] == [request_hash(_body("hello"))] * 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"messages": [}\n', "line 1: invalid JSON"),
        ('["a list"]\n', "expected a JSON object, got list"),
        ('{"event": "x"}\n', "no chat-completion request found (1 lines read)"),
        ('{"messages": [{"role": "system", "content": "hi"}]}\n', "no user message"),
        ("[" * 100_000 + "\n", "line 1: invalid JSON"),
    ],
    ids=["bad JSON", "not an object", "no request", "no user message", "deep nesting"],
)
def test_a_bad_log_is_one_error_naming_the_line(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text(content)
    with pytest.raises(TraceError, match=None) as raised:
        read_request_log(path)
    assert expected in str(raised.value)


def test_trace_stats_prints_the_ideal_and_refuses_to_overwrite_its_input(tmp_path: Path) -> None:
    log = _write(tmp_path / "log.jsonl", [{"request": _body(f"q{i % 3}")} for i in range(9)])
    command = [sys.executable, "-m", "hermes_bench", "trace-stats", str(log)]
    result = subprocess.run([*command, "--json", str(tmp_path / "s.json")],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())  # rich wraps at the terminal's width
    assert "9 chat requests, 3 distinct" in out and "66.7%" in out
    assert json.loads((tmp_path / "s.json").read_text())["distinct"] == 3
    same = subprocess.run([*command, "--write-trace", str(log)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert same.returncode == 2 and "overwrite" in same.stderr and "Traceback" not in same.stderr
    (tmp_path / "binary.jsonl").write_bytes(b"\xff\xfe{}\n")
    binary = subprocess.run([*command[:-1], str(tmp_path / "binary.jsonl")],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert binary.returncode == 2 and "not UTF-8" in binary.stderr
