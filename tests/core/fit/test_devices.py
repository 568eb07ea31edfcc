"""Devices as llama.cpp's builds report them (the ``devices`` of the engine's ready message), as the app shows them.

The ready messages below are what the engine sent on a CPU build and on the Vulkan build of scripts/vulkan-build.sh
with Mesa's lavapipe (tests/engine/test_gpu_vulkan.py gets them from real engines); here the rules that turn them into
GPUs, labels and budgets are checked on each kind of device, including ones this machine does not have.
"""

from __future__ import annotations

from typing import Any

import pytest

from sizewise.core.fit import hardware
from sizewise.core.fit.devices import (
    BackendDevice,
    device_memory_reading,
    device_memory_rows,
    devices_from_ready,
    offload_summary,
)
from sizewise.core.fit.hardware import describe, gpus_from_devices, machine_budget, probe_hardware

GiB = 1 << 30
CPU = {
    "name": "CPU",
    "description": "AMD EPYC",
    "backend": "CPU",
    "type": "cpu",
    "total_bytes": 24 * GiB,
    "free_bytes": 24 * GiB,
}
LAVAPIPE = {
    "name": "Vulkan0",
    "description": "llvmpipe (LLVM 15.0.6, 256 bits)",
    "backend": "Vulkan",
    "type": "gpu",
    "total_bytes": 24 * GiB,
    "free_bytes": 23 * GiB,
}
RADEON = {
    "name": "Vulkan0",
    "description": "AMD Radeon 780M (RADV PHOENIX)",
    "backend": "Vulkan",
    "type": "igpu",
    "total_bytes": 16 * GiB,
    "free_bytes": 15 * GiB,
}
NVIDIA = {
    "name": "CUDA0",
    "description": "NVIDIA GeForce RTX 4060 Laptop GPU",
    "backend": "CUDA",
    "type": "gpu",
    "total_bytes": 8 * GiB,
    "free_bytes": 7 * GiB,
}


def _ready(*devices: dict[str, Any], gpu_offload: bool = True) -> dict[str, Any]:
    return {
        "llama_cpp_version": "0.3.36",
        "gpu_offload": gpu_offload,
        "system_info": "CPU : AVX2 = 1 | REPACK = 1 |",
        "devices": list(devices),
        "device_note": "",
    }


def test_software_vulkan_is_labelled_as_the_cpu_it_runs_on() -> None:
    cpu, lvp = devices_from_ready(_ready(CPU, LAVAPIPE))
    assert not cpu.software and not cpu.offloads and cpu.kind_label == "CPU" and cpu.label == "CPU: AMD EPYC"
    assert lvp.software and lvp.offloads and lvp.kind_label == "software Vulkan (CPU)"
    assert lvp.label == "Vulkan0: llvmpipe (LLVM 15.0.6, 256 bits) — software Vulkan (CPU)"
    assert lvp.to_dict()["label"] == "software Vulkan (CPU)" and lvp.to_dict()["software"] is True


def test_real_gpus_keep_their_kind() -> None:
    radeon, nvidia = devices_from_ready(_ready(RADEON, NVIDIA))
    assert (radeon.software, radeon.kind_label) == (False, "integrated GPU")
    assert (nvidia.software, nvidia.kind_label) == (False, "discrete GPU")


def test_offload_devices_become_the_gpus_and_their_budget() -> None:
    gpus = gpus_from_devices(devices_from_ready(_ready(CPU, LAVAPIPE, NVIDIA)))
    assert [g.kind for g in gpus] == ["vulkan", "cuda"]  # the CPU is not a GPU
    assert gpus[0].shares_ram and not gpus[1].shares_ram  # lavapipe's memory is RAM; a discrete card's is its own
    assert "software Vulkan (CPU)" in gpus[0].name and gpus[0].free_bytes == 23 * GiB


def test_a_report_from_a_vulkan_engine_budgets_its_device(monkeypatch: pytest.MonkeyPatch) -> None:
    # hermetic: NVML (which wins where it sees a card) reports nothing, as on a machine without an NVIDIA driver
    monkeypatch.setattr(hardware, "probe_nvidia", lambda: ([], "no NVIDIA driver"))
    report = probe_hardware(_ready(CPU, LAVAPIPE))
    assert report.gpus[0].kind == "vulkan"
    assert report.vram_budget.value == 23 * GiB and "Vulkan0" in report.vram_budget.source
    budget = machine_budget(report)
    assert budget.vram_bytes == 23 * GiB and budget.unified  # its memory is the RAM the CPU part also needs
    rows = [r for r in describe(report) if r[0] == "Device"]
    assert len(rows) == 2 and "software Vulkan (CPU)" in rows[1][1]
    assert [d["name"] for d in report.to_dict()["devices"]] == ["CPU", "Vulkan0"]
    # the device layers go to, which a GPU speed profile is also for: the first that offloads, on a build that does
    assert report.offload_device() is report.devices[1] and report.backend().gpu_backend == "vulkan"
    assert probe_hardware(_ready(CPU, LAVAPIPE, gpu_offload=False)).offload_device() is None


def test_a_gpu_build_without_a_device_says_so() -> None:
    report = probe_hardware(_ready(CPU, gpu_offload=True))
    assert "found no GPU" in report.device_note
    assert any(r[0] == "Devices" and "found no GPU" in r[1] for r in describe(report))
    assert probe_hardware(_ready(CPU, gpu_offload=False)).device_note == ""  # a CPU build: nothing to explain


def test_malformed_entries_are_left_out() -> None:
    bad = [{"name": "X"}, {"name": "Y", "type": "gpu", "total_bytes": "lots", "free_bytes": 0}, "junk", CPU]
    devices = devices_from_ready({"devices": bad})
    assert [d.name for d in devices] == ["CPU"]
    assert devices_from_ready(None) == [] and devices_from_ready({"devices": None}) == []
    assert isinstance(devices[0], BackendDevice)


def test_device_memory_in_use_is_the_whole_devices_and_says_so() -> None:
    """A driver with a usage figure (CUDA, Vulkan with VK_EXT_memory_budget): total − free of every offload device,
    named as the device's, not the process's; the CPU and its RAM are not in it."""
    amd = {**LAVAPIPE, "description": "AMD Radeon RX 7600", "free_bytes": LAVAPIPE["total_bytes"] - 300 * 2**20}
    reading = device_memory_reading(devices_from_ready(_ready(CPU, amd)), {"Vulkan0": 200 * 2**20})
    assert reading is not None and reading.bytes == 300 * 2**20
    assert reading.how == "Vulkan0 (discrete GPU): in use on the device, all processes"


def test_a_driver_without_usage_shows_llama_cpps_buffers_not_zero() -> None:
    """lavapipe reports free == total whatever is loaded (measured: 2 GiB free before and after a full offload of
    SmolLM2): the reading is llama.cpp's buffers on the device, labelled software Vulkan (CPU)."""
    lavapipe = {**LAVAPIPE, "total_bytes": 2 * GiB, "free_bytes": 2 * GiB}
    devices = devices_from_ready(_ready(CPU, lavapipe))
    reading = device_memory_reading(devices, {"Vulkan0": 160 * 2**20, "CPU_Mapped": 90 * 2**20})
    assert reading is not None and reading.bytes == 160 * 2**20
    assert reading.how == "Vulkan0 (software Vulkan (CPU)): the driver reports no usage; llama.cpp's buffers on it"
    assert device_memory_reading(devices_from_ready(_ready(CPU)), {"CPU": 1}) is None


def test_the_offload_sentence_tells_the_three_cases_apart() -> None:
    assert offload_summary(_ready(CPU, gpu_offload=False)) == (
        False,
        "This llama.cpp build has no GPU backend (CPU only): layers stay on the CPU.",
    )
    none = {**_ready(CPU), "device_note": "ggml_vulkan: No devices found"}
    assert offload_summary(none) == (
        False,
        "This is a GPU build of llama.cpp, but it found no GPU device (ggml_vulkan: No devices found): layers "
        "stay on the CPU.",
    )
    ok, text = offload_summary(_ready(CPU, LAVAPIPE))
    assert ok and text.startswith("Layers can be offloaded to Vulkan0: llvmpipe (LLVM 15.0.6, 256 bits) — software")
    assert "at a CPU's speed" in text
    ok, text = offload_summary(_ready(CPU, NVIDIA))
    assert ok and text == "Layers can be offloaded to CUDA0: NVIDIA GeForce RTX 4060 Laptop GPU — discrete GPU."


def test_report_rows_per_device_keep_both_figures_apart() -> None:
    lavapipe = {**LAVAPIPE, "total_bytes": 2 * GiB, "free_bytes": 2 * GiB}
    nvidia = {**NVIDIA}
    rows = device_memory_rows([CPU, lavapipe, nvidia], {"Vulkan0": 100, "CUDA0": 200, "CPU_Mapped": 300})
    assert [r["name"] for r in rows] == ["Vulkan0", "CUDA0"]  # the CPU is RAM, reported as RSS
    assert rows[0]["label"] == "software Vulkan (CPU)" and rows[0]["backend"] == "Vulkan"
    assert rows[0]["llama_cpp_bytes"] == 100 and rows[0]["reports_usage"] is False
    assert rows[1]["in_use_bytes"] == GiB and rows[1]["llama_cpp_bytes"] == 200 and rows[1]["reports_usage"] is True


def test_an_nvidia_card_on_a_vulkan_build_is_modelled_as_vulkan(monkeypatch: pytest.MonkeyPatch) -> None:
    """NVML names the card (its memory and peak figures win), but the build drives it through Vulkan: the memory
    model must follow Vulkan's node order and tensor limit, and the speed estimate must say Vulkan, not CUDA."""
    from sizewise.core.fit.hardware import GpuInfo
    from sizewise.core.fit.nvml import NvmlFigure
    from sizewise.engine.speed.devices import nvml_gpu_estimate, nvml_peak_bandwidth

    figures = {
        "peak_bandwidth_bytes_s": NvmlFigure(272_000_000_000, "NVML (device 0)"),
        "peak_fp32_flops": NvmlFigure(15_100_000_000_000, "NVML (device 0)"),
    }
    card = GpuInfo(
        name="NVIDIA GeForce RTX 4060 Laptop GPU",
        kind="nvidia",
        total_bytes=8 * GiB,
        free_bytes=7 * GiB,
        source="NVML nvmlDeviceGetMemoryInfo (device 0)",
        nvml=figures,
    )
    monkeypatch.setattr(hardware, "probe_nvidia", lambda: ([card], ""))
    on_vulkan = {**NVIDIA, "name": "Vulkan0", "backend": "Vulkan", "max_tensor_bytes": 4 * GiB}
    report = probe_hardware(_ready(CPU, on_vulkan))
    assert report.gpus[0].kind == "nvidia"  # NVML's figures still describe the card
    backend = report.backend()
    assert (backend.gpu, backend.gpu_backend, backend.gpu_max_tensor_bytes) == (True, "vulkan", 4 * GiB)
    estimate = nvml_gpu_estimate(report)
    assert estimate is not None and estimate.backend == "vulkan" and "(vulkan: 272 GB/s" in estimate.note
    # the peak calibration reads this card's weights at where its small models cannot measure them (calibrate.py)
    assert nvml_peak_bandwidth(report) == 272e9 and nvml_peak_bandwidth(None) is None
    # the same card on a CUDA build, and with no engine to ask: CUDA, as NVML's vendor says
    assert probe_hardware(_ready(CPU, NVIDIA)).backend().gpu_backend == "cuda"
    assert probe_hardware(None).backend().gpu_backend == "cuda"
