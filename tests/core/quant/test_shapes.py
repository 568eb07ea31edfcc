"""Tensor lists from hyper-parameters: the two test models' numbers give their files' tensors exactly, and with the
file's metadata bytes, its exact size for every type (the catalogue-to-ladder path)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from sizewise.core.gguf.header import read_header
from sizewise.core.hub.catalogue import load_catalogue
from sizewise.core.quant.shapes import (
    ARCHES,
    HyperParams,
    estimate_metadata_bytes,
    predict_for,
    predicted_file_bytes,
    problem,
    tensors,
)
from sizewise.core.quant.type_rules import model_facts, output_metadata_bytes, predict
from sizewise.core.quant.types import QUANT_TYPES

SMOLLM2 = HyperParams("llama", 30, 576, 1536, 9, 3, 49152)  # config.json of SmolLM2-135M
GEMMA3_270M = HyperParams("gemma3", 18, 640, 2048, 4, 1, 262144, head_dim=256)


@pytest.mark.parametrize(
    ("fixture", "hp", "ftype"), [("smollm2_path", SMOLLM2, "Q4_1"), ("gemma_path", GEMMA3_270M, "Q4_K_M")]
)
def test_hyperparameters_give_the_real_files_tensors_and_size(fixture, hp, ftype, request):
    header = read_header(request.getfixturevalue(fixture))
    assert {t.name: t.shape for t in tensors(hp)} == {t.name: t.shape for t in header.tensors}
    assert predicted_file_bytes(hp, ftype, output_metadata_bytes(header)) == header.file_size


def test_every_type_is_predicted_alike_from_hyperparameters_and_from_the_file(smollm2_path):
    """Source types differ (the file is Q4_1, the list F16) but only matter for tensors copied as they are."""
    header = read_header(smollm2_path)
    assert model_facts(header) == SMOLLM2.facts()
    for t in QUANT_TYPES:
        if t.name == "Q1_0":  # no fallback for 576-wide rows: refused either way
            continue
        from_file = predict(header.tensors, model_facts(header), t.name)
        assert predict_for(SMOLLM2, t.name) == from_file, t.name


def test_metadata_estimate_is_within_a_few_percent_of_the_real_sections(smollm2_path, gemma_path):
    smollm2, gemma = read_header(smollm2_path), read_header(gemma_path)
    assert estimate_metadata_bytes(49152, n_merges=48900) == pytest.approx(output_metadata_bytes(smollm2), rel=0.05)
    assert estimate_metadata_bytes(262144, scores=True) == pytest.approx(output_metadata_bytes(gemma), rel=0.05)


def test_each_arch_has_its_own_tensors():
    def names(hp: HyperParams) -> set[str]:
        return {t.name.removeprefix("blk.0.") for t in tensors(hp) if not t.name.startswith("blk.1")}

    base = dict(n_layer=2, n_embd=256, n_ff=512, n_head=4, n_head_kv=2, n_vocab=100)
    assert {"attn_q.bias", "attn_k.bias", "attn_v.bias"} <= names(HyperParams("qwen2", **base))
    assert {"attn_q_norm.weight", "attn_k_norm.weight"} <= names(HyperParams("qwen3", **base, head_dim=128))
    gemma = names(HyperParams("gemma3", **base, head_dim=128))
    assert {"post_attention_norm.weight", "post_ffw_norm.weight", "attn_q_norm.weight"} <= gemma
    gemma2 = names(HyperParams("gemma2", **base, head_dim=128))
    olmo2 = {t.name: t.shape for t in tensors(HyperParams("olmo2", **base, tied_embeddings=False))}
    assert "blk.0.attn_norm.weight" not in olmo2 and "blk.0.ffn_norm.weight" not in olmo2
    assert olmo2["blk.0.attn_q_norm.weight"] == (256,) and olmo2["blk.0.attn_k_norm.weight"] == (128,)
    assert gemma - gemma2 == {"attn_q_norm.weight", "attn_k_norm.weight"} and gemma2 < gemma
    assert (
        names(HyperParams("smollm3", **base))
        == names(HyperParams("granite", **base))
        == names(HyperParams("llama", **base))
    )
    moe = names(HyperParams("llama", **base, n_expert=8, n_expert_used=2))
    assert {"ffn_gate_inp.weight", "ffn_up_exps.weight"} <= moe and "ffn_up.weight" not in moe

    phi3 = {t.name: t.shape for t in tensors(HyperParams("phi3", **base, tied_embeddings=False))}
    assert phi3["blk.0.attn_qkv.weight"] == (256, 256 + 2 * 128)
    assert phi3["blk.0.ffn_up.weight"] == (256, 1024) and "blk.0.ffn_gate.weight" not in phi3
    assert phi3["output.weight"] == (256, 100)

    qwen3 = {t.name: t.shape for t in tensors(HyperParams("qwen3", **base, head_dim=128))}
    assert qwen3["blk.0.attn_q.weight"] == (256, 512) and qwen3["blk.0.attn_output.weight"] == (512, 256)
    exps = {t.name: t.shape for t in tensors(HyperParams("qwen3moe", **base, n_expert=8, n_expert_used=4))}
    assert exps["blk.0.ffn_down_exps.weight"] == (128, 256, 8)  # n_ff / n_expert_used without n_ff_exp


def test_numbers_that_describe_no_covered_model_are_refused():
    assert ARCHES == (
        "llama",
        "qwen2",
        "qwen3",
        "qwen3moe",
        "gemma3",
        "phi3",
        "olmoe",
        "gpt-oss",
        "smollm3",
        "granite",
        "gemma2",
        "olmo2",
        "lfm2",
        "lfm2moe",
        "deepseek2",
    )
    assert "MLA" in (problem(HyperParams("deepseek2", 2, 256, 512, 4, 1, 100, head_dim=192)) or "")
    assert "attention layers" in (problem(HyperParams("lfm2", 2, 256, 512, 4, 2, 100)) or "")
    assert "outside" in (problem(HyperParams("lfm2", 2, 256, 512, 4, 2, 100, attn_layers=(2,))) or "")
    assert "not covered" in (problem(HyperParams("mamba", 2, 256, 512, 4, 2, 100)) or "")
    assert "n_head_kv" in (problem(HyperParams("llama", 2, 256, 512, 4, 3, 100)) or "")
    assert "no experts" in (problem(HyperParams("gemma3", 2, 256, 512, 4, 2, 100, n_expert=4)) or "")
    assert "n_expert" in (problem(HyperParams("olmoe", 2, 256, 512, 4, 4, 100, tied_embeddings=False)) or "")
    assert "tied" in (problem(HyperParams("gpt-oss", 2, 256, 512, 4, 4, 100, n_expert=4, n_expert_used=2)) or "")
    with pytest.raises(ValueError, match="at least 1"):
        tensors(HyperParams("llama", 0, 256, 512, 4, 2, 100))


def test_olmoe_and_gpt_oss_tensors_as_llama_cpp_creates_them():
    """models/olmoe.cpp and models/openai-moe.cpp's load_arch_tensors (tests/core/quant/test_type_rules_llama.py
    has llama.cpp load and quantize small models of both)."""
    moe = dict(tied_embeddings=False, n_expert=4, n_expert_used=2)
    olmoe = {t.name: t.shape for t in tensors(HyperParams("olmoe", 2, 256, 128, 4, 4, 100, n_ff_exp=128, **moe))}
    assert olmoe["blk.0.attn_q_norm.weight"] == olmoe["blk.0.attn_k_norm.weight"] == (256,)  # n_embd, not a head
    assert olmoe["blk.1.ffn_down_exps.weight"] == (128, 256, 4) and "output.weight" in olmoe
    assert len(olmoe) == 3 + 2 * 12

    hp = HyperParams("gpt-oss", 2, 320, 320, 8, 2, 100, head_dim=64, n_ff_exp=192, **moe)
    oss = {t.name: (t.shape, t.type_name) for t in predict_for(hp, "F16").tensors}
    assert oss["blk.0.attn_q.weight"] == ((320, 512), "F16") and oss["blk.0.attn_output.weight"][0] == (512, 320)
    assert oss["blk.0.attn_k.bias"] == ((128,), "F32") and oss["blk.0.attn_output.bias"] == ((320,), "F32")
    assert oss["blk.0.attn_sinks.weight"] == ((8,), "F32")  # one per head
    assert oss["blk.0.ffn_gate_inp.weight"] == ((320, 4), "F32") and oss["blk.0.ffn_gate_inp.bias"] == ((4,), "F32")
    assert oss["blk.0.ffn_gate_exps.bias"] == ((192, 4), "F32")  # 2-D, copied as F32 by every quantization
    assert oss["blk.0.ffn_down_exps.bias"] == ((320, 4), "F32")
    assert "blk.0.post_attention_norm.weight" in oss and "blk.0.ffn_norm.weight" not in oss
    assert len(oss) == 3 + 2 * 19


def test_lfm2_layers_get_attention_or_a_short_convolution():
    """models/lfm2.cpp's load_arch_tensors: token_embd_norm is the final norm; a layer with KV heads has attention
    and per-head Q/K norms, the others shortconv.conv (F32, never quantized), in_proj (3 × n_embd) and out_proj."""
    hp = HyperParams("lfm2", 3, 256, 512, 4, 2, 100, attn_layers=(1,), conv_l_cache=3)
    lfm2 = {t.name: (t.shape, t.type_name) for t in predict_for(hp, "Q8_0").tensors}
    assert "token_embd_norm.weight" in lfm2 and "output_norm.weight" not in lfm2 and "output.weight" not in lfm2
    assert lfm2["blk.0.shortconv.conv.weight"] == ((3, 256), "F32")
    assert lfm2["blk.0.shortconv.in_proj.weight"] == ((256, 768), "Q8_0")
    assert lfm2["blk.1.attn_k.weight"] == ((256, 128), "Q8_0") and lfm2["blk.1.attn_q_norm.weight"][0] == (64,)
    assert "blk.1.shortconv.in_proj.weight" not in lfm2 and "blk.2.attn_q.weight" not in lfm2
    assert len(lfm2) == 2 + 3 * 5 + 2 * 3 + 6
    moe = replace(hp, arch="lfm2moe", n_expert=4, n_expert_used=2, n_ff_exp=128, n_dense_lead=1)
    ts = {t.name: (t.shape, t.type_name) for t in predict_for(moe, "F16").tensors}
    assert "blk.0.ffn_up.weight" in ts and "blk.0.ffn_gate_inp.weight" not in ts  # the dense first layer
    assert ts["blk.1.ffn_up_exps.weight"] == ((256, 128, 4), "F16") and "blk.1.ffn_up.weight" not in ts
    assert ts["blk.2.exp_probs_b.bias"] == ((4,), "F32") and ts["blk.2.ffn_gate_inp.weight"] == ((256, 4), "F32")


@pytest.mark.parametrize(
    ("n_embd", "n_ff", "n_head", "published"),
    [(1024, 4608, 16, 354_483_968), (1536, 6912, 24, 742_489_344), (2048, 8192, 32, 1_170_340_608)],
)
def test_lfm2_configs_give_their_published_parameter_counts(n_embd, n_ff, n_head, published):
    """LFM2-350M/700M/1.2B's config.json (16 layers, attention at 2, 5, 8, 10, 12, 14, 8 KV heads, conv_L_cache 3,
    65 536 tokens, tied; n_ff as the converter adjusts block_ff_dim): the tensor list holds the model cards' counts."""
    hp = HyperParams("lfm2", 16, n_embd, n_ff, n_head, 8, 65536, attn_layers=(2, 5, 8, 10, 12, 14))
    assert sum(math.prod(t.shape) for t in tensors(hp)) == published


def test_deepseek2_tensors_as_llama_cpp_creates_them_with_mla():
    """models/deepseek2.cpp's load_arch_tensors for DeepSeek-V2-Lite (q_lora_rank 0, MLA split into k_b/v_b): 27
    layers of 2048, 16 heads of 128 + 64, kv_lora_rank 512, V heads of 128, the first layer dense (10944), then 64
    experts of 1408 with 2 shared — 15.7B parameters, as published."""
    lite = HyperParams(
        "deepseek2", 27, 2048, 10944, 16, 1, 102400, head_dim=192, tied_embeddings=False, n_expert=64,
        n_expert_used=6, n_ff_exp=1408, kv_lora_rank=512, rope_dim=64, v_head_dim=128, n_expert_shared=2,
        n_dense_lead=1,
    )  # fmt: skip
    ts = {t.name: t.shape for t in tensors(lite)}
    assert ts["blk.0.attn_q.weight"] == (2048, 16 * 192) and ts["blk.0.attn_kv_a_mqa.weight"] == (2048, 576)
    assert ts["blk.0.attn_k_b.weight"] == (128, 512, 16) and ts["blk.0.attn_v_b.weight"] == (512, 128, 16)
    assert ts["blk.0.attn_output.weight"] == (16 * 128, 2048) and ts["blk.0.ffn_up.weight"] == (2048, 10944)
    assert "blk.0.ffn_gate_inp.weight" not in ts and ts["blk.1.ffn_up_shexp.weight"] == (2048, 2816)
    assert ts["blk.26.ffn_down_exps.weight"] == (1408, 2048, 64)
    assert sum(math.prod(s) for s in ts.values()) == pytest.approx(15.7e9, rel=0.01)


@pytest.mark.parametrize(
    ("name", "total", "active"),
    [("OLMoE 1B-7B Instruct", 6_919_161_856, 1_282_017_280), ("gpt-oss 20B", 20_914_757_184, 4_187_440_704)],
)
def test_catalogue_moe_rows_have_the_published_parameter_counts(name, total, active):
    """The tensor lists of the catalogue's OLMoE-1B-7B and gpt-oss-20b give their published totals: 6.92B (1.28B
    active) and 20.9B (3.6B active without the input embedding table, which OpenAI leaves out)."""
    family = next(f for f in load_catalogue() if f.name == name)
    ts = tensors(HyperParams.from_shape(family))
    n = {t.name: math.prod(t.shape) for t in ts}
    experts = sum(v for k, v in n.items() if "_exps." in k)
    used = sum(n.values()) - experts + experts * family.n_expert_used // family.n_expert
    assert (sum(n.values()), used) == (family.params, family.active_params) == (total, active)
    if family.arch == "gpt-oss":
        assert round((used - n["token_embd.weight"]) / 1e9, 2) == 3.61
