"""The engine on the Vulkan build sees llama.cpp's Vulkan device, and the app names a software one for what it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sizewise.core.fit.devices import devices_from_ready
from sizewise.core.fit.hardware import probe_hardware
from sizewise.engine.session import EngineSession
from tests.cli_helpers import run_cli

pytestmark = pytest.mark.gpu


def test_engine_lists_the_vulkan_device(gpu_build: Path, tmp_path: Path) -> None:
    with EngineSession(log_path=tmp_path / "engine.log") as session:
        ready = dict(session.start())
    assert ready["gpu_offload"] is True
    devices = devices_from_ready(ready)
    vulkan = [d for d in devices if d.backend == "Vulkan"]
    assert vulkan, ready["devices"]
    assert vulkan[0].name == "Vulkan0" and vulkan[0].offloads and vulkan[0].total_bytes > 0
    assert 0 < vulkan[0].free_bytes <= vulkan[0].total_bytes
    report = probe_hardware(ready)
    if vulkan[0].software:  # no GPU here: lavapipe, labelled as the CPU it runs on
        assert report.gpus[0].name.endswith("software Vulkan (CPU)") and report.gpus[0].shares_ram
    assert report.vram_budget.value and "Vulkan0" in report.vram_budget.source


def test_hardware_command_shows_the_device(gpu_build: Path, tmp_path: Path) -> None:
    out = json.loads(run_cli("hardware", "--json", basedir=tmp_path).stdout)
    assert out["engine"]["gpu_offload"] is True
    names = [d["name"] for d in out["devices"]]
    assert "CPU" in names and "Vulkan0" in names, out["devices"]
    text = run_cli("hardware", basedir=tmp_path).stdout
    vulkan = next(d for d in out["devices"] if d["name"] == "Vulkan0")
    assert f"Vulkan0: {vulkan['description']} — {vulkan['label']}" in text
