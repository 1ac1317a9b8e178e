"""The metrics document of one test: the users' figures, the upstream's ground truth, the CPU."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from locust.env import Environment
from pydantic import ValidationError

from hermes_bench.http_json import HttpJsonError, get_json
from hermes_bench.redaction import redact_url
from hermes_bench.results.model import MetricsDocument
from hermes_bench.scenarios.attribution import attribute
from hermes_bench.scenarios.generator_cpu import summarize_cpu
from hermes_bench.scenarios.run_context import HermesRun
from hermes_bench.scenarios.summary import build_document

log = logging.getLogger("hermes_bench")
LOCAL = "local"  # this process's CPU readings, beside each worker's under its id
# The call log of a long run is tens of MB of JSON: more time than a counter read.
LOG_TIMEOUT_S = 120.0


def metrics_json(document: dict[str, Any]) -> tuple[str, MetricsDocument | None]:
    """The document's JSON as the results model types it, and the typed document; as it
    stands, with an error logged and no typed document, if it does not match the model."""
    try:
        typed = MetricsDocument.model_validate(document)
    except ValidationError as exc:  # a bug of ours: say so, but keep what was measured
        log.error("the metrics document does not match its model, written as is: %s", exc)
        return json.dumps(document, indent=1), None
    return typed.model_dump_json(by_alias=True, indent=1), typed


def stopped_test_document(environment: Environment, run: HermesRun) -> dict[str, Any]:
    """The metrics document of the test just stopped: what the users recorded, the upstream's
    ground truth (its call log telling HIT from MISS where headers did not), the CPU."""
    upstream = run.upstream_url(environment)
    ground_truth = None
    # Cache-path answers kept (by this process, or shipped by the workers) for attribution.
    lookups = run.metrics.lookups
    if upstream:
        # The call log only when there is something to attribute: it holds every call.
        query = "?log=1" if lookups else ""
        try:
            ground_truth = get_json(upstream + "/ground-truth" + query, timeout_s=LOG_TIMEOUT_S)
        except HttpJsonError as exc:
            log.warning("could not read the upstream's ground truth at %s: %s", upstream, exc)
    attribution = None
    if lookups:
        calls_log = ground_truth.pop("calls_log", None) if ground_truth is not None else None
        dropped = int(ground_truth.get("calls_log_dropped", 0)) if ground_truth else 0
        found = attribute(lookups, calls_log, calls_log_dropped=dropped)
        # Answers without a header outcome get the log's now, before the snapshot is taken.
        run.metrics.settle_lookups(found.outcomes)
        attribution = found.summary()
    run.cpu_by_process.setdefault(LOCAL, []).extend(run.cpu.drain())
    per_process = {name: summarize_cpu(samples) for name, samples in run.cpu_by_process.items()}
    saturated = any(summary.get("saturated") for summary in per_process.values())
    workload = run.workload(environment).describe()
    return build_document(
        snapshot=run.metrics.snapshot(),
        ground_truth=ground_truth,
        cpu={"saturated": saturated, "per_process": per_process},
        run={
            "started_at": run.started_at,
            "ended_at": time.time(),
            "targets": [redact_url(t) for t in run.targets(environment)],
            "upstream": redact_url(upstream) if upstream else None,
            "embedded_stack": run.stack is not None,
            "backend": run.options.backend if run.stack is not None else None,
            # Workers that reported: by the end they may already have quit.
            "workers": len([name for name in run.cpu_by_process if name != LOCAL]),
            "arrival_rate": run.options.arrival_rate or None,
            "workload": workload,
        },
        attribution=attribution,
        hit_header=run.options.hit_header,
    )
