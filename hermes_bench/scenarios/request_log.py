"""A log of real OpenAI requests (JSONL, as gateways write them) as the cache would see it.

Each line is a JSON object holding a chat-completion request: the body itself (`messages` at
the top, beside the log's own fields: times, headers, response, status, latency_ms), or under
`request`, `body`, `request_body` or `payload` (an object, or a JSON string of one). A time,
when there is one (`timestamp`, `time`, `ts`, `created`, `start_time`: epoch seconds or
milliseconds, or ISO 8601), becomes the row's offset. Lines without a request (other events)
are counted and skipped. Keys and headers are never read.

Pure but for reading the file: the cache key of each request is the app's own request hash, so
repetition counted here is the repetition the cache meets.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import IO, Any

from hermes_bench.input_files import file_problem
from hermes_bench.scenarios.trace_file import TraceError, load_trace
from hermes_bench.scenarios.workload import DEFAULT_MODEL
from hermes_bench.wire.chat import request_hash
from hermes_bench.wire.json_body import JsonBodyError, parse_json_text

BODY_KEYS = ("request", "body", "request_body", "payload")
TIME_KEYS = ("timestamp", "time", "ts", "created", "start_time")
# A body logged at the top of its line shares it with the log's own fields: not the request's.
LOG_FIELDS = frozenset({*TIME_KEYS, "headers", "response", "status", "latency_ms"})
MAX_LINE_CHARS = 10_000_000
_EPOCH_MS_FROM = 1e11  # a number past this is milliseconds (year 5138 in seconds)


@dataclass(frozen=True)
class LoggedRequest:
    """One request of the log: its cache key, the prompt a trace replays, when it came."""

    key: str  # the app's request hash of the whole body
    prompt: str  # the last user message, as a trace row replays it
    model: str
    at_s: float | None  # epoch seconds


@dataclass
class RequestLog:
    """The requests of a log in order, and what was left out."""

    requests: list[LoggedRequest] = field(default_factory=list)
    skipped: int = 0  # lines that held no chat-completion request
    multi_turn: int = 0  # requests of more than one user message: a trace keeps the last one


def read_request_log(path: Path) -> RequestLog:
    """The chat requests of a JSONL log, or of a trace (prompt rows) as replay would send them;
    TraceError naming the file and line for what cannot be read."""
    problem = file_problem(path)
    if problem is not None:
        raise TraceError(path, problem)
    suffix = path.suffix.lower()
    if suffix == ".csv" or _looks_like_trace(path):
        return _from_trace(path)
    try:
        with path.open(encoding="utf-8-sig") as file:
            return _from_lines(path, file)
    except FileNotFoundError:
        raise TraceError(path, "no such file; check the path") from None
    except UnicodeDecodeError as exc:
        raise TraceError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except IsADirectoryError:
        raise TraceError(path, "a directory, not a file") from None
    except OSError as exc:
        raise TraceError(path, f"cannot read the file: {exc.strerror or exc}") from None


def _looks_like_trace(path: Path) -> bool:
    """A JSONL trace's first object has a `prompt` and no request body."""
    try:
        with path.open(encoding="utf-8-sig") as file:
            for text in file:
                if text.strip():
                    first = json.loads(text)
                    return isinstance(first, dict) and "prompt" in first and not _body(first)
    except (OSError, ValueError, RecursionError):
        return False  # read as a log: its own reading says what is wrong
    return False


def _from_trace(path: Path) -> RequestLog:
    log = RequestLog()
    for item in load_trace(path):
        body = item.body()
        log.requests.append(LoggedRequest(request_hash(body), item.prompt, item.model, None))
    return log


def _from_lines(path: Path, file: IO[str]) -> RequestLog:
    log = RequestLog()
    for line, record in _records(path, file):
        body = _body(record)
        if body is None:
            log.skipped += 1
            continue
        prompts = [_text(m.get("content")) for m in _messages(body) if m.get("role") == "user"]
        prompts = [p for p in prompts if p]
        if not prompts:
            raise TraceError(path, "the request holds no user message with text", line=line)
        log.multi_turn += len(prompts) > 1
        model = body.get("model")
        log.requests.append(
            LoggedRequest(
                key=request_hash(body),
                prompt=prompts[-1],
                model=model if isinstance(model, str) and model.strip() else DEFAULT_MODEL,
                at_s=_time(record),
            )
        )
    if not log.requests:
        raise TraceError(
            path,
            f"no chat-completion request found ({log.skipped} lines read): each line should hold "
            f"one, at the top or under one of {', '.join(BODY_KEYS)}",
        )
    return log


def _records(path: Path, file: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, text in enumerate(file, start=1):
        if not text.strip():
            continue
        if len(text) > MAX_LINE_CHARS:
            raise TraceError(path, f"longer than {MAX_LINE_CHARS:,} characters", line=line)
        try:
            record = parse_json_text(text, "the line")
        except JsonBodyError as exc:
            raise TraceError(path, f"invalid JSON: {exc.reason}", line=line) from None
        if not isinstance(record, dict):
            raise TraceError(
                path, f"expected a JSON object, got {type(record).__name__}", line=line
            )
        yield line, record


def _body(record: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The chat-completion body of a log record, wherever the gateway put it."""
    if isinstance(record.get("messages"), list):
        return {name: value for name, value in record.items() if name not in LOG_FIELDS}
    for name in BODY_KEYS:
        value = record.get(name)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                continue
        if isinstance(value, Mapping) and isinstance(value.get("messages"), list):
            return value
    return None


def _messages(body: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    return (m for m in body.get("messages", []) if isinstance(m, Mapping))


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, Mapping)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def _time(record: Mapping[str, Any]) -> float | None:
    """Epoch seconds of a record, from the first time field it has; None without one."""
    for name in TIME_KEYS:
        value = record.get(name)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
            return value / 1000 if value > _EPOCH_MS_FROM else float(value)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def trace_rows(log: RequestLog) -> Iterator[dict[str, Any]]:
    """The log as trace rows (prompt, model, offset_s from the first request's time when every
    request has one and they never go back). No key is ever written."""
    times = [r.at_s for r in log.requests if r.at_s is not None]
    timed = len(times) == len(log.requests) and all(b >= a for a, b in pairwise(times))
    start = times[0] if timed else None
    for request in log.requests:
        row: dict[str, Any] = {"prompt": request.prompt, "model": request.model}
        if start is not None and request.at_s is not None:
            row["offset_s"] = round(request.at_s - start, 3)
        yield row
