"""``sizewise calibrate``: a stored, measured profile, no synthetic files left, Ctrl+C or SIGKILL stores nothing,
and a machine busy while measuring is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psutil
import pytest

from sizewise.core.gguf.header import read_header
from sizewise.core.speed import cpu_cache
from sizewise.core.speed.model import model_cost, predict_speed
from sizewise.core.speed.profile import PROFILE_FILE, SpeedProfile
from sizewise.core.speed.scratch import SCRATCH_PREFIX
from sizewise.engine.speed.calibrate import MAX_ROUNDS, ROUNDS
from tests.cli_helpers import run_cli


def _leftovers(base: Path) -> list[Path]:
    return [p for p in (base / "cache").rglob("*") if SCRATCH_PREFIX in str(p) or p.suffix == ".gguf"]


def _calibrate_cli(base: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "sizewise", "--basedir", str(base), "calibrate"]
    return subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _read_until(proc: subprocess.Popen[str], text: str) -> list[str]:
    """stderr lines up to and including the first one holding ``text`` (all of them if none does)."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if text in line:
            break
    return seen


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One calibration, which must succeed on an idle or moderately busy machine (rounds and medians, see
    core/speed/steady.py); a refusal fails here with its sentence."""
    base = tmp_path_factory.mktemp("calibrate")
    r = run_cli("calibrate", "--json", basedir=base, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return base, json.loads(r.stdout)


def test_calibration_stores_a_measured_profile_and_leaves_no_synthetic_files(
    calibrated: tuple[Path, dict[str, Any]],
) -> None:
    base, out = calibrated
    stored = json.loads((base / "data" / PROFILE_FILE).read_text(encoding="utf-8"))
    assert list(stored) == [out["profile"]["fingerprint"]]
    profile = SpeedProfile.from_dict(stored[out["profile"]["fingerprint"]])
    assert profile.measured and profile.bw_effective > 0 and profile.t_fixed >= 0
    assert profile.flops_by_quant and profile.bw_by_quant and profile.llama_cpp_version and profile.points >= 6
    assert len(out["measurements"]) >= 6 and all(m["tg_tps"] > 0 for m in out["measurements"])
    assert out["gpu"] is None  # a CPU build: nothing to offload to, nothing measured as a GPU
    rounds = [m["rounds"] for m in out["measurements"]]
    assert all(ROUNDS <= len(r) <= MAX_ROUNDS and any(x["steady"] for x in r) for r in rounds)
    assert profile.fit_error > 0
    assert profile.l2_bytes == cpu_cache.l2_bytes()  # what its prompts' re-reads are counted against (model.py)
    assert _leftovers(base) == []


def test_prediction_for_the_starter_model_is_within_a_generous_band_of_its_measured_speed(
    calibrated: tuple[Path, dict[str, Any]], smollm2_path: Path
) -> None:
    base, out = calibrated
    profile = SpeedProfile.from_dict(out["profile"])
    r = run_cli("bench", str(smollm2_path), "--json", "--tg", "32", "--pp", "128", "-r", "2", "--no-ttft", basedir=base)
    assert r.returncode == 0, r.stderr[-2000:]
    measured = json.loads(r.stdout)["models"][0]
    predicted = predict_speed(model_cost(read_header(smollm2_path)), profile, depth=0, n_prompt=128)
    fastest = max(measured["tg"]["samples_tps"])  # as calibration counts: the least disturbed repetition
    assert 0.5 <= predicted.tg_tps / fastest <= 2.0, (predicted, measured["tg"])


def test_ctrl_c_leaves_no_files_and_stores_nothing(tmp_path: Path) -> None:
    proc = _calibrate_cli(tmp_path)
    seen = _read_until(proc, "quantizing")  # a synthetic model exists and is being quantized
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(seen) + (rest or "")
    assert "nothing was stored" in (rest or "")
    assert not (tmp_path / "data" / PROFILE_FILE).exists()
    assert _leftovers(tmp_path) == []


def test_a_killed_calibration_stores_nothing_and_the_next_one_deletes_its_files(tmp_path: Path) -> None:
    """SIGKILL runs no ``finally``: the folder stays until the next calibration, which deletes it first; the
    worker and the quantize job die with the app (no orphan goes on writing), and nothing was stored."""
    proc = _calibrate_cli(tmp_path)
    seen = _read_until(proc, "quantizing")
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.kill()
    proc.communicate(timeout=60)
    _, alive = psutil.wait_procs(children, timeout=30)
    assert alive == [], ("".join(seen), alive)
    stale = _leftovers(tmp_path)
    assert any(p.name.endswith("-F16.gguf") for p in stale), "".join(seen)  # it was killed mid-run
    assert not (tmp_path / "data" / PROFILE_FILE).exists()

    nxt = _calibrate_cli(tmp_path)
    seen = _read_until(nxt, "Writing")  # past the clean-up of stale folders
    nxt.send_signal(signal.SIGINT)
    _, rest = nxt.communicate(timeout=60)
    assert nxt.returncode == 130, "".join(seen) + (rest or "")
    assert _leftovers(tmp_path) == [] and not (tmp_path / "data" / PROFILE_FILE).exists()


def test_a_machine_busy_while_measuring_is_refused_and_stores_nothing(tmp_path: Path) -> None:
    """A CPU hog per core, started when measuring starts and running to the end, must be refused with the busy
    sentence, not fitted into a profile: measuring outruns its budget (BUSY_RATIO, 9× the preparation time, which
    bounds this test to about three minutes), or its rounds fit no steady speed."""
    proc = _calibrate_cli(tmp_path)
    watchdog = threading.Timer(600, proc.kill)
    watchdog.start()
    hogs: list[subprocess.Popen[bytes]] = []
    try:
        seen = _read_until(proc, "Measuring")
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
        _, rest = proc.communicate()
    finally:
        watchdog.cancel()
        for hog in hogs:
            hog.kill()
            hog.wait()
    out = "".join(seen) + (rest or "")
    assert proc.returncode == 1, out
    assert "Calibration failed, nothing was stored" in out and "probably busy with other work" in out, out
    assert not (tmp_path / "data" / PROFILE_FILE).exists() and _leftovers(tmp_path) == []
