"""The Hardware view and the status bar say which device layers can go to, and when there is none — from the
engine's ready message, whose shapes tests/core/fit/test_devices.py takes from real CPU and Vulkan engines (the
Vulkan case runs for real in tests/gpu/test_vulkan_gui.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QStatusBar
from pytestqt.qtbot import QtBot

from sizewise.core.fit.hardware import probe_hardware
from sizewise.core.fit.memory_model import Backend
from sizewise.core.fit.verdict import Budget
from sizewise.core.gguf.header import model_info, read_header
from sizewise.core.sampling import LoadParams
from sizewise.gui.fit.fit_view import FitView
from sizewise.gui.fit.hardware_view import HardwareView
from sizewise.gui.shell.status_line import StatusLine

GiB = 1 << 30
CPU = {"name": "CPU", "description": "AMD EPYC", "backend": "CPU", "type": "cpu", "total_bytes": GiB, "free_bytes": GiB}
LAVAPIPE = {
    "name": "Vulkan0",
    "description": "llvmpipe (LLVM 15.0.6, 256 bits)",
    "backend": "Vulkan",
    "type": "gpu",
    "total_bytes": 2 * GiB,
    "free_bytes": 2 * GiB,
}


def _ready(*devices: dict[str, Any], gpu_offload: bool = True) -> dict[str, Any]:
    return {
        "llama_cpp_version": "0.3.36",
        "gpu_offload": gpu_offload,
        "system_info": "CPU : AVX2 = 1 |",
        "devices": list(devices),
        "device_note": "",
    }


def test_a_gpu_build_without_a_device_says_so(qtbot: QtBot) -> None:
    view = HardwareView()
    qtbot.addWidget(view)
    ready = _ready(CPU)
    view.set_engine_ready(ready)
    view.set_report(probe_hardware(ready))
    assert "This is a GPU build of llama.cpp, but it found no GPU device" in view.summary.text()
    bar = QStatusBar()
    qtbot.addWidget(bar)
    status = StatusLine(bar)
    status.show_devices(ready)
    assert status.device_label.text() == "GPU: none found"
    assert "found no GPU device" in status.device_label.toolTip()
    status.show_devices(_ready(CPU, gpu_offload=False))  # a CPU-only build: nothing to say in the bar
    assert status.device_label.text() == "" and "CPU only" in status.device_label.toolTip()


def test_a_software_device_is_named_for_what_it_is(qtbot: QtBot) -> None:
    view = HardwareView()
    qtbot.addWidget(view)
    ready = _ready(CPU, LAVAPIPE)
    view.set_engine_ready(ready)
    view.set_report(probe_hardware(ready))
    assert "Layers can be offloaded to Vulkan0: llvmpipe (LLVM 15.0.6, 256 bits) — software Vulkan (CPU)" in (
        view.summary.text()
    )
    rows = {value for _, value, _ in view.rows()}
    assert any(v.startswith("Vulkan0: llvmpipe (LLVM 15.0.6, 256 bits) — software Vulkan (CPU)") for v in rows)
    bar = QStatusBar()
    qtbot.addWidget(bar)
    status = StatusLine(bar)
    status.show_devices(ready)
    assert status.device_label.text() == "GPU: Vulkan0 (software Vulkan (CPU))"


def test_the_fit_view_says_when_the_gpu_takes_not_even_one_layer(qtbot: QtBot, smollm2_path: Path) -> None:
    view = FitView()
    qtbot.addWidget(view)
    budget = Budget(8 * GiB, 4 << 20, "a 4 MiB GPU", Backend(gpu=True, repack=False))
    view.set_model(read_header(smollm2_path), model_info(smollm2_path), budget, LoadParams(n_ctx=512))
    assert view.result is not None and view.result.gpu_layers == 0 and view.gpu_auto.isChecked()
    assert "The GPU memory budget (4 MiB) is too small for even one layer" in view.detail_label.text()
