"""The Hardware view on a machine with an NVIDIA GPU: NVML's extra figures as rows, each with its source.

pynvml in this process talks to tests/nvml/standin.c (no NVIDIA GPU on these machines; see tests/core/fit/test_nvml.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from sizewise.gui.fit.hardware_view import HardwareView
from tests.nvml import LAPTOP, RTX_4090, build_standin, standin_in_this_process


@pytest.mark.parametrize(
    ("line", "bus", "utilisation"),
    [
        (RTX_4090, "384-bit: 1008 GB/s peak", "7 % compute, 3 % memory"),
        (LAPTOP, "not reported", "not reported"),
    ],
)
def test_nvml_rows_follow_the_gpu_row(qtbot: QtBot, tmp_path: Path, line: str, bus: str, utilisation: str) -> None:
    lib = build_standin(tmp_path / "lib")
    view = HardwareView()
    qtbot.addWidget(view)
    view.resize(1100, 620)
    view.show()
    with standin_in_this_process(lib, tmp_path / "gpus", line), qtbot.waitSignal(view.reportChanged, timeout=20_000):
        view.refresh()
    rows = view.rows()
    labels = [label for label, _, _ in rows]
    gpu_row = labels.index("GPU")
    nvml_rows = ["GPU clocks", "GPU memory bus", "GPU cores", "GPU utilisation", "PCIe link"]
    assert labels[gpu_row + 1 : gpu_row + 6] == nvml_rows
    found = {label: (value, source) for label, value, source in rows}
    assert found["GPU memory bus"][0] == bus
    assert found["GPU utilisation"][0] == utilisation
    assert found["GPU memory bus"][1].startswith("NVML nvmlDeviceGetMemoryBusWidth (device 0)")
    if line == LAPTOP:
        assert "Not Supported" in found["GPU memory bus"][1]  # the driver's reason is the source
    view.grab().save(str(tmp_path / "hardware-nvml.png"))
