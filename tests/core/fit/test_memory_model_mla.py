"""The memory model against real llama.cpp loads of multi-head latent attention: deepseek2 (issue 15).

DeepSeek-V2's MLA caches one compressed row per token and layer instead of K and V per head: the pinned llama.cpp
stores it as the K of a single KV head, ``attention.key_length`` = kv_lora_rank + qk_rope_head_dim (512 + 64 = 576
values), and no V cache at all (llama_kv_cache: ``has_v = !is_mla``; V is a view of K's first kv_lora_rank values).
Its graph (models/deepseek2.cpp with the absorption optimisation) absorbs Q's nope part into that latent space,
attends as MQA and decompresses per head; without flash attention it copies V transposed (a kv_lora_rank × n_kv
tensor in the cache's type). Its K-only cache input has no Hadamard rotation even for a q8_0 cache. The FFN has
leading dense layers, then softmax-routed experts plus shared experts added to them.

The file keeps DeepSeek-V2-Lite's head shapes (16 heads, Q/K heads of 128 nope + 64 rope, V heads of 128,
kv_lora_rank 512, q_lora_rank 0) and its FFN layout (first layer dense, then experts with 2 shared) at a small
width: 3 layers, 16 experts of which 4 are used (Lite: 64 and 6), with a dummy vocabulary so that the layers set
the compute buffer, quantized to Q4_K_M and Q8_0; a second file has SmolLM2's real vocabulary for the output
buffer and the logits. A third and fourth (the same, V3-style) carry DeepSeek-V3's options of the architecture:
compressed queries, sigmoid routing with a selection bias, renormalised and scaled weights, expert groups.

Measured (llama-cpp-python 0.3.36, AVX-512, 2 cores), worst case over the 18 loads of each: weights +0.031 %
(V3-style -0.011 %), KV within the log's rounding (-0.39 %: 0.90 MiB printed for 0.896), compute within 0.002 %
(45.08 MiB at 512 f16 … 1164.51 MiB at 32768 f16; V3-style 10.01 … 231.51 MiB), output rounding alone. Each of
MLA's graph, the shared experts, the dense first layer and (in the V3-style file) the expert groups, the selection
bias and the compressed queries moves the compute buffer by more than the bound in some case
(test_shape_tells_the_mla_graph_apart).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sizewise.core.fit import compute_graph as cg
from sizewise.core.fit.llama_log import MeasuredBuffers
from sizewise.core.fit.memory_model import Backend, _build_spec, kv_bytes_per_token, model_shape, predict
from sizewise.core.gguf.header import read_header
from sizewise.core.quant.shapes import HyperParams
from sizewise.core.sampling import LoadParams
from sizewise.core.speed.synthetic import read_tokenizer
from sizewise.engine.session import EngineSession
from tests.core.fit.buffer_check import component_failures
from tests.quant_models import quantize_all, write_model

TOLERANCE_PCT = 1.0  # issue 15: "within 1 %"
CONTEXTS = (512, 4096, 32768)
KV_SETTINGS = (("f16", False), ("q8_0", True))
QUANTS = ("Q4_K_M", "Q8_0")
REAL_VOCAB = 49152  # SmolLM2's, copied into the second file
LITE = HyperParams(
    "deepseek2", 3, 256, 512, 16, 1, 1000, head_dim=192, tied_embeddings=False, n_expert=16, n_expert_used=4,
    n_ff_exp=256, kv_lora_rank=512, rope_dim=64, v_head_dim=128, n_expert_shared=2, n_dense_lead=1,
)  # fmt: skip
# DeepSeek-V3's (and Kimi K2's) options of the same architecture, as their converter writes them: compressed queries
# (q_lora_rank; V3: 1536), sigmoid scores with a selection bias (exp_probs_b), renormalised weights scaled by 2.5,
# experts chosen within the best groups (V3: 4 of 8 groups of 32), 256 experts of which 8 are used, 1 shared.
# Two heads (head shapes as Lite's), so that the routing and the queries, not the attention, set the compute
# buffer: without the groups, the bias or q_lora the prediction would be 5.0 %, 5.0 % and 2.1 % off in some case.
V3 = replace(
    LITE, n_head=2, n_expert=256, n_expert_used=8, n_ff_exp=64, n_expert_shared=1, q_lora_rank=256, expert_bias=True
)
V3_KEYS: dict[str, bool | int | float] = {
    "expert_gating_func": 2,  # LLAMA_EXPERT_GATING_FUNC_TYPE_SIGMOID
    "expert_weights_norm": True,
    "expert_weights_scale": 2.5,
    "expert_group_count": 8,
    "expert_group_used_count": 4,
}
FILES: dict[str, tuple[HyperParams, dict[str, bool | int | float]]] = {
    "deepseek2": (LITE, {}),
    "deepseek2 (V3 routing)": (V3, V3_KEYS),
}
MLA = ("deepseek2",)  # architectures whose files are checked here


def _files(name: str, smollm2_path: Path, tmp: Path) -> list[Path]:
    hp, keys = FILES[name]
    out = quantize_all(write_model(tmp / "src.gguf", hp, extra_keys=keys), tmp, list(QUANTS))
    assert all(out[q]["rc"] == 0 for q in QUANTS), out
    vocab = tmp / "vocab"
    vocab.mkdir()
    real = write_model(
        vocab / "src.gguf", replace(hp, n_vocab=REAL_VOCAB), tokenizer=read_tokenizer(smollm2_path), extra_keys=keys
    )
    assert quantize_all(real, vocab, ["Q8_0"])["Q8_0"]["rc"] == 0
    return [tmp / f"{q}.gguf" for q in QUANTS] + [vocab / "Q8_0.gguf"]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FILES))
def test_mla_components_within_one_percent(name: str, smollm2_path: Path, tmp_path: Path) -> None:
    """Every buffer llama.cpp logs (weights incl. CPU_REPACK, the K-only cache, compute, output) within 1 % at
    context 512 / 4096 / 32768, KV f16 without flash attention and q8_0 with it, and the label ``measured``."""
    failures: list[str] = []
    with EngineSession(log_path=tmp_path / "engine.log") as session:
        backend = Backend.from_system_info(session.start()["system_info"], gpu_offload=False)
        for path in _files(name, smollm2_path, tmp_path):
            header = read_header(path)
            real_vocab = path.parent.name == "vocab"
            for ctx in CONTEXTS:
                for kv, fa in KV_SETTINGS:
                    params = LoadParams(n_ctx=ctx, kv_type=kv, flash_attn=fa)
                    measured = MeasuredBuffers.from_lines(session.load(path, params)["buffers"])
                    pred = predict(header, params, backend)
                    case = f"{name} {'real-vocabulary ' if real_vocab else ''}{path.stem} ctx={ctx} kv={kv} fa={fa}"
                    if pred.confidence != "measured":
                        failures.append(f"{case}: confidence {pred.confidence}")
                    # a dummy vocabulary's output buffer (4 000 bytes) is logged as 0.00 MiB: only the real one is held
                    failures += component_failures(case, pred, measured, TOLERANCE_PCT, require_logged=real_vocab)
    assert not failures, "\n".join(failures)


def test_shape_tells_the_mla_graph_apart(tmp_path: Path) -> None:
    """The slow test's shape fails, by more than the bound in some matrix case, a graph with ordinary attention in
    MLA's place (measured -62 % at 512 with flash attention), without the shared experts (-1.3 % at 512 f16) or with
    the first layer routed like the others (-2.2 % at 512 q8_0): its compute bound tests each. So does the V3-style
    file's, for the expert groups, the selection bias and the compressed queries (5.0 %, 5.0 %, 2.1 %)."""
    shape = model_shape(read_header(write_model(tmp_path / "ds.gguf", LITE, zeros=True)))
    spec = _build_spec(shape, range(shape.n_layer))
    assert [(ly.dense_ffn, ly.n_ff, ly.n_ff_shared) for ly in spec.layers] == [(True, 512, 0)] + [(False, 256, 512)] * 2
    variants = {
        "ordinary attention": replace(spec, mla_rank=0, mla_rope=0),
        "no shared experts": replace(spec, layers=tuple(replace(ly, n_ff_shared=0) for ly in spec.layers)),
        "first layer routed": replace(spec, layers=tuple(replace(ly, dense_ffn=False, n_ff=256) for ly in spec.layers)),
    }
    v3 = model_shape(read_header(write_model(tmp_path / "v3.gguf", V3, zeros=True, extra_keys=V3_KEYS)))
    v3_spec = _build_spec(v3, range(v3.n_layer))
    v3_variants = {
        "V3 without expert groups": replace(v3_spec, moe_groups=(0, 0)),
        "V3 without the selection bias": replace(v3_spec, moe_probs_bias=False),
        "V3 without compressed queries": replace(v3_spec, mla_q_lora=0),
    }
    for own_spec, named in ((spec, variants), (v3_spec, v3_variants)):
        for name, variant in named.items():
            worst = 0.0
            for ctx in CONTEXTS:
                for _, fa in KV_SETTINGS:
                    cells = -(-ctx // 256) * 256
                    gs = cg.GraphSettings(min(cells, 512), min(cells, 512), cells, cells, fa, 0, 0)
                    own, other = cg.compute_buffer_bytes(own_spec, gs), cg.compute_buffer_bytes(variant, gs)
                    worst = max(worst, abs(other - own) / own * 100)
            assert worst > TOLERANCE_PCT, name


def test_mla_header_gives_a_k_only_cache(tmp_path: Path) -> None:
    """The K-only cache: DeepSeek-V2-Lite's 27 layers at 4096 tokens hold 27 × 4096 × 576 × 2 bytes = 121.5 MiB in
    f16, where K and V of 16 heads of 192/128 would take 1 080 MiB; the speed model reads the same rows per token. A
    conversion without the MLA key lengths (the unsplit wkv_b of old files) is another graph: ``rough``."""
    path = write_model(tmp_path / "ds.gguf", LITE, zeros=True)
    shape = model_shape(read_header(path))
    assert (shape.mla_rank, shape.mla_rope, shape.mla_head_k, shape.mla_head_v) == (512, 64, 192, 128)
    assert (shape.head_dim_k, shape.n_head_kv, shape.n_dense_lead, shape.n_expert_shared) == (576, (1, 1, 1), 1, 2)
    lite = replace(shape, n_layer=27, n_head_kv=(1,) * 27, n_head=(16,) * 27, swa=(False,) * 27, n_ff=(10944,) * 27)
    from sizewise.core.fit.memory_model import _kv, effective_settings

    es = effective_settings(lite, LoadParams(n_ctx=4096), Backend())
    assert _kv(lite, es)[0] == 27 * 4096 * 576 * 2 == int(121.5 * 2**20)
    assert kv_bytes_per_token(lite) == (27 * 576 * 2, 0)
    # V3's options are read from the header; values llama.cpp has no graph for here are "rough", with the reason
    v3 = model_shape(read_header(write_model(tmp_path / "v3.gguf", V3, zeros=True, extra_keys=V3_KEYS)))
    assert v3.mla_q_lora == 256 and v3.moe_sigmoid and v3.moe_probs_bias and v3.moe_norm_w and v3.moe_scale
    assert v3.moe_groups == (8, 4) and not v3.notes
    for keys, reason in [
        ({"expert_gating_func": 3}, "gating function 3"),  # sqrt(softplus): not modelled
        ({"expert_group_count": 8, "expert_group_used_count": 8}, "expert groups"),  # not all groups may be kept
    ]:
        odd = write_model(tmp_path / "odd.gguf", V3, zeros=True, extra_keys=keys)
        pred = predict(read_header(odd), LoadParams())
        assert pred.confidence == "rough" and reason in pred.confidence_reason, keys
    from tests.core.fit.test_memory_model import _write_model

    old = predict(read_header(_write_model(tmp_path / "old.gguf", "deepseek2")), LoadParams())
    assert old.confidence == "rough" and "MLA" in old.confidence_reason
