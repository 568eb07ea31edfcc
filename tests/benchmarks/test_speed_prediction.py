"""Predicted against measured speed for models calibration never saw: issue 13's accuracy goals.

Measures 9 cases calibration (engine/speed/calibrate.py) never saw — three real model shapes × Q8_0, Q4_K_M,
Q2_K — each at context 512 and 4096, and prints predicted ÷ measured for generation and prompt processing, the
fraction within bounds, the median and the spread.

The shapes are real models' layer shapes (llama architecture, random weights: speed depends on shapes and
types only) with the starter model's 49152-token vocabulary: SmolLM2-135M's own, Qwen2.5-0.5B's and
Qwen2.5-1.5B's layers (their 151936-token vocabulary and QKV biases left out: ~0.40B and ~1.39B here).
SmolLM2's 576 and Qwen2.5-0.5B's 896 are not multiples of 256, so llama.cpp stores some of their tensors
in other types than the k-quant asked for; the speed model reads the types from the file.

A case at context C (engine/bench.py's loop in the engine worker, as calibration measures):

* prompt: a 512-token batch decoded after C − 512 cached tokens, so it ends at C (from an empty cache at 512;
  after 3584 at 4096);
* generation: 16 tokens right after that prompt, so the cache holds C to C + 16 tokens.

Calibration and measurement alternate, side by side in one run: calibrate, a round, calibrate, a round, …,
calibrate. Every model is measured once per round, ROUNDS rounds in alternating order, each figure the fastest
repetition of its round (noise on a shared machine only adds time). A round is predicted by the calibrations just
before and after it (the mean of their two predictions), so the machine drifting during a run moves both sides of a
round's ratio alike: in one run the same 9 files ran 14 % slower than 35 minutes before (below), which against a
single calibration reads as a model error the size of the goal's band. A case's ratio is the median over rounds of
its round's ratios; the spread is the largest over the smallest; 'once' (printed beside it) is the median
measurement against the first calibration alone, as the runs before measured. Goals (the issue's "≥ 90 % within"
applied to both): generation predicted ÷ measured within 0.85–1.15 and prompt processing within 0.75–1.25 for at
least 90 % of the cases.

Run: pytest -m benchmarks tests/benchmarks/test_speed_prediction.py -s  (on two cores: ~8 minutes to write a
2.8 GB F16 model once and quantize it and the others, ~3 GB deleted afterwards; ~14 minutes of measuring
for one round with one thread). SIZEWISE_SPEED_MODELS=dir reuses (or keeps) the quantized models there;
SIZEWISE_SPEED_JSON=file saves every figure; SIZEWISE_SPEED_THREADS and SIZEWISE_SPEED_ROUNDS: below.

With one thread (SIZEWISE_SPEED_THREADS=1) both calibration and the cases are timed in CPU time (measure.cpu_timed:
llama.cpp computes on the timing thread alone, so other programs taking the core cannot slow the figure); the
wall-time ratio is printed beside it. Memory traffic from other programs still can: CPU time protects against
being descheduled, not against sharing the memory bus or the L3 cache.

Last run (2026-12-05 13:04, the same Intel Xeon; one thread, CPU time, three rounds bracketed by four calibrations;
the prompt's re-reads of matrices past the core's 2 MB L2 counted, core/speed/model.py): calibrations 78, 79, 76 and
73 s. Generation MET: 18 of 18 within (100 %; median 1.02, 0.94-1.15, sd 0.06; 100 % against the first calibration
alone and in wall time); the closest SmolLM2-135M Q8_0 at 4096 1.15. Prompt MET: 18 of 18 within (100 %; median 1.04,
0.87-1.15, sd 0.08): Qwen2.5-1.5B Q4_K_M 0.98 at 512 and 0.87 at 4096 (1.28 and 1.00 the run before), Q2_K 1.15 and
0.94 (1.31 and 1.01), Q8_0 unchanged (1.00, 0.91).

The same run refitted with the fit that followed it (core/speed/fit.py's fit_*_in_family: a type's figure more than
APART_LIMIT from its family's is held at the family's): calibration and the cases measure the same either way, so
refitting the run's recorded rounds (SIZEWISE_SPEED_JSON) with the new fit is what this benchmark would print for
those measurements. Generation 18 of 18 (median 1.03, 0.95-1.15), prompt 18 of 18 (median 1.03, 0.89-1.16). The run
of 06:27 below, refitted so: generation 17 of 18 (94 %; the miss Qwen2.5-1.5B Q2_K at 512 1.21, 0.94 as recorded),
prompt 18 of 18 (0.88-1.18).

The run before (2026-12-05 10:35, the same Intel Xeon and code before the re-reads; one thread, CPU time, three rounds
bracketed by four calibrations): calibrations 74, 73, 73 and 73 s. Generation MET: 18 of 18 within (100 %; median
1.00, 0.92-1.12, sd 0.06; 100 % against the first calibration alone and in wall time). Prompt NOT MET: 16 of 18 within
(89 %; median 1.05, 0.90-1.31, sd 0.11); the misses Qwen2.5-1.5B Q2_K at 512 1.31 and Q4_K_M at 512 1.28, the
re-reads the last run counts (both ran a 512-token prompt at ~49 t/s measured; at 4096 both 1.00-1.01). A
one-round run of the same code just before: generation 16 of 18 (Qwen2.5-1.5B Q4_K_M 0.84 at both contexts), prompt 16
of 18.

The run before (2026-12-05 06:27, the same Intel Xeon, a fresh guest; one thread, CPU time, three rounds bracketed by
four calibrations; calibration's generation now one 16-token run a round, its figure the median token, each model
reading what its weights leave of 128 MiB before each token, engine/speed/measure.py REPETITIONS and Runs.for_model):
calibrations 73, 74, 74 and 77 s. Generation MET: 18 of 18 within (100 %; median 1.00, 0.93-1.13, sd 0.06; 100 %
against the first calibration alone and in wall time); the closest SmolLM2-135M Q8_0 at 4096 1.13. Prompt MET: 17 of 18
within (94 %; median 1.04, 0.90-1.28, sd 0.10); the miss again Qwen2.5-1.5B Q2_K at 512 1.28 (its Q4_K_M 1.23; the
re-reads not yet counted). The calibrations' fits: 43-64 µs a layer, Q8_0 7.8-7.9 GB/s, Q6_K 7.6-10.5 GB/s.

The run before (2026-12-05 01:59, the same Intel Xeon; one thread, CPU time, three rounds bracketed by four
calibrations; calibration reads 128 MiB before each generated token of its models under 128 MiB, engine/speed/measure.py
EVICT_BYTES; PRIOR_WEIGHT 0.5): calibrations 113, 114, 114 and 112 s. Generation MET: 17 of 18 within (94 %; median
1.01, 0.94-1.17, sd 0.06; 94 % against the first calibration alone and in wall time); the miss SmolLM2-135M Q8_0 at 4096
1.17 (at 512 1.08). Prompt MET: 17 of 18 within (94 %; median 1.04, 0.88-1.31, sd 0.11); the miss Qwen2.5-1.5B Q4_K_M at
512 1.31 (its Q2_K 1.18; both too fast: the re-reads core/speed/model.py now counts). The calibrations' fits:
54-58 µs a layer, Q6_K 8.7-9.1 GB/s, Q8_0 8.2-8.4 GB/s (a memory's rates, not a cache's).

The run before (2026-12-04 23:01, the same Intel Xeon; one thread, CPU time, three rounds bracketed by four
calibrations; calibration empties the CPU's caches before each generated token of its models under 96 MB (then: under
48 MB, the 31M ones), engine/speed/measure.py EVICT_BYTES; PRIOR_WEIGHT 0.5): calibrations 95, 97, 89 and 82 s.
Generation NOT met: 15 of 18 within (83 %; median 1.05, 1.00-1.18; 89 % against the first calibration alone, 83 % in
wall time). The misses: SmolLM2-135M Q8_0 at 512 1.18 and at 4096 1.16 (too fast in every run so far: a pure-Q8_0 file
of 30 narrow layers reads slower per byte than calibration's Q8_0 models), Qwen2.5-0.5B Q2_K at 512 1.17. Prompt NOT
met: 16 of 18 within (89 %; median 1.03, 0.89-1.32; the misses again Qwen2.5-1.5B Q4_K_M 1.29 and Q2_K 1.32 at 512:
the re-reads past the L2 that core/speed/model.py now counts; the explanation then, a model past the CPU's cache,
was not it). The first two calibrations fitted 46 and 56 µs a
layer; the last two 0, and the last one's models ran as if warm (31M Q4_K_M 2.00 ms a token against 3.72-3.89 in the
first two; 128M Q4_K_M 10.8 ms against 19.5-19.7): the guest's share of the L3 cache moves with the other guests (a
streaming read's knee at 56-64 MB in one hour, 80-96 MB in the next), and 48 MB then no longer empties it. The round
it brackets was measured before that change (its cases within 8 % of the other rounds), so predictions for round 3
came out fast (Qwen2.5-0.5B Q4_K_M at 512: 1.45 against 1.02-1.14). Refitted offline with PRIOR_WEIGHT 1, the same run
also gives 15 of 18. What emptying the caches does where it holds: calibration's 9 models measured by hand an hour
before this run (every token after a 128 MB read, fastest of two rounds; script kept out of the repo) and fitted by
calibration's fit predicted this run's 18 cases all within (median 1.00, 0.90-1.13), and 88 of the 90 generation cases
of the five recorded runs.

The run before (2026-12-04 20:54, the same Intel Xeon; one thread, CPU time, THREE rounds bracketed by four
calibrations; per-type figures drawn to their family's at PRIOR_WEIGHT 1, core/speed/fit.py): calibrations 86, 88, 92
and 89 s.
Prompt NOT met this time: 16 of 18 within (89 %; median 1.04, 0.90-1.35; the misses Qwen2.5-1.5B Q4_K_M 1.27 and Q2_K
1.35 at 512). Generation NOT met: 13 of 18 within (72 %; median 1.07, 1.00-1.26; every case predicted faster than
measured; the same in wall time, 39 % against the first calibration alone). The misses: SmolLM2-135M Q8_0 at 512 1.22
and at 4096 1.26, its Q4_K_M and Q2_K at 4096 1.18 and 1.17, Qwen2.5-0.5B Q2_K at 512 1.16. Refitted offline with the
weight of before (2) the same run also gives 13 of 18. All four calibrations fitted fixed and per-layer costs of 0:
the narrow 31M model's 17-33 MB stay in the cache (engine/speed/measure.py, DEEP), so its tokens run faster than its
24 layers would let a larger model's, and SmolLM2's 30 layers are predicted short.

The run before (2026-12-04 17:31, the same Intel Xeon; one thread, CPU time, two rounds bracketed by three calibrations;
attention counted in llama.cpp's 256-cell steps and a calibration shape with 128-wide heads, core/speed/model.py):
calibrations 88, 87 and 88 s. Prompt MET: 17 of 18 within (median 1.03, 0.89-1.38; the miss Qwen2.5-1.5B Q2_K at 512).
Generation NOT met: 14 of 18 within (78 %; median 1.02, 0.86-1.24; the same in wall time). Qwen2.5-1.5B at 4096 now
0.86-1.02. The four misses are at context 512, predicted too fast: SmolLM2 Q4_K_M 1.19, Qwen2.5-0.5B Q4_K_M 1.19 and
Q2_K 1.24 (files mostly of fallback types: Q5_0, Q4_0, Q3_K) and Qwen2.5-1.5B Q2_K 1.16 (mostly Q2_K and Q3_K, types
calibration's small models hold little of); the same files at 4096 fit (0.97-1.05). The run between, with a fourth
attention column (a cost per score, since removed), gave 13 of 18.

The run before (2026-12-04 15:27, Intel Xeon with AMX, 480 MiB L3, a KVM guest; one thread, CPU time, ONE round
bracketed by two calibrations; a calibration round decodes each token once, engine/speed/measure.py): calibrations 86
and 86 s.
Prompt MET: 18 of 18 within (median 1.02, 0.84-1.13). Generation NOT met: 10 of 18 within (median 1.00, 0.80-1.24;
the same against the first calibration alone and in wall time). At context 512 the ~0.1B and ~0.4B models were
predicted 1.18-1.24x too fast in five of six cases, and Qwen2.5-1.5B at 4096 0.80-0.84x (too slow) in all three
quants: on this machine the fit also misses calibration's own small models by up to 48 % (engine/speed/calibrate.py,
MAX_FIT_ERROR), with every calibration model inside the L3 cache.

The run before (2026-12-04 04:35, AMD EPYC, 32 MiB L3; one thread, CPU time, two rounds bracketed by three calibrations;
calibration's rounds shortened and cut to two, since put back to three, engine/speed/calibrate.py ROUNDS):
calibrations 85, 95 and 106 s (205-243 s before). Prompt MET: 17 of 18 within (median 0.90, 0.78-1.28). Generation
NOT met: 10 of 18 within (median 0.94, 0.72-1.21; 8 of 18 against the first calibration alone). Predicted too slow
at context 4096 for 7 of 9 models (0.72-0.89): with two rounds a calibration point's median is the mean of both; one
disturbed deeper generation run took 20.5 ms per token where the other round's took 9.9, each calibration had a
model whose deeper cache came out with a negative cost in one round, and the fitted attention rate came out at 11-13
GFLOP/s against 23 in the run below.

The run before (2026-12-04 00:51, AMD EPYC, 32 MiB L3; one thread, CPU time, two rounds, quiet machine; attention
timed by its FLOPs and cells, core/speed/model.py): calibration 243 s. NOT met, and not by the model: the same 9
files ran 14 % slower (median over the 18 cases, in CPU time; prompt 1.14×, generation 1.14×) than 35 minutes
earlier in the run below, while calibration's models ran 0.95-1.3× their earlier times, so predictions came out
fast: generation 2 of 18 within (median 1.38, 1.04-1.78), prompt 14 of 18 (median 1.19). The KV-bytes model on the
same run: generation 4 of 18. A drift the size of the goal's band between calibration and measurement cannot be told
from a model error here.

The run before (2026-12-04 00:13, the same machine, quiet; attention timed by its KV bytes): calibration 205 s.
Prompt MET: 18 of 18 (median 1.03, 0.85-1.23). Generation NOT met: 12 of 18 within (67 %; median 1.10, 0.84-1.56;
round spreads up to 1.51 in CPU time). Five of the six outside were the Qwen2.5-0.5B/1.5B cases whose attention the
KV bytes undercount (1.23-1.56 at depth 4096). Per model, the cost of 3584 more cached tokens fitted 0.9 µs per cell
plus ~10 ns per 64-wide query head within 7 % (KV-byte rates implied: 2.9-7.3 GB/s), so the model now times
attention by its FLOPs and cells; refitted offline with that model, the same measurements give 14 of 18 (median of
rounds) and 16 of 18 (fastest round; the two outside: SmolLM2 Q8_0 at 4096, 0.85, and Qwen2.5-1.5B Q8_0 at 512,
1.21: the 1.47 GB file reads Q8_0 at 14 GB/s where calibration's ≤136 MB models read it at 19).

The one before (2026-12-03 20:56, AMD EPYC, 32 MiB L3; one thread, CPU time, two rounds; the GPU calibration tests ran
on both cores through round 1, so memory traffic disturbed it): calibration 242 s (its CPU time; 1 of 9 models
needed extra rounds). Prompt MET: 18 of 18 within (median 1.00, 0.87–1.12). Generation NOT met: 10 of 18 within
(56 %; median 0.99, 0.81–1.34; 9 of 18 in wall time); rounds of one case still differed by up to 1.41× in CPU time
(wall and CPU time within 3 % of each other: the thread was hardly descheduled, the rounds differed in memory
traffic). Qwen2.5-0.5B at context 4096 was predicted 1.21–1.34× too fast in all three quants while its 512 cases
were 0.89–1.16: a token's attention at depth costs more than its KV bytes at the fitted rate say (14 query heads
per 2 KV heads). Refitting offline with the KV term per query head gave 11 of 18.

The run before (2026-12-03 13:05, another machine: AMD EPYC, 32 MiB L3; one thread, ONE round, to get calibration's
points into the JSON): calibration refused once (2 of 18 points beyond 30 %), then 208 s; prompt 16 of 18 within (89 %),
generation 8 of 18 (44 %; median 1.12, 0.76–1.53), and the same shape's three quants disagreed on what 3584 more
cached tokens cost (Qwen2.5-1.5B: 12–44 ms), so one round is noise-bound. Refitting that run's calibration points
offline with the KV term counted per query head (KV bytes × n_head / n_head_kv: without flash attention the CPU
multiplies each query head against its group's cache) brought calibration's own worst point from 39 % to 23 % off
and generation to 10 of 18; a per-row term did nothing (8 of 18). A run with that KV term in the model (14:00, one
round of 16 cases before it was stopped; calibration 242 s) had generation 8 of 16 within, and the same
measurements refitted with the bytes once gave 11 of 16: the two runs disagree, so the model keeps the bytes once.
The run before (2026-12-03 10:25, one thread, three rounds; calibration 148 s with one thread; other work on the second
core during round 1): prompt met, generation NOT met. Generation 13 of 18 within (72 %; median 1.03, 0.84–1.43);
prompt 17 of 18 (94 %; median 1.06, 0.78–1.30). Rounds of one case differed by up to 1.80× (median spread 1.4×):
with the fastest round instead of the median, 15 of 18 within (median 0.99), and the three outside are
Qwen2.5-1.5B-shaped Q8_0/Q4_K_M measured faster than predicted in all three rounds (0.76–0.84): the ~0.1B
calibration models read Q4_K/Q6_K at 19 GB/s, the 0.85 GB file read them at ~21.5 GB/s.
The one before (two rounds, a quiet machine; calibration 129 s with one thread): prompt met,
generation NOT met. Generation 15 of 18 within (83 %; median 1.01, 0.85–1.24): the three outside (1.16, 1.23,
1.24) are the cases with one disturbed round of two (spread 1.30–1.94), which a median of two rounds cannot set
aside. Prompt 17 of 18 within (94 %; median 0.97, 0.78–1.25). The run before, with calibration's 128-token prompts
and a 640-wide 4-layer model for the fallback types, had prompt 12 of 18 (median 0.83, 0.60–1.00: every 512-token
prompt faster than the 128-token ones calibration measured) and generation 13 of 18.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from sizewise.core.gguf.header import read_header
from sizewise.core.paths import basedir_paths
from sizewise.core.sampling import LoadParams
from sizewise.core.speed.model import ModelCost, model_cost, pp_seconds, tg_seconds
from sizewise.core.speed.profile import ATTN, CELLS, NOT_BYTES, SpeedProfile
from sizewise.core.speed.steady import fastest_per_token
from sizewise.core.speed.synthetic import SyntheticShape, read_tokenizer, write_synthetic
from sizewise.engine.bench import BenchRequest
from sizewise.engine.session import EngineSession
from sizewise.engine.speed.calibrate import calibrate, quantize_types
from sizewise.engine.speed.measure import CalibrationFailed, Measured, bench, cpu_timed, samples

pytestmark = pytest.mark.benchmarks

SHAPES = {
    "smollm2-135m": SyntheticShape(n_layer=30, n_embd=576, n_ff=1536, n_head=9, n_head_kv=3),
    "qwen2.5-0.5b": SyntheticShape(n_layer=24, n_embd=896, n_ff=4864, n_head=14, n_head_kv=2),
    "qwen2.5-1.5b": SyntheticShape(n_layer=28, n_embd=1536, n_ff=8960, n_head=12, n_head_kv=2),
}
TYPES = ("Q8_0", "Q4_K_M", "Q2_K")
CONTEXTS = (512, 4096)
PROMPT = 512
GEN = 16
REPETITIONS = 2
ROUNDS = int(os.environ.get("SIZEWISE_SPEED_ROUNDS", "3"))  # three: a median that can set a disturbed round aside
# Threads for calibration and measurement alike (default: the app's, one per core). On a two-core machine that
# others use too, a process on one core makes every 2-thread token wait at each layer for the descheduled
# thread (SmolLM2-135M Q4_K_M at context 4096: 0.8 tokens/s instead of ~50); one thread is not held up so.
THREADS = int(os.environ.get("SIZEWISE_SPEED_THREADS", "0")) or None
CALIBRATION_ATTEMPTS, PAUSE_S = 3, 30
TG_BOUNDS, PP_BOUNDS, GOAL = (0.85, 1.15), (0.75, 1.25), 0.9


def _models(folder: Path, template: Path) -> list[tuple[str, Path]]:
    """Every case's quantized model in ``folder`` (written when missing: F16 once per shape, then deleted)."""
    tokenizer = None
    out = []
    for i, (name, shape) in enumerate(SHAPES.items()):
        paths = {t: folder / f"{name}-{t}.gguf" for t in TYPES}
        if not all(p.exists() for p in paths.values()):
            need = 3.5 * 2 * shape.parameters
            assert shutil.disk_usage(folder).free > need, f"{need / 1e9:.1f} GB of free disk needed"
            tokenizer = tokenizer or read_tokenizer(template)
            f16 = write_synthetic(folder / f"{name}.gguf", shape, tokenizer, seed=100 + i)
            try:
                quantize_types(f16, tuple(t for t, p in paths.items() if not p.exists()), folder)
            finally:
                f16.unlink()
        out += [(f"{name} {t}", p) for t, p in paths.items()]
    return out


def _round(session: EngineSession, path: Path) -> dict[int, dict[str, float]]:
    """One round of one model: context → seconds per token of the prompt and of generation, timed as
    calibration times them (CPU time at one thread: measure.cpu_timed), and in wall time."""
    session.load(path, LoadParams(n_ctx=max(CONTEXTS) + GEN, n_threads=THREADS))
    out = {}
    for i, c in enumerate(CONTEXTS):
        req = BenchRequest(
            pp=PROMPT, tg=GEN, repetitions=REPETITIONS, ttft=False, depth=c - PROMPT, tg_depth=c, warmup=i == 0
        )
        done = bench(session, req)
        cpu = cpu_timed(THREADS)
        out[c] = {
            "pp": fastest_per_token(samples(done, "pp", cpu), PROMPT),
            "tg": fastest_per_token(samples(done, "tg", cpu), GEN),
            "pp_wall": fastest_per_token(samples(done, "pp"), PROMPT),
            "tg_wall": fastest_per_token(samples(done, "tg"), GEN),
        }
    session.client.unload()
    session.wait_for("unloaded", timeout=60)
    return out


def _calibrate(base: Path, template: Path, log: Callable[[str], None]) -> tuple[SpeedProfile, list[Measured]]:
    """Calibrate, again after a pause when refused for a busy machine (other people's work shares these cores)."""
    for attempt in range(CALIBRATION_ATTEMPTS):
        try:
            done = calibrate(basedir_paths(base / f"try{attempt}").ensure(), template, log, threads=THREADS, gpu=False)
            return done.profile, done.measured
        except CalibrationFailed as exc:
            log(f"calibration refused ({exc}); again in {PAUSE_S} s")
            time.sleep(PAUSE_S)
    pytest.fail(f"calibration refused {CALIBRATION_ATTEMPTS} times: the machine stayed busy")


def _describe(profile: SpeedProfile) -> str:
    return (
        f"calibration {profile.calibration_s:.1f} s: "
        f"bw {profile.bw_effective / 1e9:.2f} GB/s, t_fixed "
        f"{profile.t_fixed * 1e3:.3f} ms, t_layer {profile.t_layer * 1e3:.3f} ms, bw by quant (GB/s) "
        f"{ {k: round(v / 1e9, 1) for k, v in profile.bw_by_quant.items() if k not in NOT_BYTES} }, generation's "
        f"attention {profile.bw_by_quant.get(ATTN, 0) / 1e9:.1f} GFLOP/s + "
        f"{1e9 / profile.bw_by_quant[CELLS] if profile.bw_by_quant.get(CELLS) else 0:.0f} ns/cell, "
        f"pp {profile.pp_fixed * 1e6:.1f} µs + "
        f"{profile.pp_layer * 1e6:.2f} µs/layer, GFLOP/s "
        f"{ {k: round(v / 1e9) for k, v in profile.flops_by_quant.items()} }, "
        f"attention {profile.attn_flops / 1e9:.0f} GFLOP/s"
    )


def _predicted(cost: ModelCost, bracket: list[SpeedProfile], context: int) -> tuple[float, float]:
    """(generation, prompt) seconds per token of a round at ``context``: the mean of the predictions of the
    calibrations just before and after the round, so a machine drifting during the round drifts both sides."""
    tg = statistics.fmean(tg_seconds(cost, pr, context + GEN // 2) for pr in bracket)
    pp = statistics.fmean(pp_seconds(cost, pr, context - PROMPT, PROMPT) for pr in bracket)
    return tg, pp


def _save(dump: dict[str, Any]) -> None:
    if os.environ.get("SIZEWISE_SPEED_JSON"):
        Path(os.environ["SIZEWISE_SPEED_JSON"]).write_text(json.dumps(dump, indent=1))


def _fraction(ratios: list[float], bounds: tuple[float, float]) -> float:
    return sum(bounds[0] <= r <= bounds[1] for r in ratios) / len(ratios)


def test_predicted_against_measured(tmp_path: Path, smollm2_path: Path) -> None:
    log = lambda s: print(s, file=sys.stderr)  # noqa: E731
    folder = Path(os.environ.get("SIZEWISE_SPEED_MODELS") or tmp_path / "models")
    folder.mkdir(parents=True, exist_ok=True)
    models = _models(folder, smollm2_path)  # before calibrating: the quantizer's load is not measured
    profiles: list[SpeedProfile] = []
    dump: dict[str, Any] = {"profiles": [], "calibrations": []}
    rounds: dict[str, list[dict[int, dict[str, float]]]] = {label: [] for label, _ in models}

    def calibrate_now() -> None:
        profile, calibration = _calibrate(tmp_path / f"calibration{len(profiles)}", smollm2_path, log)
        profiles.append(profile)
        dump["profiles"].append(profile.to_dict())
        dump["calibrations"].append(
            [
                {
                    "label": m.label,
                    "rounds": [asdict(r) for r in m.rounds],
                    "tg_points": [asdict(p) for p in m.tg_by_quant],
                }
                for m in calibration
            ]
        )
        print(f"\nthreads {THREADS or 'default'}, {_describe(profile)}", file=sys.stderr)

    calibrate_now()
    with EngineSession() as session:
        for r in range(ROUNDS):
            for label, path in models if r % 2 == 0 else models[::-1]:
                log(f"round {r + 1}/{ROUNDS}: {label}")
                rounds[label].append(_round(session, path))
                _save(dump | {"rounds": rounds})
            calibrate_now()  # in its own engine; this one idles, its model unloaded
            _save(dump | {"rounds": rounds})
    tg_ratios: list[float] = []
    pp_ratios: list[float] = []
    wall_ratios: list[float] = []
    once_ratios: list[float] = []
    record: list[dict[str, Any]] = []
    timing = "CPU time (one thread)" if cpu_timed(THREADS) else "wall time"
    print(
        f"timed in {timing}; each round predicted by the calibrations just before and after it (the mean of their "
        f"two predictions), ratios per round, then their median; 'spread' is the largest round's ratio over the "
        f"smallest; 'wall' is generation in wall time; 'once' is generation's median measurement against the first "
        f"calibration alone"
    )
    print(
        f"{'case':<22} {'ctx':>5} {'tg pred/meas t/s':>22} {'ratio':>6} {'spread':>6} {'wall':>6} {'once':>6} "
        f"{'pp pred/meas t/s':>22} {'ratio':>6} {'spread':>6}"
    )
    for label, path in models:
        cost = model_cost(read_header(path))
        for c in CONTEXTS:
            preds = [_predicted(cost, profiles[r : r + 2], c) for r in range(len(rounds[label]))]
            pps = [rr[c]["pp"] for rr in rounds[label]]
            tgs = [rr[c]["tg"] for rr in rounds[label]]
            tg_walls = [rr[c]["tg_wall"] for rr in rounds[label]]
            tg_rs = [m / pr[0] for m, pr in zip(tgs, preds, strict=True)]  # predicted ÷ measured, in tokens/s
            pp_rs = [m / pr[1] for m, pr in zip(pps, preds, strict=True)]
            wall_rs = [m / pr[0] for m, pr in zip(tg_walls, preds, strict=True)]
            tg_r, pp_r, wall_r = statistics.median(tg_rs), statistics.median(pp_rs), statistics.median(wall_rs)
            once_r = statistics.median(tgs) / tg_seconds(cost, profiles[0], c + GEN // 2)
            tg_pred, pp_pred = (statistics.fmean(x) for x in zip(*preds, strict=True))
            tg_meas, pp_meas = statistics.median(tgs), statistics.median(pps)
            tg_ratios.append(tg_r)
            pp_ratios.append(pp_r)
            wall_ratios.append(wall_r)
            once_ratios.append(once_r)
            record.append(
                {
                    "case": label,
                    "context": c,
                    "tg_s": tgs,
                    "pp_s": pps,
                    "tg_wall_s": tg_walls,
                    "predicted_tg_s": [pr[0] for pr in preds],
                    "predicted_pp_s": [pr[1] for pr in preds],
                    "tg_ratio": tg_r,
                    "pp_ratio": pp_r,
                    "tg_wall_ratio": wall_r,
                    "tg_once_ratio": once_r,
                }
            )
            print(
                f"{label:<22} {c:>5} {1 / tg_pred:9.1f} /{1 / tg_meas:9.1f} {tg_r:6.2f} {max(tg_rs) / min(tg_rs):6.2f} "
                f"{wall_r:6.2f} {once_r:6.2f} {1 / pp_pred:9.1f} /{1 / pp_meas:9.1f} {pp_r:6.2f} "
                f"{max(pp_rs) / min(pp_rs):6.2f}"
            )
    print(f"calibrations: {', '.join(f'{pr.calibration_s:.0f} s' for pr in profiles)}")
    print(f"tg against the first calibration alone: {_fraction(once_ratios, TG_BOUNDS):.0%} within {TG_BOUNDS}")
    if cpu_timed(THREADS):
        print(f"tg in wall time: {_fraction(wall_ratios, TG_BOUNDS):.0%} within {TG_BOUNDS}")
    tg_in, pp_in = _fraction(tg_ratios, TG_BOUNDS), _fraction(pp_ratios, PP_BOUNDS)
    for name, ratios, within, bounds in (("tg", tg_ratios, tg_in, TG_BOUNDS), ("pp", pp_ratios, pp_in, PP_BOUNDS)):
        print(
            f"{name}: {within:.0%} of {len(ratios)} within {bounds[0]}–{bounds[1]}; "
            f"median {statistics.median(ratios):.2f}, "
            f"range {min(ratios):.2f}–{max(ratios):.2f}, sd {statistics.stdev(ratios):.2f}"
        )
    _save(dump | {"rounds": rounds, "cases": record})
    assert tg_in >= GOAL, f"generation: {tg_in:.0%} of the cases within {TG_BOUNDS}"
    assert pp_in >= GOAL, f"prompt processing: {pp_in:.0%} of the cases within {PP_BOUNDS}"
