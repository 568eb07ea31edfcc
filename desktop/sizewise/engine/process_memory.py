"""This process's resident and peak memory, as the worker and the bench loop both report it.

Its own module so that the bench loop (engine/bench.py), which runs inside the worker, can use it
without importing the worker module that imports the bench loop.
"""

from __future__ import annotations

import sys


def _linux_peak_rss() -> int | None:
    """VmHWM: this process image's own high-water mark.

    ru_maxrss is not usable on Linux for a spawned worker: it survives execve, so the worker would
    report the RSS of the parent it was forked from (a GUI or test process) as its own peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def process_memory() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process in bytes."""
    import psutil

    info = psutil.Process().memory_info()
    rss = int(info.rss)
    peak = int(getattr(info, "peak_wset", 0) or 0)  # Windows
    if not peak and sys.platform.startswith("linux"):
        peak = _linux_peak_rss() or 0
    if not peak:
        try:
            import resource

            maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            peak = int(maxrss if sys.platform == "darwin" else maxrss * 1024)
        except (ImportError, OSError):
            peak = rss
    return rss, max(rss, peak)


def worker_rss(pid: int | None) -> int | None:
    """Another process's resident memory now (an engine worker's, seen from the command that started it)."""
    if pid is None:
        return None
    import psutil

    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return None
