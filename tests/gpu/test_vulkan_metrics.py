"""Live metrics chart device memory on the Vulkan build: the engine's ``stats`` reply carries ggml's free/total per
device, and the sampler turns it into the VRAM series beside RSS, labelled with what it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from sizewise.core.sampling import LoadParams
from sizewise.gui.adapters.engine_adapter import EngineAdapter
from sizewise.gui.metrics.metrics_view import MetricsView

pytestmark = pytest.mark.gpu
MiB = 2**20


def test_live_metrics_chart_the_vulkan_device(qtbot: QtBot, gpu_build: Path, smollm2_path: Path) -> None:
    adapter = EngineAdapter()
    view = MetricsView(adapter, hz=8.0)
    qtbot.addWidget(view)
    view.show()
    try:
        with qtbot.waitSignal(adapter.loaded, timeout=120_000):
            adapter.start()
            adapter.load(str(smollm2_path), LoadParams(n_ctx=512, n_gpu_layers=-1))
        on_device = sum(b["bytes"] for b in adapter.loaded_info["buffers"] if b["device"] == "Vulkan0")
        assert on_device > 100 * MiB  # all layers offloaded: weights, KV and compute on Vulkan0
        qtbot.waitUntil(lambda: view.sampler.buffers["vram_bytes"].last() == on_device, timeout=10_000)
        s = view.sampler
        assert s.vram_available and "Vulkan0 (software Vulkan (CPU))" in s.vram_how
        # lavapipe has no VK_EXT_memory_budget: free == total always, so the reading is llama.cpp's own buffers
        assert "the driver reports no usage" in s.vram_how
        view._redraw()
        _, y = view.curve_vram.getData()
        assert y is not None and np.nanmax(y) == on_device / MiB
        assert "software Vulkan (CPU)" in view.labels["vram"].text()
    finally:
        adapter.shutdown()
