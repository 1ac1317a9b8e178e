"""`hermes-bench trace-stats FILE`: how often a log's requests repeat, before any load is sent.

The ideal hit rate (every repeat a hit), the exact-LRU hit rate at cache sizes up to the
distinct requests, and the entries that reach a share of the ideal; `--write-trace OUT.jsonl`
turns the log into a trace `locust --hermes-workload trace --hermes-trace OUT.jsonl` replays.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hermes_bench.errors import ConfigError
from hermes_bench.hit_rate import ideal_hit_rate

SHARES_OF_IDEAL = (0.5, 0.8, 0.9, 0.99)


def add_trace_stats_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        help="a JSONL log of OpenAI chat requests (the body, or under request/body/payload "
        "on each line) or a trace (.jsonl/.csv with prompt rows)",
    )
    parser.add_argument("--write-trace", metavar="OUT", help="write the log as a trace (.jsonl)")
    parser.add_argument("--json", metavar="OUT", help="write the figures as JSON too")


def repetition(keys: list[str]) -> dict[str, Any]:
    """Requests, distinct, ideal and LRU hit rates of a sequence of cache keys: pure."""
    from hermes_bench.reports.bounds import default_sizes, lru_hit_rate_curve

    distinct = len(set(keys))
    ideal = ideal_hit_rate(len(keys), distinct) or 0.0
    sizes = default_sizes(distinct)
    curve = lru_hit_rate_curve(keys, sizes)
    reach = {}
    for share in SHARES_OF_IDEAL:
        enough = [size for size in sizes if ideal and curve[size] >= share * ideal]
        reach[f"{share:.0%}"] = min(enough) if enough else None
    return {
        "requests": len(keys),
        "distinct": distinct,
        "ideal_hit_rate": round(ideal, 4),
        "lru": {str(size): round(rate, 4) for size, rate in sorted(curve.items())},
        "entries_for_share_of_ideal": reach,
    }


def trace_stats_from_args(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from hermes_bench.scenarios.request_log import read_request_log, trace_rows

    path = Path(args.file)
    outputs = [Path(p) for p in (args.write_trace, args.json) if p]
    for out in outputs:
        if out.resolve() == path.resolve():
            raise ConfigError(f"{out}: the output would overwrite the log it is read from")
        if out.is_dir():
            raise ConfigError(f"{out}: a directory; give a file name")
    log = read_request_log(path)
    figures = repetition([r.key for r in log.requests])
    figures |= {"skipped_lines": log.skipped, "multi_turn_requests": log.multi_turn}
    console = Console()
    console.print(
        f"{path}: {figures['requests']:,} chat requests, {figures['distinct']:,} distinct "
        f"(by the cache's own key): ideal hit rate {figures['ideal_hit_rate']:.1%}"
    )
    table = Table(title="Exact LRU hit rate by cache size (entries)")
    table.add_column("entries", justify="right")
    table.add_column("hit rate", justify="right")
    for size, rate in figures["lru"].items():
        table.add_row(f"{int(size):,}", f"{rate:.1%}")
    console.print(table)
    for share, entries in figures["entries_for_share_of_ideal"].items():
        if entries is not None:
            console.print(f"{share} of the ideal hit rate with {entries:,} entries")
    if log.skipped:
        console.print(f"{log.skipped:,} lines held no chat request and were skipped")
    if log.multi_turn:
        # Only the replay's distinct prompts are wanted here, not a second LRU curve.
        replayed = len({(r.model, r.prompt) for r in log.requests})
        replay_ideal = ideal_hit_rate(len(log.requests), replayed) or 0.0
        console.print(
            f"{log.multi_turn:,} requests carry more than one user message: a trace keeps the "
            f"last one, so its replay has {replayed:,} distinct prompts "
            f"(ideal hit rate {replay_ideal:.1%})"
        )
    if args.write_trace:
        out = Path(args.write_trace)
        _write(out, "".join(json.dumps(row) + "\n" for row in trace_rows(log)))
        console.print(
            f"trace {out}: replay it with `locust -f locustfile.py --hermes-workload trace "
            f"--hermes-trace {out}`"
        )
    if args.json:
        _write(Path(args.json), json.dumps(figures, indent=1) + "\n")
    return 0


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
