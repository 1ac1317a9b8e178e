"""Seeded, reproducible workloads: Zipf draws over a shared prompt catalogue, or trace replay.

Pure: no Locust, no network. One workload object is one stream; give each user or worker its
own stream number (Zipf) or part (trace) so they neither repeat nor overlap each other.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeGuard

import numpy as np

from hermes_bench.errors import ConfigError
from hermes_bench.wire.chat import request_hash

DEFAULT_MODEL = "gpt-4o-mini"
# numpy costs about a microsecond per call whatever the size: draw many at once, hand out one.
_BLOCK = 4096
_TRACE_FIELDS = ("prompt", "model", "key", "session", "offset_s")
_JSONL_SUFFIXES = (".jsonl", ".ndjson")
_CSV_SUFFIXES = (".csv",)


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One request to send; trace replay may also say with which key, in which session and when."""

    prompt: str
    model: str = DEFAULT_MODEL
    api_key: str | None = field(default=None, repr=False)  # a secret: kept out of logs
    session: str | None = None
    offset_s: float | None = None  # intended send time, from the start of the run
    one_off: bool = False

    def body(self) -> dict[str, Any]:
        """The OpenAI chat-completion request for this item."""
        return {"model": self.model, "messages": [{"role": "user", "content": self.prompt}]}


def catalogue_prompt(rank: int) -> str:
    """Catalogue prompt of 1-based `rank`: depends on the rank only, so every stream shares it."""
    return f"catalogue question {rank}: what should an engineer know about topic {rank}?"


def ideal_hit_rate(requests: int, distinct: int) -> float:
    """Best hit rate an unbounded, never-expiring cache could reach: every repeat is a hit.

    `distinct` must count distinct requests over everything that shares the cache.
    """
    if requests <= 0:
        return 0.0
    if not 1 <= distinct <= requests:
        raise ValueError(f"distinct must be between 1 and requests={requests}, got {distinct}")
    return 1.0 - distinct / requests


def _real(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _whole(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _require(ok: bool, name: str, expected: str, got: object) -> None:
    if not ok:
        raise ConfigError(f"{name} must be {expected}, got {got!r}")


class ZipfWorkload:
    """P(rank k) ∝ 1/k^alpha over a shared catalogue, plus a share of prompts asked only once.

    `drawn` and `distinct_drawn` count this stream exactly, in memory bounded by the catalogue.
    """

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        catalogue_size: int = 1000,
        one_off_share: float = 0.1,
        seed: int = 0,
        model: str = DEFAULT_MODEL,
        stream: int = 0,
    ) -> None:
        finite = _real(alpha) and 0 <= alpha < math.inf
        _require(finite, "Zipf alpha", "a finite number >= 0 (0 = uniform)", alpha)
        _require(_whole(catalogue_size, 1), "catalogue_size", "a whole number >= 1", catalogue_size)
        share_ok = _real(one_off_share) and 0 <= one_off_share <= 1
        _require(share_ok, "one_off_share", "a fraction from 0 to 1 (0.1 = 10%)", one_off_share)
        _require(_whole(seed, 0), "seed", "a whole number >= 0", seed)
        _require(_whole(stream, 0), "stream", "a whole number >= 0", stream)
        _require(isinstance(model, str) and bool(model), "model", "a non-empty string", model)
        self.alpha = float(alpha)
        self.catalogue_size = catalogue_size
        self.one_off_share = float(one_off_share)
        self.seed = seed
        self.stream = stream
        self.model = model
        weights = np.arange(1, catalogue_size + 1, dtype=np.float64) ** -self.alpha
        self._cdf = np.cumsum(weights)
        self._cdf /= self._cdf[-1]
        self._cdf[-1] = 1.0  # so a uniform draw in [0, 1) always lands inside the catalogue
        self._rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream])))
        self._block: list[int] = []
        self._pos = 0
        self._seen = bytearray(catalogue_size)
        self._distinct_catalogue = 0
        self._one_offs = 0
        self._drawn = 0

    def _refill(self) -> None:
        one_off = self._rng.random(_BLOCK) < self.one_off_share
        ranks = np.searchsorted(self._cdf, self._rng.random(_BLOCK), side="right") + 1
        ranks[one_off] = 0  # rank 0 marks a one-off
        self._block = ranks.tolist()  # Python ints: indexing a list is far cheaper than an array
        self._pos = 0

    def next_item(self) -> WorkItem:
        """Draw the next request of this stream."""
        if self._pos == len(self._block):
            self._refill()
        rank = self._block[self._pos]
        self._pos += 1
        self._drawn += 1
        if rank == 0:
            n = self._one_offs
            self._one_offs = n + 1
            # Seed and stream in the text: unique across users, workers and differently seeded runs.
            prompt = f"one-off {self.seed}.{self.stream}.{n}: a question asked exactly once"
            return WorkItem(prompt, self.model, one_off=True)
        if not self._seen[rank - 1]:
            self._seen[rank - 1] = 1
            self._distinct_catalogue += 1
        return WorkItem(catalogue_prompt(rank), self.model)

    @property
    def drawn(self) -> int:
        """Items drawn so far."""
        return self._drawn

    @property
    def distinct_drawn(self) -> int:
        """Distinct prompts among them: catalogue ranks seen, plus every one-off."""
        return self._distinct_catalogue + self._one_offs

    def describe(self) -> dict[str, Any]:
        """The parameters that reproduce this stream."""
        return {
            "kind": "zipf",
            "alpha": self.alpha,
            "catalogue_size": self.catalogue_size,
            "one_off_share": self.one_off_share,
            "seed": self.seed,
            "stream": self.stream,
            "model": self.model,
        }


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


def load_trace(path: str | Path) -> list[WorkItem]:
    """Read and check a JSONL (.jsonl, .ndjson) or CSV (.csv, header row first) trace.

    Fields: prompt (required), model, key, session, offset_s (every row or none, not decreasing).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _JSONL_SUFFIXES + _CSV_SUFFIXES:
        shown = path.suffix or "(none)"
        raise TraceError(path, f"extension {shown!r} not supported; use .jsonl, .ndjson or .csv")
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
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TraceError(
                path, f"invalid JSON at column {exc.colno}: {exc.msg}", line=line
            ) from None
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
    unknown = [name for name in record if name not in _TRACE_FIELDS]
    if unknown:
        also = f" (also unknown: {', '.join(map(repr, unknown[1:]))})" if unknown[1:] else ""
        problem = f"unknown field{also}; the fields are {', '.join(_TRACE_FIELDS)}"
        raise TraceError(path, problem, line=line, field=unknown[0])
    if "prompt" not in record:
        raise TraceError(path, "missing; every row needs a prompt", line=line, field="prompt")
    text = {name: _text(path, line, name, record.get(name)) for name in _TRACE_FIELDS[:4]}
    offset = _offset(path, line, record["offset_s"]) if "offset_s" in record else None
    return WorkItem(
        record["prompt"],
        text["model"] or DEFAULT_MODEL,
        api_key=text["key"],
        session=text["session"],
        offset_s=offset,
    )


def _text(path: Path, line: int, name: str, value: object) -> str | None:
    if value is None and name != "prompt":
        return None
    if not isinstance(value, str) or not value.strip():
        shown = repr(value)
        if name == "key":  # never echo a key, even a malformed one: messages end up in logs
            shown = "a blank string" if isinstance(value, str) else type(value).__name__
        raise TraceError(path, f"expected a non-empty string, got {shown}", line=line, field=name)
    return value


def _offset(path: Path, line: int, value: object) -> float:
    number = math.nan
    if _real(value) or isinstance(value, str):
        with contextlib.suppress(ValueError, OverflowError):
            number = float(value)  # CSV cells are text, and JSON may hold "1.5" too
    if not 0 <= number < math.inf:
        problem = f"expected a number >= 0 (seconds from the start of the run), got {value!r}"
        raise TraceError(path, problem, line=line, field="offset_s")
    return number


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


class TraceWorkload:
    """Replays trace items in order.

    Worker `part` of `parts` takes the items with index % parts == part: workers never overlap.
    """

    def __init__(
        self, items: Sequence[WorkItem], *, part: int = 0, parts: int = 1, loop: bool = False
    ) -> None:
        if not _whole(parts, 1):
            raise ConfigError(f"parts must be a whole number >= 1, got {parts!r}")
        if not _whole(part, 0) or part >= parts:
            raise ConfigError(f"part must be a whole number from 0 to {parts - 1}, got {part!r}")
        self.part = part
        self.parts = parts
        self.loop = loop
        self._items = list(items)[part::parts]
        self._trace_items = len(items)
        self._pos = 0

    def next_item(self) -> WorkItem | None:
        """The next item of this part, or None once it is exhausted (never, when looping)."""
        if self._pos == len(self._items):
            if not (self.loop and self._items):
                return None
            self._pos = 0
        item = self._items[self._pos]
        self._pos += 1
        return item

    def describe(self) -> dict[str, Any]:
        """What this part replays; distinct prompts are counted as the cache keys them."""
        return {
            "kind": "trace",
            "items": len(self._items),
            "trace_items": self._trace_items,
            "part": self.part,
            "parts": self.parts,
            "loop": self.loop,
            "distinct_prompts": len({request_hash(item.body()) for item in self._items}),
            "has_offsets": any(item.offset_s is not None for item in self._items),
        }
