"""The capacity sweep: open-model arrival-rate steps on one target until it stops keeping up.

`sweep` cells run CacheUser (the workload's chat requests; the cache is warm from the steps
before) on each backend; the `generator` cell runs BareUser (POST /_bare, which touches
nothing) at the same rates: the rate at which that stops keeping up is the load generator's own
limit on this machine, so that a knee of the generator is never read as one of the target.
Each step is a Locust run of its own, sampled for CPU like every Locust cell.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from hermes_bench.harness.cells import (
    LOCUSTFILE,
    CellEnv,
    CellError,
    CellPlan,
    Measured,
    TargetSet,
    locust_cell,
)
from hermes_bench.harness.sweep_steps import knee, sweep_step, users_for, why_stopped
from hermes_bench.results.model import SweepFigures, SweepStep

BARE_LOCUSTFILE = Path(__file__).resolve().parent.parent / "scenarios" / "bare_locustfile.py"
STEP_SLACK_S = 60.0  # past a step's own time: Locust's start, stop and report


def run_sweep_cell(plan: CellPlan, stack: TargetSet, env: CellEnv) -> Measured:
    """The workload's chat requests at each rate of the profile on one target."""
    return _sweep(plan, stack, env, "cache")


def run_generator_cell(plan: CellPlan, stack: TargetSet, env: CellEnv) -> Measured:
    """POST /_bare at each rate: the load generator's own limit (reference targets only)."""
    if not stack.key_prefix:
        raise CellError("the generator cell posts to the reference app's /_bare: not with --target")
    return _sweep(plan, stack, env, "bare")


def _sweep(
    plan: CellPlan, stack: TargetSet, env: CellEnv, path: Literal["cache", "bare"]
) -> Measured:
    p = env.profile
    rates = sorted(set(p.sweep_rates))
    if not rates:
        raise CellError("the profile gives no sweep rates")
    user_class, locustfile = (
        ("CacheUser", LOCUSTFILE) if path == "cache" else ("BareUser", BARE_LOCUSTFILE)
    )

    def args_for(rate: float) -> list[str]:
        return ["-t", f"{p.sweep_step_s:g}s", "--hermes-arrival-rate", f"{rate:g}", user_class]

    steps: list[SweepStep] = []
    stopped = None
    load = None
    warmed = None
    if path == "cache":
        # A step at the lowest rate first, not counted: every counted step meets a warm
        # cache, so that the hit rate does not change from one to the next.
        warm_plan = dataclasses.replace(plan, id=f"{plan.id}/warm-up")
        warm = locust_cell(
            warm_plan, stack, env, users_for(rates[0], p.users), args_for(rates[0]),
            p.sweep_step_s + STEP_SLACK_S, locustfile,
        )  # fmt: skip
        warmed = warm.metrics.cache.hit_rate_headers if warm.metrics is not None else None
    for rate in rates:
        users = users_for(rate, p.users)
        args = args_for(rate)
        step_plan = dataclasses.replace(plan, id=f"{plan.id}/{rate:g}rps")
        measured = locust_cell(
            step_plan, stack, env, users, args, p.sweep_step_s + STEP_SLACK_S, locustfile
        )
        if measured.metrics is None:
            raise CellError(f"the step at {rate:g}/s wrote no metrics")
        step = sweep_step(rate, users, measured.metrics, measured.load, steps[0] if steps else None)
        steps.append(step)
        load = measured.load
        if not step.kept_up:
            stopped = why_stopped(step, steps[0])
            break
    return Measured(
        conditions={
            "path": "chat requests of the workload" if path == "cache" else "POST /_bare",
            "rates": rates,
            "seconds per step": p.sweep_step_s,
            "target": "one instance",
            "warm-up": (
                "none"
                if path != "cache"
                else f"one step at {rates[0]:g}/s first, not counted (hit rate "
                + ("not measured" if warmed is None else f"{warmed:.1%}")
                + ")"
            ),
        },
        figures=SweepFigures(
            path=path,
            step_s=p.sweep_step_s,
            rates=rates,
            steps=steps,
            knee_rps=knee(steps),
            stopped_because=stopped,
        ),
        load=load,
    )
