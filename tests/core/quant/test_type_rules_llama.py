"""core/quant/type_rules.py against llama.cpp itself: every tensor's type, the fallback count, the imatrix refusal
and the exact bytes of the written file, for every file type llama.cpp makes, on small synthetic models of each
covered architecture and on the two real test models.

llama_model_quantize runs in a subprocess (tests/quantize_all.py): this process never imports llama_cpp. Each
model gets one subprocess for all its types. A *real* run writes the file, whose header and size are compared;
a *dry run* (llama.cpp's own --dry-run: the same per-tensor choice, nothing written) is compared through its
log, one "(type)" per tensor. Every type gets a dry run; real runs are the common types on the llama models
and a few on the others, since IQ4 and k-quant writing of whole models costs seconds.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from sizewise.core.gguf.ggml_types import BLOCKS, NOT_QUANTIZED, GGMLType
from sizewise.core.gguf.header import GGUFHeader, read_header
from sizewise.core.quant.shapes import PUBLISHED_OVERRIDES, HyperParams, predict_for, predict_published, tensors
from sizewise.core.quant.type_rules import (
    Override,
    QuantPrediction,
    file_bytes,
    model_facts,
    output_metadata_bytes,
    predict,
)
from sizewise.core.quant.types import QUANT_TYPES
from tests.quant_models import load_and_run, quantize_all, write_model

pytestmark = pytest.mark.slow

ALL_TYPES = [t.name for t in QUANT_TYPES]
COMMON = [
    "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_0", "Q4_1", "Q4_K_S", "Q4_K_M", "Q5_0", "Q5_1", "Q5_K_S", "Q5_K_M",
    "Q6_K", "Q8_0", "F16", "IQ4_XS", "IQ4_NL",
]  # fmt: skip
FEW = ["Q4_K_M", "Q2_K", "Q8_0"]
# Q2_0 gets dry runs only: its files cannot be read back here, since gguf 0.19 (which core/gguf/header.py takes
# type sizes from) predates the type.
UNREADABLE = {"Q2_0"}

# OLMoE and gpt-oss with 4 experts (the real ones have 64 and 32): none is 8, so the same n_expert rules fire
MOE4: dict[str, Any] = {"tied_embeddings": False, "n_expert": 4, "n_expert_used": 2}

DEEPSEEK2 = HyperParams(
    "deepseek2", 3, 256, 512, 16, 1, 256, head_dim=192, tied_embeddings=False, n_expert=4, n_expert_used=2,
    n_ff_exp=256, kv_lora_rank=512, rope_dim=64, v_head_dim=128, n_expert_shared=2, n_dense_lead=1,
)  # fmt: skip

# name: (hyper-parameters, the types that get a real run as well)
SYNTHETIC: dict[str, tuple[HyperParams, list[str]]] = {
    # SmolLM2's widths: 576 and 320 are not multiples of 256, so every k-quant falls back somewhere; tied
    "llama-576": (HyperParams("llama", 3, 576, 320, 9, 3, 512), COMMON),
    # enough layers for use_more_bits and the n/16 Q3_K_M rule; GQA 4 (the Q2_K and IQ4 attn_v rules); untied
    "llama-deep": (
        HyperParams("llama", 16, 256, 256, 4, 1, 256, tied_embeddings=False, rope_tensors=True),
        COMMON,
    ),
    # 8 experts: the n_expert == 8 rules, and ffn layers read from tensor names
    "llama-moe8": (HyperParams("llama", 2, 256, 256, 4, 2, 256, n_expert=8, n_expert_used=2), [*FEW, "MXFP4_MOE"]),
    "qwen2": (HyperParams("qwen2", 3, 256, 512, 4, 2, 256), FEW),
    "qwen3": (HyperParams("qwen3", 3, 256, 512, 4, 2, 256, head_dim=128, tied_embeddings=False), FEW),
    "qwen3moe": (
        HyperParams("qwen3moe", 2, 256, 512, 4, 2, 256, head_dim=64, n_expert=16, n_expert_used=4, n_ff_exp=128),
        [*FEW, "MXFP4_MOE"],
    ),
    "gemma3": (HyperParams("gemma3", 3, 384, 512, 4, 1, 256, head_dim=256), FEW),
    "phi3": (HyperParams("phi3", 3, 256, 352, 4, 4, 256, tied_embeddings=False, rope_tensors=True), FEW),
    # OLMoE's layout (MHA, q/k norms n_embd wide, untied); widths that divide into 256-blocks, as OLMoE-1B-7B's
    # 2048 and 1024 do
    "olmoe": (HyperParams("olmoe", 4, 256, 128, 4, 4, 256, head_dim=64, n_ff_exp=128, **MOE4), [*FEW, "MXFP4_MOE"]),
    # gpt-oss's layout (biases, sinks, post_attention_norm, 2-D expert biases, GQA 4) with 4 experts instead of
    # 32; 320 wide like gpt-oss-20b's 2880, a multiple of 32 but not of 256, so k-quants fall back as they do there
    "gpt-oss": (HyperParams("gpt-oss", 4, 320, 320, 8, 2, 256, head_dim=64, n_ff_exp=320, **MOE4), [*FEW, "MXFP4_MOE"]),
    # LFM2's layer pattern (conv, conv, attention …): shortconv.conv is never quantized, in_proj is 3 × n_embd
    "lfm2": (HyperParams("lfm2", 6, 256, 512, 4, 2, 256, attn_layers=(2, 5)), FEW),
    # DeepSeek-V2-Lite's heads (MLA: attn_kv_a_mqa, the 3-D attn_k_b / attn_v_b), a dense first layer, shared experts
    "deepseek2": (DEEPSEEK2, FEW),
    "lfm2moe": (
        HyperParams("lfm2moe", 6, 256, 512, 4, 2, 256, attn_layers=(2, 5), n_dense_lead=1, n_ff_exp=256, **MOE4),
        FEW,
    ),
}


def _mismatches(
    source: GGUFHeader, results: dict[str, Any], out_dir: Path, overrides: Sequence[Override] = ()
) -> list[str]:
    """Every way the rules disagree with llama.cpp's results for one source file, as readable lines."""
    bad: list[str] = []
    facts, metadata = model_facts(source), output_metadata_bytes(source)
    for name, r in results.items():
        try:
            pred = predict(source.tensors, facts, name, overrides=overrides)
        except ValueError as exc:  # llama.cpp must refuse too (Q1_0 has no fallback for odd rows)
            if r["dry_rc"] == 0:
                bad.append(f"{name}: the rules refuse ({exc}) but llama.cpp does not")
            continue
        if r["dry_rc"] != 0:
            bad.append(f"{name}: llama.cpp refuses ({r['dry_error']}) but the rules do not")
            continue
        bad += _type_diffs(name, "dry run", pred, r["dry_types"])
        if r["dry_fallback"] != pred.n_fallback:
            bad.append(f"{name}: {r['dry_fallback']} fallbacks, predicted {pred.n_fallback}")
        if r["dry_needs_imatrix"] != pred.needs_imatrix:
            bad.append(f"{name}: llama.cpp needs an imatrix: {r['dry_needs_imatrix']}, predicted {pred.needs_imatrix}")
        if "rc" in r:
            bad += _real_run_diffs(name, r, pred, metadata, out_dir)
    return bad


def _type_diffs(name: str, what: str, pred: QuantPrediction, actual: dict[str, str]) -> list[str]:
    predicted = pred.types()
    if list(actual) != list(predicted):
        return [f"{name} ({what}): tensors or their order differ: {list(actual)[:5]}… vs {list(predicted)[:5]}…"]
    return [f"{name} ({what}): {k} is {v}, predicted {predicted[k]}" for k, v in actual.items() if predicted[k] != v]


def _real_run_diffs(name: str, r: dict[str, Any], pred: QuantPrediction, metadata: int, out_dir: Path) -> list[str]:
    if (r["rc"] != 0) != pred.needs_imatrix:
        return [f"{name}: real run rc {r['rc']} ({r['error']}), predicted needs_imatrix={pred.needs_imatrix}"]
    if r["rc"] != 0 or name in UNREADABLE:
        return []
    out = out_dir / f"{name}.gguf"
    written = read_header(out)
    bad = _type_diffs(name, "written file", pred, {t.name: t.type_name for t in written.tensors})
    if written.data_bytes != pred.tensor_bytes:
        bad.append(f"{name}: tensor bytes {written.data_bytes:,}, predicted {pred.tensor_bytes:,}")
    if out.stat().st_size != file_bytes(pred, metadata):
        bad.append(f"{name}: file bytes {out.stat().st_size:,}, predicted {file_bytes(pred, metadata):,}")
    out.unlink()  # the next type's file replaces it on disk, not beside it
    return bad


@pytest.mark.parametrize("key", SYNTHETIC)
def test_synthetic_models_get_llama_cpps_types_and_bytes_for_every_file_type(key, tmp_path):
    hp, real = SYNTHETIC[key]
    src = write_model(tmp_path / "src.gguf", hp)
    dry_only = tuple(t for t in ALL_TYPES if t not in real or t in UNREADABLE)
    results = quantize_all(src, tmp_path, ALL_TYPES, dry_only=dry_only)
    assert _mismatches(read_header(src), results, tmp_path) == []
    assert all(results[t].get("rc") == 0 for t in real if t not in UNREADABLE)  # the real runs ran and wrote


@pytest.mark.parametrize("key", ["olmoe", "gpt-oss"])
def test_llama_cpp_loads_and_runs_the_synthetic_mixtures_of_experts(key, tmp_path):
    """The loader refuses a file with a tensor it does not create or of another shape, so a load that works shows
    shapes.py's list is the one llama.cpp expects; a decode shows the graph runs on it."""
    hp = SYNTHETIC[key][0]
    loaded = load_and_run(write_model(tmp_path / "src.gguf", hp))
    assert loaded == {
        "decode_rc": 0,
        "n_params": sum(math.prod(t.shape) for t in tensors(hp)),
        "n_vocab": 256,
        "finite": True,
    }


def test_gpt_oss_with_its_experts_kept_in_mxfp4_as_published(tmp_path):
    """Published gpt-oss files keep the experts in MXFP4 (shapes.PUBLISHED_OVERRIDES): the same override given to
    llama.cpp's quantizer (its --tensor-type, tt_overrides) gives the predicted types and bytes."""
    hp, real = SYNTHETIC["gpt-oss"][0], ["Q4_K_M", "Q2_K", "Q8_0"]
    overrides = PUBLISHED_OVERRIDES["gpt-oss"]
    src = write_model(tmp_path / "src.gguf", hp)
    results = quantize_all(
        src, tmp_path, ALL_TYPES, dry_only=tuple(t for t in ALL_TYPES if t not in real), overrides=overrides
    )
    assert _mismatches(read_header(src), results, tmp_path, overrides) == []
    assert all(results[t]["rc"] == 0 for t in real)
    kept = {v for k, v in results["Q4_K_M"]["dry_types"].items() if "_exps.weight" in k}
    assert (
        kept == {"MXFP4"}
        and predict_published(hp, "Q4_K_M").types()
        == predict(read_header(src).tensors, model_facts(read_header(src)), "Q4_K_M", overrides=overrides).types()
    )
    f16 = predict_published(hp, "F16").types()  # unquantized: the converter's own file, experts native
    assert {v for k, v in f16.items() if "_exps.weight" in k} == {"MXFP4"} and f16["blk.0.attn_q.weight"] == "F16"


def test_gpt_oss_from_a_source_with_mxfp4_experts(tmp_path):
    """A converter's gpt-oss file holds the experts in MXFP4: llama.cpp requantizes them by the same rules (the
    source type of a tensor the rules quantize never matters), with and without the published override."""
    hp, types = SYNTHETIC["gpt-oss"][0], ["Q4_K_M", "Q8_0"]
    src = write_model(tmp_path / "src.gguf", hp, mxfp4_experts=True)
    header = read_header(src)
    assert {t.type_name for t in header.tensors if t.name.endswith("_exps.weight")} == {"MXFP4"}
    assert load_and_run(src)["finite"]
    for overrides in ((), PUBLISHED_OVERRIDES["gpt-oss"]):
        results = quantize_all(src, tmp_path, types, overrides=overrides)
        assert _mismatches(header, results, tmp_path, overrides) == []
        assert all(results[t]["rc"] == 0 for t in types)
        assert predict(header.tensors, model_facts(header), "Q4_K_M", overrides=overrides) == predict(
            tensors(hp), hp.facts(), "Q4_K_M", overrides=overrides
        )


def test_the_deep_model_exercises_the_layer_schedules():
    """Guards the matrix above from passing vacuously: its deep model has per-layer type mixes."""
    hp = SYNTHETIC["llama-deep"][0]
    ffn_down = {t.type_name for t in predict_for(hp, "Q4_K_M").tensors if "ffn_down" in t.name}
    attn_v = [t.type_name for t in predict_for(hp, "Q3_K_M").tensors if "attn_v" in t.name]
    q3_down = {t.type_name for t in predict_for(hp, "Q3_K_M").tensors if "ffn_down" in t.name}
    assert ffn_down == {"Q4_K", "Q6_K"}
    assert attn_v[:2] == ["Q5_K", "Q5_K"] and set(attn_v[2:]) == {"Q4_K"}
    assert q3_down == {"Q5_K", "Q4_K"}


def test_a_70b_shape_gets_its_attn_v_bump(tmp_path):
    """llama with 80 layers and GQA is LLM_TYPE_70B: attn_v goes from Q3_K/Q4_K to Q5_K (dry runs: 29M zeros)."""
    hp = HyperParams("llama", 80, 256, 256, 4, 1, 256)
    assert hp.facts().is_70b
    src = write_model(tmp_path / "src.gguf", hp, zeros=True)
    types = ["Q2_K", "Q3_K_S", "Q3_K_M", "Q4_K_S", "Q4_K_M"]
    results = quantize_all(src, tmp_path, types, dry_only=tuple(types))
    assert _mismatches(read_header(src), results, tmp_path) == []
    assert {v for k, v in results["Q3_K_S"]["dry_types"].items() if "attn_v" in k} == {"Q5_K"}


def test_smollm2_requantized_to_every_type(smollm2_path, tmp_path):
    """The real 135M model (Q4_1, 30 layers of 576): dry runs of every type, three written in full."""
    real = ["Q4_K_M", "Q3_K_M", "Q2_K"]
    results = quantize_all(smollm2_path, tmp_path, ALL_TYPES, dry_only=tuple(t for t in ALL_TYPES if t not in real))
    assert _mismatches(read_header(smollm2_path), results, tmp_path) == []
    assert all(results[t]["rc"] == 0 for t in real)


def test_gemma3_requantized(gemma_path, tmp_path):
    """Gemma-3-270M (GQA 4, width 640, a 262k vocabulary): the types whose rules read n_gqa, one written."""
    types = ["Q2_K", "Q3_K_S", "Q3_K_M", "Q4_K_M", "Q5_K_M", "IQ4_XS", "IQ4_NL", "IQ3_S", "IQ3_M", "Q8_0"]
    results = quantize_all(gemma_path, tmp_path, types, dry_only=tuple(t for t in types if t != "Q2_K"))
    assert _mismatches(read_header(gemma_path), results, tmp_path) == []
    assert results["Q2_K"]["rc"] == 0


def test_block_table_is_the_vendored_ggmls():
    """ggml_types.BLOCKS and NOT_QUANTIZED against the vendored libggml's own ggml_blck_size/ggml_type_size."""
    code = """
import ctypes, json, pathlib, llama_cpp
lib = ctypes.CDLL(str(pathlib.Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))
lib.ggml_type_name.restype = ctypes.c_char_p
lib.ggml_blck_size.restype = ctypes.c_int64
lib.ggml_type_size.restype = ctypes.c_size_t
lib.ggml_is_quantized.restype = ctypes.c_bool
out = {}
for t in range(43):
    name = lib.ggml_type_name(t)
    if name and lib.ggml_blck_size(t) > 0:
        out[t] = [name.decode(), lib.ggml_blck_size(t), lib.ggml_type_size(t), lib.ggml_is_quantized(t)]
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ggml = {int(k): v for k, v in json.loads(proc.stdout).items()}
    ours = {int(t): [t.name.lower(), *BLOCKS[t], t not in NOT_QUANTIZED] for t in GGMLType}
    assert {k: [v[0].lower(), *v[1:]] for k, v in ggml.items()} == ours
