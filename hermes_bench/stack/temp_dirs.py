"""Temporary folders named after the process that made them, so the next start can remove
those a killed process (SIGKILL, a crash) could not."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import psutil

_PREFIX = "hermes-bench-"
_swept = False  # the system's temporary folder was swept by this process
_OWNED = re.compile(rf"{re.escape(_PREFIX)}[a-z]+-(\d+)-")


def owned_prefix(kind: str) -> str:
    """A mkdtemp prefix naming `kind` and this process: hermes-bench-redis-1234-."""
    return f"{_PREFIX}{kind}-{os.getpid()}-"


def remove_orphans(
    root: Path | None = None, alive: Callable[[int], bool] = psutil.pid_exists
) -> list[Path]:
    """Remove the temporary folders under `root` (default: the system's) whose process is
    gone; returns them. A folder of a live process, or of a pid reused since, is kept."""
    global _swept
    removed: list[Path] = []
    if root is None:
        if _swept:  # the CLI, a Stack and its Redis each ask; one scan a process is enough
            return removed
        _swept = True
    folder = Path(root or tempfile.gettempdir())
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        found = _OWNED.match(entry.name)
        if found is None or alive(int(found[1])) or not entry.is_dir() or entry.is_symlink():
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed
