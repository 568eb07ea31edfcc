"""Calibration measures the Vulkan device as well as the CPU, stores its profile apart, and predictions for
offloaded layers use it: the GPU's speed is its own, never the CPU's.

Lavapipe runs a 135M model at about 1 token/s, so this calibration uses tiny shapes and short runs
(measure.Runs); the full one is the same code with calibration's defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sizewise.commands.speed.calibrate import _print_device
from sizewise.core.fit.hardware import probe_hardware
from sizewise.core.gguf.header import read_header
from sizewise.core.paths import basedir_paths
from sizewise.core.sampling import LoadParams
from sizewise.core.speed.model import model_cost
from sizewise.core.speed.predicted import predict_for_split
from sizewise.core.speed.profile import PROFILE_FILE, ProfileStore
from sizewise.core.speed.synthetic import SyntheticShape, read_tokenizer, write_synthetic
from sizewise.engine.bench import BenchRequest
from sizewise.engine.session import EngineSession
from sizewise.engine.speed.calibrate import calibrate, gpu_to_measure, quantize_types
from sizewise.engine.speed.devices import gpu_fingerprint, machine_devices
from sizewise.engine.speed.measure import Runs, bench
from tests.cli_helpers import run_cli

pytestmark = pytest.mark.gpu

# Sizes far enough apart that time grows with bytes on both devices (the 49152-row output matrix is most of
# each): 25M and 13M parameters.
SHAPES = (
    SyntheticShape(n_layer=2, n_embd=512, n_ff=1024, n_head=8, n_head_kv=2),
    SyntheticShape(n_layer=6, n_embd=256, n_ff=512, n_head=4, n_head_kv=2),
)
UNSEEN = SyntheticShape(n_layer=4, n_embd=384, n_ff=768, n_head=6, n_head_kv=2)
RUNS = Runs(pp=32, tg=4, repetitions=1, deep_repetitions=1)


def test_calibration_measures_the_gpu_and_offloaded_layers_take_its_speed(
    gpu_build: Path, smollm2_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = basedir_paths(tmp_path / "base").ensure()
    lines: list[str] = []
    # One thread: the CPU's rounds are timed in CPU time (measure.cpu_timed), so lavapipe's threads, busy on the
    # same cores while the GPU's rounds run, cannot disturb the CPU's figures; the GPU's are wall time.
    types = ("Q8_0", "Q4_K_M")
    done = calibrate(paths, smollm2_path, lines.append, shapes=SHAPES, types=types, runs=RUNS, threads=1, gpu=True)
    assert any("on the GPU" in line for line in lines), lines
    gpu = done.gpu
    assert gpu is not None and gpu.measured and gpu.backend == "vulkan" and "llvmpipe" in gpu.device
    assert len(done.gpu_measured) == len(done.measured) == 4 and gpu.points == done.profile.points
    assert gpu.fingerprint != done.profile.fingerprint and done.profile.backend == "cpu"
    store = ProfileStore.for_app(paths)
    for profile in done.profiles:
        store.put(profile)
    assert len(json.loads((paths.data_dir / PROFILE_FILE).read_text(encoding="utf-8"))) == 2

    with EngineSession(log_path=tmp_path / "engine.log") as session:
        report = probe_hardware(dict(session.start()))
        device = report.offload_device()
        assert device is not None and gpu.fingerprint == gpu_fingerprint(report, device)
        devices = machine_devices(paths, report)
        assert devices.gpu == gpu and devices.cpu == done.profile and devices.gpu_software
        # By default calibration skips a software GPU (its runs would take most of an hour), and says so.
        said: list[str] = []
        assert gpu_to_measure(report, None, said.append) is None and "too slow to measure" in said[0]
        assert gpu_to_measure(report, False, said.append) is None and gpu_to_measure(report, True, said.append)

        # A model calibration never saw, every layer on lavapipe: measured against the GPU profile's prediction.
        f16 = write_synthetic(tmp_path / "unseen.gguf", UNSEEN, read_tokenizer(smollm2_path), seed=9)
        unseen = quantize_types(f16, ("Q8_0",), tmp_path)["Q8_0"]
        session.load(unseen, LoadParams(n_ctx=128, n_gpu_layers=-1))
        measured = bench(session, BenchRequest(pp=32, tg=8, repetitions=2, ttft=False))
    cost = model_cost(read_header(unseen))
    n = UNSEEN.n_layer + 1
    on_gpu = predict_for_split(cost, devices, n, n, 128)
    on_cpu = predict_for_split(cost, devices, 0, n, 128)
    assert on_gpu.confidence == "measured" and on_gpu.device == "gpu" and on_gpu.note == ""
    fastest = max(measured["tg"]["samples_tps"])
    assert 0.5 <= on_gpu.tg_tps / fastest <= 2.0, (on_gpu, measured["tg"])
    with capsys.disabled():  # the figures, for whoever reads the run's log
        print(
            f"\nlavapipe: generation predicted {on_gpu.tg_tps:.2f} t/s, measured {fastest:.2f}; the CPU profile says "
            f"{on_cpu.tg_tps:.1f}; prompt predicted {on_gpu.pp_tps:.1f} t/s on the GPU, {on_cpu.pp_tps:.1f} on the CPU"
        )
    # Software Vulkan is far slower than the CPU it runs on: the CPU's profile would have been wrong by far. The
    # CPU's prompts too, which its rounds ran with op offload off (on, their matmuls would have run on lavapipe).
    assert on_cpu.tg_tps > 3 * on_gpu.tg_tps and on_cpu.pp_tps > 3 * on_gpu.pp_tps, (on_cpu, on_gpu)

    # fit on the command line says the same, measured, for every layer on the GPU
    fit = run_cli("fit", str(unseen), "--gpu-layers", "-1", "--ctx", "128", "--json", basedir=tmp_path / "base")
    assert fit.returncode == 0, fit.stderr[-2000:]
    predicted = json.loads(fit.stdout)["predicted"]
    assert predicted["speed_device"] == "gpu" and predicted["speed_confidence"] == "measured", predicted
    assert predicted["tg_tps"] == pytest.approx(on_gpu.tg_tps, rel=0.01)

    _print_device(gpu, done.gpu_measured)
    assert "GPU (vulkan: llvmpipe" in capsys.readouterr().out
