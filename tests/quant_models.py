"""Small random-weight GGUFs of any covered architecture, written from core/quant/shapes.py's tensor list, and
llama.cpp's quantizer run on a file in a subprocess (tests/quantize_all.py).

No tokenizer: llama_model_quantize reads the hyper-parameters and the tensors, never the vocabulary, so a
vocabulary of a few hundred rows keeps each file small and each quantization a fraction of a second. The files
say ``tokenizer.ggml.model = "none"``, which llama.cpp's loader takes as that many dummy tokens, so a file can also
be loaded and run on token ids (tests/load_model.py) to show that llama.cpp accepts its tensor list.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sizewise.core.gguf.ggml_types import GGMLType
from sizewise.core.gguf.header import read_header
from sizewise.core.quant.shapes import HyperParams, Tensor, tensors

CHILD = Path(__file__).with_name("quantize_all.py")
LOAD_CHILD = Path(__file__).with_name("load_model.py")
SWA_WINDOW = 16  # gpt-oss's sliding window in the synthetic files (llama.cpp requires the key)


def write_model(
    path: Path,
    hp: HyperParams,
    *,
    zeros: bool = False,
    seed: int = 0,
    mxfp4_experts: bool = False,
    tokenizer: Sequence[tuple[str, Any, Any, Any]] | None = None,
    sliding_window: int = 0,
    tensor_list: Sequence[Tensor] | None = None,
    extra_keys: dict[str, bool | int | float] | None = None,
    sparse: bool = False,
) -> Path:
    """An F16 GGUF (1-D tensors and routers F32) of ``hp``'s tensors with the keys llama.cpp's loader needs.

    ``zeros``: all weights zero, quicker to write, for a model that only gets dry runs (which read no data).
    ``mxfp4_experts``: the ``*_exps.weight`` tensors in MXFP4 with random blocks, as gpt-oss's converter writes
    OpenAI's experts.
    ``tokenizer``: a real vocabulary's ``tokenizer.*`` fields (core/speed/synthetic.read_tokenizer of a GGUF whose
    vocabulary has ``hp.n_vocab`` tokens) instead of the dummy one, for a file the engine must load and chat with.
    ``sliding_window``: an ``attention.sliding_window`` key for any architecture (gpt-oss always has one).
    ``tensor_list``: these tensors instead of ``hp``'s (a file that contradicts its own header, for bad-input tests).
    ``extra_keys``: more ``<arch>.<key>`` values (bool, int: u32, float: f32), or other values for the keys written here
    (deepseek2's q_lora_rank and expert_weights_scale), for a header that asks for what a test must refuse.
    ``sparse`` (with ``zeros``): the zero weights are a hole the file system fills, not written — the same bytes,
    for a file of real size that only its header matters for (a remote header read), in a blink."""
    import gguf

    extra = dict(extra_keys or {})
    w = gguf.GGUFWriter(str(path), arch=hp.arch)
    w.add_context_length(512)
    w.add_embedding_length(hp.n_embd)
    w.add_block_count(hp.n_layer)
    w.add_feed_forward_length(hp.n_ff)
    w.add_head_count(hp.n_head)
    if hp.arch in ("lfm2", "lfm2moe"):  # as LFM2's converter writes it: 0 KV heads marks a short-convolution layer
        w.add_head_count_kv([hp.n_head_kv if i in hp.attn_layers else 0 for i in range(hp.n_layer)])
        w.add_shortconv_l_cache(hp.conv_l_cache)
    else:
        w.add_head_count_kv(hp.n_head_kv)
    if hp.arch == "deepseek2":  # as DeepSeek-V2's converter writes MLA: one KV "head" of the compressed latent + rope
        w.add_key_length(hp.kv_lora_rank + hp.rope_dim)
        w.add_value_length(hp.kv_lora_rank)
        w.add_key_length_mla(hp.n_embd_head)
        w.add_value_length_mla(hp.v_head_dim)
        w.add_rope_dimension_count(hp.rope_dim)
        w.add_q_lora_rank(int(extra.pop("attention.q_lora_rank", hp.q_lora_rank)))  # required unless 27 layers
        w.add_kv_lora_rank(hp.kv_lora_rank)
        w.add_leading_dense_block_count(hp.n_dense_lead)
        w.add_expert_shared_count(hp.n_expert_shared)
        w.add_expert_weights_scale(float(extra.pop("expert_weights_scale", 1.0)))
    else:
        w.add_key_length(hp.n_embd_head)
        w.add_value_length(hp.n_embd_head)
        w.add_rope_dimension_count(hp.n_embd_head)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_vocab_size(hp.n_vocab)
    if tokenizer is None:
        w.add_tokenizer_model("none")
    else:
        for key, value, vtype, sub in tokenizer:
            w.add_key_value(key, value, vtype, sub)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    if hp.n_expert:
        w.add_expert_count(hp.n_expert)
        w.add_expert_used_count(hp.n_expert_used)
        if hp.n_ff_exp:
            w.add_expert_feed_forward_length(hp.n_ff_exp)
    if hp.arch == "lfm2moe":  # LFM2-8B-A1B's converter: sigmoid scores, the leading dense layers
        w.add_leading_dense_block_count(hp.n_dense_lead)
        w.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID)
    if hp.arch == "granite":  # logit_scale is required; the other scales are what Granite 3's config.json has
        w.add_logit_scale(8.0)
        w.add_residual_scale(0.22)
        w.add_embedding_scale(12.0)
        w.add_attention_scale(0.015625)
    if hp.arch == "gemma2":  # Gemma 2's soft-capping (config.json: attention 50, final 30)
        w.add_attn_logit_softcapping(50.0)
        w.add_final_logit_softcapping(30.0)
    if sliding_window or hp.arch == "gpt-oss":
        w.add_sliding_window(sliding_window or SWA_WINDOW)
    for key, value in extra.items():
        if isinstance(value, bool):
            w.add_bool(f"{hp.arch}.{key}", value)
        elif isinstance(value, int):
            w.add_uint32(f"{hp.arch}.{key}", value)
        else:
            w.add_float32(f"{hp.arch}.{key}", value)
    rng = np.random.default_rng(seed)
    if sparse:
        assert zeros and not mxfp4_experts, "only an all-zero file can be left sparse"
        return _write_sparse(w, path, tensors(hp) if tensor_list is None else tensor_list)
    for t in tensors(hp) if tensor_list is None else tensor_list:
        dims = t.shape[::-1]  # numpy order: the row length last
        if mxfp4_experts and t.name.endswith("_exps.weight"):
            w.add_tensor(t.name, _mxfp4_blocks(rng, dims), raw_dtype=gguf.GGMLQuantizationType.MXFP4)
        elif zeros:
            w.add_tensor(t.name, np.zeros(dims, np.float32 if t.ggml_type == GGMLType.F32 else np.float16))
        elif t.ggml_type == GGMLType.F32:
            w.add_tensor(t.name, (1.0 + 0.01 * rng.standard_normal(dims)).astype(np.float32))
        else:
            w.add_tensor(t.name, (0.02 * rng.standard_normal(dims)).astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


GGUF_ALIGNMENT = 32  # GGUFWriter's default, which write_model keeps


def _write_sparse(w: Any, path: Path, tensor_list: Sequence[Tensor]) -> Path:
    """The header as ``write_model`` writes it, then the file extended to where its last tensor ends."""
    for t in tensor_list:
        dtype = np.float32 if t.ggml_type == GGMLType.F32 else np.float16
        dims = t.shape[::-1]
        w.add_tensor_info(t.name, dims, np.dtype(dtype), int(np.prod(dims)) * np.dtype(dtype).itemsize)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    header = read_header(path)
    end = max(ti.offset + ti.n_bytes for ti in header.tensors)
    with path.open("r+b") as f:
        f.truncate(header.data_offset + -(-end // GGUF_ALIGNMENT) * GGUF_ALIGNMENT)
    return path


def _mxfp4_blocks(rng: np.random.Generator, dims: tuple[int, ...]) -> np.ndarray:
    """Random MXFP4 rows: per 32 values a block of one E8M0 scale byte (2^-9 … 2^-1, valid) and 16 nibble bytes."""
    blocks = rng.integers(0, 256, size=(*dims[:-1], dims[-1] // 32, 17), dtype=np.uint8)
    blocks[..., 0] = rng.integers(118, 127, size=blocks.shape[:-1], dtype=np.uint8)
    return blocks.reshape(*dims[:-1], dims[-1] // 32 * 17)


def load_and_run(path: Path) -> dict[str, Any]:
    """llama.cpp loads ``path`` and decodes a few token ids (tests/load_model.py, in a subprocess)."""
    proc = subprocess.run([sys.executable, str(LOAD_CHILD), str(path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def quantize_all(
    src: Path,
    out_dir: Path,
    types: list[str],
    dry_only: tuple[str, ...] = (),
    overrides: Sequence[tuple[str, GGMLType]] = (),
) -> dict[str, Any]:
    """llama.cpp's results per type (see tests/quantize_all.py); real outputs land in ``out_dir/<TYPE>.gguf``.
    ``overrides``: llama-quantize's --tensor-type PATTERN=TYPE, as type_rules.predict takes them."""
    specs = [f"--tensor-type={pattern}={int(kind)}" for pattern, kind in overrides]
    args = [sys.executable, str(CHILD), str(src), str(out_dir), *specs, *types]
    if dry_only:
        args += ["--dry-only", *dry_only]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout)
    return result
