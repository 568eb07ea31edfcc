"""llama.cpp's per-tensor type choice for a quantization, reproduced in Python: which ggml type each tensor of a
model gets for a target file type (Q4_K_M …), and so the exact bytes of the file, from tensor shapes alone.

Why our own copy: the model ladder shows sizes for every quant type of every model before anything is
downloaded, and llama.cpp decides per tensor (``output.weight`` to Q6_K, some ``attn_v``/``ffn_down`` layers
one step up, rows that do not divide into 256-blocks down to a 32-block type…), so parameters × nominal bits is
off by several percent. The rules need only names, shapes and a few hyper-parameters, all in a GGUF header or a
catalogue entry; calling llama.cpp would need the whole file.

Reproduces ``src/llama-quant.cpp`` of llama.cpp b11312 (the build llama-cpp-python 0.3.36 vendors):
``tensor_allows_quantization``, ``tensor_get_category``, ``llama_tensor_get_type``,
``llama_tensor_get_type_impl`` (with its ``use_more_bits`` schedule and layer counters),
``tensor_type_fallback``, ``tensor_requires_imatrix`` and ``llama_ftype_get_default_type``; the order tensors
are visited in (``llama_model_loader::weights_map``: by layer, then by name) matters, as the ``attn_v`` rules
count tensors, not layers. It covers llama.cpp's defaults as Sizewise calls ``llama_model_quantize``: no
``--output-tensor-type``/``--token-embedding-type`` overrides, not ``--pure``, no pruning,
``quantize_output_tensor`` on, and no importance matrix unless ``has_imatrix`` says so; ``--tensor-type``
overrides (``tt_overrides``) only where ``predict`` is given them (how published gpt-oss files keep their experts
in MXFP4, core/quant/shapes.py).
tests/core/quant/test_type_rules_llama.py compares every tensor's type and the file's bytes with what the vendored
``llama_model_quantize`` writes.

Shapes are in ggml order: ``shape[0]`` is the row length (``ne[0]``), as GGUF headers store them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sizewise.core.gguf.ggml_types import BLOCKS, NOT_QUANTIZED, GGMLType, n_dims, row_bytes, type_name
from sizewise.core.gguf.header import GGUFHeader, header_int
from sizewise.core.quant.types import QuantType, quant_type

LLAMA_CPP_BUILD = "b11312"
GGUF_ALIGNMENT = 32  # llama.cpp writes quantized files with GGUF_DEFAULT_ALIGNMENT, whatever the source said
T = GGMLType

# llama_ftype_get_default_type: the type most tensors of a file type get.
DEFAULT_TYPE: dict[str, GGMLType] = {
    "F32": T.F32, "F16": T.F16, "BF16": T.BF16,
    "Q4_0": T.Q4_0, "Q4_1": T.Q4_1, "Q5_0": T.Q5_0, "Q5_1": T.Q5_1, "Q8_0": T.Q8_0,
    "Q1_0": T.Q1_0, "Q2_0": T.Q2_0, "MXFP4_MOE": T.MXFP4,
    "Q2_K_S": T.Q2_K, "Q2_K": T.Q2_K, "IQ3_XS": T.IQ3_S,
    "Q3_K_S": T.Q3_K, "Q3_K_M": T.Q3_K, "Q3_K_L": T.Q3_K,
    "Q4_K_S": T.Q4_K, "Q4_K_M": T.Q4_K, "Q5_K_S": T.Q5_K, "Q5_K_M": T.Q5_K, "Q6_K": T.Q6_K,
    "TQ1_0": T.TQ1_0, "TQ2_0": T.TQ2_0,
    "IQ2_XXS": T.IQ2_XXS, "IQ2_XS": T.IQ2_XS, "IQ2_S": T.IQ2_XS, "IQ2_M": T.IQ2_S,
    "IQ3_XXS": T.IQ3_XXS, "IQ1_S": T.IQ1_S, "IQ1_M": T.IQ1_M, "IQ4_NL": T.IQ4_NL, "IQ4_XS": T.IQ4_XS,
    "IQ3_S": T.IQ3_S, "IQ3_M": T.IQ3_S,
}  # fmt: skip


class TensorLike(Protocol):
    """A tensor as the rules see it; core.gguf.header.TensorInfo and shapes.py's tensors both are one."""

    @property
    def name(self) -> str: ...

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def ggml_type(self) -> int: ...


@dataclass(frozen=True)
class ModelFacts:
    """The hyper-parameters the rules read (llama_hparams and llm_type)."""

    arch: str  # general.architecture
    n_layer: int  # block_count (hparams.n_layer_all): the ffn_down/gate/up schedule runs over it
    n_head: int = 0  # layer 0's, as hparams.n_gqa() reads them
    n_head_kv: int = 0
    n_expert: int = 0

    @property
    def n_gqa(self) -> int:
        return self.n_head // self.n_head_kv if self.n_head_kv else 0

    @property
    def is_70b(self) -> bool:
        """llm_type == LLM_TYPE_70B, as each arch's load_arch_hparams sets it: attn_v gets Q5_K instead of Q3/Q4_K."""
        if self.arch == "llama":
            return self.n_expert != 8 and self.n_layer == 80 and self.n_head != self.n_head_kv
        if self.arch in ("qwen2", "deci", "olmo"):
            return self.n_layer == 80
        return self.arch == "jais2" and self.n_layer == 68


def model_facts(header: GGUFHeader) -> ModelFacts:
    """The facts from a GGUF header (a per-layer head count array gives its layer 0 value, as llama.cpp reads)."""

    def first(value: object) -> int:
        return header_int(value[0] if isinstance(value, list) and value else value)

    return ModelFacts(
        arch=header.architecture,
        n_layer=header_int(header.arch_key("block_count")),
        n_head=first(header.arch_key("attention.head_count")),
        n_head_kv=first(header.arch_key("attention.head_count_kv", header.arch_key("attention.head_count"))),
        n_expert=header_int(header.arch_key("expert_count")),
    )


@dataclass(frozen=True)
class TensorPlan:
    """One tensor of the output file."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    n_bytes: int
    quantized: bool  # the rules chose its type (else it is copied as the source has it: norms, biases, routers…)
    fallback: bool  # its rows do not divide into the chosen type's blocks, so tensor_type_fallback replaced it
    needs_imatrix: bool  # llama.cpp refuses to make it without an importance matrix

    @property
    def type_name(self) -> str:
        return type_name(self.ggml_type)


@dataclass(frozen=True)
class QuantPrediction:
    """Every tensor's type and bytes for one target file type, in the order llama.cpp writes them."""

    target: str
    tensors: tuple[TensorPlan, ...]

    @property
    def tensor_bytes(self) -> int:
        """Sum of the tensors' bytes, without alignment padding (llama.cpp's "quant size")."""
        return sum(t.n_bytes for t in self.tensors)

    def data_bytes(self, alignment: int = GGUF_ALIGNMENT) -> int:
        """The data section: each tensor padded to the alignment, the last one too."""
        return sum(_pad(t.n_bytes, alignment) for t in self.tensors)

    @property
    def n_fallback(self) -> int:
        """What llama.cpp's "N of M tensor(s) required fallback quantization" counts."""
        return sum(t.fallback for t in self.tensors)

    @property
    def needs_imatrix(self) -> bool:
        return any(t.needs_imatrix for t in self.tensors)

    def types(self) -> dict[str, str]:
        """Tensor name → type name."""
        return {t.name: t.type_name for t in self.tensors}

    def tensor_info_bytes(self) -> int:
        """The tensor-info part of the header: name, dims, type and offset of each tensor."""
        return sum(tensor_info_bytes(t.name, t.shape) for t in self.tensors)


def _pad(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment


def tensor_info_bytes(name: str, shape: tuple[int, ...]) -> int:
    """gguf_write_out's tensor info: u64 name length + name, u32 n_dims, u64 per dim, u32 type, u64 offset."""
    return 8 + len(name.encode()) + 4 + 8 * n_dims(shape) + 4 + 8


# --- which tensors are quantized at all (tensor_allows_quantization) -------------------------------------------

_NEVER_QUANTIZED = (
    "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
    "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight",
    "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
    "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight", "time_mix_a1.weight",
    "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight", "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", "attn_rel_b.weight",
    ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger",
    "a.rvq.codebook", "mm.a.code_embd",
)  # fmt: skip
_NEVER_QUANTIZED_GLM5_NEXT = (
    "hc_", "indexer.attn_q_b", "indexer.attn_k", "indexer.proj", "indexer_compressor_gate", "indexer_compressor_ape",
    "ssm_f_a.weight", "ssm_f_b.weight", "ssm_g_a.weight", "ssm_g_b.weight", "ssm_beta.weight",
    "attn_kv_a_mqa.weight", "attn_k_b.weight", "attn_v_b.weight",
)  # fmt: skip


def allows_quantization(name: str, shape: tuple[int, ...], arch: str) -> bool:
    """tensor_allows_quantization: 2-D and 3-D ``*weight`` tensors, less norms, routers, position embeddings,
    small conv/RWKV/multimodal tensors. Everything else is copied with its source type."""
    if n_dims(shape) < 2 or not name.endswith("weight"):
        return False
    if name in ("position_embd.weight", "token_types.weight"):
        return False
    if any(part in name for part in _NEVER_QUANTIZED):
        return False
    return not (arch == "glm5-next" and any(part in name for part in _NEVER_QUANTIZED_GLM5_NEXT))


# --- tensor_get_category -----------------------------------------------------------------------------------------

OUTPUT, TOKEN_EMBD, ATTN_QKV, ATTN_KV_B, ATTN_V, ATTN_K, ATTN_Q, ATTN_OUTPUT = (
    "output", "token_embd", "attn_qkv", "attn_kv_b", "attn_v", "attn_k", "attn_q", "attn_output",
)  # fmt: skip
FFN_UP, FFN_GATE, FFN_DOWN, OTHER = "ffn_up", "ffn_gate", "ffn_down", "other"
_ATTN_V_LIKE = (ATTN_V, ATTN_QKV, ATTN_KV_B)  # category_is_attn_v: counted together by i_attention_wv


def category(name: str) -> str:
    """tensor_get_category: substrings, the first match wins (a fused ``ffn_gate_up_exps`` is ffn_gate)."""
    if name == "output.weight":
        return OUTPUT
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return TOKEN_EMBD
    for needle, cat in (
        ("attn_qkv.weight", ATTN_QKV), ("attn_kv_b.weight", ATTN_KV_B), ("attn_v.weight", ATTN_V),
        ("attn_k.weight", ATTN_K), ("attn_q.weight", ATTN_Q), ("attn_output.weight", ATTN_OUTPUT),
        ("ffn_up", FFN_UP), ("ffn_gate", FFN_GATE), ("ffn_down", FFN_DOWN),
    ):  # fmt: skip
        if needle in name:
            return cat
    return OTHER


_LAYER = re.compile(r"blk\.\s*([+-]?\d+)")


def _layer(name: str) -> int | None:
    """sscanf(name, "blk.%d.", &il): the number is taken even when no '.' follows it."""
    m = _LAYER.match(name)
    return int(m[1]) if m else None


def write_order(names: Iterable[str]) -> list[str]:
    """llama_model_loader's weights_map order (weight_name_comparer): layer (-1 outside blocks), then name bytes."""

    def key(name: str) -> tuple[int, bytes]:
        layer = _layer(name)
        return (-1 if layer is None else layer, name.encode())

    return sorted(names, key=key)


# --- llama_tensor_get_type_impl ----------------------------------------------------------------------------------


def use_more_bits(i_layer: int, n_layers: int) -> bool:
    """The layers that get a bigger type in *_K_M files: the first and last eighth, and every third between."""
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or _cmod(i_layer - n_layers // 8, 3) == 2


def _cmod(a: int, b: int) -> int:
    """C's % (the sign of the dividend), for the rare negative operand."""
    r = abs(a) % b
    return -r if a < 0 else r


class _State:
    """quantize_state_impl's counters: i_attention_wv counts attn_v-like tensors as they are visited."""

    def __init__(self, model: ModelFacts, layout: TensorLayout, has_imatrix: bool) -> None:
        self.model = model
        self.has_imatrix = has_imatrix
        self.n_attention_wv = layout.n_attention_wv
        self.has_tied_embeddings = layout.has_tied_embeddings
        self.n_ffn = model.n_layer  # n_ffn_down = n_ffn_gate = n_ffn_up
        self.i_attention_wv = 0
        self.i_ffn = {FFN_DOWN: 0, FFN_GATE: 0, FFN_UP: 0}

    def layer_info(self, counter: int, name: str) -> tuple[int, int]:
        """The layer a ffn tensor belongs to: its visiting count, or (with experts) the number in its name."""
        if max(1, self.model.n_expert) > 1:
            layer = _layer(name)
            if layer is None:
                raise ValueError(f"Failed to determine layer for tensor {name}")
            if not 0 <= layer < self.n_ffn:
                raise ValueError(f"Bad layer {layer} for tensor {name}. Must be in [0, {self.n_ffn})")
            return layer, self.n_ffn
        return counter, self.n_ffn


_IQ2_FAMILY = ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M")
_ATTN_OUTPUT_MOE_Q5_K = (
    "Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ3_S", "IQ3_M", "IQ4_XS",
)  # fmt: skip


def _output_type(new: GGMLType, ne0: int, ft: str, arch: str) -> GGMLType:
    """output.weight, and token_embd.weight when the two are tied."""
    if ft == "MXFP4_MOE":
        return T.Q8_0
    if arch == "falcon" or ne0 % BLOCKS[new][0]:
        return T.Q8_0
    if ft in ("IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"):
        return T.Q5_K
    return T.Q6_K if new != T.Q8_0 else new


def _token_embd_type(new: GGMLType, ft: str) -> GGMLType:
    if ft in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
        return T.Q2_K
    if ft in ("IQ2_S", "IQ2_M", "IQ3_XXS"):
        return T.IQ3_S
    if ft in ("TQ1_0", "TQ2_0", "Q2_0"):
        return T.Q4_K
    return new


def _iq2_family_type(s: _State, new: GGMLType, ft: str, cat: str) -> GGMLType:
    m = s.model
    iq3_s_or_q2_k = T.IQ3_S if ft in ("IQ2_S", "IQ2_M") else T.Q2_K
    if cat in _ATTN_V_LIKE:
        new = T.Q4_K if m.n_gqa >= 4 or m.n_expert >= 4 else iq3_s_or_q2_k
        s.i_attention_wv += 1
    elif m.n_expert == 8 and cat == ATTN_K:
        new = T.Q4_K
    elif cat == FFN_DOWN:
        if s.i_ffn[FFN_DOWN] < s.n_ffn // 8:
            new = iq3_s_or_q2_k
        s.i_ffn[FFN_DOWN] += 1
    elif cat == ATTN_OUTPUT:
        if m.n_expert == 8:
            new = T.Q5_K
        elif ft in ("IQ1_S", "IQ1_M"):
            new = T.IQ2_XXS
        elif ft in ("IQ2_S", "IQ2_M"):
            new = T.IQ3_S
    return new


def _attn_v_type(s: _State, new: GGMLType, ft: str) -> GGMLType:
    m, i = s.model, s.i_attention_wv
    if ft == "Q2_K":
        new = T.Q4_K if m.n_gqa >= 4 else T.Q3_K
    elif ft == "Q2_K_S" and m.n_gqa >= 4:
        new = T.Q4_K
    elif ft == "IQ3_XXS":
        new = T.Q4_K if m.n_gqa >= 4 else (T.IQ3_S if not s.has_imatrix else T.IQ3_XXS)
    elif (ft in ("IQ3_XS", "IQ3_S") and m.n_gqa >= 4) or ft == "IQ3_M":
        new = T.Q4_K
    elif ft == "Q3_K_M":
        new = T.Q5_K if i < 2 else T.Q4_K
    elif ft == "Q3_K_L" or (ft in ("IQ4_NL", "IQ4_XS") and m.n_gqa >= 4):
        new = T.Q5_K
    elif ft in ("Q4_K_M", "Q5_K_M") and use_more_bits(i, s.n_attention_wv):
        new = T.Q6_K
    elif ft == "Q4_K_S" and i < 4:
        new = T.Q5_K
    if m.is_70b and new in (T.Q3_K, T.Q4_K):
        new = T.Q5_K
    if m.n_expert == 8:
        new = T.Q8_0
    s.i_attention_wv += 1
    return new


def _ffn_down_type(s: _State, new: GGMLType, ft: str, name: str) -> GGMLType:
    m, falcon = s.model, s.model.arch == "falcon"
    il, n = s.layer_info(s.i_ffn[FFN_DOWN], name)
    if ft == "Q2_K":
        new = T.Q3_K
    elif ft == "Q2_K_S":
        if il < n // 8:
            new = T.Q4_K
    elif ft == "IQ3_XXS" and not s.has_imatrix:
        new = T.Q4_K if il < n // 8 else T.Q3_K
    elif ft == "Q3_K_M":
        new = T.Q5_K if il < n // 16 else T.Q4_K if not falcon or use_more_bits(il, n) else T.Q3_K
    elif ft == "IQ3_M" and (il < n // 8 or (m.n_expert == 8 and use_more_bits(il, n))):
        new = T.Q4_K
    elif ft == "Q3_K_L":
        new = T.Q4_K if falcon else T.Q5_K
    elif ft == "Q4_K_M":
        if falcon:
            new = T.Q6_K if il < n // 16 else T.Q5_K if use_more_bits(il, n) else T.Q4_K
        elif use_more_bits(il, n):
            new = T.Q6_K
    elif il < n // 8 and ft in ("IQ4_NL", "IQ4_XS") and not s.has_imatrix:
        new = T.Q5_K
    elif ft == "Q5_K_M" and use_more_bits(il, n):
        new = T.Q6_K
    elif ft == "Q4_K_S" and not falcon and il < n // 8:
        new = T.Q5_K
    elif ft in ("Q4_0", "Q5_0") and s.has_imatrix and il < n // 8:
        new = T.Q4_1 if ft == "Q4_0" else T.Q5_1
    s.i_ffn[FFN_DOWN] += 1
    return new


def _attn_output_type(s: _State, new: GGMLType, ft: str) -> GGMLType:
    if s.model.arch == "falcon":
        return T.Q4_K if ft == "Q3_K_L" else new
    if s.model.n_expert == 8:
        return T.Q5_K if ft in _ATTN_OUTPUT_MOE_Q5_K else new
    by_ftype = {"Q2_K": T.Q3_K, "IQ3_XXS": T.IQ3_S, "Q3_K_M": T.Q4_K, "Q3_K_L": T.Q5_K, "IQ3_M": T.Q4_K}
    return by_ftype.get(ft, new)


def _impl(s: _State, new: GGMLType, name: str, shape: tuple[int, ...], ft: str, cat: str) -> GGMLType:
    """llama_tensor_get_type_impl, branch for branch (the order of the if/else chain is the rule)."""
    m = s.model
    glm5_q8 = m.arch == "glm5-next" and ("attn_q_a" in name or "attn_q_b" in name or "nextn.eh_proj" in name)
    if glm5_q8 and new not in (T.F32, T.BF16, T.F16):  # kept at Q8_0 or above
        return T.Q8_0
    if cat == OUTPUT or (s.has_tied_embeddings and cat == TOKEN_EMBD):
        return _output_type(new, shape[0], ft, m.arch)
    if ft == "MXFP4_MOE":
        expert_role = cat in (FFN_UP, FFN_GATE, FFN_DOWN)
        is_3d = len(shape) > 2 and shape[2] > 1
        return T.MXFP4 if is_3d and (m.arch != "bailingmoe3" or expert_role) else T.Q8_0
    if cat == TOKEN_EMBD:
        return _token_embd_type(new, ft)
    if ft in _IQ2_FAMILY:
        return _iq2_family_type(s, new, ft, cat)
    if cat in _ATTN_V_LIKE:  # attn_qkv is here too: the ATTENTION_QKV branch further down is never reached
        return _attn_v_type(s, new, ft)
    if cat == ATTN_K:
        if m.n_expert == 8:
            return T.Q8_0
        return {"IQ3_XS": T.IQ3_XXS, "IQ3_XXS": T.IQ2_S}.get(ft, new)
    if cat == ATTN_Q:
        return {"IQ3_XS": T.IQ3_XXS, "IQ3_XXS": T.IQ2_S}.get(ft, new)
    if cat == FFN_DOWN:
        return _ffn_down_type(s, new, ft, name)
    if cat == ATTN_OUTPUT:
        return _attn_output_type(s, new, ft)
    if cat in (FFN_GATE, FFN_UP):
        il, n = s.layer_info(s.i_ffn[cat], name)
        if ft == "IQ3_XS" and n // 8 <= il < 7 * n // 8:
            new = T.IQ3_XXS
        s.i_ffn[cat] += 1
    return new


# --- tensor_type_fallback, tensor_requires_imatrix -----------------------------------------------------------------

_FALLBACK: dict[GGMLType, GGMLType] = {
    **dict.fromkeys((T.IQ1_S, T.IQ1_M, T.IQ2_XXS, T.IQ2_XS, T.IQ2_S, T.IQ3_XXS, T.IQ3_S, T.IQ4_XS), T.IQ4_NL),
    **dict.fromkeys((T.Q2_0, T.Q2_K, T.Q3_K, T.TQ1_0, T.TQ2_0), T.Q4_0),
    T.Q4_K: T.Q5_0,
    T.Q5_K: T.Q5_1,
    T.Q6_K: T.Q8_0,
}


def fallback_type(target: GGMLType, ne0: int) -> GGMLType:
    """tensor_type_fallback: a type whose blocks fit rows of ``ne0``; F16 when even the 32-block one does not."""
    block = BLOCKS[target][0]
    if ne0 % block == 0:
        return target
    if target in _FALLBACK:
        out = _FALLBACK[target]
    elif block <= 32:
        out = target
    else:
        raise ValueError(f"no tensor type fallback is defined for type {target.name.lower()}")
    return out if ne0 % BLOCKS[out][0] == 0 else T.F16


def requires_imatrix(name: str, t: GGMLType, ft: str, cat: str | None = None) -> bool:
    """tensor_requires_imatrix; ``cat`` is the name's category when the caller already has it."""
    if (category(name) if cat is None else cat) in (OUTPUT, TOKEN_EMBD):
        return False
    if t in (T.IQ3_XXS, T.IQ2_XXS, T.IQ2_XS, T.IQ2_S, T.IQ1_M, T.IQ1_S):
        return True
    return t == T.Q2_K and ft == "Q2_K_S"


# --- the whole model -----------------------------------------------------------------------------------------------


def _target_name(target: str | QuantType) -> str:
    name = target.name if isinstance(target, QuantType) else quant_type(target).name
    if name not in DEFAULT_TYPE:
        raise ValueError(f"llama.cpp has no default tensor type for {name}")
    return name


Override = tuple[str, GGMLType]  # llama-quantize --tensor-type PATTERN=TYPE: a regex searched in the name


@dataclass(frozen=True)
class TensorLayout:
    """What ``predict`` reads from a tensor list whatever the target type, in llama.cpp's write order.

    Why apart: the ladder predicts every catalogue model at seven quant types, and the sort into write order,
    the substring searches of ``allows_quantization`` and ``category`` and the counts behind ``_State`` were
    three quarters of a prediction's time, the same for all seven. Made once per tensor list (``tensor_layout``),
    they leave each target only the per-tensor type rules.
    """

    arch: str  # allows_quantization reads it
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    src_types: tuple[GGMLType, ...]
    quantizable: tuple[bool, ...]  # allows_quantization
    categories: tuple[str, ...]
    rows: tuple[int, ...]  # the product of shape[1:]: a tensor's bytes are rows × one row's
    n_attention_wv: int
    has_tied_embeddings: bool
    info_bytes: int  # the header's tensor infos (QuantPrediction.tensor_info_bytes): names and shapes only


def tensor_layout(tensors: Iterable[TensorLike], arch: str) -> TensorLayout:
    """The target-independent part of a prediction for these tensors (a repeated name: the last one counts)."""
    by_name = {t.name: t for t in tensors}
    names = tuple(write_order(by_name))
    shapes = tuple(tuple(int(d) for d in by_name[n].shape) for n in names)
    cats = tuple(category(n) for n in names)
    rows = []
    for shape in shapes:
        r = 1
        for d in shape[1:]:
            r *= d
        rows.append(r)
    return TensorLayout(
        arch=arch,
        names=names,
        shapes=shapes,
        src_types=tuple(GGMLType(by_name[n].ggml_type) for n in names),
        quantizable=tuple(allows_quantization(n, sh, arch) for n, sh in zip(names, shapes, strict=True)),
        categories=cats,
        rows=tuple(rows),
        n_attention_wv=sum(c in _ATTN_V_LIKE for c in cats),
        has_tied_embeddings=OUTPUT not in cats,
        info_bytes=sum(tensor_info_bytes(n, sh) for n, sh in zip(names, shapes, strict=True)),
    )


def choose_types(
    layout: TensorLayout,
    model: ModelFacts,
    target: str | QuantType,
    *,
    has_imatrix: bool = False,
    overrides: Sequence[Override] = (),
) -> tuple[str, list[GGMLType], list[bool]]:
    """(target name, each tensor's type, whether tensor_type_fallback replaced it), in the layout's order.

    ``predict`` without the TensorPlan records: what a caller that builds its own records (the ladder's
    virtual headers) needs, so that each tensor is made once, not twice.
    """
    ft = _target_name(target)
    default = DEFAULT_TYPE[ft]
    if model.arch != layout.arch:
        raise ValueError(f"the layout was made for {layout.arch!r}, not {model.arch!r}")
    state = _State(model, layout, has_imatrix)
    manual = [(re.compile(pattern), kind) for pattern, kind in overrides]
    quantized = default not in NOT_QUANTIZED
    types: list[GGMLType] = []
    fell: list[bool] = []
    for name, shape, src, allowed, cat in zip(
        layout.names, layout.shapes, layout.src_types, layout.quantizable, layout.categories, strict=True
    ):
        if not allowed:
            types.append(src)
            fell.append(False)
            continue
        new, fell_back = default, False
        if quantized:
            chosen = next((kind for pattern, kind in manual if pattern.search(name)), None) if manual else None
            new = chosen if chosen is not None else _impl(state, default, name, shape, ft, cat)
            fell_back = shape[0] % BLOCKS[new][0] != 0
            if fell_back:
                new = fallback_type(new, shape[0])
        types.append(new)
        fell.append(fell_back)
    return ft, types, fell


def layout_bytes(layout: TensorLayout, i: int, kind: GGMLType) -> int:
    """ggml_nbytes of the layout's ``i``-th tensor at type ``kind`` (ggml_types.tensor_bytes, rows kept)."""
    shape = layout.shapes[i]
    return layout.rows[i] * row_bytes(kind, shape[0] if shape else 1)


def predict(
    tensors: Iterable[TensorLike] | TensorLayout,
    model: ModelFacts,
    target: str | QuantType,
    *,
    has_imatrix: bool = False,
    overrides: Sequence[Override] = (),
) -> QuantPrediction:
    """The output file's tensors when llama_model_quantize makes ``target`` from a model with these tensors.

    Tensors the rules do not quantize keep their source ``ggml_type`` (F32 norms stay F32, even in an F16 file).
    ``overrides`` are llama.cpp's ``tensor_type_patterns`` (``llama_tensor_get_type``): for a quantized target
    only, the first pattern found in a tensor's name sets its type instead of the rules (whose counters then skip
    it), and the fallback for odd rows still applies.
    ``tensors`` may be a ``tensor_layout`` of them, made once for several targets.
    ValueError when llama.cpp itself would refuse (a type with no fallback for an odd row length, a MoE tensor
    whose layer cannot be read from its name).
    """
    layout = tensors if isinstance(tensors, TensorLayout) else tensor_layout(tensors, model.arch)
    ft, types, fell = choose_types(layout, model, target, has_imatrix=has_imatrix, overrides=overrides)
    plans = tuple(
        TensorPlan(
            name,
            layout.shapes[i],
            kind,
            layout_bytes(layout, i, kind),
            layout.quantizable[i],
            fell[i],
            layout.quantizable[i] and requires_imatrix(name, kind, ft, layout.categories[i]),
        )
        for i, (name, kind) in enumerate(zip(layout.names, types, strict=True))
    )
    return QuantPrediction(ft, plans)


# --- the whole file --------------------------------------------------------------------------------------------------

_HEADER_FIXED = 4 + 4 + 8 + 8  # magic, version, n_tensors, n_kv
_ADDED_KEYS = ("general.quantization_version", "general.file_type")  # set as u32 by llama_model_quantize


def output_metadata_bytes(header: GGUFHeader) -> int:
    """Bytes of the key/value section llama.cpp will write for a quantization of this source file.

    It copies every source key and sets general.quantization_version and general.file_type as u32: a key the
    source lacks adds its entry; one it has (gguf-py writes both as u32) keeps its size. The source's own section
    is what its header spans less the fixed fields and the tensor infos.
    """
    infos = sum(tensor_info_bytes(t.name, t.shape) for t in header.tensors)
    kv = header.header_bytes_read - _HEADER_FIXED - infos
    for key in _ADDED_KEYS:
        if key not in header.metadata:
            kv += 8 + len(key.encode()) + 4 + 4  # key length + key, value type, u32 value
    return kv


def file_bytes(prediction: QuantPrediction, metadata_bytes: int, alignment: int = GGUF_ALIGNMENT) -> int:
    """The size of the written file: header (fixed fields, ``metadata_bytes`` of key/values, tensor infos)
    padded to the alignment, then each tensor's data padded to it."""
    meta = _HEADER_FIXED + metadata_bytes + prediction.tensor_info_bytes()
    return _pad(meta, alignment) + prediction.data_bytes(alignment)


def predict_from_header(
    header: GGUFHeader, target: str | QuantType, *, has_imatrix: bool = False
) -> tuple[QuantPrediction, int]:
    """The prediction for a local or remote GGUF's header, and the exact bytes of the file it would make."""
    prediction = predict(header.tensors, model_facts(header), target, has_imatrix=has_imatrix)
    return prediction, file_bytes(prediction, output_metadata_bytes(header))
