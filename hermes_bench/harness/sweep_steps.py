"""One step of a capacity sweep from its Locust metrics, and where the sweep's knee is: pure.

A step kept up when it served at least KEPT_UP_SHARE of its rate, with at most MAX_ERROR_SHARE
errors, and its judged p99 from the intended send time stayed within MAX_P99_GROWTH times that
of the sweep's first step (plus P99_FLOOR_US, so that a sub-millisecond first step does not make
a few milliseconds of noise a knee). Latency from the intended send time is what a client of an
open system waits: queueing behind a slow answer counts. On the cache path the judged latency
is the HITs': a miss waits on the fake upstream, whose time does not grow with the load, and a
faster step draws more of the workload's new prompts, so all requests together would show the
hit rate, not the load.
"""

from __future__ import annotations

from hermes_bench.results.model import CellLoad, LatencySummary, MetricsDocument, SweepStep
from hermes_bench.results.vocabulary import CACHE_SCENARIO, ERROR, HIT, WRONG_ANSWER

KEPT_UP_SHARE = 0.9
MAX_ERROR_SHARE = 0.01
MAX_P99_GROWTH = 5.0
P99_FLOOR_US = 20_000


def sweep_step(
    rate_rps: float,
    users: int,
    metrics: MetricsDocument,
    load: CellLoad | None,
    first: SweepStep | None,
) -> SweepStep:
    """What one rate measured; `first` is the sweep's first step (None for the first)."""
    run = metrics.run
    duration = (run.ended_at or 0.0) - (run.started_at or 0.0)
    snapshot = metrics.metrics
    intended = snapshot.total.intended or LatencySummary(count=0)
    requests = intended.count or (snapshot.total.service.count if snapshot.total.service else 0)
    errors = 0
    for scenario in snapshot.scenarios.values():
        for outcome in (ERROR, WRONG_ANSWER):
            families = scenario.outcomes.get(outcome)
            if families is not None and families.service is not None:
                errors += families.service.count
    cache = snapshot.scenarios.get(CACHE_SCENARIO)
    hit = cache.outcomes.get(HIT) if cache is not None else None
    achieved = steady_rate(metrics, requests, duration)
    step = SweepStep(
        rate_rps=rate_rps,
        users=users,
        duration_s=round(duration, 2),
        requests=requests,
        achieved_rps=round(achieved, 1),
        errors=errors,
        hit_rate=metrics.cache.hit_rate_headers if cache is not None else None,
        intended=intended,
        hit_intended=hit.intended if hit is not None else None,
        kept_up=False,
        saturated=load.saturated() if load is not None else [],
        busy_machine=bool(load and load.other and load.other.busy),
    )
    step.kept_up = kept_up(step, first or step)
    return step


def steady_rate(metrics: MetricsDocument, requests: int, duration_s: float) -> float:
    """Answers a second while the step ran at full rate: the mean of its whole seconds, the
    first and the last (users starting, the stop cutting requests) left out."""
    rows = metrics.metrics.series
    if len(rows) >= 3:
        middle = rows[1:-1]
        return sum(row.requests for row in middle) / len(middle)
    return requests / duration_s if duration_s > 0 else 0.0


def kept_up(step: SweepStep, first: SweepStep) -> bool:
    """The knee rule of the module's docstring."""
    return stop_reason(step, first) is None


def judged(step: SweepStep) -> LatencySummary:
    """The latency the knee rule reads: the HITs' on the cache path, every request's else."""
    return step.hit_intended if step.hit_intended is not None else step.intended


def knee(steps: list[SweepStep]) -> float | None:
    """The highest rate kept up with before the first step that did not."""
    best = None
    for step in steps:
        if not step.kept_up:
            break
        best = step.rate_rps
    return best


def stop_reason(step: SweepStep, first: SweepStep) -> str | None:
    """Why a step did not keep up, in words; None when it did (the knee rule)."""
    if not step.requests:
        return f"at {step.rate_rps:g}/s no request was answered"
    if step.achieved_rps < KEPT_UP_SHARE * step.rate_rps:
        return f"at {step.rate_rps:g}/s it served {step.achieved_rps:g}/s"
    if step.errors > MAX_ERROR_SHARE * step.requests:
        return f"at {step.rate_rps:g}/s {step.errors} of {step.requests} requests failed"
    p99, first_p99 = judged(step).p99_us, judged(first).p99_us
    if (
        p99 is not None
        and first_p99 is not None
        and p99 <= MAX_P99_GROWTH * first_p99 + (P99_FLOOR_US)
    ):
        return None
    which = "HIT p99" if step.hit_intended is not None else "p99"
    return (
        f"at {step.rate_rps:g}/s {which} from the intended send was "
        f"{(p99 or 0) / 1000:.1f} ms against {(first_p99 or 0) / 1000:.1f} ms at "
        f"{first.rate_rps:g}/s"
    )


def why_stopped(step: SweepStep, first: SweepStep) -> str:
    """Why a step that did not keep up did not, in words."""
    return stop_reason(step, first) or f"at {step.rate_rps:g}/s it kept up"


def users_for(rate_rps: float, minimum: int) -> int:
    """Locust users enough for `rate_rps` requests a second that take up to 250 ms each."""
    return max(minimum, min(2000, int(rate_rps * 0.25) + 1))
