"""Synthetic calibration models load and run in llama.cpp; the bench measures at a depth."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sizewise.core.sampling import LoadParams
from sizewise.core.speed.synthetic import SyntheticShape, read_tokenizer, write_synthetic
from sizewise.engine.bench import BenchRequest
from sizewise.engine.session import EngineSession
from sizewise.engine.speed.calibrate import CALIBRATION_SHAPES
from sizewise.engine.speed.measure import Overtime, Runs, bench, measure_round

SHAPE = SyntheticShape(n_layer=2, n_embd=256, n_ff=512, n_head=4, n_head_kv=2)
SMALL_RUNS = Runs(pp=32, tg=24, repetitions=2, deep_repetitions=1)

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
        # Generation repeated more than the prompt (calibration's deep bench): each counts its own runs.
        apart = bench(session, BenchRequest(pp=16, tg=4, repetitions=1, tg_repetitions=3, ttft=False, depth=64))
        assert apart["pp"]["repetitions"] == 1 and len(apart["pp"]["cpu_samples_s"]) == 1
        assert apart["tg"]["repetitions"] == 3 and len(apart["tg"]["cpu_samples_s"]) == 3
        assert BenchRequest(pp=16, tg=4, repetitions=1, tg_repetitions=3, ttft=True).steps() == 2 + 1 + 3 + 1
        assert "at least 1" in (BenchRequest(tg_repetitions=0).problem() or "")
        assert "132" in (BenchRequest(pp=16, tg=8, depth=64, tg_depth=124).problem(128) or "")


def test_a_timed_fill_is_the_prompt_from_an_empty_cache(synthetic: Path) -> None:
    """Calibration's rounds time the depth's fill as their prompt from an empty cache (measure.measure_round), so
    the fill must be timed like a prompt of that length: same batches, one run, CPU time beside wall time."""
    with EngineSession() as session:
        session.load(synthetic, LoadParams(n_ctx=160, n_threads=1))
        bench(session, BenchRequest(pp=64, tg=4, repetitions=1, ttft=False))  # pages and caches warm
        plain = bench(session, BenchRequest(pp=64, tg=0, repetitions=3, ttft=False, warmup=False))
        req = BenchRequest(pp=64, tg=4, repetitions=1, tg_repetitions=2, ttft=False, warmup=False, depth=64)
        filled = bench(session, dataclasses.replace(req, time_fill=True))
    fill = filled["fill"]
    assert fill["n"] == 64 and fill["repetitions"] == 1 and len(fill["cpu_samples_s"]) == 1
    assert filled["pp"]["repetitions"] == 1 and filled["tg"]["repetitions"] == 2
    ratio = fill["cpu_samples_s"][0] / min(plain["pp"]["cpu_samples_s"])
    assert 0.5 < ratio < 2.0, (fill, plain["pp"])
    assert req.steps() + 1 == dataclasses.replace(req, time_fill=True).steps()
    assert "depth" in (BenchRequest(pp=16, time_fill=True).problem() or "")
    assert BenchRequest.from_message(BenchRequest(time_fill=True, depth=8).to_message(1)).time_fill


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


def _pin(pid: int, cpu: int) -> None:
    """Every thread of ``pid`` on one CPU (sched_setaffinity on a pid moves only its main thread)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), {cpu})


def _times(done: dict[str, Any]) -> tuple[float, float]:
    """(wall, CPU) seconds of the generation runs, summed over repetitions."""
    return sum(done["tg"]["samples_s"]), sum(done["tg"]["cpu_samples_s"])


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_at_one_thread_the_cpu_time_leaves_out_what_other_programs_took(smollm2_path: Path) -> None:
    """Calibration times one-thread runs in CPU time (measure.cpu_timed): two busy programs on the engine's own
    core slow the wall time about threefold, and must leave the CPU time where it was. On a real model: a toy one
    whose layers about fill a core's L2 cache (2 layers 256 wide: 2.4 MB of F16, against 2 MiB of L2 per core on an
    Intel Xeon virtual machine here) pays each switch back from the hogs in reloading that cache, and its
    generation's CPU time doubled (57.7 -> 123.5 ms) where SmolLM2-135M's moved 1.03x (877.5 -> 899.8 ms) on the
    same machine."""
    cpu = sorted(os.sched_getaffinity(0))[0]
    req = BenchRequest(pp=64, tg=48, repetitions=3, ttft=False, warmup=False)
    with EngineSession() as session:
        session.load(smollm2_path, LoadParams(n_ctx=160, n_threads=1))
        pid = session.client.pid
        assert pid is not None
        _pin(pid, cpu)
        bench(session, BenchRequest(pp=16, tg=8, repetitions=1, ttft=False))  # warm caches and pages
        quiet = bench(session, req)
        quiet_round = measure_round(session, smollm2_path, threads=1, runs=SMALL_RUNS)
        session.load(smollm2_path, LoadParams(n_ctx=160, n_threads=1))
        for key in ("pp", "tg"):
            assert len(quiet[key]["cpu_samples_s"]) == 3
            for wall, cpu_s in zip(quiet[key]["samples_s"], quiet[key]["cpu_samples_s"], strict=True):
                assert 0 < cpu_s <= wall * 1.01 + 1e-3
        hogs = [
            subprocess.Popen(
                [sys.executable, "-c", "while True: pass"], preexec_fn=lambda: os.sched_setaffinity(0, {cpu})
            )
            for _ in range(2)
        ]
        try:
            time.sleep(0.2)
            busy = bench(session, req)
            busy_round = measure_round(session, smollm2_path, threads=1, runs=SMALL_RUNS)
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
    quiet_wall, quiet_cpu = _times(quiet)
    busy_wall, busy_cpu = _times(busy)
    assert busy_wall > 1.8 * busy_cpu, (busy_wall, busy_cpu)  # the core was shared three ways
    assert busy_cpu < 1.5 * quiet_cpu, (busy_cpu, quiet_cpu, busy_wall, quiet_wall)
    # calibration's rounds at one thread take these figures, so the busy round is as fast as the quiet one
    assert busy_round.tg < 1.5 * quiet_round.tg and busy_round.bench_s < 1.5 * quiet_round.bench_s, (
        busy_round,
        quiet_round,
    )
