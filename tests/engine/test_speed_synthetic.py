"""Synthetic calibration models load and run in llama.cpp; the bench measures at a depth."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from sizewise.core.sampling import LoadParams
from sizewise.core.speed.synthetic import SyntheticShape, read_tokenizer, write_synthetic
from sizewise.engine.bench import BenchRequest
from sizewise.engine.session import EngineSession
from sizewise.engine.speed.calibrate import CALIBRATION_SHAPES
from sizewise.engine.speed.measure import Overtime, bench

SHAPE = SyntheticShape(n_layer=2, n_embd=256, n_ff=512, n_head=4, n_head_kv=2)

N_PARAMS = """
import sys, llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=64, verbose=False)
print(llama_cpp.llama_model_n_params(llm._model.model))
"""


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("syn") / "s.gguf", SHAPE, read_tokenizer(smollm2_path))


def test_llama_cpp_loads_a_synthetic_model_with_the_requested_parameter_count(synthetic: Path) -> None:
    out = subprocess.run([sys.executable, "-c", N_PARAMS, str(synthetic)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) == SHAPE.parameters


def test_bench_at_a_depth_runs_on_a_synthetic_model(synthetic: Path) -> None:
    with EngineSession() as session:
        session.load(synthetic, LoadParams(n_ctx=128))
        done = bench(session, BenchRequest(pp=16, tg=4, repetitions=1, ttft=False, warmup=False, depth=96))
        assert done["depth"] == 96 and done["tg"]["mean_tps"] > 0 and done["pp"]["mean_tps"] > 0
        assert "128" in (BenchRequest(pp=16, depth=120).problem(128) or "")
        # The depth is filled once and trimmed back for each repetition; generation right after the prompt.
        req = BenchRequest(pp=16, tg=4, repetitions=2, ttft=False, warmup=False, depth=64, tg_depth=80)
        again = bench(session, req)
        assert again["tg_depth"] == 80 and again["tg"]["repetitions"] == 2 and again["pp"]["repetitions"] == 2
        assert "132" in (BenchRequest(pp=16, tg=8, depth=64, tg_depth=124).problem(128) or "")


def test_calibration_measures_k_quants_and_the_types_they_fall_back_to() -> None:
    assert [shape.kquant_widths for shape in CALIBRATION_SHAPES] == [True, True, False]
    assert all(shape.problem() is None for shape in CALIBRATION_SHAPES)


def test_a_bench_past_its_deadline_is_stopped_and_the_worker_is_free_again(synthetic: Path) -> None:
    """Calibration's busy-machine cut-off: the wait ends at the deadline even while progress events arrive."""
    with EngineSession() as session:
        session.load(synthetic, LoadParams(n_ctx=128))
        long = BenchRequest(pp=64, tg=64, repetitions=1000, ttft=False)
        t0 = time.monotonic()
        with pytest.raises(Overtime):
            bench(session, long, deadline=t0 + 0.5)
        assert time.monotonic() - t0 < 10
        done = bench(session, BenchRequest(pp=16, tg=4, repetitions=1, ttft=False, warmup=False))
        assert done["tg"]["mean_tps"] > 0
