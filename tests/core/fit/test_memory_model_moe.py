"""The memory model against real llama.cpp loads of mixture-of-experts models (issue 15).

Synthetic random-weight files (tests/quant_models.py: qwen3moe, olmoe and gpt-oss, 16 experts of which 4 are
used, a dummy vocabulary) are quantized by llama.cpp's own quantizer to Q4_K_M and Q4_0, whose expert tensors
an AVX2 CPU repacks into ``CPU_REPACK``, and to Q8_0, which no x86 CPU repacks (gpt-oss's source file, with
MXFP4 experts, is loaded too: AVX2 repacks MXFP4); each file is loaded through the
engine (one engine per architecture, every load in it) and every logged buffer is compared with the
prediction made from the header alone.

Before issue 15 the 3-D ``*_exps`` tensors were left out of the repack count and the mapped range was taken
over every tensor: the Q4_K_M qwen3moe below was predicted 4.42 MiB of weights against 6.67 MiB allocated
(-34 %), a false "fits". Measured now (llama-cpp-python 0.3.36, AVX-512, 2 cores): weights within the log's
rounding (0.00-0.08 %) for every file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sizewise.core.fit.llama_log import MeasuredBuffers
from sizewise.core.fit.memory_model import Backend, predict
from sizewise.core.gguf.header import read_header
from sizewise.core.quant.shapes import HyperParams
from sizewise.core.sampling import LoadParams
from sizewise.engine.session import EngineSession
from tests.core.fit.buffer_check import component_failures
from tests.quant_models import quantize_all, write_model

TOLERANCE_PCT = 1.0  # issue 15: "within 1 %"
TYPES = ("Q4_K_M", "Q4_0", "Q8_0")
CONTEXTS = (512, 4096, 32768)
KV_SETTINGS = (("f16", False), ("q8_0", True))
# Small shapes: expert rows of 256 (k-quants need rows that are a multiple of 256); olmoe's k-norm is n_embd wide,
# so it needs as many KV heads as heads (as OLMoE has). qwen3moe's feed_forward_length (no tensor uses it) is
# one expert's width: a graph that took the FFN for a dense one of that width would miss 3/4 of the experts'
# activations and fail the compute bound.
MODELS = {
    "qwen3moe": HyperParams(
        arch="qwen3moe", n_layer=2, n_embd=256, n_ff=256, n_head=4, n_head_kv=2, n_vocab=1000, head_dim=64,
        n_expert=16, n_expert_used=4, n_ff_exp=256, tied_embeddings=False,
    ),
    "olmoe": HyperParams(
        arch="olmoe", n_layer=2, n_embd=256, n_ff=256, n_head=4, n_head_kv=4, n_vocab=1000,
        n_expert=16, n_expert_used=4, tied_embeddings=False,
    ),
    "gpt-oss": HyperParams(
        arch="gpt-oss", n_layer=2, n_embd=256, n_ff=256, n_head=4, n_head_kv=2, n_vocab=1000,
        n_expert=16, n_expert_used=4, n_ff_exp=256, tied_embeddings=False,
    ),
}  # fmt: skip
MXFP4_SOURCE = ("gpt-oss",)  # written with MXFP4 experts (as gpt-oss ships), which an AVX2 CPU repacks too


@pytest.fixture(scope="module", params=sorted(MODELS))
def moe_files(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    """One architecture's source file quantized to every type in TYPES (llama.cpp's quantizer, a subprocess)."""
    arch: str = request.param
    out = tmp_path_factory.mktemp(arch)
    src = write_model(out / "src.gguf", MODELS[arch], mxfp4_experts=arch in MXFP4_SOURCE)
    quantize_all(src, out, list(TYPES))
    yield [out / f"{t}.gguf" for t in TYPES] + ([src] if arch in MXFP4_SOURCE else [])


def _check(path: Path, measured: MeasuredBuffers, params: LoadParams, backend: Backend) -> list[str]:
    """Failures of one load (empty when every checked component is within bounds); prints the errors."""
    pred = predict(read_header(path), params, backend)
    components = ["weights"]
    if pred.confidence == "measured":  # the graph is claimed reproduced: hold every buffer to the bound
        components += ["kv", "compute", "output"]
    case = f"{path.parent.name}/{path.name} ctx={params.n_ctx} kv={params.kv_type} fa={params.flash_attn}"
    failures = component_failures(case, pred, measured, TOLERANCE_PCT, components, require_logged=False)
    return failures


@pytest.mark.slow
def test_moe_weights_count_the_repacked_experts(moe_files: list[Path], tmp_path: Path) -> None:
    """Every type at n_ctx 512: the weights (mapped range plus CPU_REPACK copies) within 1 %; the repacking
    types really repack on this CPU (a CPU without AVX2 would repack nothing, and the test would not test)."""
    failures: list[str] = []
    with EngineSession(log_path=tmp_path / "engine.log") as session:
        backend = Backend.from_system_info(session.start()["system_info"], gpu_offload=False)
        for path in moe_files:
            params = LoadParams(n_ctx=512)
            measured = MeasuredBuffers.from_lines(session.load(path, params)["buffers"])
            repacked = sum(b.bytes for b in measured.lines if b.device == "CPU_REPACK")
            if "avx2" in backend.cpu_features and path.stem != "Q8_0":  # Q4_K_M, Q4_0, MXFP4 experts
                assert repacked > 0.3 * sum(b.bytes for b in measured.lines if b.component == "weights")
            failures += _check(path, measured, params, backend)
    assert not failures, "\n".join(failures)


MEASURED_ARCHES = ("qwen3moe", "olmoe", "gpt-oss")  # README: architectures whose MoE graph is checked as "measured"


@pytest.mark.slow
def test_moe_components_within_one_percent(moe_files: list[Path], tmp_path: Path) -> None:
    """Q4_K_M at context 512 / 4096 / 32768, KV f16 without flash attention and q8_0 with it: every buffer
    (weights, KV cache, compute, output) within 1 % for the architectures claimed ``measured``; the others
    would have to say ``rough`` (a label that promises nothing) and be held to their weights only.

    Measured (llama-cpp-python 0.3.36, AVX-512): qwen3moe's compute buffer within 0.03 % in all six loads
    (9.07 MiB at 512 f16 … 323.01 MiB at 32768 f16); its FFN taken for a dense one (what the model did before
    the routing graph) predicts 3.46 MiB against 8.11 at 512 with q8_0 (-57 %). olmoe's within 0.06 % (9.58 …
    323.51 MiB); it normalises whole Q/K rows before the heads are split (``qk_norm_rows``) and does not
    renormalise the chosen weights: with qwen3's per-head norm and a dense FFN it was -11 % to -56 %.
    gpt-oss's within 0.05 % (9.51 … 387.51 MiB; was -5 % to -17 %): routing on raw logits with a softmax over
    the chosen experts, router and expert biases, two KV caches (sliding-window pattern 2) and the output
    rows picked after the last layer."""
    path = moe_files[0]  # Q4_K_M
    arch = path.parent.name.rstrip("0123456789")
    failures: list[str] = []
    with EngineSession(log_path=tmp_path / "engine.log") as session:
        backend = Backend.from_system_info(session.start()["system_info"], gpu_offload=False)
        for ctx in CONTEXTS:
            for kv, fa in KV_SETTINGS:
                params = LoadParams(n_ctx=ctx, kv_type=kv, flash_attn=fa)
                measured = MeasuredBuffers.from_lines(session.load(path, params)["buffers"])
                failures += _check(path, measured, params, backend)
                confidence = predict(read_header(path), params, backend).confidence
                expected = "measured" if arch in MEASURED_ARCHES else "rough"
                if confidence != expected:
                    failures.append(f"{arch} ctx={ctx} kv={kv}: confidence {confidence}, expected {expected}")
    assert not failures, "\n".join(failures)


# -- llama.cpp's rules on synthetic headers (no load) --------------------------------------------------


def _experts_file(path: Path, rows: int) -> Path:
    """token_embd (F16), blk.0.ffn_norm (F32) and, last in the file, a Q4_0 stack of 4 experts of ``rows`` rows."""
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFWriter

    w = GGUFWriter(str(path), "qwen3moe")
    w.add_block_count(1)
    w.add_embedding_length(256)
    w.add_tensor("token_embd.weight", np.zeros((100, 256), np.float16))
    w.add_tensor("blk.0.ffn_norm.weight", np.zeros((256,), np.float32))
    q4_0 = np.zeros((4, rows, 256 // 32 * 18), np.uint8)  # 4 experts × rows × 8 blocks of 18 bytes
    w.add_tensor("blk.0.ffn_up_exps.weight", q4_0, raw_dtype=GGMLQuantizationType.Q4_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_repack_takes_stacked_experts_and_the_mapping_leaves_them_out(tmp_path: Path) -> None:
    """repack.cpp's supports_op takes a 3-D MUL_MAT_ID weight when one expert's rows (ne[1]) meet the type's
    multiple; the CPU_Mapped range then ends before it (the mapping spans the CPU buffer's tensors only)."""
    h = read_header(_experts_file(tmp_path / "e.gguf", rows=16))
    exps = next(t for t in h.tensors if t.name.endswith("_exps.weight"))
    assert len(exps.shape) == 3 and exps.type_name == "Q4_0"
    avx2 = predict(h, LoadParams(), Backend(repack=True, cpu_features=frozenset({"avx2"})))
    assert avx2.weights_repack == exps.n_bytes
    assert avx2.weights_cpu == exps.offset  # token_embd … ffn_norm: everything before the experts
    plain = predict(h, LoadParams(), Backend(repack=True, cpu_features=frozenset()))
    assert plain.weights_repack == 0 and plain.weights_cpu == h.data_bytes
    # 12 rows per expert: not a multiple of AVX2's 8, so the experts stay in the mapping
    odd = read_header(_experts_file(tmp_path / "odd.gguf", rows=12))
    kept = predict(odd, LoadParams(), Backend(repack=True, cpu_features=frozenset({"avx2"})))
    assert kept.weights_repack == 0 and kept.weights_cpu == odd.data_bytes


def test_moe_confidence_follows_the_reproduced_routing(tmp_path: Path) -> None:
    """Experts on an architecture whose routing graph is not reproduced (Mixtral-style llama) keep the note and
    ``rough``; the checked ones are ``measured``; gpt-oss alternates sliding-window and full layers."""
    from dataclasses import replace

    from sizewise.core.fit.memory_model import model_shape

    mixtral = replace(MODELS["qwen3moe"], arch="llama", head_dim=0)
    p = predict(read_header(write_model(tmp_path / "mixtral.gguf", mixtral, zeros=True)), LoadParams(n_ctx=512))
    assert p.confidence == "rough" and "mixture-of-experts" in p.confidence_reason
    for arch, hp in MODELS.items():
        h = read_header(write_model(tmp_path / f"{arch}.gguf", hp, zeros=True))
        assert predict(h, LoadParams(n_ctx=512)).confidence == "measured", arch
    shape = model_shape(read_header(tmp_path / "gpt-oss.gguf"))
    assert shape.swa == (True, False) and shape.n_expert == 16 and shape.n_expert_used == 4
    # no expert_feed_forward_length key (the ladder's virtual headers, olmoe's files): one expert's width comes
    # from the stacked tensors, not from feed_forward_length (Qwen3-30B-A3B: 768 against 6144)
    keyless = replace(MODELS["qwen3moe"], n_ff=1024, n_ff_exp=0)  # shapes.py: n_ff / n_expert_used = 256 per expert
    shape = model_shape(read_header(write_model(tmp_path / "keyless.gguf", keyless, zeros=True)))
    assert shape.n_ff == (1024, 1024) and shape.n_ff_exp == 256
