"""The memory model against real llama.cpp loads for the dense architectures besides llama and gemma3.

Issue 15: every component (weights incl. CPU_REPACK, KV cache, compute and output buffers) within 1 % of what
llama.cpp logs, for each architecture listed here, over context 512 / 4096 / 32768 and KV f16 without flash
attention / q8_0 with it, at two weight types (Q8_0 and the k-quant Q4_K_M, whose Q4_K tensors an AVX2 CPU
repacks). Each architecture listed in ``DENSE`` is then labelled ``measured`` by the memory model; the test
fails one that is not.

The models are random-weight files of small shapes (tests/quant_models.py's factory, core/quant/shapes.py's
tensor lists) with SmolLM2's real vocabulary copied in: the compute buffer holds a micro-batch of logits, so
n_vocab must be a real one for the figures to weigh what they weigh in a real model, and the engine needs a
tokenizer. One engine per architecture serves all twelve loads (a load replaces the previous model).

Errors are printed (``pytest -s``) so the numbers behind the assertion are on record. Measured (llama-cpp-python
0.3.36, AVX-512, 2 cores), worst case per architecture: weights within 0.009 %, compute within 0.005 %, totals
within 0.005 %, the KV cache exact but for the log's rounding (q8_0 at n_ctx 512: 0.40 or 0.53 MiB printed with
two decimals, 0.24-0.39 %), and the output buffer (49 152 × 4 bytes = 0.1875 MiB, printed "0.19") off by that
rounding alone, which the bound allows per logged line as in test_memory_model.py.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import pytest

from sizewise.core.fit import compute_graph as cg
from sizewise.core.fit.llama_log import MeasuredBuffers
from sizewise.core.fit.memory_model import _KNOWN_GRAPHS, Backend, _build_spec, _rot_size, model_shape, predict
from sizewise.core.gguf.header import read_header
from sizewise.core.quant.shapes import HyperParams
from sizewise.core.sampling import LoadParams
from sizewise.core.speed.synthetic import read_tokenizer
from sizewise.engine.session import EngineSession
from tests.core.fit.buffer_check import component_failures
from tests.core.fit.test_memory_model_hybrid import HYBRID
from tests.core.fit.test_memory_model_mla import MLA
from tests.core.fit.test_memory_model_moe import MEASURED_ARCHES
from tests.quant_models import quantize_all, write_model

TOLERANCE_PCT = 1.0  # issue 15 / README: "within 1 %"
CONTEXTS = (512, 4096, 32768)
KV_SETTINGS = (("f16", False), ("q8_0", True))
QUANTS = ("Q8_0", "Q4_K_M")
N_VOCAB = 49152  # SmolLM2's vocabulary, copied into every file

# Small shapes that still have what sets each graph apart: GQA, a head size of its own (qwen3), biases
# (qwen2), the fused QKV and gate+up weights (phi3), a NoPE layer (smollm3), granite's scales, gemma2's
# soft-capping and alternating sliding-window layers, olmo2's missing pre-norms and whole-projection Q/K norms,
# tied and untied output layers. phi3's and olmo2's graphs move the compute buffer by more than the bound
# (test_shape_tells_the_graph_apart_from_llamas). qwen2's biases, qwen3's Q/K norms, smollm3's skipped RoPE,
# granite's scales and gemma2's caps are allocated in place or below the peak, so their buffers are llama's
# at these shapes (the test still holds weights, KV and the "measured" label to the loads).
DENSE: dict[str, HyperParams] = {
    "qwen2": HyperParams("qwen2", 3, 512, 2048, 8, 2, N_VOCAB, tied_embeddings=False),
    "qwen3": HyperParams("qwen3", 3, 512, 2048, 8, 2, N_VOCAB, head_dim=128),
    "phi3": HyperParams("phi3", 3, 1024, 4096, 16, 4, N_VOCAB, tied_embeddings=False),
    "smollm3": HyperParams("smollm3", 4, 512, 2048, 8, 2, N_VOCAB),  # layer 3 is a NoPE layer
    "granite": HyperParams("granite", 3, 512, 2048, 8, 2, N_VOCAB),
    "gemma2": HyperParams("gemma2", 4, 512, 2048, 8, 4, N_VOCAB, head_dim=128),  # sliding, full, sliding, full
    "olmo2": HyperParams("olmo2", 4, 512, 2048, 8, 2, N_VOCAB, tied_embeddings=False),  # 3 sliding, 1 full
}


# Header keys the architecture's published GGUFs carry that change how llama.cpp builds it: Phi-3's converter
# writes a sliding window, which the pinned llama.cpp ignores (one full-attention cache), and so must the model;
# gemma2's gives its sliding layers a second cache, and so does Olmo 3's (olmo2 with a window: 3 sliding, 1 full).
SLIDING_WINDOW = {"phi3": 256, "gemma2": 256, "olmo2": 256}


def _models(hp: HyperParams, smollm2_path: Path, tmp: Path) -> list[Path]:
    src = write_model(
        tmp / f"{hp.arch}-F16.gguf",
        hp,
        tokenizer=read_tokenizer(smollm2_path),
        sliding_window=SLIDING_WINDOW.get(hp.arch, 0),
    )
    out = quantize_all(src, tmp, list(QUANTS))
    assert all(out[q]["rc"] == 0 for q in QUANTS), out
    return [tmp / f"{q}.gguf" for q in QUANTS]


def _run(paths: list[Path], log: Path) -> list[str]:
    failures: list[str] = []
    with EngineSession(log_path=log) as session:
        ready = session.start()
        backend = Backend.from_system_info(ready["system_info"], gpu_offload=False)
        for path in paths:
            header = read_header(path)
            for ctx in CONTEXTS:
                for kv, fa in KV_SETTINGS:
                    params = LoadParams(n_ctx=ctx, kv_type=kv, flash_attn=fa)
                    loaded = session.load(path, params)
                    measured = MeasuredBuffers.from_lines(loaded["buffers"])
                    pred = predict(header, params, backend)
                    case = f"{header.architecture} {path.stem} ctx={ctx} kv={kv} fa={fa}"
                    if pred.confidence != "measured":
                        failures.append(f"{case}: confidence {pred.confidence}")
                    failures += component_failures(case, pred, measured, TOLERANCE_PCT)
    return failures


@pytest.mark.slow
@pytest.mark.parametrize("arch", list(DENSE))
def test_dense_architecture_components_within_one_percent(arch: str, smollm2_path: Path, tmp_path: Path) -> None:
    paths = _models(DENSE[arch], smollm2_path, tmp_path)
    failures = _run(paths, tmp_path / "engine.log")
    assert not failures, "\n".join(failures)


def _settings(ctx: int, quantized_kv: bool, head_dim: int) -> cg.GraphSettings:
    """The graph settings of one matrix case, as memory_model derives them (n_ubatch 512, rotated q8_0 K/V)."""
    cells = -(-ctx // 256) * 256
    k_rot = _rot_size(head_dim, grow=True) if quantized_kv else 0
    v_rot = _rot_size(head_dim, grow=False) if quantized_kv else 0
    return cg.GraphSettings(min(cells, 512), min(cells, 512), cells, cells, quantized_kv, k_rot, v_rot)


@pytest.mark.parametrize("arch", ["phi3", "olmo2"])
def test_shape_tells_the_graph_apart_from_llamas(arch: str, tmp_path: Path) -> None:
    """The phi3 and olmo2 cases can fail on their graphs: with llama's graph (the architecture's features off)
    in its place the compute buffer of the slow test's shape would be off by more than the bound in some matrix
    case (measured: phi3 up to 4.35 %, olmo2 1.02 %). The other architectures' features land in place or below
    the peak at these shapes, so there the slow test holds weights, KV and the label, not the graph."""
    hp = DENSE[arch]
    path = write_model(tmp_path / f"{arch}.gguf", hp, zeros=True, sliding_window=SLIDING_WINDOW.get(arch, 0))
    shape = model_shape(read_header(path))
    spec = _build_spec(shape, range(shape.n_layer))
    plain = replace(spec, **{f.name: f.default for f in fields(cg.DecoderSpec) if f.name in _KNOWN_GRAPHS[arch]})
    worst = 0.0
    for ctx in CONTEXTS:
        for _, fa in KV_SETTINGS:
            gs = _settings(ctx, fa, hp.n_embd_head)
            own, llama = cg.compute_buffer_bytes(spec, gs), cg.compute_buffer_bytes(plain, gs)
            worst = max(worst, abs(llama - own) / own * 100)
    assert worst > TOLERANCE_PCT


def test_every_architecture_labelled_measured_is_checked_against_loads() -> None:
    """``measured`` is a claim (README, the Fit view): only architectures a real-load test holds to the log get it —
    llama and gemma3 in test_memory_model.py (SmolLM2, Gemma-3), the mixture-of-experts ones in
    test_memory_model_moe.py, the hybrid ones in test_memory_model_hybrid.py, multi-head latent attention in
    test_memory_model_mla.py, the others here."""
    assert set(_KNOWN_GRAPHS) == {"llama", "gemma3", *DENSE, *MEASURED_ARCHES, *HYBRID, *MLA}


def test_header_rules_the_loads_do_not_reach(tmp_path: Path) -> None:
    """llama.cpp's own defaults where a header says too much or too little: phi3 drops any sliding window, even
    with an explicit pattern ("Phi SWA is currently disabled"); gemma2 without a window key slides over 4096
    tokens on every other layer (load_arch_hparams' "default value of gemma 2", load_swa_pattern(ml, 2))."""
    from tests.core.fit.test_memory_model import _write_model

    phi3 = model_shape(
        read_header(
            _write_model(tmp_path / "p.gguf", "phi3", sliding_window=256, swa_pattern=[True, True, True, False])
        )
    )
    assert not any(phi3.swa)
    gemma2 = model_shape(read_header(_write_model(tmp_path / "g.gguf", "gemma2")))
    assert gemma2.n_swa == 4096 and gemma2.swa == (True, False, True, False)
