"""The ladder's offer to measure this machine, used as a person would: Measure, Cancel, Measure again.

Real calibration runs (engine/speed/calibrate_job.py: a job process driving llama.cpp and its quantizer):
a cancel must stop it in seconds, delete every synthetic model and store nothing; a full run must store a
measured profile, hand it to the page, and leave nothing behind.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
from pytestqt.qtbot import QtBot

from sizewise.core.errors import UserError
from sizewise.core.fit.memory_model import Backend
from sizewise.core.fit.verdict import Budget
from sizewise.core.paths import basedir_paths
from sizewise.core.speed.predicted import Devices
from sizewise.core.speed.profile import PROFILE_FILE, SpeedProfile, estimate_profile
from sizewise.core.speed.scratch import SCRATCH_PREFIX
from sizewise.engine.speed.calibrate_job import CalibrationJob
from sizewise.gui.fit.calibration_panel import CANCELLED, GPU_OFFER, OFFER
from sizewise.gui.fit.ladder_view import LadderView

GiB = 1 << 30
BUDGET = Budget(6 * GiB, 0, "a 6 GiB test budget", Backend(repack=False))


def _leftovers(base: Path) -> list[Path]:
    return [p for p in (base / "cache").rglob("*") if SCRATCH_PREFIX in str(p) or p.suffix == ".gguf"]


def _jobs() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if "sizewise-calibrate" in " ".join(p.cmdline())]


def test_measure_cancel_and_measure_again_from_the_ladder(qtbot: QtBot, tmp_path: Path, smollm2_path: Path) -> None:
    paths = basedir_paths(tmp_path / "base").ensure()
    view = LadderView(calibrator=lambda on_event: CalibrationJob(paths, smollm2_path, on_event))
    qtbot.addWidget(view)
    view.show()
    view.set_machine(BUDGET, Devices(estimate_profile(device="test CPU")))
    panel = view.calibration
    assert panel.isVisible() and panel.message.text() == OFFER

    # Cancel while a synthetic model is being quantized: stopped within seconds, nothing left, nothing stored.
    panel.start_button.click()
    qtbot.waitUntil(lambda: "quantizing" in panel.message.text(), timeout=120_000)
    assert panel.bar.isVisible() and panel.cancel_button.isVisible() and not panel.start_button.isVisible()
    t0 = time.monotonic()
    panel.cancel_button.click()
    assert "Stopping" in panel.message.text()  # at once: the wait for the job happens off the GUI thread
    qtbot.waitUntil(lambda: panel.message.text() == CANCELLED, timeout=60_000)
    cancel_s = time.monotonic() - t0
    assert cancel_s < 20, cancel_s  # cleaned up in time, not killed after CANCEL_GRACE_S
    assert _leftovers(paths.data_dir.parent) == [] and not (paths.data_dir / PROFILE_FILE).exists()
    qtbot.waitUntil(lambda: _jobs() == [], timeout=10_000)
    assert panel.start_button.isVisible() and not panel.bar.isVisible()

    # A full run: the profile is stored, handed to the page's owner, and nothing is left behind.
    emitted: list[dict[str, object]] = []
    view.calibrated.connect(emitted.append)
    panel.start_button.click()
    qtbot.waitUntil(lambda: panel.running, timeout=10_000)
    qtbot.waitUntil(lambda: not panel.running, timeout=300_000)
    assert len(emitted) == 1, panel.message.text()  # the panel's message says why, if the run was refused
    stored = json.loads((paths.data_dir / PROFILE_FILE).read_text(encoding="utf-8"))
    profile = SpeedProfile.from_dict(emitted[0])
    assert profile.measured and list(stored) == [profile.fingerprint]
    assert _leftovers(paths.data_dir.parent) == []
    assert "is measured" in panel.message.text()
    view.set_machine(BUDGET, Devices(profile))  # what the main window does on ``calibrated``
    assert not panel.isVisible()  # measured: no offer
    qtbot.waitUntil(lambda: bool(view.cells) and "calibrated profile" in view.status.text(), timeout=120_000)
    assert all(c.confidence == "measured" for c in view.cells if c.fits)


def test_the_offer_says_why_it_cannot_run_and_stays_usable(qtbot: QtBot) -> None:
    def no_starter(on_event: object) -> CalibrationJob:
        raise UserError("Measuring borrows the starter model's tokenizer, and the starter model is not installed.")

    view = LadderView(calibrator=no_starter)
    qtbot.addWidget(view)
    view.show()
    view.set_machine(BUDGET, Devices(estimate_profile()))
    view.calibration.start_button.click()
    assert "starter model is not installed" in view.calibration.message.text()
    assert view.calibration.start_button.text() == "Try again" and not view.calibration.running
    view.where.setCurrentIndex(view.where.findData("laptop-8gb-cpu"))  # a target: its speeds are estimates anyway
    assert not view.calibration.isVisible()


def test_the_status_says_how_the_gpus_share_of_a_split_is_timed(qtbot: QtBot) -> None:
    view = LadderView(calibrator=None)
    qtbot.addWidget(view)
    view.show()
    gpu_budget = Budget(6 * GiB, 4 * GiB, "a 6 + 4 GiB test budget", Backend(gpu=True, gpu_backend="cuda"))
    cpu = SpeedProfile(bw_effective=20e9, t_fixed=0.001, source="measured")
    nvml = SpeedProfile(bw_effective=700e9, t_fixed=0.001, note="estimate from NVML's peak figures for a test GPU")
    measured_gpu = SpeedProfile(bw_effective=500e9, t_fixed=0.001, source="measured", backend="cuda")
    cases = [
        (BUDGET, Devices(cpu), "calibrated profile.", "GPU"),  # no GPU in the budget: nothing said of one
        (gpu_budget, Devices(cpu), "the GPU's layers are timed as the CPU's", "NVML"),
        (gpu_budget, Devices(cpu, nvml), "GPU: estimate from NVML's peak figures for a test GPU", "timed as"),
        (gpu_budget, Devices(cpu, measured_gpu), "GPU: from its calibrated profile", "NVML"),
    ]
    for budget, devices, said, unsaid in cases:
        view.set_machine(budget, devices)
        qtbot.waitUntil(lambda: "Working out" not in view.status.text(), timeout=30_000)
        assert said in view.status.text() and unsaid not in view.status.text(), view.status.text()


def test_a_gpu_never_measured_is_offered_measuring_too(qtbot: QtBot) -> None:
    """With the CPU measured and a GPU in the budget, the GPU's layers are still an estimate: the offer stays, in
    words about the GPU, until a GPU profile is there too; a target never shows it."""
    view = LadderView(calibrator=None)
    qtbot.addWidget(view)
    view.show()
    gpu_budget = Budget(6 * GiB, 4 * GiB, "a 6 + 4 GiB test budget", Backend(gpu=True, gpu_backend="vulkan"))
    cpu = SpeedProfile(bw_effective=20e9, t_fixed=0.001, source="measured")
    panel = view.calibration
    view.set_machine(gpu_budget, Devices(estimate_profile()))
    assert panel.isVisible() and panel.message.text() == OFFER
    view.set_machine(gpu_budget, Devices(cpu))
    assert panel.isVisible() and panel.message.text() == GPU_OFFER
    nvml = SpeedProfile(bw_effective=700e9, t_fixed=0.001, note="estimate from NVML's peak figures")
    view.set_machine(gpu_budget, Devices(cpu, nvml))
    assert panel.isVisible() and panel.message.text() == GPU_OFFER
    view.set_machine(gpu_budget, Devices(cpu, SpeedProfile(bw_effective=500e9, t_fixed=0.001, source="measured")))
    assert not panel.isVisible()
    view.set_machine(BUDGET, Devices(cpu))  # no GPU in the budget: the CPU's profile is all there is to measure
    assert not panel.isVisible()
    view.set_machine(gpu_budget, Devices(cpu, gpu_software=True))  # software Vulkan: calibration skips it
    assert not panel.isVisible()
