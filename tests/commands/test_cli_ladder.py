"""``sizewise ladder`` as a user runs it: every catalogue model × quant for a target or a RAM figure."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_helpers import run_cli

CELL_KEYS = {"model", "params", "active_params", "quant", "file_bytes", "verdict", "ram_bytes", "vram_bytes",
             "gpu_layers", "max_ctx", "tg_tps", "pp_tps", "confidence"}


def test_ladder_json_for_a_target(tmp_path: Path) -> None:
    proc = run_cli("ladder", "--target", "rpi5-8gb", "--quants", "Q4_K_M,Q8_0", "--ctx", "2048", "--json",
                   basedir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ctx"] == 2048 and out["quants"] == ["Q4_K_M", "Q8_0"] and out["floor_tps"] == 10
    cells = out["cells"]
    assert all(set(c) >= CELL_KEYS for c in cells)
    assert {c["quant"] for c in cells} == {"Q4_K_M", "Q8_0"}
    by = {(c["model"], c["quant"]): c for c in cells}
    assert by[("SmolLM2 135M Instruct", "Q4_K_M")]["verdict"] == "fits_cpu"
    assert by[("Llama 3.3 70B Instruct", "Q8_0")]["verdict"] == "too_large"
    assert all(c["confidence"] == "estimate" for c in cells)  # a target is never measured here
    assert out["left_out"] == []
    assert by[("gpt-oss 20B", "Q4_K_M")]["file_bytes"] < by[("gpt-oss 20B", "Q8_0")]["file_bytes"]
    assert ("OLMoE 1B-7B Instruct", "Q8_0") in by


def test_ladder_table_for_a_ram_figure_and_bad_input(tmp_path: Path) -> None:
    proc = run_cli("ladder", "--ram-gib", "2", "--quants", "Q4_K_M", "--no-engine", basedir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "SmolLM2 135M Instruct" in proc.stdout and "too large" in proc.stdout and "custom" in proc.stdout
    for args, words in (
        (("--quants", "Q9_Z"), "not a quant type"),
        (("--ctx", "100"), "at least 256"),
        (("--target", "toaster"), "no target called"),
    ):
        bad = run_cli("ladder", *args, "--no-engine", basedir=tmp_path)
        assert bad.returncode == 1 and words in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr
