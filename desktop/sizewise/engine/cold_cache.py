"""A buffer read between generated tokens, so every token starts with the CPU's caches holding other data.

A model larger than the last-level cache reads its weights from memory on every token whatever happens between
tokens; a model that fits in it reads them from the cache, several times faster per byte, and how much of it
stays there depends on what else the machine runs (other programs, and on a shared server other guests). The
speed model predicts the first kind: memory-bound tokens. Calibration's small models are the second kind unless
the cache is emptied before each of their tokens, which this does (engine/speed/measure.py has the numbers).
"""

from __future__ import annotations

import numpy as np

# The largest buffer a bench may ask for: well past any CPU's last-level cache, small beside any machine's memory.
MAX_EVICT_BYTES = 1 << 30


class CacheEvictor:
    """Reads the first bytes of a buffer of ``capacity`` bytes, from start to end, on each ``evict``. The buffer is
    written once up front (ones, not zeros): untouched memory reads the kernel's single shared zero page, which would
    evict nothing."""

    def __init__(self, capacity: int) -> None:
        self._buffer = np.ones(max(capacity // 8, 1), dtype=np.int64)
        self.total = 0  # the sum, kept so the read cannot be optimised away or ignored

    @property
    def capacity(self) -> int:
        return int(self._buffer.nbytes)

    def evict(self, n_bytes: int | None = None) -> None:
        """Read ``n_bytes`` of the buffer (all of it by default)."""
        n = len(self._buffer) if n_bytes is None else max(min(n_bytes // 8, len(self._buffer)), 1)
        self.total = int(self._buffer[:n].sum())


_shared: CacheEvictor | None = None


def shared_evictor(n_bytes: int) -> CacheEvictor:
    """The worker's one evictor, at least ``n_bytes`` large, kept across benches (a larger request replaces it):
    a fresh 128 MiB buffer took 25-150 ms to write (over 1 s the first time, faulting its pages in) on a 2-core
    Intel Xeon guest, and calibration asks for one in each of its ~50 benches, each model reading its own share of
    it (engine/speed/measure.py, Runs.for_model). Only calibration's own worker process asks, and it ends with
    calibration."""
    global _shared
    if _shared is None or _shared.capacity < n_bytes:
        _shared = CacheEvictor(n_bytes)
    return _shared
