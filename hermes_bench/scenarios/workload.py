"""Seeded, reproducible workloads: Zipf draws over a shared prompt catalogue, or trace replay.

Pure: no Locust, no network. One workload object is one stream; give each user or worker its
own stream number (Zipf) or part (trace) so they neither repeat nor overlap each other. Trace
files are read and checked in trace_file.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import numpy as np

from hermes_bench.errors import ConfigError
from hermes_bench.wire.chat import request_hash

DEFAULT_MODEL = "gpt-4o-mini"
# numpy costs about a microsecond per call whatever the size: draw many at once, hand out one.
_BLOCK = 4096
# Catalogue items built once and handed out again, for ranks up to this: the popular head,
# drawn most of the time, without one item per rank of a huge catalogue in memory.
_KEPT_RANKS = 4096


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One request to send; trace replay may also say with which key and when."""

    prompt: str
    model: str = DEFAULT_MODEL
    api_key: str | None = field(default=None, repr=False)  # a secret: kept out of logs
    offset_s: float | None = None  # intended send time, from the start of the run

    def body(self) -> dict[str, Any]:
        """The OpenAI chat-completion request for this item."""
        return {"model": self.model, "messages": [{"role": "user", "content": self.prompt}]}


def catalogue_prompt(rank: int) -> str:
    """Catalogue prompt of 1-based `rank`: depends on the rank only, so every stream shares it."""
    return f"catalogue question {rank}: what should an engineer know about topic {rank}?"


def _real(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _whole(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _require(ok: bool, name: str, expected: str, got: object) -> None:
    if not ok:
        raise ConfigError(f"{name} must be {expected}, got {got!r}")


# One check per Zipf parameter: ZipfWorkload runs them, and so do the --hermes-* options of
# Locust before anything starts, so both say the same about the same bad value.
def check_alpha(alpha: object) -> None:
    """ConfigError unless `alpha` is a finite number >= 0."""
    finite = _real(alpha) and 0 <= alpha < math.inf
    _require(finite, "Zipf alpha", "a finite number >= 0 (0 = uniform)", alpha)


def check_catalogue_size(catalogue_size: object) -> None:
    """ConfigError unless `catalogue_size` is a whole number >= 1."""
    _require(_whole(catalogue_size, 1), "catalogue_size", "a whole number >= 1", catalogue_size)


def check_one_off_share(one_off_share: object) -> None:
    """ConfigError unless `one_off_share` is a fraction from 0 to 1."""
    share_ok = _real(one_off_share) and 0 <= one_off_share <= 1
    _require(share_ok, "one_off_share", "a fraction from 0 to 1 (0.1 = 10%)", one_off_share)


def check_seed(seed: object) -> None:
    """ConfigError unless `seed` is a whole number >= 0."""
    _require(_whole(seed, 0), "seed", "a whole number >= 0", seed)


class ZipfWorkload:
    """P(rank k) ∝ 1/k^alpha over a shared catalogue, plus a share of prompts asked only once."""

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
        check_alpha(alpha)
        check_catalogue_size(catalogue_size)
        check_one_off_share(one_off_share)
        check_seed(seed)
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
        self._one_offs = 0  # one-offs drawn so far: numbers the next one
        self._items: dict[int, WorkItem] = {}  # rank -> its item (ranks up to _KEPT_RANKS)

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
        if rank == 0:
            n = self._one_offs
            self._one_offs = n + 1
            # Seed and stream in the text: unique across users, workers and differently seeded runs.
            prompt = f"one-off {self.seed}.{self.stream}.{n}: a question asked exactly once"
            return WorkItem(prompt, self.model)
        item = self._items.get(rank)
        if item is None:
            item = WorkItem(catalogue_prompt(rank), self.model)
            if rank <= _KEPT_RANKS:
                self._items[rank] = item
        return item

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


class TraceWorkload:
    """Replays trace items in order.

    Worker `part` of `parts` takes the items with index % parts == part: workers never overlap.
    """

    def __init__(self, items: Sequence[WorkItem], *, part: int = 0, parts: int = 1) -> None:
        if not _whole(parts, 1):
            raise ConfigError(f"parts must be a whole number >= 1, got {parts!r}")
        if not _whole(part, 0) or part >= parts:
            raise ConfigError(f"part must be a whole number from 0 to {parts - 1}, got {part!r}")
        self.part = part
        self.parts = parts
        self._items = list(items)[part::parts]
        self._trace_items = len(items)
        self._pos = 0

    def next_item(self) -> WorkItem | None:
        """The next item of this part, or None once it is exhausted."""
        if self._pos == len(self._items):
            return None
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
            "loop": False,  # replay never loops; the key stays in the metrics document
            "distinct_prompts": len({request_hash(item.body()) for item in self._items}),
            "has_offsets": any(item.offset_s is not None for item in self._items),
        }


def zipf_sequence(
    alpha: float,
    catalogue_size: int,
    one_off_share: float,
    seed: int,
    count: int,
    *,
    stream: int = 0,
) -> list[str]:
    """The first `count` prompts of a ZipfWorkload stream: the very sequence a run with these
    parameters drew (per stream; users interleave their streams at the shared cache)."""
    _require(_whole(count, 0), "count", "a whole number >= 0", count)
    stream_workload = ZipfWorkload(
        alpha=alpha,
        catalogue_size=catalogue_size,
        one_off_share=one_off_share,
        seed=seed,
        stream=stream,
    )
    return [stream_workload.next_item().prompt for _ in range(count)]
