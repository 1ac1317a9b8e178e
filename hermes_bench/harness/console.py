"""The rich console every command prints to: the terminal's width on a terminal, no wrapping
when the output goes to a file or a CI log."""

from __future__ import annotations

import os
from typing import IO

from rich.console import Console

# Without a terminal rich assumes 80 columns, wraps every long line and crops table headers.
# A width no line reaches keeps each row of a table and each sentence on one line, whole.
PLAIN_WIDTH = 10_000


def output_console(file: IO[str] | None = None) -> Console:
    """A Console on `file` (stdout): as wide as the terminal, or unbounded without one.

    COLUMNS, when set, wins either way: it is how a user asks for a width.
    """
    console = Console(file=file)
    if console.is_terminal or os.environ.get("COLUMNS", "").isdigit():
        return console
    return Console(file=file, width=PLAIN_WIDTH, soft_wrap=True)
