"""The typed results of a claims run: run, cells, metrics, claims, bounds.

One definition of what results.json holds (schema "hermes-bench/results/1"). Times are epoch
seconds, latencies integer microseconds, shares 0-1, percentiles named pNN_us on the 0-100
scale. Reading validates once: types, finite numbers, known fields. A figure a cell did not
measure is None: readers test for it instead of catching KeyError.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from hermes_bench.results.vocabulary import (
    BACKENDS,
    BETTER,
    BORDERLINE,
    CACHE_OUTCOMES,
    CACHE_SCENARIO,
    CELL_KINDS,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    INTENDED,
    METRICS_SCHEMA,
    NOT_MEASURED,
    RESULTS_SCHEMA,
    SERVICE,
    VERDICTS,
    CellKind,
    RunStatus,
    ThresholdStatus,
    Verdict,
)

# Seconds since the epoch, up to 1e10 (the year 2286): a timestamp from a garbled file is
# refused when read rather than when a date is made of it.
Timestamp = Annotated[float, Field(ge=0, le=10_000_000_000)]


class Record(BaseModel):
    """Base of every part: unknown fields and NaN/infinity are errors, not silently kept."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True)


def _unless_empty(data: Any, record: BaseModel, names: tuple[str, ...]) -> Any:
    """`data` (a record as dumped) without the fields of `names` that `record` leaves empty
    (None, False, {} or []): files written before those fields existed write back as read."""
    if isinstance(data, dict):
        for name in names:
            if not getattr(record, name):
                data.pop(name, None)
    return data


# --- latencies ------------------------------------------------------------------------------


class LatencySummary(Record):
    """Count and µs statistics of one histogram; only `count` when it is empty."""

    count: int = Field(ge=0)
    min_us: int | None = None
    mean_us: float | None = None
    p50_us: int | None = None
    p90_us: int | None = None
    p95_us: int | None = None
    p99_us: int | None = None
    p99_9_us: int | None = None
    max_us: int | None = None

    def statistic(self, key: str) -> float | None:
        """The statistic named `key` (p95_us, mean_us...), None when not measured."""
        value = getattr(self, key, None) if key in type(self).model_fields else None
        return None if value is None else float(value)


class Families(Record):
    """Latency from the actual send (service) and, when paced, from the intended send."""

    service: LatencySummary | None = None
    intended: LatencySummary | None = None


class ScenarioMetrics(Record):
    """One scenario: latency per outcome, and all outcomes blended."""

    outcomes: dict[str, Families] = {}
    total: Families = Families()


class SeriesRow(Record):
    """Responses finished in one wall-clock second, by outcome."""

    t: int
    requests: int = Field(ge=0)
    outcomes: dict[str, int]


class EncodedHistograms(Record):
    """HdrHistogram encode() strings per family, scenario and outcome: the exact distributions."""

    service: dict[str, dict[str, str]] = {}
    intended: dict[str, dict[str, str]] = {}

    def of(self, family: str) -> dict[str, dict[str, str]]:
        """The histograms of `family` (service or intended)."""
        return self.service if family == SERVICE else self.intended if family == INTENDED else {}


class MetricsSnapshot(Record):
    """What the Locust users recorded, merged over every load-generating process."""

    version: int
    scenarios: dict[str, ScenarioMetrics] = {}
    total: Families = Families()
    counters: dict[str, int] = {}
    hit_rate: float | None = None
    series: list[SeriesRow] = []
    histograms: EncodedHistograms = EncodedHistograms()

    def outcome_summary(self, scenario: str, outcome: str | None) -> LatencySummary | None:
        """Service time of one outcome of `scenario`, or of all of them blended (None)."""
        found = self.scenarios.get(scenario)
        if found is None:
            return None
        families = found.total if outcome is None else found.outcomes.get(outcome)
        return None if families is None else families.service

    def counter(self, name: str) -> int:
        """A free counter; 0 when nothing counted it."""
        return self.counters.get(name, 0)


class ModelUsage(Record):
    """Token usage of the calls the fake upstream answered for one model."""

    calls: int = Field(ge=0)
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)


class CacheAccounting(Record):
    """Hit rate from the cache headers (or the upstream's call log where there were none);
    calls avoided from the upstream's ground truth, if read."""

    chat_outcomes: dict[str, int] = {}
    cache_requests: int = 0
    hits: int = 0
    hit_rate_headers: float | None = None
    ground_truth: bool = False
    cut_at_stop: int = 0
    upstream_calls: int | None = None
    upstream_distinct_requests: int | None = None
    calls_avoided: int | None = None
    calls_avoided_share: float | None = None
    hits_minus_calls_avoided: int | None = None
    ideal_hit_rate: float | None = None
    # The answered calls' token usage by model, as the upstream billed it (its `usage`).
    upstream_usage: dict[str, ModelUsage] = {}
    # How long the upstream itself took per answered call (its own clock, arrival to answer):
    # a MISS's time less this is what the target adds to a call.
    upstream_served: LatencySummary | None = None
    upstream_served_histogram: str | None = None
    # The same clock to the first piece of text of each streamed call: the upstream's own time
    # to first token, which a streamed MISS's first token waits for.
    upstream_first_token: LatencySummary | None = None
    upstream_first_token_histogram: str | None = None
    # Where the cache path's HIT/MISS came from: the targets' header (hit_header), the fake
    # upstream's call log for answers that had none, or both; None when neither told. The
    # outcome counts above, hit_rate_headers included, are of the outcomes so recorded.
    outcome_source: Literal["header", "upstream log", "header and upstream log"] | None = None
    hit_header: str | None = None  # --hermes-hit-header: how the targets mark a hit
    # From the call log: a request is a MISS when a call of its hash arrived while it was in
    # flight. Its hit rate over every request it told, and how far the headers agree with it.
    hit_rate_upstream_log: float | None = None
    log_attributed: int | None = None
    log_compared: int | None = None
    log_agreement: float | None = None
    log_mismatches: dict[str, int] = {}  # "header HIT, log MISS" -> requests
    # Answers of the cache path the log did not tell: past a cap, or no log to read.
    not_attributed: int = 0
    calls_log_dropped: int | None = None  # calls the upstream left out of its log (its cap)

    @model_serializer(mode="wrap")
    def _later_fields_only_when_measured(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Tokens and the first token's clock came later.
        return _unless_empty(
            handler(self),
            self,
            ("upstream_usage", "upstream_first_token", "upstream_first_token_histogram"),
        )


class CpuSummary(Record):
    """CPU of one load-generating process, in % of one core."""

    count: int = 0
    mean_pct: float | None = None
    p90_pct: float | None = None
    max_pct: float | None = None
    threshold_pct: float = 90.0
    above_threshold_share: float | None = None
    saturated: bool | None = None


class LoadGenerator(Record):
    """Whether any load-generating process was saturated (its latencies are then suspect)."""

    saturated: bool = False
    per_process: dict[str, CpuSummary] = {}


class OtherProcess(Record):
    """A process the run did not start, and the CPU it took during a cell (% of one core)."""

    pid: int
    name: str
    mean_pct: float
    max_pct: float


class OtherLoad(Record):
    """The machine's busy CPU that no process of the run used; `cpu.saturated` means busy."""

    cpu: CpuSummary = CpuSummary()
    top: list[OtherProcess] = []  # by mean CPU over the cell, highest first

    @property
    def busy(self) -> bool | None:
        """True when the machine was busy with other work, None when not sampled."""
        return self.cpu.saturated


class CellLoad(Record):
    """CPU sampled while a Locust cell ran: each process the run started, and other work.

    `processes` maps a role (target-0, redis, upstream, locust, locust worker 1) to its CPU;
    `unknown` names what could not be sampled (an external Redis, targets we did not start).
    """

    interval_s: float
    processes: dict[str, CpuSummary] = {}
    unknown: list[str] = []
    other: OtherLoad | None = None

    def saturated(self) -> list[str]:
        """The roles that were saturated, in the order they were recorded."""
        return [role for role, cpu in self.processes.items() if cpu.saturated]


class MetricsRun(Record):
    """Where one Locust run sent its load and what it drew."""

    started_at: Timestamp | None = None
    ended_at: Timestamp | None = None
    targets: list[str] = []
    upstream: str | None = None
    embedded_stack: bool = False
    backend: str | None = None
    workers: int = 0
    arrival_rate: float | None = None
    workload: dict[str, str | int | float | bool] = {}


class MetricsDocument(Record):
    """The metrics file a Locust run writes (schema hermes-bench/locust-metrics/1)."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: str = Field(METRICS_SCHEMA, alias="schema")
    run: MetricsRun = MetricsRun()
    cache: CacheAccounting = CacheAccounting()
    load_generator: LoadGenerator = LoadGenerator()
    metrics: MetricsSnapshot

    def latency(self, outcome: str | None) -> LatencySummary | None:
        """Cache-path service time of one outcome (HIT, MISS...) or all blended (None)."""
        return self.metrics.outcome_summary(CACHE_SCENARIO, outcome)

    def cache_lookups(self) -> int:
        """HIT + MISS + BYPASS responses of every chat scenario."""
        return sum(self.cache.chat_outcomes.get(o, 0) for o in CACHE_OUTCOMES)


# --- cells ----------------------------------------------------------------------------------


class TargetStats(Record):
    """GET /stats of one target at the end of a cell (the reference app's counters)."""

    model_config = ConfigDict(extra="allow")  # another gateway's /stats may say more

    instance: str | None = None
    backend: str | None = None
    requests: int = 0
    hits: int = 0
    misses: int = 0
    redis_op_latency_us: dict[str, LatencySummary] = {}


class LocustFigures(Record):
    """Cache and rate-limit cells: how the Locust process ended."""

    locust_exit_code: int | None = None


class RedisRestartFigures(Record):
    """Fresh sessions and cached answers, then a restart of Redis itself with one persistence."""

    sessions: int = Field(ge=0)
    intact_after: int = Field(ge=0)
    warm_prompts: int = Field(ge=0)
    hits_after_restart: int = Field(ge=0)
    # Requests answered with an error right after the restart (a stale pooled connection).
    errors_after_restart: int = Field(0, ge=0)


class RestartFigures(Record):
    """Sessions and cached answers before and after every target restarted, and after Redis
    itself restarted, per persistence (none, aof, rdb), when the Redis was ours to restart."""

    sessions: int = Field(ge=0)
    intact_before: int = Field(ge=0)
    intact_after: int = Field(ge=0)
    warm_prompts: int = Field(ge=0)
    hits_after_restart: int = Field(ge=0)
    hit_rate_after_restart: float
    redis_restart: dict[str, RedisRestartFigures] = {}
    redis_restart_skipped: str | None = None  # why Redis was not restarted, when it was not


class ProbeFigures(Record):
    """Direct redis-py round trips per command, the baseline of the app's own timings."""

    direct: dict[str, LatencySummary]


class FallbackFigures(Record):
    """A target started without REDIS_URL: did it log the guide's line?"""

    line_logged: bool
    expected_line: str
    log: str


class MemoryRecord(Record):
    """Records of one kind and size stored both ways: mean MEMORY USAGE per record, in bytes.

    The hash is what the app wrote (HSET); the JSON string is the same record as the guide's
    `json.dumps(record)` (SET), under a key of the same length.
    """

    records: int = Field(ge=1)
    fields: int = Field(ge=0)
    longest_value_bytes: int = Field(ge=0)  # the longest field value as the hash holds it
    json_length_bytes: float = Field(ge=0)  # mean length of the JSON string itself
    hash_bytes: float = Field(ge=0)
    json_bytes: float = Field(ge=0)
    hash_encoding: str  # OBJECT ENCODING: listpack or ziplist (compact), hashtable past them
    json_encoding: str  # embstr or raw


class CacheEntryBytes(Record):
    """The app's cache entries as Redis holds them: mean bytes of key, value and overhead."""

    entries: int = Field(ge=1)
    entry_bytes: float = Field(ge=0)  # MEMORY USAGE of the app's key
    value_bytes: float = Field(ge=0)  # STRLEN: the completion as the app stored it
    key_bytes: float = Field(ge=0)
    encoding: str


class MemoryFigures(Record):
    """MEMORY USAGE of sessions as hash and as JSON per size, and of the app's cache entries.

    `max_entries` and `max_value_bytes` are the server's compact-hash limits, read from
    `limits_config` (hash-max-listpack-*, or hash-max-ziplist-* before Redis 7).
    """

    redis_version: str
    allocator: str
    limits_config: str
    max_entries: int
    max_value_bytes: int
    sessions: dict[str, MemoryRecord]  # by size: small, typical, long value, many fields
    cache_entry: CacheEntryBytes


class PoolStep(Record):
    """One step of the pool sweep: a fixed number of chat requests, `in_flight` at a time.

    A request is served by Redis when it got a 200 with the right answer, a cache HIT (every
    prompt was cached before) and the rate limiter's headers (it counted the request);
    otherwise Redis failed it (e.g. "Too many connections") and the app failed open.
    """

    in_flight: int = Field(ge=1)
    requests: int = Field(ge=0)
    wall_s: float = Field(ge=0)
    throughput_rps: float = Field(ge=0)
    served_by_redis: int = Field(ge=0)
    cache_failed_open: int = Field(ge=0)  # 200 without a HIT
    limiter_failed_open: int = Field(ge=0)  # 200 without rate-limit headers
    wrong_answers: int = Field(0, ge=0)
    statuses: dict[str, int] = {}  # HTTP status, or the transport error's name, by count
    lost_redis_share: float = Field(ge=0, le=1)  # requests not served by Redis / requests
    latency: LatencySummary  # response time at the client
    # The app's rate-limit and cache-read steps (Server-Timing): Redis round trips plus any
    # wait for a pooled connection.
    redis_steps: LatencySummary
    # Each wait for a pooled connection as the app timed it, from asking the pool to having a
    # connection or its refusal (/stats redis_pool_wait_us), over this step only; None: not
    # measured (results written before the app timed its waits).
    connection_wait: LatencySummary | None = None
    # Of those, the refusals: every connection busy (plain pool) or none freed in time.
    connection_refusals: int | None = Field(None, ge=0)
    app_counters: dict[str, int] = {}  # what changed in the target's /stats over the step
    # The target's warnings over the step by their last clause ("Too many connections": n).
    app_warnings: dict[str, int] = {}
    cpu_pct: dict[str, float] = {}  # % of one core over the step, by process, and the machine


class PoolFigures(Record):
    """Concurrency swept past a pool of `max_connections`, per REDIS_POOL_MODE."""

    max_connections: int = Field(ge=1)
    timeout_s: float = Field(gt=0)
    warm_prompts: int = Field(ge=0)
    modes: dict[str, list[PoolStep]]  # nonblocking (the guide's), blocking: steps by in-flight


class EvictionPolicyFigures(Record):
    """One maxmemory-policy with Redis full: the cache workload, then one API key pushed past
    its limit and a few new sessions, then the sessions created before the workload read back.

    Requests of the workload and of the burst are counted together in `statuses`,
    `server_errors`, `cache_write_failed` and `limiter_failed_open`; hits are of the workload.
    """

    # used_memory with the sessions, nothing cached and one client's query buffer (the
    # target's: a quiet client's is freed, a busy one's is there whenever it sends a command).
    baseline_bytes: int = Field(ge=0)
    maxmemory_bytes: int = Field(ge=1)
    used_memory_bytes: int = Field(ge=0)  # the same way, after the burst
    requests: int = Field(ge=0)  # of the workload
    hits: int = Field(ge=0)
    hit_rate: float = Field(ge=0, le=1)  # hits / requests, from X-Cache
    statuses: dict[str, int] = {}  # HTTP status, or the transport error's name, by count
    server_errors: int = Field(ge=0)  # 5xx and transport errors
    wrong_answers: int = Field(0, ge=0)
    cache_write_failed: int = Field(ge=0)  # answers with X-Cache-Write: failed (OOM)
    cache_write_errors: int = Field(ge=0)  # the target's /stats over the same requests
    limiter_failed_open: int = Field(ge=0)  # answers with X-RateLimit-Status: fail-open
    load_s: float = Field(ge=0)  # wall time of the workload and the burst
    evicted_keys: int = Field(ge=0)  # Redis INFO stats, over the workload and the burst
    cache_entries_held: int = Field(ge=0)  # the app's cache keys left at the end
    # An exact LRU cache of that many entries over the same sequence: the bound at the room
    # this policy left the cache (more than sized when it evicted sessions to make it).
    lru_hit_rate_held: float = Field(ge=0, le=1)
    sessions: int = Field(ge=0)
    sessions_intact: int = Field(ge=0)  # read back with the data they were created with
    sessions_lost: int = Field(ge=0)  # read back as 404: evicted
    session_errors: int = Field(ge=0)  # read back with anything else
    new_sessions: int = Field(ge=0)  # created after the burst, Redis still full
    new_sessions_refused: int = Field(ge=0)  # of those, not created (500: OOM)
    burst_limit: int = Field(ge=1)  # the one key's limit per window
    burst_requests: int = Field(ge=0)  # limit + a few, all in one window, each a new prompt
    burst_admitted: int = Field(ge=0)  # answered 200: the rest got 429
    burst_failed_open: int = Field(ge=0)  # of those, admitted with no limiter decision

    @property
    def over_admitted(self) -> int:
        """Requests admitted past the limit: the limiter lost its count (evicted or refused)."""
        return max(0, self.burst_admitted - self.burst_limit)


class EvictionFigures(Record):
    """Redis full under each maxmemory-policy (C10), sized from measured bytes per entry.

    maxmemory = the used_memory with the sessions + `cache_entries` x `entry_bytes`, so the
    cache holds `cache_share` of the workload's distinct prompts beside the sessions.
    `lru_hit_rate` is an exact LRU cache of `cache_entries` over the very sequence sent.
    """

    redis_version: str
    allocator: str
    maxmemory_samples: int = Field(ge=1)
    cache_share: float = Field(gt=0, le=1)
    requests: int = Field(ge=1)  # of the workload, per policy
    distinct_prompts: int = Field(ge=1)
    cache_entries: int = Field(ge=1)
    entry_bytes: float = Field(gt=0)  # used_memory per cache entry written through the app
    entry_memory_usage_bytes: float = Field(ge=0)  # MEMORY USAGE of one: the key and value
    session_bytes: float = Field(ge=0)  # used_memory per session created through the app
    lru_hit_rate: float = Field(ge=0, le=1)
    ideal_hit_rate: float = Field(ge=0, le=1)
    rate_limit: str  # the limit of the cell's target: one window holds the whole burst
    # Remaining TTL in seconds of each kind of key the app writes, read right after it wrote
    # one ("cache entry", "session", "limiter key"); None: no TTL. volatile-* evict only keys
    # with one.
    ttl_s: dict[str, float | None]
    policies: dict[str, EvictionPolicyFigures]  # allkeys-lru, allkeys-lfu, volatile-*, ...


class OutageRequests(Record):
    """One kind of request (session reads, writes, health checks) in one phase of an outage."""

    requests: int = Field(ge=0)
    statuses: dict[str, int] = {}  # HTTP status, or the transport error's name, by count
    latency: LatencySummary


class OutagePhase(Record):
    """Chat requests sent in one phase (before, during, after the fault), by send time."""

    start_s: float = Field(ge=0)  # seconds from the start of the fault's load
    end_s: float = Field(ge=0)
    requests: int = Field(ge=0)
    throughput_rps: float = Field(ge=0)  # answers per second of the phase
    statuses: dict[str, int] = {}
    hits: int = Field(ge=0)  # X-Cache: HIT
    served_by_redis: int = Field(ge=0)  # 200 with the limiter's decision and the cache in Redis
    failed_open: int = Field(ge=0)  # 200 without one of them
    limiter_failed_open: int = Field(ge=0)  # X-RateLimit-Status: fail-open
    limiter_failed_closed: int = Field(ge=0)  # fail-closed: 503 by RATE_LIMIT_ON_REDIS_ERROR
    cache_write_failed: int = Field(ge=0)  # X-Cache-Write: failed or skipped
    server_errors: int = Field(ge=0)  # 5xx and transport errors
    wrong_answers: int = Field(0, ge=0)
    latency: LatencySummary  # response time at the client
    # The same less the upstream's part (the app's Server-Timing): the wait on Redis shows.
    beside_upstream: LatencySummary
    sessions: dict[str, OutageRequests] = {}  # "read", "write"
    healthz: OutageRequests


class OutageFault(Record):
    """One fault of Redis under load, and what the app did before, during and after it."""

    how: str  # what was done to Redis, in words
    fault_s: float = Field(ge=0)  # from the fault's start until Redis answered again
    phases: dict[str, OutagePhase]  # before, during, after
    detected_s: float | None = None  # fault start to the first /healthz 503 (None: none)
    healthy_again_s: float | None = None  # fault end to the first /healthz 200 after it
    # Fault end to the first chat request from which on every one was served by Redis again;
    # None when the after phase ended before that.
    recovered_s: float | None = None
    sessions: int = Field(ge=0)  # created before the fault, only read during the load
    sessions_intact: int = Field(ge=0)  # read back with their data after the fault
    cache_entries: int = Field(ge=0)  # prompts cached before the fault and not asked during it
    cache_entries_intact: int = Field(ge=0)  # of those, a HIT after the fault
    app_counters: dict[str, int] = {}  # what changed in the target's /stats over the fault
    app_warnings: dict[str, int] = {}  # the target's warnings over the fault, by cause
    last_error: str | None = None  # /healthz's last Redis error after the fault, redacted


class OutageFigures(Record):
    """Outage cell: a target of its own on a private Redis, which is killed, hung, slowed and
    filled under a steady load; the app's failure settings as it ran."""

    redis_version: str
    redis_timeout_s: float = Field(gt=0)
    health_timeout_s: float = Field(gt=0)  # /healthz's PING waits at most this long
    breaker_failures: int = Field(ge=0)
    breaker_cooldown_s: float = Field(ge=0)
    rate_limit_on_redis_error: str
    in_flight: int = Field(ge=1)
    rate_rps: float = Field(gt=0)  # the load's intended rate of requests
    faults: dict[str, OutageFault]  # killed, hung, slowed, full


class SweepStep(Record):
    """One arrival rate of a capacity sweep: what was asked, what was served, how long from
    each request's intended send time."""

    rate_rps: float = Field(gt=0)
    users: int = Field(ge=1)
    duration_s: float = Field(ge=0)
    requests: int = Field(ge=0)
    achieved_rps: float = Field(ge=0)
    errors: int = Field(ge=0)
    hit_rate: float | None = None  # the cache path only
    intended: LatencySummary  # every request, from its intended send time
    hit_intended: LatencySummary | None = None
    kept_up: bool  # served the rate, few errors, latency not past the knee rule
    saturated: list[str] = []  # roles whose CPU was saturated (load generator, target-0...)
    busy_machine: bool = False  # other work was running on the machine


class SweepFigures(Record):
    """A capacity sweep: open-model arrival-rate steps on one target until it stops keeping
    up; `path` is "cache" (chat requests of the workload) or "bare" (POST /_bare: the load
    generator's own limit)."""

    path: Literal["cache", "bare"]
    step_s: float = Field(gt=0)
    rates: list[float]  # the rates it was to try
    steps: list[SweepStep]
    knee_rps: float | None = None  # the highest rate it kept up with; None: not even the first
    stopped_because: str | None = None  # why the sweep ended before its last rate


class NoFigures(Record):
    """A failed cell: nothing measured."""


# NoFigures first: an empty {} is a failed cell's, not a Locust cell with no exit code. The
# others have required fields of their own, and unknown fields are errors, so one fits each.
CellFigures = (
    NoFigures
    | LocustFigures
    | RestartFigures
    | ProbeFigures
    | FallbackFigures
    | MemoryFigures
    | PoolFigures
    | EvictionFigures
    | OutageFigures
    | SweepFigures
)


class Cell(Record):
    """One measurement of a run: a kind of cell on one backend and number of instances."""

    id: str
    kind: CellKind
    backend: str | None = None
    instances: int = Field(ge=1)
    # 1 to K under --repeat K: the same cell measured again, for the spread of its statistics.
    repeat: int = Field(1, ge=1)
    status: Literal["ok", "failed"]
    error: str | None = None
    started_at: Timestamp
    ended_at: Timestamp
    conditions: dict[str, Any] = {}
    metrics: MetricsDocument | None = None
    targets: list[TargetStats] = []
    redis_info: dict[str, int] | None = None
    extra: CellFigures = NoFigures()
    load: CellLoad | None = None

    @model_serializer(mode="wrap")
    def _load_only_when_sampled(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Also the cells that sample none.
        return _unless_empty(handler(self), self, ("load",))

    @property
    def ok(self) -> bool:
        """True when the cell measured what it set out to."""
        return self.status == "ok"


# --- the run --------------------------------------------------------------------------------


class RunOptionsRecord(Record):
    """What `hermes-bench run` was asked to do, secrets hidden."""

    backends: list[str]
    instances: int
    users: int
    requests_per_cache_cell: int
    upstream_latency: str
    # The upstream slept upstream_latency x time_scale; the verdicts stand for time_scale 1.
    time_scale: float = Field(1.0, ge=0)
    repeat: int = Field(1, ge=1)
    rate_limit: str
    seed: int
    workload: str
    redis: str
    cells: list[str]
    target_env: dict[str, str] = {}
    external_targets: list[str] = []
    hit_header: str | None = None
    stream: bool = False  # the cache cells streamed (--stream)
    fail_on: list[Verdict] = []  # --fail-on: the verdicts that fail the run

    @model_serializer(mode="wrap")
    def _stream_only_when_on(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _unless_empty(handler(self), self, ("stream", "fail_on"))


class Machine(Record):
    """The machine the run measured on."""

    platform: str
    python: str
    cpus: int | None = None
    memory_gib: float | None = None
    load_average_1m: float | None = None


class Run(Record):
    """When and how the run ran."""

    id: str
    started_at: Timestamp
    ended_at: Timestamp | None = None
    wall_s: float | None = None
    status: RunStatus
    profile: str
    options: RunOptionsRecord
    machine: Machine
    versions: dict[str, str]
    # The process that ran it, so a later `report` can tell a run still going from one killed.
    host: str | None = None
    pid: int | None = None
    process_started_at: Timestamp | None = None

    @model_serializer(mode="wrap")
    def _process_only_when_known(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _unless_empty(handler(self), self, ("host", "pid", "process_started_at"))


class Claim(Record):
    """One claim of the guide, its reading, the figures measured and the verdict they carry."""

    id: str
    title: str
    guide: str
    reading: str
    verdict: Verdict
    summary: str
    # Where the verdict flips, in the reader's terms: "holds when the hit rate is at least ...".
    holds_when: str | None = None
    figures: dict[str, float | int | bool | str] = {}
    conditions: dict[str, Any] = {}
    notes: list[str] = []
    cells: list[str] = []


class ThresholdCheck(Record):
    """One --threshold of the run: the expression as given, what was measured, the outcome.

    `limit` and `measured` are in µs for a latency (`unit` "us"), plain numbers for a scalar.
    """

    expression: str
    subject: str
    aggregate: str | None = None  # "p(95)", "avg", "min", "max"; None for a scalar
    op: str
    limit: float
    unit: Literal["us"] | None = None
    measured: float | None = None  # None: the run did not measure it
    status: ThresholdStatus
    message: str


class LruPoint(Record):
    """Hit rate an LRU cache of `size` entries reaches on the run's sequence."""

    size: int = Field(ge=0)
    hit_rate: float = Field(ge=0, le=1)


class Bounds(Record):
    """Upper bounds of the hit rate for the request sequence of a cache cell."""

    requests: int = Field(ge=0)
    distinct: int = Field(ge=0)
    ideal_hit_rate: float | None = None
    lru: list[LruPoint] = []


class TierCost(Record):
    """One Redis tier priced for the run's cache at the traffic asked for."""

    tier: str
    label: str
    monthly_usd: float | None = None  # None: the tier cannot hold it (why_not says why)
    why_not: str | None = None
    # Requests per day from which on Redis's own saving (over the in-memory fallback) pays for
    # the tier; None: never on this workload.
    break_even_per_day: float | None = None


class Payoff(Record):
    """Does Redis pay off: OpenAI dollars avoided against what the guide's tiers cost for the
    memory and commands the run measured. Every figure is at `traffic_per_day`."""

    status: Literal["measured", "inconclusive"]
    reason: str | None = None  # why inconclusive
    model: str | None = None
    prices_as_of: str | None = None
    prices_source: str | None = None
    input_usd_per_mtok: float | None = None
    output_usd_per_mtok: float | None = None
    traffic_per_day: float = Field(gt=0)
    instances: int = Field(1, ge=1)
    prompt_tokens_per_call: float | None = None
    completion_tokens_per_call: float | None = None
    completion_tokens_given: bool = False  # --completion-tokens, not the upstream's count
    usd_per_call: float | None = None
    calls_avoided_share: float | None = None  # Redis, at `instances`
    memory_calls_avoided_share: float | None = None  # the in-memory fallback, at `instances`
    saved_per_1000_usd: float | None = None  # by Redis against no cache
    saved_per_month_usd: float | None = None
    over_memory_per_month_usd: float | None = None  # by Redis against the in-memory fallback
    cache_entries: int | None = None
    entry_bytes: float | None = None
    memory_bytes: float | None = None
    commands_per_request: float | None = None
    tiers: list[TierCost] = []
    assumptions: list[str] = []


class Results(Record):
    """Everything one claims run measured and concluded."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: str = Field(RESULTS_SCHEMA, alias="schema")
    run: Run
    cells: list[Cell] = []
    claims: list[Claim] = []
    outages: list[Claim] = []  # when Redis fails: a verdict per fault of the outage cell
    payoff: Payoff | None = None
    answer: list[str] = []  # the plain answer: a few sentences from the figures
    bounds: Bounds | None = None
    thresholds: list[ThresholdCheck] = []  # each --threshold, checked after the claims

    @model_serializer(mode="wrap")
    def _later_parts_only_when_made(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Every run since the outage cell judges all its faults: only older files lack them.
        return _unless_empty(handler(self), self, ("outages", "payoff", "answer", "thresholds"))

    def ok_cells(self, kind: CellKind) -> list[Cell]:
        """Cells of `kind` that completed."""
        return [cell for cell in self.cells if cell.kind == kind and cell.ok]

    def find_cell(
        self, kind: CellKind, backend: str | None, *, single: bool | None = None
    ) -> Cell | None:
        """The first cell of `kind` on `backend` (any when None), one instance or several."""
        for cell in self.cells:
            if cell.kind != kind or (backend is not None and cell.backend != backend):
                continue
            if single is not None and (cell.instances == 1) != single:
                continue
            return cell
        return None

    def first_ok(
        self, kind: CellKind, backend: str | None = None, *, single: bool | None = None
    ) -> Cell | None:
        """The first completed cell of `kind` (on `backend`, one instance or several), not a
        repeat."""
        for cell in self.ok_cells(kind):
            if backend is not None and cell.backend != backend:
                continue
            if single is not None and (cell.instances == 1) != single:
                continue
            if cell.repeat == 1:
                return cell
        return None

    def repeats_of(self, cell: Cell) -> list[Cell]:
        """Every measurement of `cell`'s kind, backend and instances: itself and its repeats."""
        return [
            c
            for c in self.cells
            if (c.kind, c.backend, c.instances) == (cell.kind, cell.backend, cell.instances)
        ]


__all__ = [
    "BACKENDS",
    "BETTER",
    "BORDERLINE",
    "CELL_KINDS",
    "FAILS",
    "HOLDS",
    "INCONCLUSIVE",
    "NOT_MEASURED",
    "VERDICTS",
    "CellKind",
    "RunStatus",
    "ThresholdStatus",
    "Verdict",
]
