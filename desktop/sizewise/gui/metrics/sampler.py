"""Live metrics sampled into fixed-length ring buffers: one timer, a few times a second.

Why sampled (qutebrowser's download statistics pattern): a reply streams 50–150 tokens a second, and
one repaint per token would cost the GUI more than the figures are worth and could slow generation on
a small machine. Tokens are only *counted* as they arrive (one integer add per token); the timer turns
the counts into rates, reads the engine process's memory, and appends one row to every buffer. Views
redraw from the buffers when ``sampled`` fires — at the sampler's rate, never per token.

Buffers (all the same length, one entry per sample, ``nan`` where there is nothing to show):

* ``t`` — seconds since the sampler started;
* ``gen_tps`` — generation tokens/s over the last sample interval (instant);
* ``gen_avg_tps`` — tokens/s since the reply's first token (average);
* ``prompt_tps`` — the last finished reply's prompt speed (llama.cpp's perf counters);
* ``ttft_ms`` — the last finished reply's time to first token (measured in the worker);
* ``rss_bytes`` — resident memory of the engine process (psutil on ``EngineClient.pid``);
* ``vram_bytes`` — GPU memory used by the engine process (NVML) on NVIDIA; on any other backend (Vulkan, Metal,
  SYCL …) the offload devices' memory in use from ggml's free/total figures, which the engine's ``stats`` reply
  carries (the whole device's, not the process's; ``vram_how`` says which); ``nan`` without an offload device.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import psutil
from PySide6.QtCore import QObject, QTimer, Signal, Slot

from sizewise.core.fit.devices import device_memory_reading, devices_from_ready
from sizewise.gui.adapters.engine_adapter import EngineAdapter

SAMPLE_HZ = 4.0
CAPACITY = 600  # 150 s of history at 4 Hz
NAN = math.nan


class RingBuffer:
    """A fixed-capacity float buffer; ``values()`` returns oldest → newest without reallocating per append."""

    def __init__(self, capacity: int) -> None:
        self._data = np.full(capacity, np.nan, dtype=np.float64)
        self._next = 0
        self._count = 0

    @property
    def capacity(self) -> int:
        return int(self._data.shape[0])

    def __len__(self) -> int:
        return self._count

    def append(self, value: float) -> None:
        self._data[self._next] = value
        self._next = (self._next + 1) % self.capacity
        self._count = min(self._count + 1, self.capacity)

    def values(self) -> np.ndarray:
        if self._count < self.capacity:
            return self._data[: self._count].copy()
        return np.concatenate((self._data[self._next :], self._data[: self._next]))

    def last(self) -> float:
        return NAN if self._count == 0 else float(self._data[(self._next - 1) % self.capacity])

    def clear(self) -> None:
        self._data.fill(np.nan)
        self._next = self._count = 0


class _VramProbe:
    """GPU memory of one process through NVML; permanently off after the first failure (no GPU, no driver)."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self._handles: list[Any] = []
        self._failed = False

    def used_by(self, pid: int) -> float:
        if self._failed:
            return NAN
        try:
            if self._nvml is None:
                import pynvml

                pynvml.nvmlInit()
                self._nvml = pynvml
                self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
                if not self._handles:
                    self._failed = True
                    return NAN
            total = 0
            for h in self._handles:
                for p in self._nvml.nvmlDeviceGetComputeRunningProcesses(h):
                    if p.pid == pid and p.usedGpuMemory is not None:
                        total += int(p.usedGpuMemory)
            return float(total)
        except Exception:  # ImportError, NVMLError_*: no NVIDIA GPU here — show no VRAM line
            self._failed = True
            return NAN

    @property
    def available(self) -> bool:
        return not self._failed


class MetricsSampler(QObject):
    """Counts tokens from an EngineAdapter and samples rates and memory into ring buffers."""

    sampled = Signal()
    replyFinished = Signal(dict)  # the reply's GenerationStats dict, after the buffers took its figures

    def __init__(
        self, adapter: EngineAdapter, hz: float = SAMPLE_HZ, capacity: int = CAPACITY, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.adapter = adapter
        self.hz = hz
        names = ("t", "gen_tps", "gen_avg_tps", "prompt_tps", "ttft_ms", "rss_bytes", "vram_bytes")
        self.buffers: dict[str, RingBuffer] = {n: RingBuffer(capacity) for n in names}
        self.last_stats: dict[str, Any] = {}
        self._t0 = time.monotonic()
        self._last_sample = self._t0
        self._tokens_since_sample = 0
        self._reply_tokens = 0
        self._reply_first: float | None = None
        self._prompt_tps = NAN
        self._ttft_ms = NAN
        self._proc: psutil.Process | None = None
        self._vram = _VramProbe()
        self._device_vram = NAN  # from the last ``stats`` reply's devices (any backend)
        self.vram_how = ""  # what ``vram_bytes`` is: "NVML, this process" or the device reading's words
        self.timer = QTimer(self)
        self.timer.setInterval(max(1, round(1000 / hz)))
        self.timer.timeout.connect(self.sample)
        adapter.tokenCount.connect(self._on_tokens)
        adapter.finished.connect(self._on_finished)
        adapter.failed.connect(self._on_reply_ended)
        adapter.stopForced.connect(self._on_reply_ended)
        adapter.stats.connect(self._on_stats)

    # -- control ----------------------------------------------------------------------------------
    def start(self) -> None:
        self._last_sample = time.monotonic()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    @property
    def running(self) -> bool:
        return self.timer.isActive()

    def clear(self) -> None:
        for b in self.buffers.values():
            b.clear()
        self._t0 = time.monotonic()

    def series(self, name: str) -> np.ndarray:
        return self.buffers[name].values()

    @property
    def vram_available(self) -> bool:
        return self._vram.available or bool(self.vram_how)

    @property
    def generating(self) -> bool:
        """A reply is streaming (its first token has arrived and it has not ended)."""
        return self._reply_first is not None

    # -- engine events (cheap: no drawing here) ----------------------------------------------------
    @Slot(int, int)
    def _on_tokens(self, gen_id: int, n: int) -> None:
        if self._reply_first is None:
            self._reply_first = time.monotonic()
        self._tokens_since_sample += n
        self._reply_tokens += n

    @Slot(int, dict)
    def _on_finished(self, gen_id: int, stats: dict[str, Any]) -> None:
        self.last_stats = dict(stats)
        pp = float(stats.get("pp_tps") or 0.0)
        self._prompt_tps = pp if pp > 0 else NAN
        ttft = float(stats.get("ttft_ms") or 0.0)
        self._ttft_ms = ttft if ttft > 0 else NAN
        self._reply_ended()
        self.replyFinished.emit(self.last_stats)

    @Slot()
    def _on_reply_ended(self, *args: Any) -> None:
        self._reply_ended()

    def _reply_ended(self) -> None:
        self._reply_first = None
        self._reply_tokens = 0

    @Slot(dict)
    def _on_stats(self, msg: dict[str, Any]) -> None:
        """Device memory from the engine's ``stats`` reply (requested once per sample, answered by the worker's
        listener thread even mid-reply): ggml's free/total per device, whatever the backend."""
        if "devices" not in msg or self._vram.available:
            return
        buffers = (self.adapter.loaded_info or {}).get("buffers") or []
        allocated: dict[str, int] = {}
        for b in buffers:
            allocated[str(b["device"])] = allocated.get(str(b["device"]), 0) + int(b["bytes"])
        reading = device_memory_reading(devices_from_ready({"devices": msg["devices"]}), allocated)
        self._device_vram = NAN if reading is None else float(reading.bytes)
        self.vram_how = "" if reading is None else reading.how

    # -- the sample -------------------------------------------------------------------------------
    def _engine_memory(self) -> tuple[float, float]:
        remote = getattr(self.adapter, "is_remote", False)  # the model runs on a server: no local process to read
        pid = self.adapter.client.pid if self.adapter.client.alive and not remote else None
        if pid is None:
            self._proc = None
            return NAN, NAN
        try:
            if self._proc is None or self._proc.pid != pid:
                self._proc = psutil.Process(pid)
            rss = float(self._proc.memory_info().rss)
        except psutil.Error:
            self._proc = None
            return NAN, NAN
        vram = self._vram.used_by(pid)
        if self._vram.available:
            self.vram_how = "NVML, this process"
            return rss, vram
        self.adapter.request_stats()  # the answer lands in _on_stats before the next sample
        return rss, self._device_vram

    @Slot()
    def sample(self) -> None:
        now = time.monotonic()
        dt = max(now - self._last_sample, 1e-6)
        generating = self._reply_first is not None
        instant = self._tokens_since_sample / dt if generating else NAN
        average = NAN
        if generating and self._reply_first is not None and now - self._reply_first > 0.05:
            # the first token opens the interval, so it is not counted as generated within it
            average = (self._reply_tokens - 1) / (now - self._reply_first)
        rss, vram = self._engine_memory()
        b = self.buffers
        b["t"].append(now - self._t0)
        b["gen_tps"].append(instant)
        b["gen_avg_tps"].append(average)
        b["prompt_tps"].append(self._prompt_tps)
        b["ttft_ms"].append(self._ttft_ms)
        b["rss_bytes"].append(rss)
        b["vram_bytes"].append(vram)
        self._tokens_since_sample = 0
        self._last_sample = now
        self.sampled.emit()
