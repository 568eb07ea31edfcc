"""Calibration's length (issue 13: "one short, cancellable run (a few seconds to a minute, with progress)").

Calibrates this machine ROUNDS times at the app's default threads (as the GUI's offer and ``sizewise calibrate``
run it), and prints each run's wall time split into preparing (writing and quantizing the synthetic models) and
measuring, the rounds it measured, and the tokens llama.cpp decoded. Wall time on a shared machine moves with
whatever else runs (a round slowed by other programs is measured again); the tokens decoded are the work itself,
which no neighbour changes: the measured rounds times ``_decoded_per_round``.

Goal: the median run within GOAL_S.

Run: pytest -m benchmarks tests/benchmarks/test_calibration_time.py -s  (~5 minutes; SIZEWISE_BENCH_ROUNDS)

Last run (2026-12-05 07:23, the same Intel Xeon, a fresh guest; through this test, three calibrations): MET, median
57.9 s (56.5-58.8; 14.8-15.9 s of each starting and preparing), after generation became one 16-token run a round whose
median token counts (was the fastest of three runs) and each model reads only what its weights leave of 128 MiB before a
token (engine/speed/measure.py, REPETITIONS and Runs.for_model): 1056 tokens decoded per model and round, was 1120, and
32 reads, was 96. Alternated right after with the code before (by hand through calibrate() at the app's threads, four
pairs, order swapped each pair): 63.1, 61.0, 60.2 and 56.8 s (median 60.6) against 99.8, 96.2, 97.0 and 94.1 s (median
96.6), a ratio of 0.60-0.63 (median 0.63). The speed benchmark's accuracy with it:
tests/benchmarks/test_speed_prediction.py.

The run before (2026-12-05 03:31, the same Intel Xeon; through this test, three calibrations): NOT met, median 76.0 s
(75.9-80.0), after the worker kept one 128 MiB buffer for all its benches instead of writing a new one for each
(25-150 ms each, over 1 s the first time; engine/cold_cache.py shared_evictor). Not alternated with the run below, so
the 7 s between them is within what the machine drifts in an hour.

The run before (2026-12-05 02:56, the same Intel Xeon; through this test, three calibrations): NOT met, median 83 s.
Calibration now reads 128 MiB before each generated token of its models under 128 MiB (engine/speed/measure.py,
EVICT_BYTES; 48 MiB no longer emptied this guest's cache, and the fit then missed its own points by 20 %), which took
it from a median of 64.5 s (two runs by hand, alternating, that morning) to 87.3 s; writing the synthetic models
without re-tiling the value pool per tensor (~1.2 s a model) and reading the tokenizer while the engine starts (~2 s)
took 4 s of that back. A second run of this test, with the read split over two threads (7.4 -> 4.0-4.6 ms a read
outside llama.cpp), took 85 s: llama.cpp's threads still held the other core, and the split was dropped. What is left
to cut is measuring itself (68 s: 288 generated tokens per model, each after a 6 ms read, and two 512-token prompts
per model and round).

The run before (2026-12-05 00:20, the same Intel Xeon; by hand through calibrate() at the app's threads, alternating
with the caches left warm, three calibrations each): MET, 59.5, 57.2 and 59.1 s (median 59.1) where without emptying the
caches before the 31M models' generated tokens (engine/speed/measure.py, EVICT_BYTES) they took 54.1, 54.5 and 54.8 s.
Emptying them before the tokens of the five models under 96 MB took 63.1, 62.5 and 61.8 s against 52.5, 52.0 and
52.1 (through this test: 62.2, 64.6 and 62.9 s, NOT met).

The run before (2026-12-04 14:35, Intel Xeon with AMX, 2 cores, a KVM guest; by hand, alternating with the code before,
three calibrations each at the app's threads): MET on this machine, 56.8, 55.2 and 55.6 s (14-15 s starting and
preparing; 27 model rounds each, none measured again; 1120 tokens decoded per model and round), where the code before
(a separate prompt from an empty cache, repeated twice, before the deeper one's untimed fill: 2144 tokens) took 77.1,
73.9 and 75.8 s. The figures agreed: prompt from an empty cache 0.96-1.02x the code before's per model (one run where
it took the faster of two), the deeper prompt 1.00-1.02x, generation 0.99-1.20x and 0.93-1.08x (medians of three
calibrations each). The run before (2026-12-04 05:15, AMD EPYC, 2 cores, the code before): NOT met, median 99 s (89.8,
113.3 and 99.4 s).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import pytest

from sizewise.core.paths import basedir_paths
from sizewise.engine.speed.calibrate import calibrate
from sizewise.engine.speed.measure import RUNS, Runs

pytestmark = pytest.mark.benchmarks

ROUNDS = int(os.environ.get("SIZEWISE_BENCH_ROUNDS", "3"))
GOAL_S = 60.0


def _decoded_per_round(runs: Runs) -> int:
    """Tokens one round decodes on one model (engine/speed/measure.py's measure_round): the prompt from an empty
    cache, the deeper prompts after it, and generation's runs at both depths."""
    return runs.pp_depth + runs.deep_repetitions * runs.pp + 2 * runs.repetitions * runs.tg


def test_calibration_takes_about_a_minute(tmp_path: Path, smollm2_path: Path) -> None:
    walls: list[float] = []
    for r in range(ROUNDS):
        marks: dict[str, float] = {}
        t0 = time.perf_counter()

        def progress(line: str, marks: dict[str, float] = marks, t0: float = t0) -> None:
            if line.startswith("Measuring") and "measuring" not in marks:
                marks["measuring"] = time.perf_counter() - t0

        done = calibrate(basedir_paths(tmp_path / f"run{r}").ensure(), smollm2_path, progress, gpu=False)
        wall = time.perf_counter() - t0
        walls.append(wall)
        rounds = sum(len(m.rounds) for m in done.measured)
        print(
            f"\nrun {r + 1}: {wall:.1f} s ({marks.get('measuring', 0.0):.1f} s starting and preparing, then "
            f"measuring); {rounds} model rounds for {len(done.measured)} models, "
            f"{rounds * _decoded_per_round(RUNS)} tokens decoded ({_decoded_per_round(RUNS)} per model and round)"
        )
    median = statistics.median(walls)
    print(f"calibration: median {median:.1f} s over {ROUNDS} runs ({min(walls):.1f}-{max(walls):.1f} s)")
    assert median <= GOAL_S, f"calibration took {median:.0f} s (median), more than {GOAL_S:.0f} s"
