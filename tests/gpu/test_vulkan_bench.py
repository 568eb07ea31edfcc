"""``sizewise bench --gpu-layers N`` on the Vulkan build really offloads, and reports the device's memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sizewise.commands.bench import _print_human
from sizewise.core.report.fit_report import render_html, render_markdown
from tests.cli_helpers import run_cli

pytestmark = pytest.mark.gpu


def test_bench_offloads_to_the_vulkan_device(
    gpu_build: Path, smollm2_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Smallest honest run (lavapipe generates ~1 token/s on a busy 2-core host): 8 prompt tokens, 2 generated."""
    args = ("bench", str(smollm2_path), "--gpu-layers", "16", "--ctx", "512", "--pp", "8", "--tg", "2")
    result = run_cli(*args, "-r", "1", "--no-warmup", "--no-ttft", "--json", basedir=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    entry = report["models"][0]
    assert entry["settings"]["gpu_layers"] == 16 and entry["fit"]["gpu_layers"] == 16
    measured = entry["measured"]
    # llama.cpp's own log: weights, KV and compute on Vulkan0, beside the CPU's share
    assert {"weights", "kv", "compute"} <= set(measured["devices"]["Vulkan0"]), measured["devices"]
    assert measured["vram_bytes"] > 100 * 2**20
    dev = next(d for d in measured["device_memory"] if d["name"] == "Vulkan0")
    assert dev["label"] == "software Vulkan (CPU)" and dev["backend"] == "Vulkan"
    assert dev["llama_cpp_bytes"] == sum(measured["devices"]["Vulkan0"].values())
    assert dev["reports_usage"] is False and dev["free_bytes"] == dev["total_bytes"]  # lavapipe: no memory budget
    _print_human(report)
    text = capsys.readouterr().out
    assert "software Vulkan (CPU): llama.cpp's buffers" in text and "the driver reports no usage" in text
    # the report names the device, its backend and its kind, in every format
    markdown = render_markdown(report)
    assert "| Vulkan0 (Vulkan, software Vulkan (CPU)): llama.cpp's buffers |" in markdown
    assert "device: the driver reports no usage" in markdown
    assert "Vulkan0: llvmpipe (LLVM 15.0.6, 256 bits) — software Vulkan (CPU)" in markdown  # the hardware rows
    assert "Vulkan0 (Vulkan, software Vulkan (CPU)): llama.cpp&#x27;s buffers" in render_html(report)
