"""Live metrics: ring buffers filled by a sampler at a few Hz, charts redrawn per sample, not per token."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pytestqt.qtbot import QtBot

from sizewise.core.fit.memory_model import predict
from sizewise.core.gguf.header import read_header
from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.gui.adapters.engine_adapter import EngineAdapter
from sizewise.gui.metrics.metrics_view import MetricsView
from sizewise.gui.metrics.sampler import RingBuffer

MiB = 2**20


def test_ring_buffer_keeps_the_newest_in_order() -> None:
    b = RingBuffer(4)
    assert b.values().size == 0 and np.isnan(b.last())
    for v in range(1, 4):
        b.append(float(v))
    assert b.values().tolist() == [1.0, 2.0, 3.0]
    for v in range(4, 8):
        b.append(float(v))
    assert b.values().tolist() == [4.0, 5.0, 6.0, 7.0] and len(b) == 4 and b.last() == 7.0
    b.clear()
    assert len(b) == 0


def test_live_charts_follow_a_real_reply(qtbot: QtBot, smollm2_path: Path) -> None:
    adapter = EngineAdapter()
    view = MetricsView(adapter, hz=8.0)
    qtbot.addWidget(view)
    view.resize(700, 600)
    view.show()
    try:
        load = LoadParams(n_ctx=512)
        with qtbot.waitSignal(adapter.loaded, timeout=120_000):
            adapter.start()
            adapter.load(str(smollm2_path), load)
        pred = predict(read_header(smollm2_path), load)
        view.set_prediction(pred.ram_bytes, pred.vram_bytes)
        redraws_before, samples_before = view.redraws, len(view.sampler.buffers["t"])
        tokens: list[str] = []
        adapter.token.connect(lambda _id, text: tokens.append(text))
        with qtbot.waitSignal(adapter.finished, timeout=300_000) as blocker:  # a loaded 2-core host is slow
            adapter.generate(
                SamplingParams(temperature=0.0, max_tokens=48, seed=1),
                messages=[{"role": "user", "content": "Write a short poem about the sea."}],
            )
        stats = blocker.args[1]
        qtbot.wait(300)  # a couple more samples after the reply
        s = view.sampler
        gen = s.series("gen_tps")
        assert np.isfinite(gen).any() and np.nanmax(gen) > 0  # sampled while tokens arrived
        assert np.isfinite(s.series("gen_avg_tps")).any()
        assert s.buffers["prompt_tps"].last() == stats["pp_tps"]
        assert s.buffers["ttft_ms"].last() == stats["ttft_ms"]
        rss = s.series("rss_bytes")
        assert np.nanmax(rss) > 50 * MiB
        # the charts show the prediction and llama.cpp's logged buffers next to the measured RSS
        _, y = view.curve_predicted.getData()
        assert y is not None and np.allclose(y, pred.ram_bytes / MiB)
        _, y = view.curve_buffers.getData()
        assert y is not None and np.allclose(y, sum(b["bytes"] for b in adapter.loaded_info["buffers"]) / MiB)
        _, y = view.curve_rss.getData()
        assert y is not None and np.nanmax(y) == np.nanmax(rss) / MiB
        # redrawn at most once per sample (plus set_prediction/show and the reply's end), never per token
        samples = len(s.buffers["t"]) - samples_before
        assert view.redraws - redraws_before <= samples + 2
        assert len(tokens) >= 10
        assert "tokens/s" in view.labels["prompt"].text()
        # hidden: still sampling, no drawing
        view.hide()
        hidden_redraws, hidden_samples = view.redraws, len(s.buffers["t"])
        qtbot.wait(400)
        assert view.redraws == hidden_redraws and len(s.buffers["t"]) > hidden_samples
    finally:
        view.close()
        adapter.shutdown()
    assert not view.sampler.running


def test_charts_redraw_at_the_busy_rate_while_a_reply_streams(qtbot: QtBot, smollm2_path: Path) -> None:
    """Sampling stays at its rate while generating; redrawing drops to busy_hz (each redraw costs the engine)."""
    adapter = EngineAdapter()
    view = MetricsView(adapter, hz=8.0, busy_hz=2.0)
    qtbot.addWidget(view)
    view.resize(700, 600)
    view.show()
    seen: list[tuple[bool, int]] = []  # after each sample: streaming?, redraws so far
    try:
        with qtbot.waitSignal(adapter.loaded, timeout=120_000):
            adapter.start()
            adapter.load(str(smollm2_path), LoadParams(n_ctx=512))
        view.sampler.sampled.connect(lambda: seen.append((view.sampler.generating, view.redraws)))
        with qtbot.waitSignal(adapter.finished, timeout=300_000) as blocker:  # a loaded 2-core host is slow
            adapter.generate(
                SamplingParams(temperature=0.7, max_tokens=240, seed=3),
                messages=[{"role": "user", "content": "Tell a long story about a lighthouse keeper."}],
            )
        qtbot.wait(500)
        streaming = [r for g, r in seen if g]
        assert len(streaming) >= 8, (blocker.args[1], seen)  # >= 1 s of streaming at 8 Hz
        during = streaming[-1] - streaming[0]
        seconds = len(streaming) / view.sampler.hz
        assert 1 <= during <= seconds * 2.0 + 1, seen  # ~2 a second, far fewer than the 8 samples a second
        after = [r for g, r in seen[seen.index((True, streaming[-1])) :] if not g]
        assert after and after[-1] - after[0] >= 2, seen  # idle again: a redraw per sample
    finally:
        view.close()
        adapter.shutdown()
