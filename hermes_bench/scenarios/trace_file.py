"""Trace files to replay: JSONL or CSV rows, each checked by TraceRow, into WorkItems.

Pure: no Locust, no network. Every problem is a TraceError naming the file, line and field;
a key is never echoed, even a malformed one.
"""

from __future__ import annotations

import contextlib
import csv
import math
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from hermes_bench.errors import ConfigError
from hermes_bench.input_files import file_problem
from hermes_bench.scenarios.workload import DEFAULT_MODEL, WorkItem
from hermes_bench.wire.api_key import api_key_problem
from hermes_bench.wire.json_body import JsonBodyError, parse_json_text

_JSONL_SUFFIXES = (".jsonl", ".ndjson")
_CSV_SUFFIXES = (".csv",)


class TraceError(ConfigError):
    """A trace file that cannot be replayed; the message names the file, line and field."""

    def __init__(
        self, path: str | Path, problem: str, *, line: int | None = None, field: str | None = None
    ) -> None:
        where = str(path)
        if line is not None:
            where += f" line {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.line = line
        self.field = field


def _check_text(value: object) -> str:
    if isinstance(value, str) and value.strip():
        return value
    raise PydanticCustomError(
        "trace_text", "expected a non-empty string, got {shown}", {"shown": repr(value)}
    )


def _check_key(value: object) -> str:
    # Never echo a key, even a malformed one: messages end up in logs.
    if not isinstance(value, str) or not value.strip():
        shown = "a blank string" if isinstance(value, str) else type(value).__name__
        raise PydanticCustomError(
            "trace_key", "expected a non-empty string, got {shown}", {"shown": shown}
        )
    problem = api_key_problem(value)
    if problem is not None:  # CR/LF would split the header; the target refuses the rest
        raise PydanticCustomError(
            "trace_key", "expected an API key, got {shown}", {"shown": problem}
        )
    return value


def _check_seconds(value: object) -> float:
    number = math.nan
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        with contextlib.suppress(ValueError, OverflowError):
            number = float(value)  # CSV cells are text, and JSON may hold "1.5" too
    if not 0 <= number < math.inf:
        raise PydanticCustomError(
            "trace_offset",
            "expected a number >= 0 (seconds from the start of the run), got {shown}",
            {"shown": repr(value)},
        )
    return number


_Text = Annotated[str, BeforeValidator(_check_text)]


class TraceRow(BaseModel):
    """One trace row. An absent optional field is left out of the row (JSON null, blank cell).

    `session` is checked but not replayed; `key` is a SecretStr, so a row's repr never shows it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    prompt: _Text
    model: _Text = DEFAULT_MODEL
    key: Annotated[SecretStr | None, BeforeValidator(_check_key)] = None
    session: Annotated[str | None, BeforeValidator(_check_text)] = None
    offset_s: Annotated[float | None, BeforeValidator(_check_seconds)] = None


_TRACE_FIELDS = tuple(TraceRow.model_fields)


def load_trace(path: str | Path) -> list[WorkItem]:
    """Read and check a JSONL (.jsonl, .ndjson) or CSV (.csv, header row first) trace.

    Fields: prompt (required), model, key, session, offset_s (every row or none, not decreasing).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _JSONL_SUFFIXES + _CSV_SUFFIXES:
        shown = path.suffix or "(none)"
        raise TraceError(path, f"extension {shown!r} not supported; use .jsonl, .ndjson or .csv")
    problem = file_problem(path)
    if problem is not None:
        raise TraceError(path, problem)
    try:  # utf-8-sig: CSVs saved by Excel start with a byte order mark
        with path.open(encoding="utf-8-sig", newline="") as file:
            rows = _jsonl_rows(path, file) if suffix in _JSONL_SUFFIXES else _csv_rows(path, file)
            items = [(line, _item(path, line, record)) for line, record in rows]
    except FileNotFoundError:
        raise TraceError(path, "no such file; check the path") from None
    except UnicodeDecodeError as exc:
        raise TraceError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise TraceError(path, f"cannot read the file: {exc.strerror or exc}") from None
    if not items:
        raise TraceError(path, "the file holds no requests; expected at least one row")
    _check_offsets(path, items)
    return [item for _, item in items]


def _jsonl_rows(path: Path, file: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, text in enumerate(file, start=1):
        if not text.strip():
            continue
        try:
            record = parse_json_text(text, "the line")
        except JsonBodyError as exc:
            where = f" at column {exc.column}" if exc.column is not None else ""
            raise TraceError(path, f"invalid JSON{where}: {exc.reason}", line=line) from None
        if not isinstance(record, dict):
            raise TraceError(
                path, f"expected a JSON object, got a {type(record).__name__}", line=line
            )
        # JSON null in an optional field means the same as leaving it out.
        yield line, {k: v for k, v in record.items() if v is not None or k == "prompt"}


def _csv_rows(path: Path, file: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(file)
    try:
        header: list[str] = []
        while not header:  # skip blank lines before the header
            row = next(reader, None)
            if row is None:
                return
            header = [name.strip() for name in row]
        end = reader.line_num
        for name in header:
            if name not in _TRACE_FIELDS or header.count(name) > 1:
                problem = "unknown column" if name not in _TRACE_FIELDS else "column named twice"
                fields = ", ".join(_TRACE_FIELDS)
                raise TraceError(path, f"{problem}; columns are {fields}", line=end, field=name)
        if "prompt" not in header:
            raise TraceError(path, "no such column in the header", line=end, field="prompt")
        for row in reader:
            start, end = end + 1, reader.line_num  # a quoted cell may span lines
            if not row:
                continue
            if len(row) != len(header):
                problem = f"expected {len(header)} cells as in the header, got {len(row)}"
                raise TraceError(path, problem, line=start)
            # A blank optional cell means the field is absent; a blank prompt is an error.
            yield (
                start,
                {n: c for n, c in zip(header, row, strict=True) if n == "prompt" or c.strip()},
            )
    except csv.Error as exc:
        raise TraceError(path, f"malformed CSV: {exc}", line=reader.line_num) from None


def _item(path: Path, line: int, record: dict[str, Any]) -> WorkItem:
    try:
        row = TraceRow.model_validate(record)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
    else:
        key = row.key.get_secret_value() if row.key is not None else None
        return WorkItem(row.prompt, row.model, api_key=key, offset_s=row.offset_s)
    # Raised outside the except block: the ValidationError, input and all, is not chained.
    raise _row_error(path, line, record, errors)


def _row_error(
    path: Path, line: int, record: dict[str, Any], errors: list[ErrorDetails]
) -> TraceError:
    """The first problem of a row, as the user should read it: unknown fields, then by field."""
    unknown = {str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden"}
    if unknown:
        names = [name for name in record if name in unknown]  # in the row's order
        also = f" (also unknown: {', '.join(map(repr, names[1:]))})" if names[1:] else ""
        problem = f"unknown field{also}; the fields are {', '.join(_TRACE_FIELDS)}"
        return TraceError(path, problem, line=line, field=names[0])
    first = min(errors, key=lambda e: _field_rank(e["loc"]))
    name = str(first["loc"][0]) if first["loc"] else None
    problem = "missing; every row needs a prompt" if first["type"] == "missing" else first["msg"]
    return TraceError(path, problem, line=line, field=name)


def _field_rank(loc: tuple[int | str, ...]) -> int:
    name = loc[0] if loc else None
    return _TRACE_FIELDS.index(name) if name in _TRACE_FIELDS else len(_TRACE_FIELDS)


def _check_offsets(path: Path, items: list[tuple[int, WorkItem]]) -> None:
    """offset_s on every row or on none, and never decreasing: replay sends rows in order."""
    first_line, first = items[0]
    last, last_line = 0.0, first_line
    for line, item in items:
        offset = item.offset_s
        problem = ""
        if (offset is None) != (first.offset_s is None):
            state = "missing here but present" if offset is None else "present here but absent"
            problem = f"{state} on line {first_line}; give offset_s on every row or on none"
        elif offset is not None and offset < last:
            problem = f"expected >= {last} (line {last_line}), got {offset}; rows go in send order"
        if problem:
            raise TraceError(path, problem, line=line, field="offset_s")
        if offset is not None:
            last, last_line = offset, line
