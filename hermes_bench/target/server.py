"""Run one target instance in this process."""

from __future__ import annotations

import logging

from hermes_bench.serving import serve
from hermes_bench.target.app import create_app
from hermes_bench.target.backends import check_scheme
from hermes_bench.target.settings import TargetSettings


def configure_logging(level: str = "INFO") -> None:
    """Log lines as the guide prints them: '[INFO] message'."""
    logging.basicConfig(level=level.upper(), format="[%(levelname)s] %(message)s", force=True)


def run_target(settings: TargetSettings, host: str, port: int) -> None:
    """Serve the reference target until SIGINT/SIGTERM."""
    configure_logging()
    check_scheme(settings.backend_url)  # fail before binding, with the known schemes named
    serve(create_app(settings), host, port, name=f"HERMES target {settings.instance_id}")
