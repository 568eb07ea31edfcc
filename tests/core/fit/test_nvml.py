"""NVML's extra figures (clocks, memory bus, CUDA cores, utilisation, PCIe link), read through the real pynvml.

No NVIDIA GPU is on these machines, so pynvml loads tests/nvml/standin.c, a library with NVML's ABI that
answers from a file (see its header); everything above the C calls is the code a user with an NVIDIA card runs,
in a child process as the real ``sizewise`` command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import run_cli
from tests.nvml import LAPTOP, RTX_4090, RTX_4090_PEAK_BANDWIDTH, build_standin, nvml_env


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_standin(tmp_path_factory.mktemp("nvml"))


def _hardware(tmp_path: Path, env: dict[str, str]) -> dict:
    done = run_cli("hardware", "--json", "--no-engine", basedir=tmp_path / "base", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_clocks_bus_cores_utilisation_and_link_each_with_its_source(standin: Path, tmp_path: Path) -> None:
    out = _hardware(tmp_path, nvml_env(standin, tmp_path / "gpus", RTX_4090))
    (gpu,) = out["gpus"]
    assert gpu["name"] == "NVIDIA GeForce RTX 4090" and gpu["kind"] == "nvidia"
    assert (gpu["total_bytes"], gpu["free_bytes"]) == (25757220864, 25149505536)
    nvml = gpu["nvml"]
    expected = {
        "graphics_clock_max_mhz": 3105,
        "memory_clock_max_mhz": 10501,
        "memory_bus_bits": 384,
        "cuda_cores": 16384,
        "utilisation_gpu_pct": 7,
        "utilisation_memory_pct": 3,
        "pcie_generation": 4,
        "pcie_width": 16,
    }
    assert {k: nvml[k]["value"] for k in expected} == expected
    assert nvml["memory_bus_bits"]["source"] == "NVML nvmlDeviceGetMemoryBusWidth (device 0)"
    assert nvml["utilisation_gpu_pct"]["source"].startswith("NVML nvmlDeviceGetUtilizationRates (device 0, at probe")
    # the peak bandwidth from bus × clock agrees with NVIDIA's published 1008 GB/s
    peak = nvml["peak_bandwidth_bytes_s"]
    assert abs(peak["value"] / RTX_4090_PEAK_BANDWIDTH - 1) < 0.001 and "bus width" in peak["source"]
    assert nvml["peak_fp32_flops"]["value"] == 16384 * 3105 * 2 * 10**6
    assert out["vram_budget"]["value"] == 25149505536

    env = nvml_env(standin, tmp_path / "g", RTX_4090)
    text = run_cli("hardware", "--no-engine", basedir=tmp_path / "base", env=env)
    assert text.returncode == 0, text.stderr
    assert "384-bit: 1008 GB/s peak" in text.stdout
    assert "3105 MHz graphics, 10501 MHz memory (maximum)" in text.stdout
    assert "16384 CUDA cores: 101.7 TFLOP/s FP32 peak" in text.stdout
    assert "7 % compute, 3 % memory" in text.stdout and "gen 4 ×16" in text.stdout


def test_figures_a_driver_does_not_give_are_left_out_with_its_reason(standin: Path, tmp_path: Path) -> None:
    out = _hardware(tmp_path, nvml_env(standin, tmp_path / "gpus", LAPTOP))
    nvml = out["gpus"][0]["nvml"]
    assert nvml["memory_clock_max_mhz"]["value"] == 6001  # what the driver does give is kept
    for name in ("memory_bus_bits", "cuda_cores", "utilisation_gpu_pct", "pcie_generation", "pcie_width"):
        assert nvml[name]["value"] is None and "Not Supported" in nvml[name]["source"], name
    assert nvml["peak_bandwidth_bytes_s"]["value"] is None
    assert "needs the memory bus width and clock" in nvml["peak_bandwidth_bytes_s"]["source"]
    assert out["gpus"][0]["total_bytes"] == 4294967296  # the probe itself did not fail
    text = run_cli("hardware", "--no-engine", basedir=tmp_path / "base", env=nvml_env(standin, tmp_path / "g", LAPTOP))
    assert "not reported" in text.stdout and "Not Supported" in text.stdout


def test_two_gpus_are_both_listed_and_the_budget_is_the_first(standin: Path, tmp_path: Path) -> None:
    out = _hardware(tmp_path, nvml_env(standin, tmp_path / "gpus", RTX_4090, LAPTOP))
    assert [g["name"] for g in out["gpus"]] == ["NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 3050 Laptop GPU"]
    assert [g["source"] for g in out["gpus"]] == [
        "NVML nvmlDeviceGetMemoryInfo (device 0)",
        "NVML nvmlDeviceGetMemoryInfo (device 1)",
    ]
    assert out["gpus"][1]["nvml"]["memory_clock_max_mhz"]["source"].endswith("(device 1)")
    assert out["vram_budget"]["value"] == 25149505536


def test_a_driver_that_is_not_loaded_or_lists_no_gpu_is_said_plainly(standin: Path, tmp_path: Path) -> None:
    out = _hardware(tmp_path, nvml_env(standin, tmp_path / "gpus", "FAIL_INIT"))
    assert out["gpus"] == [] and "NVML could not start (Driver Not Loaded)" in out["gpu_note"]
    out = _hardware(tmp_path, nvml_env(standin, tmp_path / "gpus"))
    assert out["gpus"] == [] and "NVML found no NVIDIA GPU" in out["gpu_note"]


def test_an_uncalibrated_nvidia_gpu_gets_a_labelled_estimate_from_its_peak_figures(
    standin: Path, tmp_path: Path, smollm2_path: Path
) -> None:
    """The speed model's "a GPU seen but never measured" case: NVML's peak bandwidth × the stated efficiency."""
    env = nvml_env(standin, tmp_path / "gpus", RTX_4090)
    args = ("fit", str(smollm2_path), "--no-engine", "--json")
    on_gpu = json.loads(run_cli(*args, "--gpu-layers", "auto", basedir=tmp_path / "base", env=env).stdout)
    on_cpu = json.loads(run_cli(*args, "--gpu-layers", "0", basedir=tmp_path / "base", env=env).stdout)
    gpu, cpu = on_gpu["predicted"], on_cpu["predicted"]
    assert on_gpu["verdict"] == "fits_gpu" and gpu["effective"]["gpu_layers"] == 31  # auto: every layer fits 24 GB
    assert gpu["speed_device"] == "gpu" and gpu["speed_confidence"] == "estimate"
    note = gpu["speed_note"]
    assert "NVML's peak figures for NVIDIA GeForce RTX 4090" in note and "1008.1 GB/s × 0.70" in note, note
    assert cpu["speed_device"] == "cpu" and "NVML" not in cpu["speed_note"]
    # the conservative 10 GB/s CPU estimate against 0.70 × 1008 GB/s: generation is far faster on the GPU
    assert gpu["tg_tps"] > 10 * cpu["tg_tps"]
    # the laptop's driver gives no bus width: no GPU speed is guessed, and the note says so
    env = nvml_env(standin, tmp_path / "gpus", LAPTOP)
    laptop = json.loads(run_cli(*args, "--gpu-layers", "auto", basedir=tmp_path / "base", env=env).stdout)
    assert "no speed profile for the GPU" in laptop["predicted"]["speed_note"]


def test_live_vram_of_the_engine_process_comes_from_nvmls_process_list(standin: Path, tmp_path: Path) -> None:
    env = nvml_env(standin, tmp_path / "gpus", f"{RTX_4090}|4242:734003200")
    code = (
        "from sizewise.gui.metrics.sampler import _VramProbe\n"
        "p = _VramProbe()\n"
        "print(p.used_by(4242), p.used_by(1), p.available)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["734003200.0", "0.0", "True"]
