"""Measuring a calibration model: one round of the llama-bench loop (engine/bench.py) in the engine worker, and
the points for the fit from the steady figures over rounds (core/speed/steady.py).

A round loads the model, runs generation from an empty cache, then two prompts back to back (the first from an
empty cache, the second after it, ending at DEEP) and generation from there, as a conversation reaches that
context, and unloads it; calibration runs every model once per round and several rounds, so a disturbance that
lasts a few seconds reaches one round of a point, not all of them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sizewise.core.sampling import LoadParams
from sizewise.core.speed.fit import PpPoint, TgPoint
from sizewise.core.speed.model import ModelCost
from sizewise.core.speed.profile import ATTN, CELLS, KV, type_family
from sizewise.core.speed.steady import RoundFigures, fastest_per_token, median_token, steady
from sizewise.engine.bench import BenchRequest
from sizewise.engine.session import EngineError, EngineSession

# Prompts of 512 tokens, llama-bench's pp512 and what the ladder predicts: a matrix multiplication's fixed costs
# spread over the batch's tokens; calibrated on 128-token prompts, the prompt speeds of unseen 512-token prompts
# came out 0.60-0.83x the measured ones (tests/benchmarks/test_speed_prediction.py).
PP_TOKENS = 512
TG_TOKENS = 16
# Where the deeper generation starts: after two prompts, the first from an empty cache and the deeper one right
# after it, so the first is the deeper one's fill and no token is decoded only to fill the cache (a separate
# untimed fill cost a quarter of a round's tokens; before that, a fill to 1024 before the prompt made the deep bench
# most of a round's time). At 512 the KV cache's reads were too small a share of a token to fit their rate: the
# fitted 6.6 GB/s predicted SmolLM2-135M's generation at depth 4096 at 0.80x the measured speed. At 1024 they are
# ~30 % of the narrow model's token. Not deeper, though the cache limits what 1024 tells: on an Intel Xeon here
# (one thread), calibration's 31M model took 2.0 / 4.0 / 8.3-9.3 / 13.1-13.6 ms a token at depths 8 / 1024 / 2048 /
# 4096 in Q4_K_M, and 2.7 / 8.0-8.3 / 11.1-11.5 / 15.3-16.1 in Q8_0: the step past ~45-50 MB of weights and cache
# together (Q8_0's 33 MB of weights by 1024, Q4_K_M's 22 MB by 2048) costs 2-3 ms more than the cells do, as the
# weights stop staying in the cache, and past it each 1024 cells cost 2.2-2.4 ms in both, as they do a SmolLM2-shaped
# model at depth 4096. Measuring that model at 2048 and 4096 took calibration's measuring from ~70 s to over 158 s.
DEEP = 2 * PP_TOKENS
# Repetitions within a round. Generation's figure is the median of its tokens' times (steady.median_token): with the
# caches emptied before each token, every token is a measurement of its own, and the median of 16 steps over a scheduler
# hiccup of a few milliseconds as the fastest of three 16-token runs did, at a third of the tokens. On calibration's
# eight models under 128 MiB at both depths (one thread, CPU time, 2026-12-05) one run's median token was 0.98-1.02x the
# fastest of three runs' mean (median 1.00, 48 runs); three runs cost calibration ~20 s of its ~76 (each token also
# waits for its cache-emptying read). Prompts are most of the rest of a round's time, so each runs once per round (the
# rounds' median sets a slowed one aside): the first prompt pages nothing in, since generation from an empty cache runs
# before it in the same load and touches every weight; the deeper one's attention work, ~3x that of a prompt from an
# empty cache, tells attention's rate from the weights' (fit.py).
REPETITIONS = 1
DEEP_REPETITIONS = 1
# Bytes read between a CPU round's generated tokens to empty the caches first (engine/cold_cache.py). Without it,
# calibration's models that fit in the last-level cache read their weights from it: on an Intel Xeon here (a KVM
# guest; a streaming read slows from 26 to 17 GB/s past 56-64 MB, though the guest reports 480 MiB of L3), the 31M
# model's tokens took 2.1 ms in Q4_K_M and 3.0 ms in Q8_0 with its caches warm (5-6 ms another hour, as other guests
# used the cache) and 4.0-4.1 and 5.9 ms emptied, so the fit put every calibration's fixed and per-layer costs at 0
# and missed its own points by 37-69 %, and predicted SmolLM2-135M (30 layers, larger than the cache) up to 1.26x
# too fast. Emptied, the same fit missed its points by 3-15 %, with 0-0.6 ms fixed and 31-51 µs a layer. That day
# reads of 32, 48, 64, 96 and 128 MB emptied it alike (a read that, with the model's own bytes, passes the cache evicts
# all of it); 48 MB is past the last-level cache of laptops and desktops (up to 36 MB) and costs ~2 ms a token. Only
# models smaller than the read read it (Runs.for_model; with 48 MB the 31M ones): the 86M Q2_K and Q4_K_M (54 and 62 MB)
# took 1-5 % longer emptied, and a calibration refitted with their warm times predicted the speed benchmark's 90 cases
# of five runs the same (88 within 15 %); the 86M Q8_0 (91 MB), the 128M models (93-136 MB), SmolLM2-135M- and
# Qwen2.5-0.5B-shaped files took the same time either way (within 3 %). At two threads, emptying before the tokens of
# the five models under 96 MB took calibration from 52 to 62 s (medians of three runs each, alternating), of the
# three under 48 MB from 54.5 to 59.1 s (fitting 37-44 µs a layer where the runs without fitted 0).
# The guest's share of the cache moves with the other guests (a streaming read's knee at 56-64 MB one hour, 80-96 MB
# the next): in one of the speed benchmark's four calibrations every model ran as if warm (31M Q4_K_M 2.0 ms, 128M
# Q4_K_M 10.8 ms against 19.5). On 2026-12-05 48 MB no longer emptied it at all: two calibrations at two threads
# missed their own points by 20 % (64.5 s median), with Q6_K at 35-38 GB/s (a cache's rate: 13-14 GB/s from memory).
# Reading 128 MB before the tokens of every model under 128 MB (all but the 128M Q8_0), alternating with them, missed
# by 3-4 % with Q6_K at 13.1-13.9 GB/s, and took 84.9-89.6 s (median 87.3): ~6 ms a token for the read, and each of
# the eight models' 288 tokens (16 × 3 repetitions × 2 depths × 3 rounds) read cold. The calibration-time goal (60 s)
# is given up for it: a profile fitted on warm tokens predicts calibration's models, not the larger ones it is for.
# Each model reads only what its own weights leave of EVICT_BYTES (Runs.for_model): weights and read together pass
# the cache, which empties it of the weights, as the 32-128 MB reads did alike. Alternating the two on calibration's
# eight models under 128 MiB (one thread, CPU time, three runs each, 2026-12-05), 128 MB less the weights gave
# 0.98-1.01x the tokens' times of a whole 128 MB, which took the reads from ~1 GB to ~0.6 GB a round. The same
# morning the three models over 90 MB took the same time with no read at all (within 2 %), the 31M ones 1.3-2.2x
# longer emptied.
EVICT_BYTES = 128 << 20
BENCH_ID = 7


@dataclass(frozen=True)
class Runs:
    """What a round runs on each model: prompt and generation lengths and repetitions; the deeper prompt starts
    where the first one ended. The defaults are calibration's; a slow device under test (software Vulkan: ~1
    token/s on a 135M model) takes shorter ones."""

    pp: int = PP_TOKENS
    tg: int = TG_TOKENS
    repetitions: int = REPETITIONS  # generation's, at both depths
    deep_repetitions: int = DEEP_REPETITIONS  # the deeper prompt's
    evict_bytes: int = EVICT_BYTES  # weights and read together, before a CPU round's generated tokens; a GPU: 0

    def for_model(self, weight_bytes: int) -> Runs:
        """These runs for a model of ``weight_bytes``: it reads what its weights leave of the cache-emptying read,
        and one larger than the read reads none (EVICT_BYTES)."""
        return replace(self, evict_bytes=max(self.evict_bytes - weight_bytes, 0))

    @property
    def pp_depth(self) -> int:
        """The cache the deeper prompt starts from: the first prompt."""
        return self.pp

    @property
    def deep(self) -> int:
        """Where the deeper prompt ends and the deeper generation starts."""
        return self.pp_depth + self.pp


RUNS = Runs()


class CalibrationFailed(Exception):
    """A sentence for the user: why calibration could not finish (nothing was stored)."""


@dataclass(frozen=True)
class Measured:
    """One model's steady figures and its points for the fits (by file type and by type family)."""

    label: str
    tg_tps: float
    tg_deep_tps: float
    pp_tps: float
    pp_deep_tps: float
    tg_by_quant: tuple[TgPoint, ...]
    tg_by_family: tuple[TgPoint, ...]
    pp_by_quant: tuple[PpPoint, ...]  # from an empty cache and from Runs.pp_depth
    pp_by_family: tuple[PpPoint, ...]
    rounds: tuple[RoundFigures, ...] = ()


class Overtime(Exception):
    """Measuring passed its deadline; the bench was stopped (calibration reports a busy machine)."""


def _stop(session: EngineSession) -> None:
    """Stop the running bench and wait briefly for its end, so the worker is free again."""
    with contextlib.suppress(OSError, RuntimeError):
        session.client.send_raw({"type": "stop", "id": BENCH_ID})
    with contextlib.suppress(EngineError):
        session.wait_for("bench_done", "failed", timeout=10)


def bench(session: EngineSession, req: BenchRequest, deadline: float | None = None) -> dict[str, Any]:
    """Run one bench in the worker and return its ``bench_done``. Ctrl+C stops it there first; so does
    ``deadline`` (a ``time.monotonic()`` value), which then raises Overtime."""
    session.client.send_raw(req.to_message(BENCH_ID))
    try:
        while True:
            remaining = 600.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                _stop(session)
                raise Overtime
            try:  # progress events count as answers, so no wait outlasts the deadline
                msg = session.wait_for("bench_done", "failed", "bench_progress", timeout=remaining)
            except EngineError:  # a wait cut short by the deadline, unless the engine itself stopped
                if deadline is None or time.monotonic() < deadline or not session.client.alive:
                    raise
                continue
            if msg.get("id") != BENCH_ID or msg["type"] == "bench_progress":
                continue
            if msg["type"] == "failed":
                raise CalibrationFailed(f"A calibration measurement failed: {msg.get('message')}")
            return msg
    except KeyboardInterrupt:
        _stop(session)
        raise


def samples(done: dict[str, Any], key: str, cpu: bool = False, per: str = "") -> list[float]:
    """A figure's per-repetition seconds (``per="token_"``: generation's seconds for each token of every
    repetition): wall time, or the timing thread's CPU time (engine/bench.py)."""
    field = f"{per}cpu_samples_s" if cpu else f"{per}samples_s"
    return [float(s) for s in (done.get(key) or {}).get(field) or ()]


def cpu_timed(threads: int | None) -> bool:
    """Whether a measurement at ``threads`` is timed in CPU time: at one thread llama.cpp computes on the timing
    thread alone, so its CPU time is the wall time the run would have taken with the core to itself — what a
    quiet machine measures, and a figure other programs on a shared machine cannot slow. With more threads a
    descheduled thread holds the others up at every layer (they spin and count CPU time meanwhile), so wall
    time is all there is, and the steady rounds (core/speed/steady.py) set the slowed ones aside."""
    return threads == 1


def measure_round(
    session: EngineSession,
    path: Path,
    *,
    threads: int | None = None,
    deadline: float | None = None,
    gpu_layers: int = 0,
    runs: Runs = RUNS,
) -> RoundFigures:
    """Load ``path`` (``gpu_layers`` on the GPU), take the fastest repetition of each prompt figure and the median
    token of generation's, unload: one round of one model."""
    # The CPU's rounds keep every op on the CPU: on a GPU build llama.cpp would otherwise run their prompts'
    # matmuls on the GPU (op offload), and the CPU profile would time the GPU.
    n_ctx = runs.deep + runs.tg
    session.load(path, LoadParams(n_ctx=n_ctx, n_threads=threads, n_gpu_layers=gpu_layers, op_offload=gpu_layers != 0))
    # A CPU round empties the caches before each generated token, as a model larger than them has them emptied.
    evict = runs.evict_bytes if gpu_layers == 0 else 0
    # A GPU warms up first: llama.cpp's Vulkan backend compiles each shader pipeline on its first use, so a round's
    # first single-token run would time the compiler (the CPU has nothing to compile).
    shallow_req = BenchRequest(
        pp=0,
        tg=runs.tg,
        repetitions=1,
        tg_repetitions=runs.repetitions,
        ttft=False,
        warmup=gpu_layers != 0,
        evict_bytes=evict,
    )
    shallow = bench(session, shallow_req, deadline)
    # The first prompt is the deeper one's timed fill (engine/bench.py): one request decodes each token once.
    deep_req = BenchRequest(
        pp=runs.pp,
        tg=runs.tg,
        repetitions=runs.deep_repetitions,
        tg_repetitions=runs.repetitions,
        ttft=False,
        depth=runs.pp_depth,
        tg_depth=runs.deep,
        warmup=gpu_layers != 0,
        time_fill=True,
        evict_bytes=evict,
    )
    deep = bench(session, deep_req, deadline)
    session.client.unload()
    session.wait_for("unloaded", timeout=60)
    cpu = cpu_timed(threads) and gpu_layers == 0  # a GPU computes off this thread: its CPU time is not the run's
    # The round's bench time judges whether it was slowed as a whole (steady.py): in CPU time, the timed runs'. On a
    # GPU the timed runs' wall time, not the benches': their warm-ups compile shader pipelines (31 s of an NVIDIA
    # H200's first round, ~3.5 s of the others), which made every model's first GPU round read as slowed and cost
    # an extra round.
    timed = sum(sum(samples(b, k, cpu=cpu)) for b in (shallow, deep) for k in ("fill", "pp", "tg"))
    bench_s = timed if cpu or gpu_layers else float(shallow.get("wall_s") or 0.0) + float(deep.get("wall_s") or 0.0)
    figures = RoundFigures(
        tg=median_token(samples(shallow, "tg", cpu, per="token_")),
        tg_deep=median_token(samples(deep, "tg", cpu, per="token_")),
        pp=fastest_per_token(samples(deep, "fill", cpu), runs.pp_depth),
        bench_s=bench_s,
        pp_deep=fastest_per_token(samples(deep, "pp", cpu), runs.pp),
    )
    if not figures.complete or figures.pp_deep <= 0:
        raise CalibrationFailed(f"A calibration measurement of {path.name} gave no figure.")
    return figures


def points(
    label: str, cost: ModelCost, rounds: Sequence[RoundFigures], runs: Runs = RUNS, l2_bytes: int = 0
) -> Measured:
    """The steady figures of ``rounds`` as fit points: generation at the middle of each timed run's depth; the
    prompts' points carry what their matrices read again past an L2 of ``l2_bytes`` (0: none, a GPU's rounds)."""
    s = steady(rounds)

    def tg_point(by_key: dict[str, int], depth: float, seconds: float) -> TgPoint:
        cached = round(depth)
        attention = {
            KV: cost.kv_bytes_at(cached),
            ATTN: cost.attn_flops_at(cached),
            CELLS: round(cost.cells_at(cached)),
        }
        return TgPoint(by_key | attention, seconds, cost.n_layer)

    shallow_depth, deep_depth = runs.tg / 2, runs.deep + runs.tg / 2
    flops = cost.pp_flops(runs.pp)
    by_type = cost.pp_flops_by_type(runs.pp)
    by_family: dict[str, float] = {}
    for t, f in by_type.items():
        by_family[type_family(t)] = by_family.get(type_family(t), 0.0) + f

    reread = cost.reread_bytes(l2_bytes)

    def pp_points(key: str, split: dict[str, float]) -> tuple[PpPoint, ...]:
        return tuple(
            PpPoint(key, flops, seconds, cost.n_layer, cost.pp_attn_flops(depth, runs.pp), split, reread)
            for depth, seconds in ((0, s.pp), (runs.pp_depth, s.pp_deep))
        )

    tensors, families = dict(cost.bytes_by_type), cost.bytes_by_family()

    return Measured(
        label=label,
        tg_tps=1.0 / s.tg,
        tg_deep_tps=1.0 / s.tg_deep,
        pp_tps=1.0 / s.pp,
        pp_deep_tps=1.0 / s.pp_deep,
        tg_by_quant=(tg_point(tensors, shallow_depth, s.tg), tg_point(tensors, deep_depth, s.tg_deep)),
        tg_by_family=(tg_point(families, shallow_depth, s.tg), tg_point(families, deep_depth, s.tg_deep)),
        pp_by_quant=pp_points(cost.quant, by_type),
        pp_by_family=pp_points(cost.family, by_family),
        rounds=tuple(rounds),
    )
