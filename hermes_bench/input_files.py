"""Files a user hands the harness (traces, request logs, results, config): one check of what
the path is before it is opened, so a FIFO never blocks and a folder never gives a traceback."""

from __future__ import annotations

import stat
from pathlib import Path


def file_problem(path: Path) -> str | None:
    """Why `path` cannot be read as a file, in words for a message; None when it can."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "no such file; check the path"
    except NotADirectoryError:
        return "no such file: a part of the path is not a folder"
    except OSError as exc:
        return f"cannot read the file: {exc.strerror or exc}"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not a regular file: reading it would wait for a writer"
    return "a device or socket, not a regular file"
