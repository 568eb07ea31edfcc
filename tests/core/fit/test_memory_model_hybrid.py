"""The memory model against real llama.cpp loads of the hybrid architectures LFM2 and LFM2-MoE (issue 15).

LFM2 interleaves short-convolution layers with attention layers. llama.cpp gives it a hybrid memory
(llama-memory-hybrid.cpp): a KV cache for the attention layers alone and a recurrent state for the convolution
layers, logged as its own "RS buffer" (n_embd × (L_cache − 1) f32 values per convolution layer, one sequence).
Its graph (models/lfm2.cpp) replaces attention by build_shortconv_block in those layers and adds the residual
first in both residual adds.

The file is a random-weight LFM2 of small shapes with LFM2's layer pattern (conv, conv, attention, repeated:
attention layers 2 and 5, as in LFM2-350M's first six) quantized to Q4_K_M (Q4_K repacked on AVX2) and Q8_0,
with a dummy vocabulary so that the layers, not the logits, set the compute buffer; its FFN is as wide as the
model, so that the convolution block, not the FFN, sets the peak with flash attention (with an attention block in
its place the buffer would be 5-27 % smaller, test_shape_tells_the_lfm2_graph_apart). A second file has SmolLM2's
real vocabulary, so that the output buffer and the logits are held to the log too. The lfm2moe files (LFM2-8B-A1B's
architecture) are the same with experts after a dense first layer, routed as test_memory_model_moe's with sigmoid
scores, a selection bias and renormalised weights.

Measured (llama-cpp-python 0.3.36, AVX-512, 2 cores), worst case over the 18 loads: weights -0.026 %, KV cache
(attention layers) within the log's rounding (q8_0 at 512: 0.29 MiB printed, -3.0 % of it, 0.009 MiB), recurrent
state 16 KiB printed as 0.02 MiB (rounding alone), compute +0.037 %, output (real vocabulary) rounding alone;
lfm2moe: weights -0.012 %, compute +0.047 %, the rest as lfm2's. lfm2moe's experts taken for a dense FFN would
be 28 % off (test_shape_tells_the_lfm2_graph_apart).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sizewise.core.fit import compute_graph as cg
from sizewise.core.fit.llama_log import MeasuredBuffers
from sizewise.core.fit.memory_model import (
    Backend,
    _build_spec,
    _recurrent_state,
    effective_settings,
    kv_bytes_for_layers,
    model_shape,
    predict,
)
from sizewise.core.gguf.header import read_header
from sizewise.core.quant.shapes import HyperParams, tensors
from sizewise.core.sampling import LoadParams
from sizewise.core.speed.synthetic import read_tokenizer
from sizewise.engine.session import EngineSession
from tests.core.fit.buffer_check import LOG_ROUNDING_BYTES, component_failures
from tests.quant_models import quantize_all, write_model

TOLERANCE_PCT = 1.0  # issue 15: "within 1 %"
CONTEXTS = (512, 4096, 32768)
KV_SETTINGS = (("f16", False), ("q8_0", True))
QUANTS = ("Q4_K_M", "Q8_0")
HYBRID: dict[str, HyperParams] = {
    "lfm2": HyperParams("lfm2", 6, 512, 512, 8, 2, 1000, attn_layers=(2, 5)),
    # LFM2-8B-A1B's layout: a dense first layer, then 16 experts (it has 32) of which 4 are used, chosen on sigmoid
    # scores with a selection bias and renormalised
    "lfm2moe": HyperParams(
        "lfm2moe", 6, 512, 512, 8, 2, 1000, attn_layers=(2, 5), n_expert=16, n_expert_used=4, n_ff_exp=256,
        n_dense_lead=1,
    ),
}  # fmt: skip
REAL_VOCAB = 49152  # SmolLM2's, copied into the second file


def _files(arch: str, smollm2_path: Path, tmp: Path) -> list[Path]:
    hp = HYBRID[arch]
    src = write_model(tmp / "src.gguf", hp)
    out = quantize_all(src, tmp, list(QUANTS))
    assert all(out[q]["rc"] == 0 for q in QUANTS), out
    vocab = tmp / "vocab"
    vocab.mkdir()
    real = write_model(vocab / "src.gguf", replace(hp, n_vocab=REAL_VOCAB), tokenizer=read_tokenizer(smollm2_path))
    assert quantize_all(real, vocab, ["Q8_0"])["Q8_0"]["rc"] == 0
    return [tmp / f"{q}.gguf" for q in QUANTS] + [vocab / "Q8_0.gguf"]


def _recurrent_failure(case: str, predicted: int, measured: MeasuredBuffers) -> list[str]:
    """The RS buffer alone, with the same bound as the other components (1 % plus the log's rounding per line)."""
    logged = measured.recurrent()
    lines = len([b for b in measured.lines if b.kind == "RS"])
    if not lines:
        return [f"{case}: llama.cpp logged no RS buffer"]
    allowed = TOLERANCE_PCT / 100 * logged + LOG_ROUNDING_BYTES * lines
    print(f"{case}: recurrent state measured/predicted {logged}/{predicted} bytes")
    if abs(predicted - logged) > allowed:
        return [f"{case}: recurrent state off by {predicted - logged:+d} bytes (allowed ±{allowed:.0f})"]
    return []


@pytest.mark.slow
@pytest.mark.parametrize("arch", list(HYBRID))
def test_hybrid_components_within_one_percent(arch: str, smollm2_path: Path, tmp_path: Path) -> None:
    """Every buffer llama.cpp logs (weights incl. CPU_REPACK, KV cache, recurrent state, compute, output) within 1 %
    at context 512 / 4096 / 32768, KV f16 without flash attention and q8_0 with it, and the label ``measured``."""
    failures: list[str] = []
    with EngineSession(log_path=tmp_path / "engine.log") as session:
        backend = Backend.from_system_info(session.start()["system_info"], gpu_offload=False)
        for path in _files(arch, smollm2_path, tmp_path):
            header = read_header(path)
            real_vocab = path.parent.name == "vocab"
            for ctx in CONTEXTS:
                for kv, fa in KV_SETTINGS:
                    params = LoadParams(n_ctx=ctx, kv_type=kv, flash_attn=fa)
                    measured = MeasuredBuffers.from_lines(session.load(path, params)["buffers"])
                    pred = predict(header, params, backend)
                    case = f"{arch} {'real-vocabulary ' if real_vocab else ''}{path.stem} ctx={ctx} kv={kv} fa={fa}"
                    if pred.confidence != "measured":
                        failures.append(f"{case}: confidence {pred.confidence}")
                    # a dummy vocabulary's output buffer (4 000 bytes) is logged as 0.00 MiB: only the real one is held
                    failures += component_failures(case, pred, measured, TOLERANCE_PCT, require_logged=real_vocab)
                    failures += _recurrent_failure(case, pred.recurrent_bytes, measured)
    assert not failures, "\n".join(failures)


def _settings(ctx: int, quantized_kv: bool, head_dim: int) -> cg.GraphSettings:
    cells = -(-ctx // 256) * 256
    k_rot = 64 if quantized_kv and head_dim % 64 == 0 else 0
    return cg.GraphSettings(min(cells, 512), min(cells, 512), cells, cells, quantized_kv, k_rot, k_rot)


def test_shape_tells_the_lfm2_graph_apart(tmp_path: Path) -> None:
    """The slow test's shape fails a graph without the convolution block (attention in its place) by more than the
    bound in some matrix case (measured: -26.6 % at context 512 with flash attention), so its compute bound tests it.

    The order of the residual add's sources is not among them: the block's output is not expanded before that add
    (models/lfm2.cpp), and the residual is always visited first, so either order gives the same nodes."""
    hp = HYBRID["lfm2"]
    shape = model_shape(read_header(write_model(tmp_path / "lfm2.gguf", hp, zeros=True)))
    spec = _build_spec(shape, range(shape.n_layer))
    assert [ly.conv for ly in spec.layers] == [2, 2, 0, 2, 2, 0]
    variants = {
        "attention in the conv layers": replace(spec, layers=tuple(replace(ly, conv=0) for ly in spec.layers)),
    }
    moe = model_shape(read_header(write_model(tmp_path / "lfm2moe.gguf", HYBRID["lfm2moe"], zeros=True)))
    moe_spec = _build_spec(moe, range(moe.n_layer))
    layers = [(ly.conv, ly.dense_ffn) for ly in moe_spec.layers]
    assert layers == [(2, True), (2, False), (0, False), (2, False), (2, False), (0, False)]
    assert moe_spec.moe_sigmoid and moe_spec.moe_probs_bias and moe_spec.moe_norm_w and not moe_spec.moe_scale
    moe_variants = {"lfm2moe's experts taken for a dense FFN": replace(moe_spec, n_expert=0, n_expert_used=0)}
    for own_spec, named in ((spec, variants), (moe_spec, moe_variants)):
        for name, variant in named.items():
            worst = 0.0
            for ctx in CONTEXTS:
                for _, fa in KV_SETTINGS:
                    gs = _settings(ctx, fa, hp.n_embd_head)
                    own, other = cg.compute_buffer_bytes(own_spec, gs), cg.compute_buffer_bytes(variant, gs)
                    worst = max(worst, abs(other - own) / own * 100)
            assert worst > TOLERANCE_PCT, name


def test_hybrid_header_gives_the_recurrent_layers_and_their_state(tmp_path: Path) -> None:
    """load_arch_hparams: a layer with 0 KV heads is recurrent; the KV cache holds the attention layers only (its V
    rows are not padded for the convolution layers), the RS buffer n_embd × (L_cache − 1) × 4 bytes per convolution
    layer. LFM2-1.2B's 10 convolution layers of 2048 hold 160 KiB of state whatever the context."""
    hp = HyperParams("lfm2", 4, 256, 256, 4, 2, 100, attn_layers=(1, 3), conv_l_cache=3)
    header = read_header(write_model(tmp_path / "lfm2.gguf", hp, zeros=True))
    shape = model_shape(header)
    assert shape.recurrent == (True, False, True, False) and shape.conv_state == 2 and not shape.notes
    for ctx in (512, 8192):
        pred = predict(header, LoadParams(n_ctx=ctx))
        assert pred.recurrent_bytes == 2 * 256 * 2 * 4
        assert pred.kv_bytes - pred.recurrent_bytes == 2 * ctx * 2 * (2 * 64) * 2  # 2 layers, K and V, f16
        assert pred.to_dict()["recurrent_bytes"] == pred.recurrent_bytes  # fit --json says which part is state
        # an RPC split's per-device KV (the layers each host holds) adds up to the same cache and state
        es = effective_settings(shape, LoadParams(n_ctx=ctx), Backend())
        assert kv_bytes_for_layers(shape, es, 0, 2) + kv_bytes_for_layers(shape, es, 2, 4) == pred.kv_bytes
        assert kv_bytes_for_layers(shape, es, 0, 1) == 256 * 2 * 4  # layer 0: one conv layer's state alone
    big = replace(shape, n_layer=16, n_embd=2048, recurrent=(True,) * 10 + (False,) * 6)
    assert sum(_recurrent_state(big, effective_settings(big, LoadParams(n_ctx=4096), Backend()))) == 160 * 1024
    # a header without the convolution's length cannot size the state: "rough", with the reason
    from tests.core.fit.test_memory_model import _write_model

    keyless = _write_model(tmp_path / "keyless.gguf", "lfm2", head_count_kv=[0, 2, 0, 2])
    pred = predict(read_header(keyless), LoadParams())
    assert pred.confidence == "rough" and "l_cache" in pred.confidence_reason
    # with a sliding window llama.cpp makes every attention layer slide in a hybrid memory with two KV caches
    # (llama_memory_hybrid_iswa), which is not modelled: "rough", never a "measured" figure for another memory
    sliding = write_model(tmp_path / "swa.gguf", hp, zeros=True, sliding_window=128)
    pred = predict(read_header(sliding), LoadParams())
    assert pred.confidence == "rough" and "sliding window" in pred.confidence_reason
    # another hybrid's recurrent state is named as unsized, and it is "rough"
    other = write_model(tmp_path / "jamba.gguf", replace(hp, arch="jamba"), zeros=True, tensor_list=tensors(hp))
    pred = predict(read_header(other), LoadParams())
    assert pred.confidence == "rough" and any("recurrent state" in note for note in pred.notes)
