"""A GGUF whose tensors contradict its own header gets one sentence naming the tensor — from ``fit``, before any
load — never a memory figure for a model that cannot exist (issue 15's bad input)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sizewise.core.gguf.header import read_header
from sizewise.core.quant.shapes import HyperParams, tensors
from sizewise.core.quant.tensor_check import tensor_mismatch
from tests.cli_helpers import run_cli
from tests.quant_models import write_model

QWEN3 = HyperParams("qwen3", 2, 256, 512, 4, 2, 320, head_dim=64)
MOE = HyperParams("qwen3moe", 2, 256, 512, 4, 2, 320, head_dim=64, n_expert=8, n_expert_used=2, n_ff_exp=64)
LFM2 = HyperParams("lfm2", 3, 256, 512, 4, 2, 320, attn_layers=(1,))  # conv, attention, conv
DEEPSEEK2 = HyperParams(  # DeepSeek-V2-Lite's heads, 1 dense layer then experts (2 shared)
    "deepseek2", 2, 256, 512, 4, 1, 320, head_dim=192, tied_embeddings=False, n_expert=8, n_expert_used=2,
    n_ff_exp=64, kv_lora_rank=512, rope_dim=64, v_head_dim=128, n_expert_shared=2, n_dense_lead=1,
)  # fmt: skip


def test_the_test_models_and_every_covered_architecture_match(
    smollm2_path: Path, gemma_path: Path, tmp_path: Path
) -> None:
    assert tensor_mismatch(read_header(smollm2_path)) is None
    assert tensor_mismatch(read_header(gemma_path)) is None
    v3 = replace(DEEPSEEK2, q_lora_rank=128, expert_bias=True)  # DeepSeek-V3's compressed queries, selection bias
    lfm2moe = replace(LFM2, arch="lfm2moe", n_expert=8, n_expert_used=2, n_ff_exp=64, n_dense_lead=1)
    for hp in (
        QWEN3,
        MOE,
        LFM2,
        lfm2moe,
        DEEPSEEK2,
        v3,
        HyperParams("phi3", 2, 256, 512, 4, 2, 320, tied_embeddings=False),
    ):
        assert tensor_mismatch(read_header(write_model(tmp_path / f"{hp.arch}.gguf", hp, zeros=True))) is None


@pytest.mark.parametrize(
    ("hp", "edit", "expected"),
    [
        (
            QWEN3,
            lambda ts: [t for t in ts if t.name != "blk.1.ffn_down.weight"],
            "the tensor blk.1.ffn_down.weight is missing: a qwen3 model with 2 layers has one",
        ),
        (
            QWEN3,
            lambda ts: [replace(t, shape=(256, 384)) if t.name == "blk.0.attn_q.weight" else t for t in ts],
            "the tensor blk.0.attn_q.weight has the shape [256, 384] where this qwen3 header's hyper-parameters "
            "make it [256, 256]",
        ),
        (
            MOE,
            lambda ts: [replace(t, shape=(*t.shape[:-1], 4)) if "_exps" in t.name else t for t in ts],
            "the tensor blk.0.ffn_gate_exps.weight holds 4 experts where the header declares 8",
        ),
        (
            LFM2,  # the header's KV heads make layer 1 an attention layer; the file has a conv layer's tensors there
            lambda ts: (
                [t for t in ts if not t.name.startswith("blk.1.attn_") or "attn_norm" in t.name]
                + [
                    replace(t, name=t.name.replace("blk.0.", "blk.1."))
                    for t in ts
                    if t.name.startswith("blk.0.shortconv")
                ]
            ),
            "the tensor blk.1.attn_q_norm.weight is missing: a lfm2 model with 3 layers has one",
        ),
        (
            DEEPSEEK2,  # a compressed KV of another rank than the header's kv_lora_rank
            lambda ts: [replace(t, shape=(256, 320)) if t.name == "blk.1.attn_kv_a_mqa.weight" else t for t in ts],
            "the tensor blk.1.attn_kv_a_mqa.weight has the shape [256, 320] where this deepseek2 header's "
            "hyper-parameters make it [256, 576]",
        ),
        (
            LFM2,
            lambda ts: [replace(t, shape=(4, 256)) if t.name == "blk.2.shortconv.conv.weight" else t for t in ts],
            "the tensor blk.2.shortconv.conv.weight has the shape [4, 256] where this lfm2 header's "
            "hyper-parameters make it [3, 256]",
        ),
    ],
)
def test_a_contradicting_file_is_named_before_any_load(hp, edit, expected: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_model(tmp_path / "bad.gguf", hp, zeros=True, tensor_list=edit(tensors(hp)))
    assert tensor_mismatch(read_header(path)) == expected
    done = run_cli("fit", str(path), "--ram-gib", "8", "--json", basedir=tmp_path / "base")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == f"sizewise: bad.gguf does not match its own header: {expected}."
