"""The names the metrics document uses: scenarios, outcomes, histogram families, schemas.

Written by the scenarios, read by the reports: defined here once, below both.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

RESULTS_SCHEMA = "hermes-bench/results/1"
METRICS_SCHEMA = "hermes-bench/locust-metrics/1"
METRICS_WIRE_VERSION = 1

SERVICE = "service"  # latency from the actual send
INTENDED = "intended"  # latency from the intended send time (arrival-rate mode, as wrk2)
FAMILIES = (SERVICE, INTENDED)

HIT, MISS, BYPASS = "HIT", "MISS", "BYPASS"
CACHE_OUTCOMES = (HIT, MISS, BYPASS)
REFUSED = "429"
WRONG_ANSWER = "wrong_answer"
ERROR = "error"

CACHE_SCENARIO = "cache"
BARE_SCENARIO = "bare"  # POST /_bare: the app's floor, for the load generator's own limit
SESSION_SCENARIO = "session"
CHAT_SCENARIOS = (CACHE_SCENARIO, "ratelimit", "mixed")
# Scenarios named with this prefix hold counts (e.g. requests admitted per rate-limit window),
# not latencies: they stay out of the totals and of the per-second series.
COUNT_PREFIX = "_"
# Scenario whose "latencies" are admitted requests per rate-limit window (a count).
BURST_SCENARIO = "_ratelimit_window"
ADMITTED_OUTCOME = "admitted_count"
# Scenarios "_step:NAME": µs of one step the target timed itself (its Server-Timing header),
# per outcome of the request; under COUNT_PREFIX, so out of the totals and per-second series.
STEP_PREFIX = COUNT_PREFIX + "step:"
# Time to the first token of a streamed answer (--hermes-stream on), per outcome, in µs.
TTFT_SCENARIO = COUNT_PREFIX + "ttft"
# The reference app's steps in the order a request takes them (hermes_bench.app.server_timing);
# TOTAL_STEP is the whole request in the app. Other targets may name steps their own way.
TOTAL_STEP = "total"
# "ratelimit+cache-read" is both in one Redis round trip (the app's fixed window on Redis).
STEP_ORDER = (
    "ratelimit",
    "ratelimit+cache-read",
    "cache-read",
    "upstream",
    "cache-write",
    TOTAL_STEP,
)

CellKind = Literal[
    "cache",
    "ratelimit",
    "restart",
    "probe",
    "memory",
    "pool",
    "eviction",
    "outage",
    "fallback",
    "sweep",
    "generator",
]
CELL_KINDS: tuple[CellKind, ...] = get_args(CellKind)
BACKENDS = ("redis", "memory")
# How Redis keeps its data over its own restart: not at all, an append-only file, snapshots.
PERSISTENCE_MODES = ("none", "aof", "rdb")
RDB_SAVE = "3600 1"  # the snapshot rule of the "rdb" mode: at least at SHUTDOWN
# What the outage cell does to Redis under load, in this order (killed last: it loses the data).
OUTAGE_FAULTS = ("slowed", "full", "hung", "killed")
OUTAGE_PHASES = ("before", "during", "after")
DEFAULT_TRAFFIC_PER_DAY = 10_000.0  # requests a day the payoff is priced at, unless told
Verdict = Literal[
    "holds",
    "better than claimed",
    "does not hold",
    "borderline",
    "inconclusive",
    "not measured yet",
]
HOLDS: Final = "holds"
BETTER: Final = "better than claimed"
FAILS: Final = "does not hold"
# The interval of the judged figure straddles the guide's bound: more repeats would tell.
BORDERLINE: Final = "borderline"
INCONCLUSIVE: Final = "inconclusive"
NOT_MEASURED: Final = "not measured yet"
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
# "killed": found "running" by a later `report` after its process died (SIGKILL, a crash).
RunStatus = Literal["running", "complete", "interrupted", "killed"]
# A --threshold after the run: held, did not hold, or the run did not measure its figure.
ThresholdStatus = Literal["passed", "failed", "unmeasured"]
