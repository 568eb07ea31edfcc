"""A round's bench time, the witness of a round slowed as a whole (core/speed/steady.py), counts the timed runs
only: on a GPU the benches' warm-ups compile shader pipelines (31 s of an NVIDIA H200's first round through the
Vulkan backend, ~3.5 s of its later ones), and counted in, every model's first GPU round read as slowed and cost
an extra round. The engine is stood in for by a recorder of the requests: what is under test is how
measure_round reads the worker's answers, which the real-model tests in test_speed_synthetic.py exercise live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sizewise.engine.speed.measure import BENCH_ID, Runs, measure_round

RUNS = Runs(pp=16, tg=4, repetitions=2, deep_repetitions=1)


class _Client:
    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self.answers, self.sent = answers, []  # type: ignore[var-annotated]

    def send_raw(self, msg: dict[str, Any]) -> None:
        self.sent.append(msg)

    def unload(self) -> None:
        self.sent.append({"type": "unload"})


class _Session:
    """Answers each bench with the next of ``answers``, as the worker's ``bench_done`` would."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self.client = _Client(answers)
        self.loaded: list[Any] = []

    def load(self, path: Path, params: Any) -> None:
        self.loaded.append(params)

    def wait_for(self, *kinds: str, timeout: float | None = None) -> dict[str, Any]:
        if "bench_done" in kinds:
            return {"type": "bench_done", "id": BENCH_ID, **self.client.answers.pop(0)}
        return {"type": kinds[0]}


def _done(wall_s: float, tokens: list[float] | None = None, **timed: list[float]) -> dict[str, Any]:
    done = {"wall_s": wall_s} | {k: {"samples_s": v, "cpu_samples_s": v} for k, v in timed.items()}
    if tokens is not None:
        done["tg"] |= {"token_samples_s": tokens, "token_cpu_samples_s": tokens}
    return done


# The tokens of two 4-token repetitions: each run's time is the sum of its tokens.
SHALLOW_TOKENS = [0.0011, 0.0009, 0.0010, 0.0010, 0.0012, 0.0013, 0.0030, 0.0010]
DEEP_TOKENS = [0.0016, 0.0014, 0.0015, 0.0015, 0.0017, 0.0018, 0.0020, 0.0015]


def _answers() -> list[dict[str, Any]]:
    # the shallow bench: 31 s of it compiling pipelines in the warm-up; the deep one: its fill, prompt and tokens
    return [
        _done(31.0, SHALLOW_TOKENS, tg=[0.004, 0.0065]),
        _done(0.5, DEEP_TOKENS, fill=[0.02], pp=[0.01], tg=[0.006, 0.007]),
    ]


@pytest.mark.parametrize("gpu_layers", [-1, 28])
def test_a_gpu_rounds_bench_time_leaves_out_the_warm_ups_compiles(gpu_layers: int) -> None:
    session = _Session(_answers())
    figures = measure_round(session, Path("model.gguf"), gpu_layers=gpu_layers, runs=RUNS)  # type: ignore[arg-type]
    assert figures.bench_s == pytest.approx(0.004 + 0.0065 + 0.02 + 0.01 + 0.006 + 0.007)
    # generation: the median token of all the repetitions (one slow token does not move it), not a run's mean
    assert figures.tg == pytest.approx(0.00105) and figures.tg_deep == pytest.approx(0.00155)
    assert figures.pp == pytest.approx(0.02 / 16)
    assert [m["warmup"] for m in session.client.sent if m.get("type") == "bench"] == [True, True]


def test_a_cpu_round_at_several_threads_keeps_the_benches_wall_time() -> None:
    """At two threads or more the benches' own wall time, untimed deep decodes included, stays the witness (no
    warm-up runs on the CPU)."""
    figures = measure_round(_Session(_answers()), Path("model.gguf"), threads=2, runs=RUNS)  # type: ignore[arg-type]
    assert figures.bench_s == pytest.approx(31.5)


@pytest.mark.parametrize(("gpu_layers", "evict"), [(0, RUNS.evict_bytes), (28, 0)])
def test_a_cpu_round_empties_the_caches_between_tokens_and_a_gpu_round_does_not(gpu_layers: int, evict: int) -> None:
    """Calibration's small models would read their weights from the CPU's cache (engine/speed/measure.py,
    EVICT_BYTES); a GPU's weights are in its own memory."""
    session = _Session(_answers())
    measure_round(session, Path("model.gguf"), threads=1, gpu_layers=gpu_layers, runs=RUNS)  # type: ignore[arg-type]
    assert RUNS.evict_bytes > 0
    assert [m["evict_bytes"] for m in session.client.sent if m.get("type") == "bench"] == [evict, evict]


def test_a_model_reads_what_its_weights_leave_of_the_read() -> None:
    """Weights and read together pass the cache, which empties it of the weights; a model larger than the read took
    the same time either way on the machines measured, and reading costs calibration ~6 ms a token at 128 MiB
    (engine/speed/measure.py, EVICT_BYTES)."""
    runs = Runs(evict_bytes=48 << 20)
    assert runs.for_model(30 << 20).evict_bytes == 18 << 20
    assert runs.for_model((48 << 20) - 1).evict_bytes == 1
    assert runs.for_model(48 << 20).evict_bytes == 0 and runs.for_model(48 << 20).tg == runs.tg
    assert runs.for_model(60 << 20).evict_bytes == 0
    assert Runs(evict_bytes=0).for_model(1 << 20).evict_bytes == 0
