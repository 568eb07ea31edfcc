"""``sizewise fit`` says how fast beside whether it fits: this machine's calibrated profile, else a labelled
estimate; a target's published figures."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sizewise.core.gguf.header import read_header
from sizewise.core.paths import basedir_paths
from sizewise.core.speed.model import model_cost, tg_seconds
from sizewise.core.speed.profile import ProfileStore, SpeedProfile, fingerprint
from tests.cli_helpers import run_cli

SPEED_KEYS = {"tg_tps", "tg_tps_full_ctx", "pp_tps", "speed_confidence", "speed_device", "speed_note"}


def _json(proc: subprocess.CompletedProcess[str]) -> dict:  # type: ignore[type-arg]
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_fit_on_an_uncalibrated_machine_is_a_labelled_estimate(tmp_path: Path) -> None:
    out = _json(run_cli("fit", "starter", "--json", "--no-engine", basedir=tmp_path))
    p = out["predicted"]
    assert set(p) >= SPEED_KEYS
    assert p["speed_confidence"] == "estimate" and "sizewise calibrate" in p["speed_note"]
    assert p["tg_tps"] > p["tg_tps_full_ctx"] > 0 and p["pp_tps"] > 0


def test_fit_uses_this_machines_calibrated_profile(tmp_path: Path, smollm2_path: Path) -> None:
    hw = _json(run_cli("hardware", "--json", basedir=tmp_path))
    engine = hw["engine"]
    key = fingerprint(
        hw["cpu_model"]["value"], hw["logical_cores"]["value"], hw["ram_total"]["value"],
        engine["llama_cpp_version"], engine["system_info"],
    )
    profile = SpeedProfile(bw_effective=12.5e9, t_fixed=0.003, t_layer=1e-5, flops_by_family={"legacy": 40e9},
                           source="measured", fingerprint=key, device="this CPU")
    ProfileStore.for_app(basedir_paths(tmp_path)).put(profile)
    out = _json(run_cli("fit", str(smollm2_path), "--ctx", "1024", "--json", basedir=tmp_path))
    p = out["predicted"]
    assert p["speed_confidence"] == "measured" and p["speed_device"] == "cpu"
    expected = 1 / tg_seconds(model_cost(read_header(smollm2_path)), profile)
    assert abs(p["tg_tps"] - expected) < 0.01
    human = run_cli("fit", str(smollm2_path), basedir=tmp_path)
    assert f"generation {expected:.1f} tokens/s" in human.stdout


def test_fit_on_a_gpu_target_predicts_gpu_speed_from_its_published_figures(tmp_path: Path, gemma_path: Path) -> None:
    gpu = _json(run_cli("fit", str(gemma_path), "--target", "nvidia-24gb", "--json", basedir=tmp_path))
    cpu = _json(run_cli("fit", str(gemma_path), "--target", "laptop-32gb", "--json", basedir=tmp_path))
    part = _json(run_cli("fit", str(gemma_path), "--target", "nvidia-24gb", "--gpu-layers", "9", "--json",
                         basedir=tmp_path))
    assert gpu["verdict"] == "fits_gpu" and gpu["predicted"]["speed_device"] == "gpu"
    assert part["verdict"] == "fits_partial" and part["predicted"]["speed_device"] == "cpu+gpu"
    assert cpu["predicted"]["speed_device"] == "cpu"
    for out, target in ((gpu, "nvidia-24gb"), (cpu, "laptop-32gb")):
        assert out["predicted"]["speed_confidence"] == "estimate" and target in out["predicted"]["speed_note"]
    # the 3090-class target (936 GB/s) against a CPU-only laptop of the same generation (89.6 GB/s)
    assert gpu["predicted"]["tg_tps"] > part["predicted"]["tg_tps"] > cpu["predicted"]["tg_tps"]


def test_bench_shows_predicted_beside_measured_speed(tmp_path: Path) -> None:
    out = _json(run_cli("bench", "starter", "--ctx", "256", "--pp", "32", "--tg", "8", "-r", "1", "--no-ttft",
                        "--json", basedir=tmp_path, timeout=300))
    (entry,) = out["models"]
    p = entry["predicted"]
    assert set(p) >= SPEED_KEYS and p["speed_confidence"] == "estimate"
    for key in ("tg", "pp"):
        ratio = entry[key]["mean_tps"] / p[f"{key}_tps"]
        assert p[f"{key}_measured_over_predicted"] == round(ratio, 3)
    human = run_cli("bench", "starter", "--ctx", "256", "--pp", "32", "--tg", "8", "-r", "1", "--no-ttft",
                    basedir=tmp_path, timeout=300)
    assert "measured ÷ predicted" in human.stdout
