"""Why a cell's times may measure the machine rather than the system under test: pure."""

from __future__ import annotations

from hermes_bench.results.model import Cell, CellLoad

# What a role of CellLoad.processes is, in a sentence.
_ROLE_NAMES = {"redis": "Redis", "upstream": "the fake upstream", "locust": "the load generator"}


def role_name(role: str) -> str:
    """A role of CellLoad.processes in words: "the fake upstream", "the load generator"."""
    if role.startswith("locust worker"):
        return f"the load generator ({role})"
    return _ROLE_NAMES.get(role, role)


def load_reasons(cell: Cell) -> list[str]:
    """Why `cell`'s times may measure the machine: what was saturated, what else ran."""
    reasons = []
    generator_said = cell.metrics is not None and cell.metrics.load_generator.saturated
    if generator_said:
        reasons.append(f"the load generator was saturated in {cell.id}")
    load = cell.load
    if load is None:
        return reasons
    for role in load.saturated():
        if generator_said and role.startswith("locust"):
            continue  # the load generator saw its own saturation: said once
        cpu = load.processes[role]
        reasons.append(
            f"{role_name(role)} was saturated in {cell.id} "
            f"({cpu.above_threshold_share or 0:.0%} of samples above {cpu.threshold_pct:g}% of "
            "a core)"
        )
    other = load.other
    if other is not None and other.busy:
        cpu = other.cpu
        hog = other.top[0] if other.top else None
        # A process busy enough alone to make a machine busy is named; small ones are not,
        # as the load then came from processes too short-lived to be sampled.
        if hog is not None and hog.mean_pct >= cpu.threshold_pct:
            named = f"; the largest: pid {hog.pid} {hog.name} ({hog.mean_pct:g}% on average)"
        else:
            named = "; mostly processes too short-lived to name"
        reasons.append(
            f"the machine was busy with other work during {cell.id} "
            f"({cpu.above_threshold_share or 0:.0%} of samples above {cpu.threshold_pct:g}% of a "
            f"core, p90 {cpu.p90_pct:g}%{named})"
        )
    return reasons


def other_load(load: CellLoad) -> str:
    """The machine's other load during a cell, as a condition of the verdict."""
    cpu = load.other.cpu if load.other is not None else None
    if cpu is None or not cpu.count:
        return ""
    return f"{cpu.mean_pct:g}% of a core on average, p90 {cpu.p90_pct:g}%"
