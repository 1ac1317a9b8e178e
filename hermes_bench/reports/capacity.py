"""What the capacity sweep found, in words: the knee per backend, the rate up to which HITs
stay within the guide's 50 ms, and whether the load generator or the target set it: pure."""

from __future__ import annotations

from dataclasses import dataclass

from hermes_bench.reports import guide
from hermes_bench.results.model import Results, SweepFigures, SweepStep

# The guide's "10-50 ms", at p99 of the HITs from their intended send.
GUIDE_BOUND_US = int(guide.WITH_REDIS_MS * 1000)
# A knee within this share of the generator's own is not the target's to claim.
GENERATOR_MARGIN = 0.8


@dataclass(frozen=True)
class Capacity:
    """One backend's sweep, read."""

    backend: str
    knee_rps: float | None
    fast_hits_rps: float | None
    stopped_because: str | None
    limited_by: str  # "the target", "the load generator", or why it is not known
    by_generator: bool  # the knee is within GENERATOR_MARGIN of the generator's own limit


def generator_limit(results: Results) -> float | None:
    """The rate up to which the load generator kept up against /_bare; None: not measured."""
    cell = results.first_ok("generator")
    if cell is None or not isinstance(cell.extra, SweepFigures):
        return None
    return cell.extra.knee_rps


def capacities(results: Results) -> list[Capacity]:
    """Each backend's capacity, in the run's backend order."""
    limit = generator_limit(results)
    read = []
    for cell in results.ok_cells("sweep"):
        if not isinstance(cell.extra, SweepFigures) or cell.backend is None:
            continue
        figures = cell.extra
        knee = figures.knee_rps
        by_generator = limit is not None and knee is not None and knee >= GENERATOR_MARGIN * limit
        if limit is None:
            limited = "not known: the load generator's own limit was not measured"
        elif knee is None:
            limited = "the target (it kept up with no rate of the sweep)"
        elif by_generator:
            limited = f"the load generator (it kept up to {limit:g}/s on its own)"
        else:
            limited = f"the target (the load generator kept up to {limit:g}/s on its own)"
        read.append(
            Capacity(
                backend=cell.backend,
                knee_rps=knee,
                fast_hits_rps=fast_hits_up_to(figures.steps, GUIDE_BOUND_US),
                stopped_because=figures.stopped_because,
                limited_by=limited,
                by_generator=by_generator,
            )
        )
    return read


def capacity_sentence(results: Results) -> str | None:
    """The answer's sentence on capacity; None without a sweep."""
    read = capacities(results)
    if not read:
        return None
    names = {"redis": "with Redis", "memory": "in memory"}
    knees = " and ".join(
        ("no rate of the sweep" if c.knee_rps is None else f"{c.knee_rps:g} requests/s")
        + f" {names.get(c.backend, c.backend)}"
        for c in read
    )
    fast = " and ".join(
        "no rate" if c.fast_hits_rps is None else f"{c.fast_hits_rps:g}/s" for c in read
    )
    limit = generator_limit(results)
    by_generator = [c.backend for c in read if c.by_generator]
    if limit is None:
        said = "whether the load generator set them is not known (its own limit was not measured)"
    elif by_generator:
        said = (
            f"the load generator alone kept up to {limit:g}/s, so {' and '.join(by_generator)} "
            "may go further than measured"
        )
    else:
        said = f"those are the targets' limits: the load generator alone kept up to {limit:g}/s"
    return (
        f"On this machine one instance kept up to {knees} (HITs within "
        f"{guide.WITH_REDIS_MS:g} ms at p99 up to {fast}); {said}."
    )


def fast_hits_up_to(steps: list[SweepStep], limit_us: int) -> float | None:
    """The highest rate, before the knee, at which HITs stayed within `limit_us` at p99 from
    their intended send time."""
    best = None
    for step in steps:
        if not step.kept_up:
            break
        p99 = step.hit_intended.p99_us if step.hit_intended is not None else None
        if p99 is None or p99 > limit_us:
            break
        best = step.rate_rps
    return best
