"""Locust's `--processes` on a master port of the test's own.

Locust's master binds 5557 by default, so two tests that run `--processes` at once (one per
xdist worker) would share one master and each get the other's workers.
"""

from __future__ import annotations

from hermes_bench.stack.ports import free_port


def processes(count: int) -> list[str]:
    """Arguments for a master and `count` forked workers that talk on a free port."""
    port = str(free_port())
    return ["--processes", str(count), "--master-bind-port", port, "--master-port", port]
