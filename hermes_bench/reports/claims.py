"""The guide's claims and their verdicts: pure functions from Results to Claims.

Every figure in a verdict comes from a cell of the results; nothing is assumed. A claim whose
cells failed or have too few samples is inconclusive; so is one whose cell did not measure a
figure it needs (a None in the results, never a guess). A latency claim (C1, C2, C4, C5) is
inconclusive too when, in a cell it uses, the load generator, a target, Redis or the fake
upstream was saturated or the machine was busy with other work: its times then measure the
machine. The counting claims are exact counts whatever the load, and only note it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hermes_bench.errors import ConfigError
from hermes_bench.reports import guide
from hermes_bench.reports.latency_parts import (
    PartDraws,
    PartsMissing,
    cell_parts,
    draw_parts,
    first_token_parts,
    interval,
)
from hermes_bench.reports.load_reasons import load_reasons, other_load
from hermes_bench.reports.real_latency import (
    RealUpstream,
    TailUnmeasured,
    at_least_verdict,
    band_verdict,
    blended_mean_ms,
    break_even_hit_rate,
    real_upstream,
    repeat_speedup,
    share_text,
    upstream_for_speedup,
)
from hermes_bench.results.model import (
    BETTER,
    BORDERLINE,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_MEASURED,
    Cell,
    CellKind,
    Claim,
    EvictionFigures,
    EvictionPolicyFigures,
    FallbackFigures,
    LatencySummary,
    MemoryFigures,
    MetricsDocument,
    PoolFigures,
    PoolStep,
    ProbeFigures,
    RedisRestartFigures,
    RestartFigures,
    Results,
    Verdict,
)
from hermes_bench.results.vocabulary import BACKENDS, ERROR, TTFT_SCENARIO, WRONG_ANSWER

MIN_SAMPLES = 30
FIRST_TOKEN = "first token"
# Above this share of wrong answers or errors in a cell, its figures carry no verdict.
MAX_BAD_SHARE = 0.01

_T = TypeVar("_T")


class _Inconclusive(Exception):
    """Raised inside a claim's evaluation: the data cannot carry a verdict."""


@dataclass
class _Draft:
    """A claim being judged: what it read and found, before its verdict."""

    figures: dict[str, float | int | bool | str] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)
    holds_when: str | None = None
    # Bootstrap draws by cell ids, shared by every claim of one evaluation: C1, C4 and C1-C2
    # read the same cells, and one draw of them is enough.
    part_draws: dict[tuple[str, ...], PartDraws] = field(default_factory=dict)


Judge = Callable[[Results, _Draft], tuple[Verdict, str]]


def evaluate_claims(results: Results) -> list[Claim]:
    """One verdict per claim, C1 to C13 and the Redis/in-memory row, in order."""
    claims = []
    part_draws: dict[tuple[str, ...], PartDraws] = {}
    for claim_id, title, said, reading, judge in _CLAIMS:
        draft = _Draft(part_draws=part_draws)
        if judge is None:
            verdict, summary = NOT_MEASURED, "No cell of this run measures it yet."
        else:
            try:
                verdict, summary = judge(results, draft)
                _check_answers(results, draft)
            except _Inconclusive as exc:
                verdict, summary = INCONCLUSIVE, str(exc)
        claims.append(
            Claim(
                id=claim_id,
                title=title,
                guide=said,
                reading=reading,
                verdict=verdict,
                summary=summary,
                holds_when=draft.holds_when,
                figures=draft.figures,
                conditions=draft.conditions,
                notes=draft.notes,
                cells=draft.cells,
            )
        )
    return claims


# --- finding cells and figures -------------------------------------------------------------


def _check_answers(results: Results, draft: _Draft) -> None:
    """Refuse the verdict if a cell it used served wrong answers or many errors."""
    for cell in results.cells:
        if cell.id not in draft.cells or cell.metrics is None:
            continue
        outcomes = cell.metrics.cache.chat_outcomes
        total = sum(outcomes.values())
        wrong = outcomes.get(WRONG_ANSWER, 0)
        errors = outcomes.get(ERROR, 0)
        if wrong or (total and errors / total > MAX_BAD_SHARE):
            raise _Inconclusive(
                f"cell {cell.id} got {wrong} wrong answers and {errors} errors in {total} "
                "chat requests: its figures cannot carry a verdict"
            )


def _cell(results: Results, draft: _Draft, kind: CellKind, backend: str | None, n: str) -> Cell:
    """The cell of `kind` on `backend` with one instance (n="1") or several (n="N")."""
    cell = results.find_cell(kind, backend, single=n == "1")
    if cell is None:
        raise _Inconclusive(f"no {kind} cell for {backend or 'the run'} ({n} instance(s)) ran")
    draft.cells.append(cell.id)
    if not cell.ok:
        raise _Inconclusive(f"cell {cell.id} failed: {cell.error or 'no data'}")
    return cell


def _measured(value: _T | None, what: str, cell: Cell) -> _T:
    """`value`, or inconclusive naming the figure `cell` did not measure."""
    if value is None:
        raise _Inconclusive(f"cell {cell.id} did not measure {what}")
    return value


def _metrics(cell: Cell) -> MetricsDocument:
    return _measured(cell.metrics, "Locust metrics", cell)


def _figures(cell: Cell, kind: type[_T]) -> _T:
    if not isinstance(cell.extra, kind):
        raise _Inconclusive(f"cell {cell.id} holds no {kind.__name__}")
    return cell.extra


def _conditions(results: Results, draft: _Draft, *cells: Cell, latency: bool) -> None:
    """The conditions of the verdict; saturation or a busy machine in `cells` makes a latency
    claim inconclusive and is a note on a counting one."""
    options, machine = results.run.options, results.run.machine
    draft.conditions.update(
        {
            "upstream latency": options.upstream_latency,
            "fake upstream ran at": f"x{options.time_scale:g} of it",
            "workload": options.workload,
            "users": options.users,
            "instances": sorted({c.instances for c in cells}),
            "machine": f"{machine.cpus} CPUs, {machine.platform}",
        }
    )
    loads = [f"{c.id}: {text}" for c in cells if c.load and (text := other_load(c.load))]
    if loads:
        known = draft.conditions.get(_OTHER_LOAD)  # a claim of two backends adds its second
        draft.conditions[_OTHER_LOAD] = "; ".join([known, *loads] if known else loads)
    reasons = [reason for cell in cells for reason in load_reasons(cell)]
    for cell in cells:
        load = cell.load
        if load is not None and (load.other is None or not load.other.cpu.count):
            draft.notes.append(f"No CPU sample fell in {cell.id}: its load is unknown.")
        if load is not None and load.unknown:
            draft.notes.append(
                f"Not sampled in {cell.id}, so not known to be unsaturated: "
                + ", ".join(load.unknown)
                + "."
            )
    if not reasons:
        return
    said = "; ".join(reasons)
    if latency:
        raise _Inconclusive(said)
    draft.notes.append(
        f"{said[0].upper()}{said[1:]}. The counts are exact whatever the load: the verdict stands."
    )


_OTHER_LOAD = "machine's other load"


def _latency(cell: Cell, outcome: str | None) -> LatencySummary:
    """Service-time summary (µs) of the cache scenario: one outcome, or all of them blended."""
    metrics = _metrics(cell)
    if "cache" not in metrics.metrics.scenarios:
        raise _Inconclusive(f"cell {cell.id} recorded no cache requests")
    summary = metrics.latency(outcome)
    count = summary.count if summary is not None else 0
    if summary is None or count < MIN_SAMPLES:
        raise _Inconclusive(
            f"too few {outcome or 'cache'} samples in {cell.id} ({count} < {MIN_SAMPLES})"
        )
    return summary


def _stat(summary: LatencySummary, key: str, cell: Cell) -> float:
    return _measured(summary.statistic(key), key, cell)


def _ms(us: float) -> float:
    return round(us / 1000, 3)


def _range_verdict(value: float, low: float, high: float, lower_is_better: bool) -> Verdict:
    if low <= value <= high:
        return HOLDS
    better = value < low if lower_is_better else value > high
    return BETTER if better else FAILS


def _at_least_verdict(value: float, claimed: float) -> Verdict:
    if value >= claimed * 1.1 or value >= 0.999:
        return BETTER if value > claimed else HOLDS
    return HOLDS if value >= claimed else FAILS


# --- the claims ----------------------------------------------------------------------------


def _parts(
    results: Results, draft: _Draft, cell: Cell, *, first_token: bool = False
) -> tuple[list[Cell], PartDraws]:
    """`cell` and its repeats that completed, and bootstrap draws of their latency parts: of
    the whole answers, or of the time to the first token of streamed ones."""
    cells = [c for c in results.repeats_of(cell) if c.ok]
    for repeat in cells:
        if repeat.id not in draft.cells:
            draft.cells.append(repeat.id)
    key = (FIRST_TOKEN if first_token else "whole", *(c.id for c in cells))
    if key in draft.part_draws:
        return cells, draft.part_draws[key]
    try:
        parts = [(first_token_parts if first_token else cell_parts)(c) for c in cells]
    except PartsMissing as exc:
        raise _Inconclusive(str(exc)) from None
    samples = "first-token samples" if first_token else "samples"
    for outcome in ("hit", "miss"):
        count = sum(getattr(part, outcome).count for part in parts)
        if count < MIN_SAMPLES:
            raise _Inconclusive(
                f"too few {outcome.upper()} {samples} in {cell.id} ({count} < {MIN_SAMPLES})"
            )
    draws = draft.part_draws[key] = draw_parts(parts, seed=results.run.options.seed)
    return cells, draws


def _real_upstream(results: Results, whole_answers_of: Cell | None = None) -> RealUpstream:
    """The upstream the run stands for; when the run streamed, with the time the answers of
    `whole_answers_of` took after their first token, un-scaled."""
    cache = None if whole_answers_of is None else _metrics(whole_answers_of).cache
    try:
        return real_upstream(results.run.options, cache)
    except ConfigError as exc:
        spec = results.run.options.upstream_latency
        raise _Inconclusive(f"the run's upstream latency {spec!r} is unreadable: {exc}") from None
    except TailUnmeasured as exc:
        raise _Inconclusive(
            f"cell {whole_answers_of.id if whole_answers_of else '?'}: {exc}"
        ) from None


def _projection_notes(results: Results, draft: _Draft, draws: PartDraws) -> None:
    scale = results.run.options.time_scale
    draft.notes.append(
        "Projected from measured parts onto the real upstream the run stands for: a HIT's "
        f"time, a MISS's overhead over the upstream (timed by {draws.upstream_source}) and the "
        f"hit rate. The fake upstream ran at x{scale:g}; the projection does not depend on it."
    )
    if scale < 1:
        draft.notes.append(
            "With the upstream slower than it ran here, more duplicate prompts are in flight at "
            "once and each of them misses: at the real latency the hit rate can be lower."
        )
    if draws.repeats == 1:
        draft.notes.append(
            "Interval: 95% bootstrap over the requests of one run. It leaves out the machine's "
            "run-to-run spread: --repeat K adds it."
        )
    else:
        draft.notes.append(
            f"Interval: 95% bootstrap over {draws.repeats} repeats and their requests."
        )


def _ci_text(low: float, high: float, digits: int = 1) -> str:
    return f"{low:.{digits}f} to {high:.{digits}f}"


def _response_time(backend: str, low_ms: float, high_ms: float) -> Judge:
    def judge(results: Results, draft: _Draft) -> tuple[Verdict, str]:
        cell = _cell(results, draft, "cache", backend, "1")
        cells, draws = _parts(results, draft, cell)
        _conditions(results, draft, *cells, latency=True)
        real = _real_upstream(results, whole_answers_of=cell)
        pt = draws.point
        mean = blended_mean_ms(pt["hit_mean"], pt["overhead_mean"], real.mean_ms, pt["hit_rate"])
        low, high = interval(
            blended_mean_ms(draws.hit_mean, draws.overhead_mean, real.mean_ms, draws.hit_rate)
        )
        # The mean is at most high_ms from this hit rate on, at least low_ms up to the other.
        needed = [
            break_even_hit_rate(pt["hit_mean"], pt["overhead_mean"], real.mean_ms, bound)
            for bound in (high_ms, low_ms)
        ]
        needed_ci = interval(
            break_even_hit_rate(draws.hit_mean, draws.overhead_mean, real.mean_ms, high_ms)
        )
        as_run = _latency(cell, None)
        draft.figures = {
            "mean at the real upstream (ms)": round(mean, 2),
            "its 95% interval (ms)": _ci_text(low, high),
            "hit rate": round(pt["hit_rate"], 4),
            "HIT mean (ms)": round(pt["hit_mean"], 3),
            "MISS overhead over the upstream, mean (ms)": round(pt["overhead_mean"], 3),
            "real upstream mean (ms)": round(real.mean_ms, 1),
            f"hit rate for {high_ms:g} ms": share_text(needed[0]),
            f"hit rate for {high_ms:g} ms, 95% interval": (
                f"{share_text(needed_ci[0])} to {share_text(needed_ci[1])}"
            ),
            f"hit rate for {low_ms:g} ms": share_text(needed[1]),
            "as run: mean (ms)": _ms(_stat(as_run, "mean_us", cell)),
            "as run: p50 (ms)": _ms(_stat(as_run, "p50_us", cell)),
            "requests": draws.requests,
            "repeats": draws.repeats,
        }
        draft.holds_when = _band_condition(low_ms, high_ms, needed, pt, real)
        draft.notes.append(
            "The guide names no statistic. The mean is judged: the distribution has two humps "
            "(hits and misses), and its p50 is a hit's latency whenever the hit rate passes 50%."
        )
        _projection_notes(results, draft, draws)
        if backend == "memory":
            draft.notes.append(
                "Without Redis the guide's fallback still caches, in memory: one instance "
                "answers repeats about as fast as with Redis; C8 shows what N instances lose."
            )
        summary = (
            f"{backend}: {mean:.1f} ms on average (95% interval {_ci_text(low, high)}) at this "
            f"run's hit rate of {pt['hit_rate']:.1%} with a {real.describe} upstream, against "
            f"the guide's {low_ms:g}-{high_ms:g} ms."
        )
        return band_verdict((low, high), low_ms, high_ms), summary

    return judge


def _band_condition(
    low_ms: float, high_ms: float, needed: list[float], pt: dict[str, float], real: RealUpstream
) -> str:
    """Where a band claim holds, in hit rates: "... from 93.8% to 99.6%"."""
    upstream = f"a {real.describe} upstream (mean {real.mean_ms:.0f} ms)"
    at_high, at_low = needed
    if at_high != at_high:  # NaN: a HIT alone is over the band
        return (
            f"No hit rate brings the mean to {high_ms:g} ms with {upstream}: a HIT alone takes "
            f"{pt['hit_mean']:.1f} ms."
        )
    window = (
        f"at any hit rate up to {share_text(at_low)}"
        if at_high == 0
        else f"when the hit rate is from {share_text(at_high)} to {share_text(at_low)}"
    )
    if at_low != at_low:
        window = f"when the hit rate is at least {share_text(at_high)}"
    return (
        f"{low_ms:g}-{high_ms:g} ms holds {window} with {upstream}; this run's hit rate was "
        f"{pt['hit_rate']:.1%}."
    )


def _reduction(cell: Cell) -> tuple[float, dict[str, float | int | bool | str]]:
    cache = _metrics(cell).cache
    if not cache.ground_truth:
        raise _Inconclusive(f"cell {cell.id} has no upstream ground truth")
    calls = _measured(cache.upstream_calls, "upstream calls", cell)
    distinct = _measured(cache.upstream_distinct_requests, "distinct requests", cell)
    duplicates = cache.cache_requests - distinct
    if duplicates < MIN_SAMPLES:
        raise _Inconclusive(f"too few duplicate requests in {cell.id} ({duplicates})")
    value = 1 - (calls - distinct) / duplicates
    return value, {
        "requests": cache.cache_requests,
        "upstream calls": calls,
        "distinct prompts": distinct,
    }


def _judge_c3(results: Results, draft: _Draft) -> tuple[Verdict, str]:
    redis_cell = _cell(results, draft, "cache", "redis", "N")
    _conditions(results, draft, redis_cell, latency=False)
    value, figures = _reduction(redis_cell)
    draft.figures = {"reduction of duplicate calls (redis, N)": round(value, 4), **figures}
    try:
        memory_value, _ = _reduction(_cell(results, draft, "cache", "memory", "N"))
        draft.figures["reduction without Redis (memory, N)"] = round(memory_value, 4)
    except _Inconclusive as exc:
        draft.notes.append(f"No in-memory comparison: {exc}")
    ideal = _metrics(redis_cell).cache.ideal_hit_rate
    if ideal is not None:
        draft.figures["ideal hit rate of the sequence"] = round(ideal, 4)
    summary = (
        f"Redis with {redis_cell.instances} instances avoided {value:.1%} of duplicate OpenAI "
        "calls, counted at the fake upstream (guide: 80%)."
    )
    return _at_least_verdict(value, guide.DUPLICATE_REDUCTION), summary


def _judge_c4(results: Results, draft: _Draft) -> tuple[Verdict, str]:
    cell = _cell(results, draft, "cache", "redis", "1")
    streamed = results.run.options.stream
    cells, draws = _parts(results, draft, cell, first_token=streamed)
    _conditions(results, draft, *cells, latency=True)
    real = _real_upstream(results)
    pt = draws.point
    faster = repeat_speedup(pt["hit_p50"], pt["overhead_p50"], real.p50_ms)
    low, high = interval(repeat_speedup(draws.hit_p50, draws.overhead_p50, real.p50_ms))
    needed = upstream_for_speedup(pt["hit_p50"], pt["overhead_p50"], guide.REPEAT_SPEEDUP)
    hit_us = _stat(_latency(cell, "HIT"), "p50_us", cell)
    miss_us = _stat(_latency(cell, "MISS"), "p50_us", cell)
    # A streamed run is judged on the first token, the wait a user of a streaming app sees.
    of = " to the first token" if streamed else ""
    draft.figures = {
        f"faster{of} by, at the real upstream": round(faster, 4),
        "its 95% interval": _ci_text(low, high, 4),
        f"repeated (HIT) p50{of} (ms)": round(pt["hit_p50"], 3),
        f"MISS overhead over the upstream{of}, p50 (ms)": round(pt["overhead_p50"], 3),
        f"real upstream p50{of} (ms)": round(real.p50_ms, 1),
        "upstream p50 for 70% (ms)": round(needed, 2),
        "as run: faster by": round(1 - hit_us / miss_us, 4),
        "repeats": draws.repeats,
    }
    upstream_wait = "median time to first token" if streamed else "median"
    if needed > 0:
        draft.holds_when = (
            f"70% faster{of} holds when the upstream's {upstream_wait} is at least "
            f"{needed:.1f} ms; this run stands for {real.p50_ms:g} ms ({real.describe})."
        )
    else:
        draft.holds_when = (
            f"70% faster{of} holds at any upstream latency here: a MISS's own overhead "
            f"({pt['overhead_p50']:.2f} ms at p50) is already more than 3.3 times a HIT "
            f"({pt['hit_p50']:.2f} ms)."
        )
    _projection_notes(results, draft, draws)
    if streamed:
        draft.notes.append(
            "The run streamed, so the first token is judged: a HIT's and a MISS's time to it, "
            "less the upstream's own time to its first piece. The real upstream's latency "
            "model stands for its time to first token, as the fake upstream's draw does."
        )
        _first_token_figures(draft, cell)
    subject = (
        "Repeated prompts' first tokens came {} sooner than first-seen ones'"
        if streamed
        else "Repeated prompts answered {} faster than first-seen ones"
    )
    summary = (
        f"{subject.format(f'{faster:.1%}')} at p50 (95% interval {low:.1%} to {high:.1%}; HIT "
        f"{pt['hit_p50']:.2f} ms against a MISS of {real.p50_ms + pt['overhead_p50']:.1f} ms "
        f"at a {real.describe} upstream; guide: 70%)."
    )
    return at_least_verdict((low, high), guide.REPEAT_SPEEDUP), summary


def _first_token_figures(draft: _Draft, cell: Cell) -> None:
    """A streamed run's time to the first token of a HIT and a MISS, as run (not projected)."""
    metrics = _metrics(cell).metrics
    found = {
        outcome: summary.p50_us
        for outcome in ("HIT", "MISS")
        if (summary := metrics.outcome_summary(TTFT_SCENARIO, outcome)) and summary.p50_us
    }
    for outcome, p50_us in found.items():
        draft.figures[f"as run, streamed: first token of a {outcome}, p50 (ms)"] = _ms(p50_us)
    if len(found) == 2:
        sooner = 1 - found["HIT"] / found["MISS"]
        draft.figures["as run, streamed: first token sooner by"] = round(sooner, 4)


def _judge_redis_vs_memory(results: Results, draft: _Draft) -> tuple[Verdict, str]:
    ratios: dict[str, tuple[float, tuple[float, float]]] = {}
    hits: dict[str, float] = {}
    instances = {}
    for n in ("1", "N"):
        means, draws_by_backend = {}, {}
        for backend in BACKENDS:
            cell = _cell(results, draft, "cache", backend, n)
            cells, draws = _parts(results, draft, cell)
            _conditions(results, draft, *cells, latency=True)
            real = _real_upstream(results, whole_answers_of=cell)
            instances[n] = cell.instances
            pt = draws.point
            means[backend] = blended_mean_ms(
                pt["hit_mean"], pt["overhead_mean"], real.mean_ms, pt["hit_rate"]
            )
            draws_by_backend[backend] = blended_mean_ms(
                draws.hit_mean, draws.overhead_mean, real.mean_ms, draws.hit_rate
            )
            label = f"{backend}, {cell.instances} instance{'s' if cell.instances > 1 else ''}"
            draft.figures[f"{label}: mean at the real upstream (ms)"] = round(means[backend], 2)
            draft.figures[f"{label}: hit rate"] = round(pt["hit_rate"], 4)
            draft.figures[f"{label}: HIT p50 (ms)"] = round(pt["hit_p50"], 3)
            calls = _metrics(cell).cache.upstream_calls
            if calls is not None:
                draft.figures[f"{label}: upstream calls"] = calls
            if n == "1":
                hits[backend] = pt["hit_p50"]
        ratio = means["redis"] / means["memory"]
        ratio_ci = interval(draws_by_backend["redis"] / draws_by_backend["memory"])
        ratios[n] = (ratio, ratio_ci)
        draft.figures[f"redis / memory, {instances[n]} instance(s)"] = round(ratio, 4)
        draft.figures[f"redis / memory, {instances[n]} instance(s), 95% interval"] = _ci_text(
            *ratio_ci, 4
        )
    one, many = ratios["1"], ratios["N"]
    hit_gap = hits["redis"] - hits["memory"]
    single = (
        f"On one instance a hit costs {hit_gap:.2f} ms more in Redis"
        if hit_gap > 0
        else f"On one instance a hit costs {-hit_gap:.2f} ms less in Redis"
    )
    draft.holds_when = (
        f"Redis is faster than in-memory when {instances['N']} instances share it (mean ratio "
        f"{many[0]:.3f}, interval {_ci_text(*many[1], 3)}): they share one hit rate. {single}, "
        f"and the mean ratio is {one[0]:.3f} (interval {_ci_text(*one[1], 3)})."
    )
    draft.notes.append(
        "Both backends are projected onto the same real upstream from their own measured "
        "parts; a ratio below 1 means Redis answers faster on average."
    )
    low, high = many[1]
    verdict: Verdict = HOLDS if high < 1 else FAILS if low > 1 else BORDERLINE
    summary = (
        f"With {instances['N']} instances Redis averaged {many[0]:.2f}x the in-memory time at "
        f"a {real.describe} upstream; on one instance {one[0]:.2f}x."
    )
    return verdict, summary


def _judge_c5(results: Results, draft: _Draft) -> tuple[Verdict, str]:
    cell = _cell(results, draft, "cache", "redis", "1")
    _conditions(results, draft, cell, latency=True)
    ops: dict[str, LatencySummary] = {}
    for stats in cell.targets:
        for op, timing in stats.redis_op_latency_us.items():
            if op not in ops or timing.count > ops[op].count:
                ops[op] = timing
    read_op = _cache_read_op(ops)
    if read_op is None:
        raise _Inconclusive("the targets recorded too few Redis round trips that read the cache")
    read = ops[read_op]
    read_p50 = _ms(_stat(read, "p50_us", cell))
    draft.figures = {
        f"app {op} p50 (ms)": _ms(_stat(s, "p50_us", cell)) for op, s in sorted(ops.items())
    }
    draft.figures[f"app {read_op} p99 (ms)"] = _ms(_stat(read, "p99_us", cell))
    try:
        probe = _cell(results, draft, "probe", "redis", "N")
        for op, direct in _figures(probe, ProbeFigures).direct.items():
            draft.figures[f"direct {op} p50 (ms)"] = _ms(_stat(direct, "p50_us", probe))
    except _Inconclusive as exc:
        draft.notes.append(f"No direct probe: {exc}")
    draft.notes.append("Loopback Redis: a networked one adds its round trip to every figure.")
    what = "A Redis GET" if read_op == "GET" else f"The cache's Redis round trip ({read_op})"
    summary = f"{what} took {read_p50} ms at p50 as the app saw it (guide: ~5 ms per operation)."
    if read_op != "GET":
        draft.notes.append(
            f"{read_op} is one round trip: the limiter's count and the cache's GET in one "
            "script, the reference app's HIT path with the fixed-window limiter on Redis."
        )
    # "~5 ms" read as half of it either way.
    low, high = guide.OP_MS / 2, guide.OP_MS * 1.5
    return _range_verdict(read_p50, low, high, lower_is_better=True), summary


def _cache_read_op(ops: dict[str, LatencySummary]) -> str | None:
    """The busiest op that reads the cache in one round trip: GET, or a script whose last part
    is the GET (e.g. RATELIMIT_CHECK+GET); None when none has MIN_SAMPLES."""
    reads = [op for op in ops if op.split("+")[-1] == "GET" and ops[op].count >= MIN_SAMPLES]
    return max(reads, key=lambda op: ops[op].count, default=None)


def _judge_c6(results: Results, draft: _Draft) -> tuple[Verdict, str]:
    ratios = {}
    for backend in BACKENDS:
        cell = _cell(results, draft, "ratelimit", backend, "N")
        _conditions(results, draft, cell, latency=False)
        snapshot = _metrics(cell).metrics
        bursts = snapshot.counter("ratelimit_bursts")
        if bursts < 3:
            raise _Inconclusive(f"only {bursts} rate-limit windows measured in {cell.id}")
        ratio = snapshot.counter("ratelimit_admitted") / snapshot.counter("ratelimit_limit_sum")
        over = snapshot.counter("ratelimit_over_limit_bursts") / bursts
        ratios[backend] = ratio
        draft.figures[f"{backend}: admitted / limit per window"] = round(ratio, 3)
        draft.figures[f"{backend}: windows over the limit"] = round(over, 3)
        draft.figures[f"{backend}: instances"] = cell.instances
    distributed = 0.95 <= ratios["redis"] <= 1.05
    per_instance = ratios["memory"] > 1.05
    summary = (
        f"With Redis, {ratios['redis']:.2f}x the limit was admitted per key and window across "
        f"instances; in memory {ratios['memory']:.2f}x (each instance counts alone)."
    )
    return (HOLDS if distributed and per_instance else FAILS), summary


def _restart(results: Results, draft: _Draft, backend: str) -> RestartFigures:
    cell = _cell(results, draft, "restart", backend, "N")
    _conditions(results, draft, cell, latency=False)
    figures = _figures(cell, RestartFigures)
    if not figures.sessions:
        raise _Inconclusive(f"cell {cell.id} created no sessions")
    return figures


def _judge_c7(results: Results, draft: _Draft) -> tuple[Verdict, str]:
    # Redis's own restart first: what it says stands even when a target cell is missing.
    kept = _across_redis_restarts(results, draft, "sessions intact", lambda r: r.intact_after,
                                  lambda r: r.sessions)  # fmt: skip
    if kept:
        draft.holds_when = _persistence_condition("Sessions", kept)
    shares = {}
    for backend in BACKENDS:
        figures = _restart(results, draft, backend)
        shares[backend] = figures.intact_after / figures.sessions
        draft.figures[f"{backend}: intact after restart"] = round(shares[backend], 3)
        draft.figures[f"{backend}: intact before (other instance)"] = round(
            figures.intact_before / figures.sessions, 3
        )
    summary = (
        f"After every target restarted, {shares['redis']:.0%} of sessions were intact on Redis "
        f"and {shares['memory']:.0%} in memory."
    )
    if kept:
        summary += " After Redis itself restarted: " + _shares_text(kept) + "."
    held = shares["redis"] == 1.0 and shares["memory"] == 0.0 and _some_persistence_keeps(kept)
    return (HOLDS if held else FAILS), summary


def _across_redis_restarts(
    results: Results,
    draft: _Draft,
    what: str,
    part: Callable[[RedisRestartFigures], int],
    whole: Callable[[RedisRestartFigures], int],
) -> dict[str, float]:
    """Share of `what` left after a restart of Redis itself, per persistence; {} when the run
    could not restart its Redis (the reason is a note)."""
    cell = results.find_cell("restart", "redis", single=False)
    if cell is None or not isinstance(cell.extra, RestartFigures):
        return {}
    if cell.extra.redis_restart_skipped:
        draft.notes.append(f"Redis itself was not restarted: {cell.extra.redis_restart_skipped}")
    kept = {}
    for persistence, figures in cell.extra.redis_restart.items():
        if whole(figures):
            kept[persistence] = part(figures) / whole(figures)
            draft.figures[f"redis restarted, {persistence}: {what}"] = round(kept[persistence], 3)
        if figures.errors_after_restart:
            draft.notes.append(
                f"{figures.errors_after_restart} requests failed right after Redis restarted "
                f"({persistence}), after the app's one retry of a broken pooled connection."
            )
    return kept


def _shares_text(kept: dict[str, float]) -> str:
    return ", ".join(f"{share:.0%} with {_PERSISTENCE_NAMES[p]}" for p, share in kept.items())


def _persistence_condition(what: str, kept: dict[str, float]) -> str:
    """Which persistence keeps `what` over a restart of Redis itself, from the shares kept."""
    survive = [p for p, share in kept.items() if share >= 0.99]
    lost = [p for p, share in kept.items() if share < 0.99]
    if not lost:
        return f"{what} survive a restart of Redis itself with every persistence tried."
    if not survive:
        return f"{what} do not survive a restart of Redis itself with any persistence tried."
    return (
        f"{what} survive a restart of Redis itself only with "
        + " or ".join(_PERSISTENCE_NAMES[p] for p in survive)
        + " (with "
        + ", ".join(f"{_PERSISTENCE_NAMES[p]}: {kept[p]:.0%} kept" for p in lost)
        + "). A graceful restart: a crash loses what the AOF or the last snapshot did not hold."
    )


_PERSISTENCE_NAMES = {"none": "no persistence", "aof": "AOF", "rdb": "RDB snapshots"}


def _some_persistence_keeps(kept: dict[str, float]) -> bool:
    """True when a persistence (AOF or RDB) kept it all over Redis's own restart, or when none
    was measured (Redis not restarted, or only without persistence): a persistence that was
    tried and kept less means "survives restarts" does not hold."""
    persisted = [share for p, share in kept.items() if p != "none"]
    return not persisted or any(share >= 0.99 for share in persisted)


def _judge_c8(results: Results, draft: _Draft) -> tuple[Verdict, str]:
    growth = {}
    for backend in BACKENDS:
        one = _cell(results, draft, "cache", backend, "1")
        many = _cell(results, draft, "cache", backend, "N")
        _conditions(results, draft, one, many, latency=False)
        one_cache, many_cache = _metrics(one).cache, _metrics(many).cache
        if not (one_cache.ground_truth and many_cache.ground_truth):
            raise _Inconclusive("no upstream ground truth: run with the fake upstream")
        calls_one = _measured(one_cache.upstream_calls, "upstream calls", one)
        calls_many = _measured(many_cache.upstream_calls, "upstream calls", many)
        growth[backend] = calls_many / max(1, calls_one)
        draft.figures[f"{backend}: upstream calls, 1 instance"] = calls_one
        draft.figures[f"{backend}: upstream calls, {many.instances} instances"] = calls_many
        draft.figures[f"{backend}: hit rate, {many.instances} instances"] = round(
            many_cache.hit_rate_headers or 0, 3
        )
    shared, isolated = growth["redis"] <= 1.1, growth["memory"] > 1.1
    summary = (
        f"Going from 1 to N instances multiplied OpenAI calls by {growth['redis']:.2f} on Redis "
        f"(shared cache) and by {growth['memory']:.2f} in memory (isolated caches)."
    )
    return (HOLDS if shared and isolated else FAILS), summary


def _judge_c9(results: Results, draft: _Draft) -> tuple[Verdict, str]:
    kept = _across_redis_restarts(results, draft, "hit rate", lambda r: r.hits_after_restart,
                                  lambda r: r.warm_prompts)  # fmt: skip
    if kept:
        draft.holds_when = _persistence_condition("Cached answers", kept)
    rates = {}
    for backend in BACKENDS:
        rates[backend] = _restart(results, draft, backend).hit_rate_after_restart
        draft.figures[f"{backend}: hit rate right after restart"] = round(rates[backend], 3)
    summary = (
        f"Right after a restart of every target, prompts cached before were hits "
        f"{rates['redis']:.0%} of the time on Redis and {rates['memory']:.0%} in memory."
    )
    if kept:
        summary += " After Redis itself restarted: " + _shares_text(kept) + "."
    held = rates["redis"] >= 0.9 and rates["memory"] <= 0.1 and _some_persistence_keeps(kept)
    return (HOLDS if held else FAILS), summary


# C10: the guide's policy holds when its hit rate is the best of the policies tried, within
# 3 points (Redis's LRU and LFU sample keys and its LRU clock ticks once a second, so one
# policy's hit rate moves by about that much from run to run), and it lost no session or
# limiter count and refused no new session. Another policy as good that loses less, or one
# better by more, is named.
_C10_POLICY = "allkeys-lru"
_C10_TOLERANCE = 0.03
_KEY_KINDS = {"cache entry": "cache entries", "session": "sessions", "limiter key": "limiter keys"}
_TOLERANCE_TEXT = f"{_C10_TOLERANCE * 100:g} points"


def _judge_c10(results: Results, draft: _Draft) -> tuple[Verdict, str]:
    if results.find_cell("eviction", "redis") is None and results.run.options.redis != "embedded":
        raise _Inconclusive(
            "not measured: the run's Redis was given by --redis-url, and setting its maxmemory "
            "and policy is not the run's to do (the eviction cell runs on the Redis it starts)"
        )
    cell = _cell(results, draft, "eviction", "redis", "1")
    figures = _figures(cell, EvictionFigures)
    policies = _eviction_policies(figures, cell)
    guide = policies[_C10_POLICY]
    best_name, best = max(policies.items(), key=lambda item: item[1].hit_rate)
    lru_is_best = guide.hit_rate >= best.hit_rate - _C10_TOLERANCE
    lost, over, refused = guide.sessions_lost, guide.over_admitted, guide.new_sessions_refused
    _eviction_figures(draft, figures, policies)
    draft.conditions.update(
        {
            "redis": f"{figures.redis_version}, {figures.allocator}, maxmemory-samples "
            f"{figures.maxmemory_samples}",
            "maxmemory": f"used_memory with {guide.sessions} sessions + {figures.cache_entries} "
            f"cache entries x {figures.entry_bytes:g} B ({figures.cache_share:.0%} of "
            f"{figures.distinct_prompts} distinct prompts)",
            "workload": f"{figures.requests} requests per policy, " + results.run.options.workload,
            "rate limit": f"{figures.rate_limit}, {guide.burst_requests} requests on one key",
            "TTLs the app sets": _ttls_text(figures.ttl_s),
        }
    )
    rivals = [
        name
        for name, other in policies.items()
        if name != _C10_POLICY
        and other.hit_rate >= guide.hit_rate - _C10_TOLERANCE
        and other.sessions_lost <= lost
        and other.over_admitted <= over
        and other.new_sessions_refused <= refused
        and (other.sessions_lost, other.over_admitted, other.new_sessions_refused)
        != (lost, over, refused)
    ]
    draft.holds_when = _eviction_condition(figures, policies, lru_is_best, best_name, rivals)
    draft.notes += _eviction_notes(figures, policies)
    ranking = (
        f"the best of the {len(policies)} policies"
        if best_name == _C10_POLICY
        else f"best: {best_name}, {best.hit_rate:.1%}"
    )
    summary = (
        f"allkeys-lru: hit rate {guide.hit_rate:.1%} ({ranking}; exact LRU at the "
        f"{guide.cache_entries_held} entries it held: {guide.lru_hit_rate_held:.1%}); it evicted "
        f"{lost} of {guide.sessions} sessions and admitted {guide.burst_admitted} requests at a "
        f"limit of {guide.burst_limit}."
    )
    if not lru_is_best:
        summary += (
            f" {best_name} did better by {(best.hit_rate - guide.hit_rate) * 100:.1f} points, "
            f"more than the {_TOLERANCE_TEXT} of tolerance."
        )
    elif rivals:
        summary += " As good and losing less: " + ", ".join(rivals) + "."
    verdict: Verdict = HOLDS if lru_is_best and not (lost or over or refused) else FAILS
    return verdict, summary


def _eviction_policies(figures: EvictionFigures, cell: Cell) -> dict[str, EvictionPolicyFigures]:
    """The policies measured; inconclusive when the guide's is missing, one measured too
    little or wrongly, or Redis never got full."""
    policies = figures.policies
    if _C10_POLICY not in policies or "noeviction" not in policies:
        raise _Inconclusive(f"cell {cell.id} measured no allkeys-lru or no noeviction")
    for name, policy in policies.items():
        if policy.requests < MIN_SAMPLES or policy.sessions < 1:
            raise _Inconclusive(
                f"too few requests or sessions under {name} in {cell.id} ({policy.requests} "
                f"requests, {policy.sessions} sessions)"
            )
        if policy.wrong_answers:
            raise _Inconclusive(
                f"cell {cell.id} got {policy.wrong_answers} wrong answers under {name}: its "
                "figures cannot carry a verdict"
            )
    if not policies[_C10_POLICY].evicted_keys or not policies["noeviction"].cache_write_failed:
        raise _Inconclusive(
            f"Redis never got full in {cell.id}: nothing was evicted under allkeys-lru or no "
            "cache write was refused under noeviction"
        )
    return policies


def _eviction_figures(
    draft: _Draft, figures: EvictionFigures, policies: dict[str, EvictionPolicyFigures]
) -> None:
    draft.figures = {
        "cache sized for (entries)": figures.cache_entries,
        "share of the distinct prompts": figures.cache_share,
        "used_memory per cache entry (B)": figures.entry_bytes,
        "MEMORY USAGE per cache entry (B)": figures.entry_memory_usage_bytes,
        "used_memory per session (B)": figures.session_bytes,
        "exact LRU hit rate at that size": figures.lru_hit_rate,
        "ideal hit rate of the sequence": figures.ideal_hit_rate,
    }
    for name, policy in policies.items():
        draft.figures[f"{name}: hit rate"] = policy.hit_rate
        draft.figures[f"{name}: sessions lost"] = policy.sessions_lost
        draft.figures[f"{name}: admitted past the limit"] = policy.over_admitted
        draft.figures[f"{name}"] = _policy_text(policy)


def _policy_text(policy: EvictionPolicyFigures) -> str:
    failed_open = f", {policy.burst_failed_open} failed open" if policy.burst_failed_open else ""
    return (
        f"{policy.cache_entries_held} cache entries held (exact LRU at that size "
        f"{policy.lru_hit_rate_held:.1%}); {policy.evicted_keys} keys evicted; "
        f"{policy.cache_write_failed} cache writes refused; sessions {policy.sessions_intact} "
        f"of {policy.sessions} intact, {policy.sessions_lost} lost, "
        f"{policy.new_sessions_refused} of {policy.new_sessions} new ones refused; limiter "
        f"{policy.burst_admitted} admitted at a limit of {policy.burst_limit}{failed_open}; "
        f"{policy.server_errors} server errors"
    )


def _ttls_text(ttl_s: dict[str, float | None]) -> str:
    return ", ".join(f"{kind} {_ttl_text(ttl_s[kind])}" for kind in _KEY_KINDS if kind in ttl_s)


def _ttl_text(ttl_s: float | None) -> str:
    # Read just after the write: 3599.9 s left of the app's 3600.
    return "none" if ttl_s is None else f"{round(ttl_s)} s"


def _eviction_condition(
    figures: EvictionFigures,
    policies: dict[str, EvictionPolicyFigures],
    lru_is_best: bool,
    best_name: str,
    rivals: list[str],
) -> str:
    """Where allkeys-lru is right, and what serves better when the data say so."""
    guide = policies[_C10_POLICY]
    if lru_is_best and not (
        guide.sessions_lost or guide.over_admitted or guide.new_sessions_refused
    ):
        return (
            f"allkeys-lru gave the best hit rate (within {_TOLERANCE_TEXT}) and lost no "
            "session or limiter count, nor refused a new session: every key the app writes "
            "could stay."
        )
    if not lru_is_best:
        better = policies[best_name]
        text = (
            f"{best_name} gave a better hit rate ({better.hit_rate:.1%} against "
            f"{guide.hit_rate:.1%}) on the same sequence and memory."
        )
    else:
        text = (
            f"allkeys-lru gives the best hit rate (within {_TOLERANCE_TEXT}) at a cost: "
            + "; ".join(_eviction_costs(guide, figures))
            + "."
        )
    if rivals:
        text += (
            " As good and losing less: "
            + "; ".join(
                f"{name} ({policies[name].hit_rate:.1%}, {policies[name].sessions_lost} sessions "
                f"lost, {policies[name].over_admitted} admitted past the limit)"
                for name in rivals
            )
            + "."
        )
    keeper_name, keeper = min(
        policies.items(), key=lambda item: (item[1].sessions_lost, -item[1].hit_rate)
    )
    if keeper.sessions_lost < guide.sessions_lost:
        text += (
            f" {keeper_name} kept the most sessions ({keeper.sessions_intact} of "
            f"{keeper.sessions}) at a hit rate of {keeper.hit_rate:.1%}, with "
            f"{keeper.cache_write_failed} cache writes refused, {keeper.new_sessions_refused} of "
            f"{keeper.new_sessions} new sessions refused and {keeper.over_admitted} requests "
            "admitted past the limit"
            + (
                " (Redis refused its counts: the limiter failed open)."
                if keeper.burst_failed_open
                else "."
            )
        )
    ttl = figures.ttl_s
    with_ttl = sorted(
        (kind for kind in _KEY_KINDS if ttl.get(kind) is not None), key=lambda kind: ttl[kind] or 0
    )
    if "session" in with_ttl:
        text += (
            " volatile-* evict only keys with a TTL, and the app gives one to "
            + ", ".join(f"{_KEY_KINDS[kind]} ({_ttl_text(ttl[kind])})" for kind in with_ttl)
            + ": they keep sessions only if sessions have none (volatile-ttl takes the shortest "
            "first: " + ", then ".join(_KEY_KINDS[kind] for kind in with_ttl) + "). What keeps "
            "sessions and limiter counts is a Redis of their own that the cache does not fill "
            "(maxmemory and the policy are per instance: another database number does not "
            "help)."
        )
    return text


def _eviction_costs(policy: EvictionPolicyFigures, figures: EvictionFigures) -> list[str]:
    """What a policy lost or refused, in words; only what it did."""
    costs = []
    if policy.sessions_lost:
        more = policy.cache_entries_held - figures.cache_entries
        room = f" (their memory held {more} more cache entries than sized)" if more > 0 else ""
        costs.append(
            f"it evicted {policy.sessions_lost} of {policy.sessions} sessions, the oldest "
            f"keys{room}"
        )
    if policy.new_sessions_refused:
        costs.append(f"{policy.new_sessions_refused} of {policy.new_sessions} new sessions refused")
    if policy.over_admitted:
        costs.append(f"the limiter admitted {policy.over_admitted} past its limit")
    return costs


def _eviction_notes(
    figures: EvictionFigures, policies: dict[str, EvictionPolicyFigures]
) -> list[str]:
    load_s = max(policy.load_s for policy in policies.values())
    notes = [
        f"The verdict: holds when allkeys-lru's hit rate is within {_TOLERANCE_TEXT} of the "
        "best policy's and it lost no session, refused no new one and admitted nothing past "
        "the limit; does not hold otherwise, naming a policy as good that lost less (fewer "
        "sessions, and no more new sessions refused or requests past the limit), or a better "
        "one.",
        "Per policy, from an empty cache: sessions first, maxmemory set at their used_memory "
        f"plus {figures.cache_entries} cache entries at the bytes measured per entry; then the "
        "Zipf sequence, one API key pushed past its limit (each request a new prompt, so "
        "writes evict between its limiter checks), new sessions, and the first sessions read "
        "back with no limit (404: evicted).",
        f"The workload took up to {load_s:.1f} s per policy. Redis's LRU and LFU are "
        f"approximations ({figures.maxmemory_samples} keys sampled per eviction) and its LRU "
        "clock ticks once a second: within a second it cannot tell recent from old, which a "
        "slower, longer workload would let it do.",
    ]
    same = policies.get("volatile-lru")
    ttl = figures.ttl_s
    if same is not None and all(ttl.get(kind) is not None for kind in _KEY_KINDS if kind in ttl):
        spread = abs(same.hit_rate - policies[_C10_POLICY].hit_rate)
        notes.append(
            "Every key the app writes has a TTL, so volatile-lru evicts from the same keys as "
            f"allkeys-lru: their hit rates differ by {spread * 100:.1f} points on the same "
            "sequence, the run's own noise"
            + (
                f", more than the {_TOLERANCE_TEXT} of tolerance: the hit-rate ranking is "
                "within noise; sessions and limiter counts are counts and stand."
                if spread > _C10_TOLERANCE
                else "."
            )
        )
    return notes


# The guide's ~200 B against ~500 B is a ratio of 0.4; "~" read as 25% either way.
_C11_RATIO, _C11_SPREAD = guide.HASH_BYTES / guide.JSON_BYTES, 0.25
_COMPACT_ENCODINGS = frozenset({"listpack", "ziplist"})


def _judge_c11(results: Results, draft: _Draft) -> tuple[Verdict, str]:
    cell = _cell(results, draft, "memory", "redis", "1")
    figures = _figures(cell, MemoryFigures)
    typical = figures.sessions.get("typical")
    if typical is None or not typical.json_bytes:
        raise _Inconclusive(f"cell {cell.id} measured no typical session")
    ratio = typical.hash_bytes / typical.json_bytes
    entry = figures.cache_entry
    draft.figures = {
        "typical session: hash (B)": round(typical.hash_bytes, 1),
        "typical session: JSON (B)": round(typical.json_bytes, 1),
        "typical session: hash / JSON": round(ratio, 3),
    }
    for size, record in figures.sessions.items():
        if size != "typical":
            draft.figures[f"{size} session: hash / JSON (B)"] = (
                f"{record.hash_bytes:.0f} / {record.json_bytes:.0f} ({record.hash_encoding})"
            )
    draft.figures["cache entry (B)"] = round(entry.entry_bytes, 1)
    draft.figures["cache entry beyond the completion (B)"] = round(
        entry.entry_bytes - entry.value_bytes
    )
    draft.conditions.update(
        {
            "redis": f"{figures.redis_version}, {figures.allocator}",
            "compact hash limits": f"{figures.max_entries} fields, {figures.max_value_bytes} B "
            f"({figures.limits_config})",
        }
    )
    low, high = _C11_RATIO * (1 - _C11_SPREAD), _C11_RATIO * (1 + _C11_SPREAD)
    draft.notes.append(
        f"The guide's ~200 B against ~500 B is a hash / JSON ratio of {_C11_RATIO}; with ~ read "
        f"as {_C11_SPREAD:.0%} either way, it holds from {low:.2f} to {high:.2f}, better below."
    )
    draft.notes.append(
        "Bytes per cache entry (key, value and Redis's own overhead) feed the cost of the "
        "memory a hit rate needs; the fake upstream's completions are short, a real one adds "
        "its length."
    )
    draft.holds_when = _compact_condition(figures)
    summary = (
        f"The typical session ({typical.fields} fields) took {typical.hash_bytes:.0f} B as a "
        f"hash and {typical.json_bytes:.0f} B as JSON: the hash is {ratio:.2f} of it (guide: "
        f"~200 vs ~500 B, {_C11_RATIO}). A cache entry took {entry.entry_bytes:.0f} B."
    )
    verdict: Verdict = BETTER if ratio < low else HOLDS if ratio <= high else FAILS
    return verdict, summary


def _compact_condition(figures: MemoryFigures) -> str:
    """Where a hash is smaller than JSON: inside the server's compact-hash limits."""
    compact = [r for r in figures.sessions.values() if r.hash_encoding in _COMPACT_ENCODINGS]
    past = {s: r for s, r in figures.sessions.items() if r.hash_encoding not in _COMPACT_ENCODINGS}
    ratios = [r.hash_bytes / r.json_bytes for r in compact if r.json_bytes]
    limits = (
        f"while the session has at most {figures.max_entries} fields of at most "
        f"{figures.max_value_bytes} B each ({figures.limits_config})"
    )
    span = f"(hash / JSON {min(ratios):.2f} to {max(ratios):.2f})" if ratios else ""
    smaller = "smaller than JSON" if ratios and max(ratios) < 1 else "not always smaller than JSON"
    text = f"A compact hash is {smaller} {span} {limits}".replace("  ", " ")
    if past:
        text += "; past that it is " + "; ".join(
            f"{r.hash_bytes:.0f} B vs {r.json_bytes:.0f} B for the {size} session ({r.fields} "
            f"fields, longest value {r.longest_value_bytes} B)"
            for size, r in past.items()
        )
    return text + "."


def _judge_c12(results: Results, draft: _Draft) -> tuple[Verdict, str]:
    cell = _cell(results, draft, "fallback", None, "1")
    figures = _figures(cell, FallbackFigures)
    draft.figures = {"line logged": figures.line_logged}
    summary = (
        f"A target started without REDIS_URL {'logged' if figures.line_logged else 'did not log'}"
        f" {figures.expected_line!r} and served from memory."
    )
    return (HOLDS if figures.line_logged else FAILS), summary


# C13: where a pool stops being enough. The plain pool fails requests: not enough from the
# first step where more than 1% lost Redis. The blocking pool makes them wait: not enough from
# the first step that loses more than 1% or, past the pool's size, where most requests wait
# for a connection longer than for Redis: the app's wait p50 over the Redis step's p50 at the
# last step within the pool (the most requests it serves with no one waiting). The p50, not a
# tail: at twice the pool's size the p99 wait already nears that bar while most requests find a
# connection at once, so the tail would move the boundary from run to run. Results written
# before the app timed its waits fall back on the response p99: more than twice that step's.
MAX_LOST_SHARE = MAX_BAD_SHARE
QUEUEING_P99_FACTOR = 2.0
SATURATED_PCT = 90.0  # % of a core: the load generator's rule
_POOL_LABELS = {"nonblocking": "plain pool", "blocking": "blocking pool"}


def _pool_steps(figures: PoolFigures, mode: str, cell: Cell) -> list[PoolStep]:
    """The steps of one pool mode by requests in flight; inconclusive when one is too small
    or served a wrong answer."""
    steps = sorted(figures.modes.get(mode, []), key=lambda step: step.in_flight)
    if not steps:
        raise _Inconclusive(f"cell {cell.id} swept no {mode} pool")
    for step in steps:
        if step.requests < MIN_SAMPLES:
            raise _Inconclusive(
                f"too few requests at {step.in_flight} in flight in {cell.id} "
                f"({step.requests} < {MIN_SAMPLES})"
            )
        if step.wrong_answers:
            raise _Inconclusive(
                f"cell {cell.id} got {step.wrong_answers} wrong answers at {step.in_flight} in "
                "flight: its figures cannot carry a verdict"
            )
    return steps


def _p99_ms(step: PoolStep) -> float:
    return _ms(step.latency.p99_us or 0)


def _baseline(steps: list[PoolStep], size: int) -> PoolStep:
    """The last step within the pool's size (the first step if none is)."""
    return ([step for step in steps if step.in_flight <= size] or steps[:1])[-1]


def _first_short(steps: list[PoolStep], size: int, *, queueing: bool) -> PoolStep | None:
    """The first step where the pool is not enough (see above); None: enough at every step."""
    base = _baseline(steps, size)
    by_wait = _waits_timed(steps) and _round_trip_us(base) is not None
    limit_ms = QUEUEING_P99_FACTOR * _p99_ms(base)
    for step in steps:
        if step.lost_redis_share > MAX_LOST_SHARE:
            return step
        if not queueing or step.in_flight <= size:
            continue
        if by_wait and (_wait_p50(step) or 0) > (_round_trip_us(base) or 0):
            return step
        if not by_wait and _p99_ms(step) > limit_ms:
            return step
    return None


def _waits_timed(steps: list[PoolStep]) -> bool:
    """Every step has the app's own timing of its waits for a connection."""
    return all(step.connection_wait is not None for step in steps)


def _round_trip_us(step: PoolStep) -> int | None:
    """What a request's Redis step takes at `step` (p50, µs): the bar a wait is held to."""
    return step.redis_steps.p50_us


def _wait_p50(step: PoolStep) -> int | None:
    return None if step.connection_wait is None else step.connection_wait.p50_us


def _enough_up_to(steps: list[PoolStep], short: PoolStep | None) -> int | None:
    """The most requests in flight before `short`; None when the first step is short."""
    before = [s.in_flight for s in steps if short is None or s.in_flight < short.in_flight]
    return before[-1] if before else None


def _step_text(step: PoolStep) -> str:
    wait = step.connection_wait
    waited = (
        ""
        if wait is None or not wait.count
        else f"wait for a connection p50 {_duration(wait.p50_us)}, p99 {_duration(wait.p99_us)}"
        f"{f' ({step.connection_refusals} refused)' if step.connection_refusals else ''}; "
    )
    return (
        f"{step.lost_redis_share:.1%} lost Redis (cache failed open {step.cache_failed_open}, "
        f"limiter {step.limiter_failed_open}, HTTP {_statuses(step)}); {waited}p50 "
        f"{_ms(step.latency.p50_us or 0):.1f} ms, p99 {_p99_ms(step):.1f} ms; Redis steps p99 "
        f"{_ms(step.redis_steps.p99_us or 0):.1f} ms; {step.throughput_rps:.0f} req/s"
    )


def _duration(us: int | None) -> str:
    """A wait as people read it: µs below a millisecond, where the plain pool's stay."""
    if us is None:
        return "—"
    return f"{us} µs" if us < 1000 else f"{us / 1000:.1f} ms"


def _wait_p99(step: PoolStep) -> int | None:
    return None if step.connection_wait is None else step.connection_wait.p99_us


def _waits_text(steps: list[PoolStep], base: PoolStep) -> str:
    """The blocking pool's wait for a connection at its last step against its baseline; empty
    when the target did not time its waits."""
    last = steps[-1]
    if _wait_p99(last) is None or _wait_p99(base) is None:
        return ""
    return (
        f" Blocking pool: wait for a connection p99 {_duration(_wait_p99(last))} at "
        f"{last.in_flight} in flight against {_duration(_wait_p99(base))} at {base.in_flight}."
    )


def _statuses(step: PoolStep) -> str:
    return ", ".join(f"{status} x{count}" for status, count in step.statuses.items())


def _judge_c13(results: Results, draft: _Draft) -> tuple[Verdict, str]:
    cell = _cell(results, draft, "pool", "redis", "1")
    figures = _figures(cell, PoolFigures)
    size = figures.max_connections
    plain = _pool_steps(figures, "nonblocking", cell)
    blocking = _pool_steps(figures, "blocking", cell)
    users = results.run.options.users
    at_users = next((s for s in plain if s.in_flight >= users), None)
    if at_users is None:
        raise _Inconclusive(f"cell {cell.id} swept no step at this run's {users} users")
    for steps in (plain, blocking):
        first = steps[0]
        if first.in_flight <= size and first.lost_redis_share > MAX_LOST_SHARE:
            # No pool of `size` runs short with fewer requests in flight: something else failed.
            raise _Inconclusive(
                f"{first.lost_redis_share:.0%} of requests lost Redis at {first.in_flight} in "
                f"flight in {cell.id}, within the pool's {size} connections (HTTP "
                f"{_statuses(first)}): not the pool's doing"
            )
    plain_short = _first_short(plain, size, queueing=False)
    blocking_short = _first_short(blocking, size, queueing=True)
    for step in {id(s): s for s in (at_users, plain_short) if s is not None}.values():
        cpu = step.cpu_pct.get("load generator", 0.0)
        if cpu >= SATURATED_PCT:
            raise _Inconclusive(
                f"the load generator was saturated at {step.in_flight} in flight in {cell.id} "
                f"({cpu:g}% of a core): fewer requests than that may have been in flight"
            )
    plain_enough = _enough_up_to(plain, plain_short)
    blocking_enough = _enough_up_to(blocking, blocking_short)
    base = _baseline(blocking, size)
    options, machine = results.run.options, results.run.machine
    draft.conditions = {
        "pool": f"REDIS_MAX_CONNECTIONS={size}, REDIS_TIMEOUT={figures.timeout_s:g}",
        "in flight": [s.in_flight for s in plain],
        "users": users,
        "rate limit": cell.conditions.get("rate limit", options.rate_limit),
        # What a request that lost the cache waits for instead.
        "upstream latency": f"{options.upstream_latency}, run at x{options.time_scale:g}",
        "machine": f"{machine.cpus} CPUs, {machine.platform}",
    }
    draft.figures = {
        "plain pool: enough up to (in flight)": _or_none(plain_enough),
        "plain pool: not enough from (in flight)": _in_flight_of(plain_short),
        "blocking pool: enough up to (in flight)": _or_none(blocking_enough),
        "blocking pool: not enough from (in flight)": _in_flight_of(blocking_short),
        f"plain pool: lost Redis at {at_users.in_flight} in flight (this run's users)": (
            at_users.lost_redis_share
        ),
    }
    for step in {id(s): s for s in (blocking[-1], base)}.values():
        if (p99_us := _wait_p99(step)) is not None:
            wait_key = (
                f"blocking pool: wait for a connection p99 at {step.in_flight} in flight (ms)"
            )
            draft.figures[wait_key] = _ms(p99_us)
    for mode, steps in (("nonblocking", plain), ("blocking", blocking)):
        for step in steps:
            draft.figures[f"{_POOL_LABELS[mode]} at {step.in_flight} in flight"] = _step_text(step)
    draft.holds_when = _plain_boundary(size, plain, plain_short, plain_enough) + _blocking_boundary(
        figures.timeout_s, blocking, blocking_short, base
    )
    draft.notes += _pool_notes(size, base, users, plain + blocking)
    lost = at_users.lost_redis_share
    summary = (
        f"At this run's {users} users ({at_users.in_flight} in flight) the guide's plain pool of "
        f"{size} lost Redis for {lost:.1%} of requests. "
        + _enough_text("plain", plain_enough)
        + "; "
        + _blocking_summary(blocking, blocking_short, blocking_enough, base)
        + _waits_text(blocking, base)
    )
    return (HOLDS if lost <= MAX_LOST_SHARE else FAILS), summary


def _enough_text(label: str, enough: int | None) -> str:
    if enough is None:
        return f"The {label} pool is not enough at any step swept"
    return f"The {label} pool is enough up to {enough} requests in flight"


def _blocking_summary(
    steps: list[PoolStep], short: PoolStep | None, enough: int | None, base: PoolStep
) -> str:
    if short is None:
        return f"the blocking pool at every step, up to {steps[-1].in_flight}."
    if short.lost_redis_share > MAX_LOST_SHARE:
        return _enough_text("blocking", enough).replace("The", "the", 1) + "."
    worst = max(s.lost_redis_share for s in steps)
    return (
        f"the blocking pool lost at most {worst:.1%} up to {steps[-1].in_flight} in flight, "
        f"queueing from {short.in_flight} ({_queueing_reason(steps, short, base)})."
    )


def _queueing_reason(steps: list[PoolStep], short: PoolStep, base: PoolStep) -> str:
    """Why the blocking pool counts as queueing at `short`, by the rule its figures allow."""
    if _waits_timed(steps) and _round_trip_us(base) is not None:
        return (
            f"half the requests waited {_duration(_wait_p50(short))} or more for a connection, "
            f"more than the {_duration(_round_trip_us(base))} a Redis step took at "
            f"{base.in_flight} in flight"
        )
    return (
        f"p99 {_p99_ms(short):.1f} ms, over {QUEUEING_P99_FACTOR:g}x the {_p99_ms(base):.1f} ms "
        f"at {base.in_flight} in flight"
    )


def _or_none(value: int | None) -> int | str:
    return "none of the steps" if value is None else value


def _in_flight_of(step: PoolStep | None) -> int | str:
    return "not within the sweep" if step is None else step.in_flight


def _plain_boundary(
    size: int, plain: list[PoolStep], short: PoolStep | None, enough: int | None
) -> str:
    if short is None:
        return (
            f"The guide's plain pool of {size} was enough at every step, up to "
            f"{plain[-1].in_flight} requests in flight."
        )
    lost = f"{short.lost_redis_share:.0%} of requests lost Redis{_cause(short)}"
    if enough is None:
        return f"With the guide's plain pool of {size}, {lost} already at {short.in_flight}."
    return (
        f"The guide's plain pool of {size} is enough up to {enough} requests in flight on this "
        f"machine; at {short.in_flight}, {lost}."
    )


def _cause(step: PoolStep) -> str:
    """The target's most frequent warning in `step`, as the reason requests lost Redis."""
    if not step.app_warnings:
        return ""
    cause, count = next(iter(step.app_warnings.items()))
    return f" (the target logged {cause!r} {count} times; cache and limiter failed open)"


def _blocking_boundary(
    timeout_s: float, steps: list[PoolStep], short: PoolStep | None, base: PoolStep
) -> str:
    if short is not None and short.lost_redis_share > MAX_LOST_SHARE:
        return (
            f" The blocking pool lost Redis for {short.lost_redis_share:.0%} of requests at "
            f"{short.in_flight} in flight{_cause(short)}: waits past REDIS_TIMEOUT="
            f"{timeout_s:g} s."
        )
    last = steps[-1]
    worst = max(s.lost_redis_share for s in steps)
    text = (
        f" The blocking pool queues instead of failing (at most {worst:.1%} lost Redis up to "
        f"{last.in_flight} in flight): p99 {_p99_ms(last):.1f} ms at {last.in_flight} against "
        f"{_p99_ms(base):.1f} ms at {base.in_flight}"
    )
    if short is not None:
        text += f"; it queues from {short.in_flight} in flight: " + _queueing_reason(
            steps, short, base
        )
    return text + "."


_WAIT_NOTE = (
    "The wait for a connection is the app's own timing of each request for a connection from "
    "its pool, over that step only: from asking to having one (opened first when the pool had "
    "room but none idle), or to the refusal; each pool was opened before the sweep, so a step "
    "times waits rather than connects. The plain "
    "pool refuses at once, so its waits stay short and what it costs shows as requests that "
    "lost Redis; the blocking pool makes them wait, up to REDIS_TIMEOUT. 'Redis steps' are "
    "the app's lookup steps (Server-Timing ratelimit+cache-read, one round trip with the "
    "fixed window), the round trip and the wait together; response times are the client's, "
    "which keeps the given number of requests in flight."
)


def _pool_notes(size: int, base: PoolStep, users: int, steps: list[PoolStep]) -> list[str]:
    timed = _waits_timed(steps)
    notes = [
        "A request lost Redis when it did not get a 200 with the right answer, a cache HIT "
        "(every prompt was cached first) and the rate limiter's headers: Redis failed it and "
        "the app failed open. The plain pool (REDIS_POOL_MODE=nonblocking, the guide's) is not "
        f"enough from the first step where more than {MAX_LOST_SHARE:.0%} of requests lost "
        "Redis. The blocking pool waits instead: not enough from the first step that loses "
        f"more than {MAX_LOST_SHARE:.0%} or, past the pool's {size} connections, "
        + (
            "where most requests wait longer for a connection than for Redis (wait p50 over "
            f"the Redis step's p50 at {base.in_flight} in flight"
            if timed
            else f"whose p99 is over {QUEUEING_P99_FACTOR:g}x the p99 at {base.in_flight} in flight"
        )
        + f", the most the pool serves with no one waiting). The verdict is the plain pool's at "
        f"this run's {users} users: holds at most 1% lost there, does not hold above.",
        _WAIT_NOTE
        if timed
        else "This run's target did not time its waits for a pooled connection: 'Redis "
        "steps' are its lookup steps (Server-Timing ratelimit+cache-read, one round trip with "
        "the fixed window), round trips and waits together; response times are the client's, "
        "which keeps the given number of requests in flight.",
        "One target per pool mode, steps alternating between them; an API key per request, so "
        "the limiter counts every request and refuses none. A faster or less busy machine "
        "frees connections sooner and moves the boundary.",
    ]
    bound = sorted(s.in_flight for s in steps if s.cpu_pct.get("target", 0.0) >= SATURATED_PCT)
    if bound:
        notes.append(
            f"The target was CPU-bound (at least {SATURATED_PCT:g}% of a core) from {bound[0]} "
            "in flight: past that, time grows with the queue whatever the pool"
            + (
                "; the wait for a connection, which the rule reads, is the pool's part alone."
                if timed
                else ", and the blocking pool's p99 rule counts that queue as well as waits for "
                "a connection."
            )
        )
    machine_pct = max(s.cpu_pct.get("machine", 0.0) for s in steps)
    ours = max(sum(pct for role, pct in s.cpu_pct.items() if role != "machine") for s in steps)
    notes.append(
        f"CPU over the steps, in % of one core: the machine up to {machine_pct:g}%, the "
        f"load generator, target and Redis together up to {ours:g}%."
    )
    return notes


_CLAIMS: list[tuple[str, str, str, str, Judge | None]] = [
    ("C1", "Response time with Redis", "Response time with Redis 10-50 ms",
     "Mean response time (hits and misses blended) on one Redis-backed target, projected from "
     "its measured parts onto the real upstream the run stands for.",
     _response_time("redis", *guide.RESPONSE_BANDS_MS["redis"])),
    ("C2", "Response time without Redis", "Response time without Redis 50-200 ms",
     "The same, on one in-memory target, same workload and seed.",
     _response_time("memory", *guide.RESPONSE_BANDS_MS["memory"])),
    ("C1-C2", "Redis against in-memory", "With Redis faster than without (the guide's two "
     "rows side by side)",
     "Mean response time projected onto the real upstream, Redis over in-memory, at 1 instance "
     "and at N, same workload and seed.", _judge_redis_vs_memory),
    ("C3", "Fewer duplicate OpenAI calls", "80% reduction in duplicate OpenAI calls",
     "1 - (upstream calls - distinct prompts) / (requests - distinct prompts), counted at the "
     "fake upstream, N Redis-backed instances.", _judge_c3),
    ("C4", "Repeated queries faster", "70% faster responses for repeated queries",
     "1 - p50(HIT) / p50(MISS) on one Redis-backed target, the MISS at the real upstream's "
     "median plus its measured overhead.", _judge_c4),
    ("C5", "Redis operation overhead", "~5 ms overhead per Redis operation",
     "p50 round trip of each Redis command as the target times it, beside a direct redis-py "
     "probe of the same server.", _judge_c5),
    ("C6", "Distributed rate limiting", "Rate limiting distributed with Redis, per instance "
     "without", "Admitted requests / limit per key and window, keys pushed past the limit "
     "through N instances behind a non-sticky balancer.", _judge_c6),
    ("C7", "Sessions survive restarts", "Sessions persist across restarts with Redis, lost "
     "without", "Share of sessions intact after every target instance is restarted, and after "
     "Redis itself is restarted with no persistence, AOF and RDB snapshots.", _judge_c7),
    ("C8", "Shared cache across instances", "Shared cache across instances with Redis, "
     "isolated without", "Upstream calls with N instances against 1, same requests.", _judge_c8),
    ("C9", "Persistent cache", "Cache persistent with Redis",
     "Hit rate of prompts cached before a restart of every target (and of Redis itself, per "
     "persistence), asked right after it.",
     _judge_c9),
    ("C10", "allkeys-lru under memory pressure", "allkeys-lru is the right policy when memory "
     "is full", "Per maxmemory-policy (allkeys-lru, allkeys-lfu, volatile-lru, volatile-ttl, "
     "noeviction), maxmemory sized from measured bytes per entry to hold a share of the workload's "
     "distinct prompts beside the app's sessions: hit rate against the exact-LRU bound of the "
     "same sequence, cache writes refused, evictions, sessions lost and requests admitted past "
     "the rate limit.", _judge_c10),
    ("C11", "Hash smaller than JSON", "Redis hash ~200 B vs JSON string ~500 B",
     "MEMORY USAGE of the same sessions stored both ways, the app's hash and the guide's JSON "
     "string, small, typical and past the server's compact-hash limits (too many fields, a "
     "value too long); bytes per cache entry beside.", _judge_c11),
    ("C12", "In-memory fallback", "Without REDIS_URL it falls back to in-memory and logs "
     "\"[INFO] Redis not configured, using in-memory fallback\"",
     "A reference target started without REDIS_URL: its log and its backend.", _judge_c12),
    ("C13", "Pool of 10 connections is enough", "REDIS_MAX_CONNECTIONS=10, REDIS_TIMEOUT=5 is "
     "enough", "Requests that lost Redis, the wait for a connection, latency and throughput as "
     "requests in flight pass the pool of 10, for the guide's plain pool and the blocking "
     "one; judged at the run's users.", _judge_c13),
]  # fmt: skip
