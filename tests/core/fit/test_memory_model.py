"""The memory model against real llama.cpp loads: every component within 0.5 % of what llama.cpp logs.

Each case loads the real model through the engine (``EngineSession``; ``loaded["buffers"]`` are the
sizes llama.cpp wrote to its log) with the issue's settings — SmolLM2-135M Q4_1 and Gemma-3-270M
Q4_K_M, context 512 / 2048 / 8192, KV f16 without flash attention and KV q8_0 with it — and compares
weights, KV cache, compute and output buffers and the total with the prediction made from the header
alone.
One engine per model serves all of its loads inside one test (a load replaces the previous model in
the worker, and the suite's no-leftovers guard wants no engine alive between tests).

The errors are printed (``pytest -s``) so the numbers behind the assertion are on record. Measured
(llama-cpp-python 0.3.36, AVX-512, 2 cores): weights, compute and total within 0.003 %, the KV cache
within 0.06 % (q8_0 at n_ctx 512: a few KiB of a 5-6 MiB buffer). The bound, 0.5 %, is several times
that; it is no per-machine fit either, since the prediction follows llama.cpp's rules for the CPU it
is given (which weights an AVX2 or an AVX-512 CPU repacks), and it still fails a model that misses one
layer's KV cache (1/30 of SmolLM2's, 1/18 of Gemma-3's) or a few MiB of compute buffer. llama.cpp logs
MiB with two decimals, so each logged line also carries up to 0.005 MiB of rounding: that is all the
output buffer (0.19 MiB for SmolLM2's vocabulary) is held to; the other components are far above it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psutil
import pytest
from gguf import GGUFWriter

from sizewise.core.fit.llama_log import MeasuredBuffers
from sizewise.core.fit.memory_model import (
    ENGINE_BASELINE_BYTES,
    Backend,
    model_shape,
    predict,
)
from sizewise.core.gguf.header import read_header
from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.engine.session import EngineSession
from tests.core.fit.buffer_check import component_failures
from tests.ggufs import write_unknown_arch

TOLERANCE_PCT = 0.5  # README: "within 0.5 %"
CONTEXTS = (512, 2048, 8192)
KV_SETTINGS = (("f16", False), ("q8_0", True))
MATRIX = [(ctx, kv, fa) for ctx in CONTEXTS for kv, fa in KV_SETTINGS]


def _run_matrix(path: Path, log: Path) -> list[str]:
    """Load every (ctx, kv, fa) of the matrix in one engine; return the failures (empty when all pass)."""
    header = read_header(path)
    failures: list[str] = []
    with EngineSession(log_path=log) as session:
        ready = session.start()
        backend = Backend.from_system_info(ready["system_info"], gpu_offload=False)
        for ctx, kv, fa in MATRIX:
            params = LoadParams(n_ctx=ctx, kv_type=kv, flash_attn=fa)
            loaded = session.load(path, params)
            measured = MeasuredBuffers.from_lines(loaded["buffers"])
            pred = predict(header, params, backend)
            case = f"{path.name} ctx={ctx} kv={kv} fa={fa}"
            if pred.confidence != "measured":
                failures.append(f"{case}: confidence {pred.confidence}")
            failures += component_failures(case, pred, measured, TOLERANCE_PCT)
            # CPU-only build: nothing on a GPU, on either side
            if measured.total(gpu=True) or pred.vram_bytes:
                failures.append(f"ctx={ctx} kv={kv}: unexpected GPU memory")
    return failures


@pytest.mark.slow
def test_smollm2_components_within_half_a_percent(smollm2_path: Path, tmp_path: Path) -> None:
    failures = _run_matrix(smollm2_path, tmp_path / "engine.log")
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_gemma3_components_within_half_a_percent(gemma_path: Path, tmp_path: Path) -> None:
    failures = _run_matrix(gemma_path, tmp_path / "engine.log")
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_ram_need_matches_the_workers_peak_in_the_worst_case(smollm2_path: Path, tmp_path: Path) -> None:
    """``ram_bytes`` (with the measured start-up RSS) is the worker's real peak RSS, within 1 %, when a chat
    fills a 2048-token context through full micro-batches; the allocation (``ram_reserved_bytes``) is not.
    Measured: 256.2 MiB peak against 256.6 MiB predicted (0.16 %; llama-cpp-python 0.3.36, 2 cores).

    The same check at n_ctx 1024 for both models, under a memory cap, is in tests/core/fit/test_fit.py.
    """
    from tests.core.fit.test_fit import PEAK_RSS_TOLERANCE, WORKLOAD_PROMPT

    params = LoadParams(n_ctx=2048)
    with EngineSession(log_path=tmp_path / "engine.log") as session:
        ready = session.start()
        pid = int(ready["pid"])
        ready_rss = psutil.Process(pid).memory_info().rss
        backend = Backend.from_system_info(ready["system_info"], gpu_offload=False)
        session.load(smollm2_path, params)
        _, stats = session.generate(
            SamplingParams(temperature=0.0, max_tokens=32, seed=1), prompt=" ".join([WORKLOAD_PROMPT] * 2)
        )
    assert stats.prompt_tokens + stats.tokens >= 0.9 * 2048  # the context really filled
    pred = predict(read_header(smollm2_path), params, backend, baseline_bytes=ready_rss)
    peak = stats.peak_rss_bytes
    print(
        f"\nworker RSS at ready {ready_rss / 2**20:.1f} MiB (constant {ENGINE_BASELINE_BYTES / 2**20:.0f}); peak after "
        f"{stats.prompt_tokens + stats.tokens} tokens {peak / 2**20:.1f} MiB; need {pred.ram_bytes / 2**20:.1f} MiB "
        f"(allocated {pred.ram_reserved_bytes / 2**20:.1f}, overhead {pred.overhead_bytes / 2**20:.1f})"
    )
    assert abs(peak - pred.ram_bytes) <= PEAK_RSS_TOLERANCE * pred.ram_bytes
    assert pred.ram_reserved_bytes - pred.ram_bytes == pred.compute_cpu_unwritten > 0.1 * peak
    assert ready_rss <= ENGINE_BASELINE_BYTES  # the baseline constant does not understate the engine's start-up


# -- arithmetic checks of llama.cpp's rules on synthetic headers --------------------------------------


def _write_model(
    path: Path,
    arch: str,
    *,
    n_layer: int = 4,
    n_embd: int = 256,
    n_head: int = 4,
    head_count_kv: int | list[int] = 2,
    sliding_window: int | None = None,
    swa_pattern: list[bool] | None = None,
    tied: bool = True,
) -> Path:
    w = GGUFWriter(str(path), arch)
    w.add_context_length(4096)
    w.add_block_count(n_layer)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(512)
    w.add_head_count(n_head)
    if isinstance(head_count_kv, list):
        w.add_array(f"{arch}.attention.head_count_kv", head_count_kv)
    else:
        w.add_head_count_kv(head_count_kv)
    if sliding_window:
        w.add_sliding_window(sliding_window)
    if swa_pattern is not None:
        w.add_array(f"{arch}.attention.sliding_window_pattern", swa_pattern)
    w.add_token_list([f"t{i}" for i in range(1000)])
    w.add_tensor("token_embd.weight", np.zeros((1000, n_embd), dtype=np.float16))
    for il in range(n_layer):
        w.add_tensor(f"blk.{il}.attn_q.weight", np.zeros((n_embd, n_embd), dtype=np.float16))
        w.add_tensor(f"blk.{il}.attn_norm.weight", np.zeros((n_embd,), dtype=np.float32))
    w.add_tensor("output_norm.weight", np.zeros((n_embd,), dtype=np.float32))
    if not tied:
        w.add_tensor("output.weight", np.zeros((1000, n_embd), dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_kv_follows_per_layer_head_counts_and_padding(tmp_path: Path) -> None:
    heads_kv = [1, 2, 4, 2]
    h = read_header(_write_model(tmp_path / "m.gguf", "llama", head_count_kv=heads_kv))
    head_dim = 256 // 4
    # 1000 tokens of context are padded to 1024 cells; without flash attention V rows use the widest layer
    p = predict(h, LoadParams(n_ctx=1000), Backend(repack=False))
    k = sum(kv * head_dim * 2 * 1024 for kv in heads_kv)
    v = len(heads_kv) * max(heads_kv) * head_dim * 2 * 1024
    assert p.kv_bytes == k + v
    # with flash attention V is stored per layer; q8_0 is 34 bytes per 32 values
    p = predict(h, LoadParams(n_ctx=1000, kv_type="q8_0", flash_attn=True), Backend(repack=False))
    assert p.kv_bytes == 2 * sum(kv * head_dim // 32 * 34 * 1024 for kv in heads_kv)


def test_sliding_window_cache_is_full_size_by_default_and_small_without_swa_full(tmp_path: Path) -> None:
    pattern = [True, True, True, False]
    h = read_header(_write_model(tmp_path / "g.gguf", "gemma3", sliding_window=512, swa_pattern=pattern))
    shape = model_shape(h)
    assert shape.swa == tuple(pattern)
    row = 2 * 64 * 2  # head_count_kv 2 × head 64 × f16
    full = predict(h, LoadParams(n_ctx=8192, n_ubatch=512), Backend(repack=False))
    assert full.kv_bytes == 4 * 8192 * row * 2
    small = predict(h, LoadParams(n_ctx=8192, n_ubatch=512), Backend(repack=False), swa_full=False)
    swa_cells = 1024  # pad256(min(8192, window 512 + n_ubatch 512))
    assert small.kv_bytes == (1 * 8192 + 3 * swa_cells) * row * 2


def test_gemma3_default_pattern_is_five_sliding_one_full(gemma_path: Path) -> None:
    shape = model_shape(read_header(gemma_path))
    assert shape.swa == tuple(il % 6 != 5 for il in range(18))
    assert shape.n_swa == 512 and shape.tied_output


def test_offload_order_output_first_embeddings_stay_on_cpu(smollm2_path: Path, gemma_path: Path) -> None:
    gpu = Backend(gpu=True, repack=False)
    h = read_header(smollm2_path)
    emb = next(t for t in h.tensors if t.name == "token_embd.weight")
    out_norm = next(t for t in h.tensors if t.name == "output_norm.weight")
    one = predict(h, LoadParams(n_gpu_layers=1), gpu)
    # SmolLM2 ties its output to the embeddings: the output layer on the GPU takes a copy of them
    assert one.weights_gpu == out_norm.n_bytes + emb.n_bytes + _pad(emb)
    assert one.weights_cpu == h.data_bytes - out_norm.n_bytes  # the mapped range ends before output_norm
    everything = predict(h, LoadParams(n_gpu_layers=-1), gpu)
    assert everything.settings.gpu_layers == 31
    assert everything.weights_cpu == emb.n_bytes  # only the embeddings stay on the CPU
    assert everything.kv_cpu == 0 and everything.kv_gpu > 0
    # a CPU-only build ignores --gpu-layers
    cpu_only = predict(h, LoadParams(n_gpu_layers=-1), Backend())
    assert cpu_only.vram_bytes == 0 and cpu_only.settings.gpu_layers == 0


def _pad(t: object) -> int:
    from sizewise.core.fit.memory_model import _row_padding_bytes

    return _row_padding_bytes(t)  # type: ignore[arg-type]


def test_repack_depends_on_cpu_features(gemma_path: Path) -> None:
    h = read_header(gemma_path)
    q4k = sum(t.n_bytes for t in h.tensors if t.type_name == "Q4_K")
    x86 = predict(h, LoadParams(), Backend(repack=True, cpu_features=frozenset({"avx2"})))
    assert x86.weights_repack == q4k
    plain = predict(h, LoadParams(), Backend(repack=True, cpu_features=frozenset()))
    assert plain.weights_repack == 0
    # ARM dot-product cores also interleave Q8_0, Q6_K … including the tied output copy of the embeddings
    arm = predict(h, LoadParams(), Backend(repack=True, cpu_features=frozenset({"neon", "dotprod"})))
    assert arm.weights_repack > x86.weights_repack


def test_unknown_architecture_is_labelled_rough(tmp_path: Path) -> None:
    h = read_header(write_unknown_arch(tmp_path / "odd.gguf"))
    p = predict(h, LoadParams(n_ctx=512))
    assert p.confidence == "rough"
    assert "does not know" in p.confidence_reason
    assert p.total_bytes > 0


def test_known_architecture_with_a_gap_is_rough(tmp_path: Path) -> None:
    path = _write_model(tmp_path / "s.gguf", "stablelm")  # llama.cpp knows it; the memory model has no graph for it
    p = predict(read_header(path), LoadParams(n_ctx=512))
    assert p.confidence == "rough" and "stablelm" in p.confidence_reason
    assert p.kv_bytes == 4 * 2 * (2 * 64) * 2 * 512  # the KV rule still applies from the header's heads
