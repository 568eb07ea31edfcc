"""The Fit view and the Hardware view, driven like a person would (pytest-qt, offscreen)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from pytestqt.qtbot import QtBot

from sizewise.core.fit.hardware import probe_hardware
from sizewise.core.fit.memory_model import Backend, predict
from sizewise.core.fit.verdict import Budget, margin_for
from sizewise.core.gguf.header import model_info, read_header
from sizewise.core.sampling import LoadParams
from sizewise.engine.session import EngineSession
from sizewise.gui.fit.fit_view import UNWRITTEN_WORTH_SAYING, FitView
from sizewise.gui.fit.hardware_view import HardwareView

GiB = 1 << 30
CPU = Backend(repack=True, cpu_features=frozenset({"avx2", "avx512"}))
GPU = Backend(gpu=True, repack=False, cpu_features=frozenset({"avx2"}), gpu_backend="vulkan")  # scheduler replay


def _view(qtbot: QtBot, path: Path, budget: Budget, params: LoadParams | None = None) -> FitView:
    view = FitView()
    qtbot.addWidget(view)
    view.set_model(read_header(path), model_info(path), budget, params or LoadParams(n_ctx=2048))
    view.show()
    return view


def test_context_slider_updates_the_prediction_at_once(qtbot: QtBot, smollm2_path: Path) -> None:
    view = _view(qtbot, smollm2_path, Budget(8 * GiB, 0, "test budget", CPU))
    assert view.result is not None and view.result.verdict == "fits_cpu"
    # a CPU build's logits reservation at 2048 (53 MiB) is named with its size; at 8192 the attention scores set the
    # peak and the logits reserve almost nothing beyond it, which is not said
    unwritten = view.result.prediction.compute_cpu_unwritten
    assert unwritten >= UNWRITTEN_WORTH_SAYING and "never asks for" in view.detail_label.text()
    kv_2048 = view.result.prediction.kv_bytes
    ram_bar = view.bars.segments("RAM predicted")
    assert ram_bar["kv"] == kv_2048 and ram_bar["weights"] > 0
    t0 = time.perf_counter()
    view.ctx_slider.setValue(8192 // 256)  # synchronous: no event loop turn needed
    elapsed = time.perf_counter() - t0
    assert view.result.prediction.kv_bytes == 4 * kv_2048
    assert view.bars.segments("RAM predicted")["kv"] == 4 * kv_2048
    assert view.ctx_value.text() == "8,192"
    assert elapsed < 1.0, f"slider took {elapsed:.2f} s"
    assert "Fits on the CPU" in view.verdict_label.text()
    assert "8,192" in view.max_ctx_label.text()
    assert view.result.prediction.compute_cpu_unwritten < UNWRITTEN_WORTH_SAYING
    assert "never asks for" not in view.detail_label.text()


def test_a_load_beyond_the_trained_context_is_predicted_at_its_own_context(qtbot: QtBot, smollm2_path: Path) -> None:
    """A model trained on 512 tokens and loaded with 2048: the prediction beside that load is for 2048, not 512."""
    view = FitView()
    qtbot.addWidget(view)
    info = replace(model_info(smollm2_path), context_length=512)
    view.set_model(read_header(smollm2_path), info, Budget(8 * GiB, 0, "test budget", CPU), LoadParams(n_ctx=2048))
    assert view.current_params().n_ctx == 2048 and view.ctx_value.text() == "2,048"
    expected = predict(read_header(smollm2_path), LoadParams(n_ctx=2048), CPU)
    assert view.result is not None and view.result.prediction.kv_bytes == expected.kv_bytes
    view.ctx_slider.setValue(1)
    assert view.current_params().n_ctx == 256


def test_verdict_and_largest_context_follow_the_budget(qtbot: QtBot, smollm2_path: Path) -> None:
    header = read_header(smollm2_path)
    need = predict(header, LoadParams(n_ctx=4096), CPU).ram_bytes
    view = _view(qtbot, smollm2_path, Budget(need + margin_for(need), 0, "tight", CPU))
    assert "4,096" in view.max_ctx_label.text()
    view.ctx_slider.setValue(8192 // 256)
    assert view.result is not None and view.result.verdict == "too_large"
    assert "Too large" in view.verdict_label.text()
    ram_f16 = view.result.prediction.ram_bytes
    view.kv_type.setCurrentText("q8_0")  # a quantized cache needs flash attention: switched on with it
    assert view.flash_attn.isChecked()
    assert view.result.prediction.settings.kv_type == "q8_0" and view.result.prediction.settings.flash_attn
    assert view.result.prediction.ram_bytes < ram_f16
    assert view.result.max_ctx is not None and view.result.max_ctx > 4096  # recomputed for the new KV type
    assert f"{view.result.max_ctx:,}" in view.max_ctx_label.text()


def test_gpu_layers_slider_and_auto(qtbot: QtBot, gemma_path: Path) -> None:
    header = read_header(gemma_path)
    half = predict(header, LoadParams(n_ctx=2048, n_gpu_layers=10), GPU).vram_bytes
    view = _view(qtbot, gemma_path, Budget(32 * GiB, half + margin_for(half), "gpu test", GPU))
    assert view.result is not None and view.result.verdict == "fits_partial"
    auto_layers = view.result.gpu_layers
    assert 0 < auto_layers < 19 and view.gpu_slider.value() == auto_layers
    assert "VRAM predicted" in [row[0] for row in view.bars.rows]
    view.gpu_slider.setValue(0)  # moving the slider leaves auto mode
    assert not view.gpu_auto.isChecked()
    pred = view.result.prediction
    assert view.result.verdict == "fits_cpu" and pred.weights_gpu == pred.kv_gpu == 0
    assert pred.vram_bytes == pred.compute_gpu > 0  # op offload: a prompt batch still runs on the GPU
    # the host keeps a sliver of the logits' reservation then: not worth a sentence that says "0.0 MiB"
    assert 0 < pred.compute_cpu_unwritten < UNWRITTEN_WORTH_SAYING
    assert "never asks for" not in view.detail_label.text()
    view.gpu_slider.setValue(19)
    assert view.result.verdict == "too_large"
    view.gpu_auto.setChecked(True)
    assert view.result.gpu_layers == auto_layers


def test_show_measured_draws_the_real_load_beside_the_prediction(
    qtbot: QtBot, smollm2_path: Path, tmp_path: Path
) -> None:
    params = LoadParams(n_ctx=1024)
    with EngineSession(log_path=tmp_path / "engine.log") as session:
        ready = session.start()
        loaded = session.load(smollm2_path, params)
    backend = Backend.from_system_info(ready["system_info"])
    view = _view(qtbot, smollm2_path, Budget(8 * GiB, 0, "this machine", backend), params)
    assert not view.diff_table.isVisibleTo(view)
    view.show_measured(loaded["buffers"])
    assert view.diff_table.isVisibleTo(view)
    assert "RAM measured" in [row[0] for row in view.bars.rows]
    diffs = {c: pct for c, _, _, pct in view.differences()}
    for component in ("weights", "kv", "compute", "total"):
        assert diffs[component] is not None and abs(diffs[component]) <= 3.0
    cells = {
        view.diff_table.item(r, 0).text(): view.diff_table.item(r, 3).text() for r in range(view.diff_table.rowCount())
    }
    assert cells["kv"].endswith("%") and "vram" not in cells  # nothing on a GPU: no row for it
    table = view.diff_table  # every row in sight, no scroll bar inside the page
    qtbot.waitUntil(lambda: table.viewport().height() >= sum(table.rowHeight(r) for r in range(table.rowCount())))
    # the MeasuredBuffers.to_dict() form is accepted too, and the view repaints without errors
    from sizewise.core.fit.llama_log import MeasuredBuffers

    view.show_measured(MeasuredBuffers.from_lines(loaded["buffers"]).to_dict())
    view.repaint()


def test_hardware_view_shows_sources_and_refreshes_in_background(qtbot: QtBot) -> None:
    view = HardwareView()
    qtbot.addWidget(view)
    view.set_report(probe_hardware())
    rows = {label: (value, source) for label, value, source in view.rows()}
    assert rows["RAM total"][1] == "psutil.virtual_memory().total"
    assert "GPU" in rows and rows["llama.cpp"][0] == "not queried"
    view.set_engine_ready({"llama_cpp_version": "0.3.36", "gpu_offload": False, "system_info": "CPU : AVX2 = 1 |"})
    with qtbot.waitSignal(view.reportChanged, timeout=10_000):
        view.refresh()
    rows = {label: (value, source) for label, value, source in view.rows()}
    assert rows["llama.cpp"][0] == "llama-cpp-python 0.3.36"
    assert rows["GPU offload"][0] == "not in this build"
    assert view.refresh_button.isEnabled()
    assert "RAM" in view.summary.text()


def test_predicted_speed_follows_the_context_and_says_its_confidence(qtbot: QtBot, smollm2_path: Path) -> None:
    from sizewise.core.speed.model import model_cost, tg_seconds
    from sizewise.core.speed.predicted import Devices
    from sizewise.core.speed.profile import SpeedProfile, estimate_profile

    view = _view(qtbot, smollm2_path, Budget(8 * GiB, 0, "test budget", CPU))
    assert not view.speed_label.isVisible()  # no speed profile yet: nothing is guessed
    profile = SpeedProfile(bw_effective=12e9, t_fixed=0.002, flops_by_family={"legacy": 50e9}, source="measured")
    view.set_speed_devices(Devices(profile))
    assert view.speed_label.isVisible() and view.speed is not None
    expected = 1 / tg_seconds(model_cost(read_header(smollm2_path)), profile)
    assert f"{expected:.1f} tokens/s" in view.speed_label.text() and "(measured)" in view.speed_label.text()
    short = view.speed.tg_tps_full_ctx
    view.ctx_slider.setValue(8192 // 256)
    assert view.speed.tg_tps_full_ctx < short and "8,192 tokens of context" in view.speed_label.text()
    view.set_speed_devices(Devices(estimate_profile()))
    assert "(estimate)" in view.speed_label.text() and "calibrate" in view.speed_label.toolTip()
