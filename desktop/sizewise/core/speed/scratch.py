"""The folder calibration writes its synthetic models into, and the removal of ones a killed run left behind.

A calibration deletes its folder in a ``finally`` (success, failure, Ctrl+C), but nothing runs after SIGKILL,
a crash or a power cut, and the folder holds a few hundred MB of models. So the folder is named after the
process that owns it, and every calibration first removes the folders whose owner is gone — never one whose
owner still runs (a second calibration at the same time).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from sizewise.core.atomic import pid_alive

SCRATCH_PREFIX = "speed-calibration-"


def owner_pid(folder: Path) -> int | None:
    """The process id in a scratch folder's name (``speed-calibration-<pid>-<random>``), or None."""
    rest = folder.name.removeprefix(SCRATCH_PREFIX)
    pid_text = rest.split("-", 1)[0]
    return int(pid_text) if rest != folder.name and pid_text.isdigit() else None


def clean_stale_scratch(parent: Path) -> list[Path]:
    """Delete scratch folders under ``parent`` whose owner no longer runs (or that name none: an older
    version's, which never outlives its run); return them."""
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for folder in parent.glob(f"{SCRATCH_PREFIX}*"):
        pid = owner_pid(folder)
        if pid is not None and pid_alive(pid):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    return removed


def make_scratch(parent: Path) -> Path:
    """A fresh scratch folder under ``parent`` owned by this process, after removing stale ones."""
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale_scratch(parent)
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=parent))
