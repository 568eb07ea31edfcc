"""``--gpu-layers auto`` on the Vulkan build offloads every layer that fits, to the device it names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import run_cli

pytestmark = pytest.mark.gpu


def test_generate_auto_offloads_to_the_vulkan_device(gpu_build: Path, smollm2_path: Path, tmp_path: Path) -> None:
    args = ("generate", str(smollm2_path), "--prompt", "The capital of France is", "--max-tokens", "2")
    result = run_cli(*args, "--temperature", "0", "--gpu-layers", "auto", "--json", basedir=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    # SmolLM2's 30 blocks and its output layer fit lavapipe's 2 GiB heap; the note names the device as software
    assert "GPU layers auto: 31 of 31 on Vulkan0: llvmpipe" in result.stderr
    assert "software Vulkan (CPU) (fits_gpu)" in result.stderr
    out = json.loads(result.stdout)
    assert out["settings"]["load"]["n_gpu_layers"] == 31
    assert {"weights", "kv", "compute"} <= set(out["engine"]["buffers"]["devices"]["Vulkan0"])
