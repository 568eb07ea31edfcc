"""type_rules.py's pieces on their own (no llama.cpp; test_type_rules_llama.py holds the comparison with it), and
the two test models' own files, which llama.cpp's quantizer made: their types and sizes are what the rules say."""

from __future__ import annotations

import pytest

from sizewise.core.gguf.ggml_types import GGMLType, n_dims, row_bytes, tensor_bytes
from sizewise.core.gguf.header import read_header
from sizewise.core.quant.shapes import Tensor
from sizewise.core.quant.type_rules import (
    DEFAULT_TYPE,
    ModelFacts,
    allows_quantization,
    category,
    fallback_type,
    predict,
    predict_from_header,
    use_more_bits,
    write_order,
)
from sizewise.core.quant.types import QUANT_TYPES

T = GGMLType


@pytest.mark.parametrize(("fixture", "ftype"), [("smollm2_path", "Q4_1"), ("gemma_path", "Q4_K_M")])
def test_the_test_models_own_files_are_what_the_rules_predict(fixture, ftype, request):
    header = read_header(request.getfixturevalue(fixture))
    prediction, size = predict_from_header(header, ftype)
    assert prediction.types() == {t.name: t.type_name for t in header.tensors}
    assert size == header.file_size
    assert prediction.tensor_bytes == header.data_bytes


def test_every_file_type_has_llama_cpps_default_type():
    assert set(DEFAULT_TYPE) == {t.name for t in QUANT_TYPES}
    assert DEFAULT_TYPE["IQ2_S"] == T.IQ2_XS and DEFAULT_TYPE["IQ2_M"] == T.IQ2_S  # not the names' own types
    assert DEFAULT_TYPE["IQ3_XS"] == T.IQ3_S and DEFAULT_TYPE["Q4_K_M"] == T.Q4_K


def test_use_more_bits_is_the_first_and_last_eighth_and_every_third_between():
    picked = [i for i in range(32) if use_more_bits(i, 32)]
    assert picked == [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]
    assert [i for i in range(3) if use_more_bits(i, 3)] == [2]  # n/8 = 0 and 7n/8 = 2: only the last layer


@pytest.mark.parametrize(
    ("target", "ne0", "expected"),
    [
        (T.Q4_K, 512, T.Q4_K),
        (T.Q4_K, 576, T.Q5_0),
        (T.Q5_K, 576, T.Q5_1),
        (T.Q6_K, 576, T.Q8_0),
        (T.Q2_K, 576, T.Q4_0),
        (T.Q3_K, 320, T.Q4_0),
        (T.IQ4_XS, 576, T.IQ4_NL),
        (T.IQ3_S, 640, T.IQ4_NL),
        (T.Q4_K, 48, T.F16),  # not even the 32-block fallback fits
        (T.Q8_0, 48, T.F16),  # a 32-block type has no smaller block: F16
    ],
)
def test_rows_that_do_not_fit_the_blocks_fall_back(target, ne0, expected):
    assert fallback_type(target, ne0) == expected


def test_a_type_without_a_fallback_is_refused_like_llama_cpp_refuses_it():
    with pytest.raises(ValueError, match="no tensor type fallback is defined for type q1_0"):
        fallback_type(T.Q1_0, 576)
    facts = ModelFacts("llama", 1, 9, 3)
    tensors = [_t("blk.0.ffn_up.weight", 576, 320)]
    with pytest.raises(ValueError, match="q1_0"):
        predict(tensors, facts, "Q1_0")


def test_norms_biases_routers_and_position_tables_are_never_quantized():
    assert allows_quantization("blk.0.attn_q.weight", (576, 576), "llama")
    assert allows_quantization("blk.0.ffn_up_exps.weight", (256, 128, 8), "qwen3moe")
    assert not allows_quantization("blk.0.attn_norm.weight", (576,), "llama")
    assert not allows_quantization("blk.0.attn_q_norm.weight", (64, 1), "qwen3")  # trailing 1s do not count
    assert not allows_quantization("blk.0.attn_q.bias", (576, 4), "qwen2")  # only *weight
    assert not allows_quantization("blk.0.ffn_gate_inp.weight", (256, 8), "llama")
    assert not allows_quantization("position_embd.weight", (768, 1024), "gpt2")
    assert not allows_quantization("blk.0.ssm_conv1d.weight", (4, 1536), "mamba")
    assert not allows_quantization("v.patch_embd.weight", (14, 14, 3), "clip")


def test_categories_take_the_first_match():
    assert category("output.weight") == "output"
    assert category("per_layer_token_embd.weight") == "token_embd"
    assert category("blk.3.attn_qkv.weight") == "attn_qkv"
    assert category("blk.3.ffn_down_exps.weight") == "ffn_down"
    assert category("blk.3.ffn_gate_up_exps.weight") == "ffn_gate"  # fused: "ffn_up" is not in the name
    assert category("blk.3.attn_k_norm.weight") == "other"


def test_tensors_are_visited_by_layer_then_by_name():
    names = ["blk.10.attn_v.weight", "blk.9.attn_v.weight", "token_embd.weight", "blk.9.attn_k.weight", "output.weight"]
    assert write_order(names) == [
        "output.weight",
        "token_embd.weight",
        "blk.9.attn_k.weight",
        "blk.9.attn_v.weight",
        "blk.10.attn_v.weight",
    ]


def test_only_the_70b_shapes_of_their_arches_count_as_70b():
    assert ModelFacts("llama", 80, 64, 8).is_70b
    assert not ModelFacts("llama", 80, 64, 64).is_70b  # LLaMA-1 65B: no GQA
    assert not ModelFacts("llama", 80, 64, 8, n_expert=8).is_70b
    assert ModelFacts("qwen2", 80, 64, 8).is_70b
    assert not ModelFacts("qwen3", 80, 64, 8).is_70b
    assert ModelFacts("jais2", 68, 64, 8).is_70b


def test_tied_embeddings_take_the_output_rule_and_untied_ones_the_default():
    facts = ModelFacts("llama", 1, 4, 4)
    tied = predict([_t("token_embd.weight", 512, 1000)], facts, "Q4_K_M")
    untied = predict([_t("token_embd.weight", 512, 1000), _t("output.weight", 512, 1000)], facts, "Q4_K_M")
    assert tied.types() == {"token_embd.weight": "Q6_K"}
    assert untied.types() == {"output.weight": "Q6_K", "token_embd.weight": "Q4_K"}
    assert predict([_t("token_embd.weight", 512, 1000)], facts, "Q8_0").types() == {"token_embd.weight": "Q8_0"}


def test_f16_converts_every_quantizable_tensor_and_keeps_the_rest():
    facts = ModelFacts("llama", 1, 4, 4)
    src = [_t("blk.0.ffn_up.weight", 576, 320, kind=T.Q4_1), _t("blk.0.ffn_norm.weight", 576, kind=T.F32)]
    pred = predict(src, facts, "F16")
    assert pred.types() == {"blk.0.ffn_norm.weight": "F32", "blk.0.ffn_up.weight": "F16"}
    assert pred.tensor_bytes == 576 * 4 + 576 * 320 * 2
    assert not pred.needs_imatrix and pred.n_fallback == 0


def test_imatrix_types_are_flagged_and_falling_back_clears_the_flag():
    facts = ModelFacts("llama", 1, 4, 4)
    assert predict([_t("blk.0.ffn_up.weight", 512, 256)], facts, "IQ2_XS").needs_imatrix
    odd = predict([_t("blk.0.ffn_up.weight", 576, 256)], facts, "IQ2_XS")
    assert odd.types() == {"blk.0.ffn_up.weight": "IQ4_NL"} and not odd.needs_imatrix and odd.n_fallback == 1


def test_row_and_tensor_bytes():
    assert row_bytes(T.Q4_K, 512) == 288
    assert tensor_bytes(T.Q8_0, (64, 3, 2)) == 6 * 68
    assert n_dims((576, 1, 1)) == 1 and n_dims((576, 1, 4)) == 3
    with pytest.raises(ValueError, match="Q4_K blocks of 256"):
        row_bytes(T.Q4_K, 576)


def _t(name: str, *shape: int, kind: GGMLType = T.F16) -> Tensor:
    return Tensor(name, tuple(shape), int(kind))
