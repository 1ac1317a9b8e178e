"""Build Results for the pure tests from the few fields each test cares about."""

from __future__ import annotations

import copy
from typing import Any

from hermes_bench.results.files import results_from_data
from hermes_bench.results.model import Results
from hermes_bench.results.vocabulary import RESULTS_SCHEMA

T0 = 1_700_000_000.0

RUN: dict[str, Any] = {
    "id": "run-20260101-120000-abcd",
    "started_at": T0,
    "ended_at": T0 + 15,
    "wall_s": 15.0,
    "status": "complete",
    "profile": "quick",
    "options": {
        "backends": ["redis", "memory"],
        "instances": 2,
        "users": 8,
        "requests_per_cache_cell": 200,
        "upstream_latency": "lognormal:60ms:0.3",
        "rate_limit": "10/second",
        "seed": 0,
        "workload": "Zipf alpha 1.0 over 200 prompts, 10% one-offs, seed 0",
        "redis": "embedded",
        "cells": ["cache"],
        "target_env": {},
    },
    "machine": {"platform": "Linux", "python": "3.11.7", "cpus": 2},
    "versions": {"hermes-bench": "0.1.0", "locust": "2.47.0"},
}


def cell_data(**fields: Any) -> dict[str, Any]:
    """A cell as results.json holds it: `fields` on top of an ok cell started at T0."""
    return {"status": "ok", "started_at": T0, "ended_at": T0 + 5, **fields}


def results_data(cells: list[dict[str, Any]], **parts: Any) -> dict[str, Any]:
    """A whole results document: the cells (times filled in), a complete run, `parts` on top."""
    return {
        "schema": RESULTS_SCHEMA,
        "run": copy.deepcopy(RUN),
        "cells": [{"started_at": T0, "ended_at": T0 + 5, **cell} for cell in cells],
        "claims": [],
        **parts,
    }


def results(cells: list[dict[str, Any]], **parts: Any) -> Results:
    """results_data(), validated as the readers get it."""
    return results_from_data(results_data(cells, **parts))
