"""The calibration scratch folder: named after its owner, and left-behind ones of killed runs removed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sizewise.core.speed.scratch import SCRATCH_PREFIX, clean_stale_scratch, make_scratch, owner_pid


def test_stale_scratch_folders_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(done.stdout)
    stale = tmp_path / f"{SCRATCH_PREFIX}{dead_pid}-abc"
    older = tmp_path / f"{SCRATCH_PREFIX}x1y2z3"  # a version that did not name its owner
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "synthetic-0-F16.gguf").write_bytes(b"x")
    older.mkdir()
    live = make_scratch(tmp_path)
    assert owner_pid(live) == os.getpid() and live.is_dir()
    assert not stale.exists() and not older.exists()
    assert clean_stale_scratch(tmp_path) == [] and live.is_dir()  # its owner (this process) still runs
