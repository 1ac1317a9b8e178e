"""results.json: what a claims run measured, written again after every cell.

Schema "hermes-bench/results/1" (all times are epoch seconds, latencies µs, secrets redacted):

    {"schema": "hermes-bench/results/1",
     "run": {"id", "started_at", "ended_at", "wall_s", "status": "running|complete|interrupted",
             "profile", "options": {...}, "machine": {...}, "versions": {...}},
     "cells": [
       {"id": "cache-redis-1", "kind": "cache|ratelimit|sessions|restart|probe|fallback",
        "backend": "redis|memory", "instances": 1, "status": "ok|failed",
        "error": null | "message", "started_at", "ended_at",
        "conditions": {"users", "requests", "upstream_latency", "workload": {...}, ...},
        "metrics": null | <Locust metrics document, schema hermes-bench/locust-metrics/1>,
        "targets": [<GET /stats of each target at the end>],
        "redis_info": null | {"keyspace_hits", "keyspace_misses", "evicted_keys", ...deltas},
        "extra": {...}}          # kind-specific figures, see harness/cells.py
     ],
     "claims": [<reports.claims verdict dicts>]}
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from hermes_bench.redaction import redact_text
from hermes_bench.results.vocabulary import RESULTS_SCHEMA


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Write atomically (temp file + rename), so a crash never leaves half a results.json."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # One last pass over the whole text: no password or key may leave the process.
    text = redact_text(json.dumps(results, indent=1, sort_keys=False, default=str))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_results(path: Path) -> dict[str, Any]:
    """Load a results.json, checking its schema."""
    from hermes_bench.errors import ConfigError

    try:
        results: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such results file") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} is not JSON ({exc}); is it a hermes-bench results.json?"
        ) from None
    if results.get("schema") != RESULTS_SCHEMA:
        raise ConfigError(
            f"{path} has schema {results.get('schema')!r}; "
            f"this hermes-bench reads {RESULTS_SCHEMA!r}"
        )
    return results
