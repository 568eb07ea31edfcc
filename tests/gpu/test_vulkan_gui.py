"""The app on the Vulkan build, driven like a person would (pytest-qt, offscreen): the device is named for what it
is wherever it appears, GPU layers load onto it, and the Fit view's GPU-layers slider and bars follow it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from sizewise.core.paths import AppPaths
from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.gui.shell.main_window import MainWindow

pytestmark = pytest.mark.gpu
SOFTWARE = "software Vulkan (CPU)"


def test_the_window_offloads_to_lavapipe_and_says_what_it_is(
    qtbot: QtBot, gpu_build: Path, app_paths: AppPaths, smollm2_path: Path
) -> None:
    w = MainWindow(app_paths)
    qtbot.addWidget(w)
    w.show()
    try:
        qtbot.waitUntil(lambda: SOFTWARE in w.sampling_panel.gpu_reason.text(), timeout=60_000)
        assert w.sampling_panel.gpu_layers.isEnabled()
        assert "at a CPU's speed" in w.sampling_panel.gpu_reason.text()
        assert w.status_line.device_label.text() == f"GPU: Vulkan0 ({SOFTWARE})"
        qtbot.waitUntil(lambda: SOFTWARE in w.hardware_view.summary.text(), timeout=30_000)
        assert "Layers can be offloaded to Vulkan0: llvmpipe" in w.hardware_view.summary.text()
        # 16 layers from the sampling panel: llama.cpp puts them on Vulkan0, and the Fit view shows both sides
        w.sampling_panel.set_params(SamplingParams(), LoadParams(n_ctx=512, n_gpu_layers=16))
        with qtbot.waitSignal(w.engine.loaded, timeout=120_000):
            w.loader.open_model(str(smollm2_path))
        on_device = {b["component"] for b in w.engine.loaded_info["buffers"] if b["device"] == "Vulkan0"}
        assert {"weights", "kv", "compute"} <= on_device
        fit = w.fit_view
        assert fit.gpu_slider.isEnabled() and fit.result is not None and fit.result.gpu_layers == 16
        assert fit.gpu_value.text() == "16 / 31"
        labels = [row[0] for row in fit.bars.rows]
        assert "Vulkan0 predicted" in labels and "Vulkan0 measured" in labels
        diffs = {c: pct for c, _, _, pct in fit.differences()}
        assert diffs["weights"] is not None and abs(diffs["weights"]) <= 3.0
        # the slider answers at once: all layers, then auto (every layer fits lavapipe's 2 GiB heap)
        fit.gpu_slider.setValue(31)
        assert not fit.gpu_auto.isChecked() and fit.result.gpu_layers == 31 and fit.result.verdict == "fits_gpu"
        fit.gpu_slider.setValue(0)
        pred = fit.result.prediction  # no layer, and still op offload's compute buffer (126.34 MiB logged)
        assert pred.weights_gpu == pred.kv_gpu == 0 and abs(pred.vram_bytes - 132477092) <= 0.03 * 132477092
        fit.gpu_auto.setChecked(True)
        assert fit.result.gpu_layers == 31
    finally:
        w.close()
