"""Fake OpenAI upstream: deterministic answers, a latency model, faults and call ground truth."""

from __future__ import annotations

from hermes_bench.upstream.answer import answer_text, completion_response
from hermes_bench.upstream.config import UpstreamConfig
from hermes_bench.upstream.faults import Fault, FaultConfig, draw_fault
from hermes_bench.upstream.ground_truth import GroundTruth
from hermes_bench.upstream.latency import DEFAULT_LATENCY, LatencyModel, parse_latency

__all__ = [
    "DEFAULT_LATENCY",
    "Fault",
    "FaultConfig",
    "GroundTruth",
    "LatencyModel",
    "UpstreamConfig",
    "answer_text",
    "completion_response",
    "draw_fault",
    "parse_latency",
]
