"""A buffer read between generated tokens, so every token starts with the CPU's caches holding other data.

A model larger than the last-level cache reads its weights from memory on every token whatever happens between
tokens; a model that fits in it reads them from the cache, several times faster per byte, and how much of it
stays there depends on what else the machine runs (other programs, and on a shared server other guests). The
speed model predicts the first kind: memory-bound tokens. Calibration's small models are the second kind unless
the cache is emptied before each of their tokens, which this does (engine/speed/measure.py has the numbers).
"""

from __future__ import annotations

import functools

import numpy as np

# The largest buffer a bench may ask for: well past any CPU's last-level cache, small beside any machine's memory.
MAX_EVICT_BYTES = 1 << 30


class CacheEvictor:
    """Reads a buffer of ``n_bytes`` from start to end on each ``evict``. The buffer is written once up front
    (ones, not zeros): untouched memory reads the kernel's single shared zero page, which would evict nothing."""

    def __init__(self, n_bytes: int) -> None:
        self._buffer = np.ones(max(n_bytes // 8, 1), dtype=np.int64)
        self.total = 0  # the sum, kept so the read cannot be optimised away or ignored

    def evict(self) -> None:
        self.total = int(self._buffer.sum())


@functools.lru_cache(maxsize=1)
def shared_evictor(n_bytes: int) -> CacheEvictor:
    """The worker's one evictor of ``n_bytes``, kept across benches: a fresh 128 MiB buffer took 25-150 ms to write
    (over 1 s the first time, faulting its pages in) on a 2-core Intel Xeon guest, and calibration asks for one in
    each of its ~50 benches. Only calibration's own worker process asks, and it ends with calibration."""
    return CacheEvictor(n_bytes)
