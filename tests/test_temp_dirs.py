"""Temporary folders of a killed process are removed at the next start, a live one's never."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hermes_bench.stack.temp_dirs import owned_prefix, remove_orphans


def test_only_the_folders_of_gone_processes_are_removed(tmp_path: Path) -> None:
    mine = Path(tempfile.mkdtemp(prefix=owned_prefix("stack"), dir=tmp_path))
    (mine / "target-0.log").write_text("kept")
    gone = tmp_path / "hermes-bench-redis-999999-abcd"
    (gone / "data").mkdir(parents=True)
    other = tmp_path / "hermes-redis-999999-old"  # not ours by name: never touched
    other.mkdir()
    a_file = tmp_path / "hermes-bench-stack-999999-file"
    a_file.write_text("")
    removed = remove_orphans(tmp_path, alive=lambda pid: pid == os.getpid())
    assert removed == [gone]
    assert mine.is_dir() and other.is_dir() and a_file.is_file() and not gone.exists()
    assert mine.name.startswith(f"hermes-bench-stack-{os.getpid()}-")
