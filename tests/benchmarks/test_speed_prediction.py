"""Predicted against measured speed for models calibration never saw (issue 13's goals, as ratios).

Calibrates this machine (engine/speed/calibrate.py), then measures the starter model and synthetic models of
a size calibration did not use, at depth 0 and 512, and prints predicted ÷ measured for tg and pp.

Run: pytest -m benchmarks tests/benchmarks/test_speed_prediction.py -s
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sizewise.core.gguf.header import read_header
from sizewise.core.paths import basedir_paths
from sizewise.core.speed.model import model_cost, predict_speed
from sizewise.core.speed.synthetic import SyntheticShape, read_tokenizer, write_synthetic
from sizewise.engine.session import EngineSession
from sizewise.engine.speed.calibrate import _quantize, calibrate
from sizewise.engine.speed.measure import DEEP, PP_TOKENS, measure

pytestmark = pytest.mark.benchmarks

UNSEEN = SyntheticShape(n_layer=16, n_embd=1024, n_ff=2816, n_head=16, n_head_kv=4)  # ~230M parameters
TYPES = ("Q8_0", "Q4_K_M", "Q2_K")


def test_predicted_against_measured(tmp_path: Path, smollm2_path: Path) -> None:
    paths = basedir_paths(tmp_path / "base").ensure()
    profile, _ = calibrate(paths, smollm2_path, lambda s: print(s, file=sys.stderr))
    print(
        f"\nbw {profile.bw_effective / 1e9:.2f} GB/s, t_fixed {profile.t_fixed * 1e3:.3f} ms, t_layer "
        f"{profile.t_layer * 1e3:.3f} ms, by quant {profile.bw_by_quant}, by family {profile.bw_by_family}, "
        f"flops {profile.flops_by_quant}, {profile.calibration_s:.1f} s"
    )
    f16 = write_synthetic(tmp_path / "unseen.gguf", UNSEEN, read_tokenizer(smollm2_path))
    models = [("SmolLM2-135M Q4_1", smollm2_path)]
    models += [(f"{UNSEEN.parameters / 1e6:.0f}M {t}", _quantize(f16, t, tmp_path)) for t in TYPES]
    ratios: list[float] = []
    print(f"{'model':<20} {'tg d0 pred/meas':>18} {'tg d' + str(DEEP) + ' pred/meas':>20} {'pp pred/meas':>20}")
    with EngineSession() as session:
        for label, path in models:
            m = measure(session, path, label)
            cost = model_cost(read_header(path))
            p0, pd = predict_speed(cost, profile, 0), predict_speed(cost, profile, DEEP + 8)
            pp = predict_speed(cost, profile, 0, n_prompt=PP_TOKENS).pp_tps
            row = [(p0.tg_tps, m.tg_tps), (pd.tg_tps, m.tg_deep_tps), (pp, m.pp_tps)]
            ratios += [a / b for a, b in row[:2]]
            cells = "".join(f"  {a:7.1f}/{b:7.1f} ({a / b:.2f})" for a, b in row)
            print(f"{label:<20}{cells}")
    within = sum(0.85 <= r <= 1.15 for r in ratios) / len(ratios)
    print(f"tg within 0.85–1.15: {within:.0%}")
