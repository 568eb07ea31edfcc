"""The tensor list of a model from its hyper-parameters alone: what convert_hf_to_gguf.py writes and llama.cpp
loads, so that a catalogue entry (a config.json's numbers) turns into exact bytes per quant type through
type_rules.py before any GGUF is downloaded.

Covered architectures (``ARCHES``), each as llama.cpp b11312's ``load_arch_tensors`` creates it:

* ``llama``: token_embd, output_norm, optional output (untied), per block attn_norm, attn_q/k/v, attn_output,
  ffn_norm and ffn_gate/up/down; with experts (Mixtral-style) ffn_gate_inp and ffn_{gate,up,down}_exps instead;
  optional rope_freqs (Llama 3.1+ rope scaling).
* ``smollm3``, ``granite``: llama's (smollm3's NoPE layers and granite's scales change no tensor).
* ``gemma2``: llama's attention with a head size of its own, post_attention_norm and post_ffw_norm; always tied.
* ``olmo2``: always untied; llama's projections without attn_norm and ffn_norm, attn_q_norm/attn_k_norm over
  the whole projection (n_embd, n_head_kv × head), post_attention_norm and post_ffw_norm.
* ``qwen2``: llama's, plus the q/k/v biases.
* ``qwen3``: llama's, with a head size of its own (q is head_dim × n_head wide) and attn_q_norm/attn_k_norm.
* ``qwen3moe``: qwen3's attention with ffn_gate_inp and ffn_{gate,up,down}_exps of n_ff_exp.
* ``gemma3``: qwen3's attention (head_dim, q/k norms), post_attention_norm and post_ffw_norm; always tied.
* ``phi3``: fused attn_qkv, and ffn_up holding gate and up (2 × n_ff wide); optional rope_factors_long/short.
* ``olmoe`` (models/olmoe.cpp): always untied; llama's attention (q and attn_output n_embd wide) with
  attn_q_norm/attn_k_norm of n_embd (not of a head); ffn_norm, ffn_gate_inp and ffn_{gate,up,down}_exps of n_ff_exp
  (OLMoE's config has only ``intermediate_size``, so n_ff_exp = n_ff).
* ``gpt-oss`` (models/openai-moe.cpp, llama.cpp's LLM_ARCH_OPENAI_MOE): always untied; head_dim attention with
  q/k/v biases and an attn_output bias, attn_sinks (one per head), post_attention_norm (the norm before the
  experts; there is no ffn_norm), ffn_gate_inp with its bias, and ffn_{gate,up,down}_exps of n_ff_exp each with a
  2-D bias (n_ff_exp or n_embd × n_expert). Sliding-window alternation changes no tensor.
* ``deepseek2`` (models/deepseek2.cpp, MLA as DeepSeek-V2-Lite: q_lora_rank 0): attn_q, attn_kv_a_mqa (rank +
  rope), attn_kv_a_norm, attn_k_b and attn_v_b (3-D, one slice per head), attn_output; ``n_dense_lead`` dense
  layers, then ffn_gate_inp, the routed ``*_exps`` and ffn_{gate,up,down}_shexp (n_expert_shared × n_ff_exp wide).
* ``lfm2`` (models/lfm2.cpp, hybrid): token_embd_norm as the final norm; each layer ffn_norm, a gated FFN and
  attn_norm, then either attention (q/k/v/output, per-head q/k norms) or a short convolution (shortconv.conv of
  conv_L_cache × n_embd in F32, in_proj of 3 × n_embd, out_proj), as ``attn_layers`` says.
* ``lfm2moe`` (models/lfm2moe.cpp): lfm2's, with ffn_gate_inp, the routed ``*_exps`` and exp_probs_b in the FFN's
  place after ``n_dense_lead`` dense layers.

Source types are what convert_hf_to_gguf.py writes: 1-D tensors, biases (any tensor not named ``*.weight``, the
2-D expert biases too) and ffn_gate_inp in F32, other weights in ``weight_type`` (F16 unless said). gpt-oss's
converter keeps the experts in MXFP4 as OpenAI publishes them; here they are ``weight_type`` like the rest, which
changes no prediction: llama_model_quantize chooses every ``*.weight`` tensor of 2 or more dimensions anew from
its name and shape (an F16 target makes the experts F16), and only copies the others. Only the tensors' bytes
follow from this; the key/value metadata (mostly the tokenizer) must come from elsewhere
(type_rules.output_metadata_bytes of any GGUF with the same tokenizer).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from sizewise.core.arch.shape import ModelShape
from sizewise.core.gguf.ggml_types import NOT_QUANTIZED, GGMLType, tensor_bytes
from sizewise.core.quant.type_rules import (
    DEFAULT_TYPE,
    ModelFacts,
    Override,
    QuantPrediction,
    TensorLayout,
    TensorPlan,
    choose_types,
    file_bytes,
    predict,
    tensor_layout,
)
from sizewise.core.quant.types import QuantType


@dataclass(frozen=True)
class HyperParams:
    """A model's shape, as config.json gives it (names as llama.cpp's hparams)."""

    arch: str
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    n_vocab: int
    head_dim: int = 0  # 0: n_embd // n_head (qwen3 and gemma3 set their own)
    tied_embeddings: bool = True  # no output.weight: the output layer reuses token_embd
    n_expert: int = 0
    n_expert_used: int = 0
    n_ff_exp: int = 0  # one expert's width; 0: n_ff (llama) or n_ff / n_expert_used (qwen3moe)
    rope_tensors: bool = False  # llama's rope_freqs, phi3's rope_factors_long/short (head_dim / 2 each)
    weight_type: GGMLType = GGMLType.F16
    # lfm2: the layers that attend (the others are short-convolution layers; config.json's layer_types, the GGUF's
    # per-layer head_count_kv of 0 for a conv layer) and the convolution's length (conv_L_cache)
    attn_layers: tuple[int, ...] = ()
    conv_l_cache: int = 3
    # deepseek2 (MLA): the compressed KV's rank, the RoPE part of a head (head_dim is nope + rope), the value head
    # (v_head_dim), shared experts beside the routed ones and the leading dense layers (first_k_dense_replace)
    kv_lora_rank: int = 0
    rope_dim: int = 0
    v_head_dim: int = 0
    n_expert_shared: int = 0
    n_dense_lead: int = 0
    q_lora_rank: int = 0  # deepseek2: compressed queries (attn_q_a, its norm, attn_q_b) instead of attn_q; 0 as Lite
    expert_bias: bool = False  # deepseek2: the router's selection bias (ffn_exp_probs_b, DeepSeek-V3's)

    @property
    def n_embd_head(self) -> int:
        return self.head_dim or self.n_embd // self.n_head

    @property
    def expert_width(self) -> int:
        if self.n_ff_exp:
            return self.n_ff_exp
        if self.arch == "qwen3moe" and self.n_expert_used:
            return self.n_ff // self.n_expert_used
        return self.n_ff

    @classmethod
    def from_shape(cls, shape: ModelShape, n_vocab: int | None = None) -> HyperParams:
        """The catalogue's shape (core/arch) as the fields the tensor list needs; ``n_vocab`` overrides the
        config's where llama.cpp's converter writes another (Gemma 3 drops 64 padding rows)."""
        return cls(
            arch=shape.arch,
            n_layer=shape.n_layer,
            n_embd=shape.n_embd,
            n_ff=shape.n_ff,
            n_head=shape.n_head,
            n_head_kv=shape.n_head_kv,
            n_vocab=n_vocab or shape.n_vocab,
            head_dim=shape.head_dim,
            tied_embeddings=shape.tied_embeddings,
            n_expert=shape.n_expert,
            n_expert_used=shape.n_expert_used,
            n_ff_exp=shape.n_ff_exp,
        )

    def facts(self) -> ModelFacts:
        return ModelFacts(self.arch, self.n_layer, self.n_head, self.n_head_kv, self.n_expert)


@dataclass(frozen=True)
class Tensor:
    """One tensor as a GGUF header lists it: shape in ggml order (``shape[0]`` is the row length)."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int


class _Builder:
    def __init__(self, hp: HyperParams) -> None:
        self.hp = hp
        self.out: list[Tensor] = []

    def add(self, name: str, *shape: int) -> None:
        router = name.endswith("ffn_gate_inp.weight")
        kind = GGMLType.F32 if len(shape) == 1 or router or not name.endswith(".weight") else self.hp.weight_type
        self.out.append(Tensor(name, tuple(shape), kind))

    def head(self) -> None:
        hp = self.hp
        self.add("token_embd.weight", hp.n_embd, hp.n_vocab)
        self.add("output_norm.weight", hp.n_embd)
        if not hp.tied_embeddings:
            self.add("output.weight", hp.n_embd, hp.n_vocab)

    def attention(self, b: str, *, biases: bool = False, qk_norm: bool = False) -> None:
        hp, d = self.hp, self.hp.n_embd_head
        q, kv = d * hp.n_head, d * hp.n_head_kv
        self.add(b + "attn_norm.weight", hp.n_embd)
        self.add(b + "attn_q.weight", hp.n_embd, q)
        self.add(b + "attn_k.weight", hp.n_embd, kv)
        self.add(b + "attn_v.weight", hp.n_embd, kv)
        self.add(b + "attn_output.weight", q, hp.n_embd)
        if biases:
            self.add(b + "attn_q.bias", q)
            self.add(b + "attn_k.bias", kv)
            self.add(b + "attn_v.bias", kv)
        if qk_norm:
            self.add(b + "attn_q_norm.weight", d)
            self.add(b + "attn_k_norm.weight", d)

    def ffn(self, b: str) -> None:
        hp = self.hp
        self.add(b + "ffn_norm.weight", hp.n_embd)
        if hp.n_expert:
            w = hp.expert_width
            self.add(b + "ffn_gate_inp.weight", hp.n_embd, hp.n_expert)
            self.add(b + "ffn_gate_exps.weight", hp.n_embd, w, hp.n_expert)
            self.add(b + "ffn_up_exps.weight", hp.n_embd, w, hp.n_expert)
            self.add(b + "ffn_down_exps.weight", w, hp.n_embd, hp.n_expert)
            return
        self.add(b + "ffn_gate.weight", hp.n_embd, hp.n_ff)
        self.add(b + "ffn_up.weight", hp.n_embd, hp.n_ff)
        self.add(b + "ffn_down.weight", hp.n_ff, hp.n_embd)


def _llama(t: _Builder) -> None:
    t.head()
    if t.hp.rope_tensors:
        t.add("rope_freqs.weight", t.hp.n_embd_head // 2)
    for i in range(t.hp.n_layer):
        t.attention(f"blk.{i}.")
        t.ffn(f"blk.{i}.")


def _qwen2(t: _Builder) -> None:
    t.head()
    for i in range(t.hp.n_layer):
        t.attention(f"blk.{i}.", biases=True)
        t.ffn(f"blk.{i}.")


def _qwen3(t: _Builder) -> None:
    t.head()
    for i in range(t.hp.n_layer):
        t.attention(f"blk.{i}.", qk_norm=True)
        t.ffn(f"blk.{i}.")


def _gemma2(t: _Builder) -> None:
    t.head()
    for i in range(t.hp.n_layer):
        b = f"blk.{i}."
        t.attention(b)
        t.add(b + "post_attention_norm.weight", t.hp.n_embd)
        t.ffn(b)
        t.add(b + "post_ffw_norm.weight", t.hp.n_embd)


def _olmo2(t: _Builder) -> None:
    hp = t.hp
    t.head()
    kv = hp.n_embd_head * hp.n_head_kv
    for i in range(hp.n_layer):
        b = f"blk.{i}."
        t.add(b + "attn_q.weight", hp.n_embd, hp.n_embd)
        t.add(b + "attn_k.weight", hp.n_embd, kv)
        t.add(b + "attn_v.weight", hp.n_embd, kv)
        t.add(b + "attn_output.weight", hp.n_embd, hp.n_embd)
        t.add(b + "attn_q_norm.weight", hp.n_embd)
        t.add(b + "attn_k_norm.weight", kv)
        t.add(b + "post_attention_norm.weight", hp.n_embd)
        t.add(b + "ffn_gate.weight", hp.n_embd, hp.n_ff)
        t.add(b + "ffn_up.weight", hp.n_embd, hp.n_ff)
        t.add(b + "ffn_down.weight", hp.n_ff, hp.n_embd)
        t.add(b + "post_ffw_norm.weight", hp.n_embd)


def _gemma3(t: _Builder) -> None:
    t.head()
    for i in range(t.hp.n_layer):
        b = f"blk.{i}."
        t.attention(b, qk_norm=True)
        t.add(b + "post_attention_norm.weight", t.hp.n_embd)
        t.ffn(b)
        t.add(b + "post_ffw_norm.weight", t.hp.n_embd)


def _phi3(t: _Builder) -> None:
    hp = t.hp
    t.head()
    if hp.rope_tensors:
        t.add("rope_factors_long.weight", hp.n_embd_head // 2)
        t.add("rope_factors_short.weight", hp.n_embd_head // 2)
    kv = hp.n_embd_head * hp.n_head_kv
    for i in range(hp.n_layer):
        b = f"blk.{i}."
        t.add(b + "attn_norm.weight", hp.n_embd)
        t.add(b + "attn_qkv.weight", hp.n_embd, hp.n_embd + 2 * kv)
        t.add(b + "attn_output.weight", hp.n_embd, hp.n_embd)
        t.add(b + "ffn_norm.weight", hp.n_embd)
        t.add(b + "ffn_up.weight", hp.n_embd, 2 * hp.n_ff)
        t.add(b + "ffn_down.weight", hp.n_ff, hp.n_embd)


def _olmoe(t: _Builder) -> None:
    hp = t.hp
    t.head()
    for i in range(hp.n_layer):
        b = f"blk.{i}."
        t.attention(b)
        t.add(b + "attn_q_norm.weight", hp.n_embd)
        t.add(b + "attn_k_norm.weight", hp.n_embd)
        t.ffn(b)


def _lfm2moe(t: _Builder) -> None:
    """LFM2's MoE sibling (models/lfm2moe.cpp, LFM2-8B-A1B): lfm2's layers with, after ``n_dense_lead`` dense ones,
    ffn_gate_inp, the routed experts and the selection bias exp_probs_b in the FFN's place."""
    _lfm2(t)
    hp = t.hp
    out = []
    for tensor in t.out:
        m = re.match(r"blk\.(\d+)\.ffn_(gate|up|down)\.weight$", tensor.name)
        if m is None or int(m.group(1)) < hp.n_dense_lead:
            out.append(tensor)
            continue
        b, kind = f"blk.{m.group(1)}.", m.group(2)
        w, e = hp.expert_width, hp.n_expert
        if kind == "gate":
            out.append(Tensor(b + "ffn_gate_inp.weight", (hp.n_embd, e), GGMLType.F32))
            out.append(Tensor(b + "ffn_gate_exps.weight", (hp.n_embd, w, e), hp.weight_type))
        elif kind == "down":
            out.append(Tensor(b + "ffn_down_exps.weight", (w, hp.n_embd, e), hp.weight_type))
        else:
            out.append(Tensor(b + "ffn_up_exps.weight", (hp.n_embd, w, e), hp.weight_type))
            out.append(Tensor(b + "exp_probs_b.bias", (e,), GGMLType.F32))
    t.out = out


def _lfm2(t: _Builder) -> None:
    """LFM2 (models/lfm2.cpp): the final norm is named token_embd_norm; every layer has attn_norm (the "operator
    norm"), ffn_norm and a dense gated FFN; attention layers add q/k/v/output and per-head q/k norms, the others a
    short convolution (its kernel F32, as the converter writes it) between an in_proj of 3 × n_embd and an
    out_proj."""
    hp = t.hp
    t.add("token_embd.weight", hp.n_embd, hp.n_vocab)
    t.add("token_embd_norm.weight", hp.n_embd)
    if not hp.tied_embeddings:
        t.add("output.weight", hp.n_embd, hp.n_vocab)
    d, kv = hp.n_embd_head, hp.n_embd_head * hp.n_head_kv
    for i in range(hp.n_layer):
        b = f"blk.{i}."
        t.add(b + "ffn_norm.weight", hp.n_embd)
        t.add(b + "ffn_gate.weight", hp.n_embd, hp.n_ff)
        t.add(b + "ffn_down.weight", hp.n_ff, hp.n_embd)
        t.add(b + "ffn_up.weight", hp.n_embd, hp.n_ff)
        t.add(b + "attn_norm.weight", hp.n_embd)
        if i in hp.attn_layers:
            t.add(b + "attn_q_norm.weight", d)
            t.add(b + "attn_k_norm.weight", d)
            t.add(b + "attn_q.weight", hp.n_embd, hp.n_embd)
            t.add(b + "attn_k.weight", hp.n_embd, kv)
            t.add(b + "attn_v.weight", hp.n_embd, kv)
            t.add(b + "attn_output.weight", hp.n_embd, hp.n_embd)
        else:
            t.out.append(Tensor(b + "shortconv.conv.weight", (hp.conv_l_cache, hp.n_embd), GGMLType.F32))
            t.add(b + "shortconv.in_proj.weight", hp.n_embd, 3 * hp.n_embd)
            t.add(b + "shortconv.out_proj.weight", hp.n_embd, hp.n_embd)


def _deepseek2(t: _Builder) -> None:
    """DeepSeek-V2-Lite's layout (models/deepseek2.cpp with MLA, q_lora_rank 0): attn_q of n_head × head_dim,
    attn_kv_a_mqa to the compressed KV plus the RoPE part, attn_kv_a_norm, the converter's split attn_k_b
    (nope × rank × n_head) and attn_v_b (rank × v_head × n_head), attn_output; the leading layers a dense FFN, the
    others the router, the routed experts and one FFN of n_expert_shared × n_ff_exp for the shared experts."""
    hp = t.hp
    t.head()
    rank, rope, nope, v = hp.kv_lora_rank, hp.rope_dim, hp.n_embd_head - hp.rope_dim, hp.v_head_dim
    shared = hp.expert_width * hp.n_expert_shared
    for i in range(hp.n_layer):
        b = f"blk.{i}."
        t.add(b + "attn_norm.weight", hp.n_embd)
        if hp.q_lora_rank:
            t.add(b + "attn_q_a_norm.weight", hp.q_lora_rank)
        t.add(b + "attn_kv_a_norm.weight", rank)
        if hp.q_lora_rank:
            t.add(b + "attn_q_a.weight", hp.n_embd, hp.q_lora_rank)
            t.add(b + "attn_q_b.weight", hp.q_lora_rank, hp.n_head * hp.n_embd_head)
        else:
            t.add(b + "attn_q.weight", hp.n_embd, hp.n_head * hp.n_embd_head)
        t.add(b + "attn_kv_a_mqa.weight", hp.n_embd, rank + rope)
        t.add(b + "attn_k_b.weight", nope, rank, hp.n_head)
        t.add(b + "attn_v_b.weight", rank, v, hp.n_head)
        t.add(b + "attn_output.weight", hp.n_head * v, hp.n_embd)
        t.add(b + "ffn_norm.weight", hp.n_embd)
        if i < hp.n_dense_lead:
            t.add(b + "ffn_gate.weight", hp.n_embd, hp.n_ff)
            t.add(b + "ffn_up.weight", hp.n_embd, hp.n_ff)
            t.add(b + "ffn_down.weight", hp.n_ff, hp.n_embd)
            continue
        w, e = hp.expert_width, hp.n_expert
        t.add(b + "ffn_gate_inp.weight", hp.n_embd, e)
        if hp.expert_bias:
            t.add(b + "exp_probs_b.bias", e)
        t.add(b + "ffn_gate_exps.weight", hp.n_embd, w, e)
        t.add(b + "ffn_up_exps.weight", hp.n_embd, w, e)
        t.add(b + "ffn_down_exps.weight", w, hp.n_embd, e)
        t.add(b + "ffn_gate_shexp.weight", hp.n_embd, shared)
        t.add(b + "ffn_up_shexp.weight", hp.n_embd, shared)
        t.add(b + "ffn_down_shexp.weight", shared, hp.n_embd)


def _gpt_oss(t: _Builder) -> None:
    hp = t.hp
    t.head()
    w, e = hp.expert_width, hp.n_expert
    for i in range(hp.n_layer):
        b = f"blk.{i}."
        t.attention(b, biases=True)
        t.add(b + "attn_output.bias", hp.n_embd)
        t.add(b + "attn_sinks.weight", hp.n_head)
        t.add(b + "post_attention_norm.weight", hp.n_embd)
        t.add(b + "ffn_gate_inp.weight", hp.n_embd, e)
        t.add(b + "ffn_gate_inp.bias", e)
        t.add(b + "ffn_gate_exps.weight", hp.n_embd, w, e)
        t.add(b + "ffn_up_exps.weight", hp.n_embd, w, e)
        t.add(b + "ffn_down_exps.weight", w, hp.n_embd, e)
        t.add(b + "ffn_gate_exps.bias", w, e)
        t.add(b + "ffn_up_exps.bias", w, e)
        t.add(b + "ffn_down_exps.bias", hp.n_embd, e)


_BUILDERS: dict[str, Callable[[_Builder], None]] = {
    "llama": _llama,
    "qwen2": _qwen2,
    "qwen3": _qwen3,
    "qwen3moe": _qwen3,  # the experts come from n_expert, as for llama
    "gemma3": _gemma3,
    "phi3": _phi3,
    "olmoe": _olmoe,
    "gpt-oss": _gpt_oss,
    "smollm3": _llama,  # llama's tensors; every 4th layer skips RoPE, which changes no tensor
    "granite": _llama,  # llama's tensors; its scales are header keys
    "gemma2": _gemma2,
    "olmo2": _olmo2,
    "lfm2": _lfm2,
    "lfm2moe": _lfm2moe,
    "deepseek2": _deepseek2,
}
UNTIED_ARCHES = ("olmoe", "gpt-oss", "olmo2")  # llama.cpp requires output.weight whatever the config says
ARCHES: tuple[str, ...] = tuple(_BUILDERS)


def estimate_metadata_bytes(n_vocab: int, *, n_merges: int = 0, scores: bool = False) -> int:
    """The key/value bytes of a GGUF when none of the model's GGUFs can be read: mostly the tokenizer.

    Each token costs its string (8 + about 8 bytes) and a 4-byte type, plus a 4-byte score for SentencePiece
    vocabularies (``scores``); each BPE merge about 16.5 bytes; other keys and a chat template about 4 KiB.
    Within a few percent of the real section (SmolLM2 +1.4 %, Gemma 3 -3.3 %: its chat template is long),
    which is a few tenths of a percent of a small model's file and nothing of a large one's. Exact:
    type_rules.output_metadata_bytes of any GGUF with the same tokenizer.
    """
    return n_vocab * (16 + 4 + (4 if scores else 0)) + int(n_merges * 16.5) + 4096


def problem(hp: HyperParams) -> str | None:
    """Why these numbers do not describe a model of a covered architecture, or None."""
    if hp.arch not in _BUILDERS:
        return f"architecture {hp.arch!r} is not covered (covered: {', '.join(ARCHES)})"
    if min(hp.n_layer, hp.n_embd, hp.n_ff, hp.n_head, hp.n_head_kv, hp.n_vocab) < 1:
        return "every dimension must be at least 1"
    if hp.n_head % hp.n_head_kv:
        return "n_head must divide by n_head_kv"
    if not hp.head_dim and hp.n_embd % hp.n_head:
        return "n_embd must divide by n_head when head_dim is not given"
    if hp.arch in ("qwen3moe", "olmoe", "gpt-oss") and not (hp.n_expert and hp.n_expert_used):
        return f"{hp.arch} needs n_expert and n_expert_used"
    if hp.arch in UNTIED_ARCHES and hp.tied_embeddings:
        return f"{hp.arch} has no tied embeddings (llama.cpp requires output.weight)"
    if hp.arch in ("qwen2", "phi3", "gemma2", "gemma3", "olmo2", "lfm2") and hp.n_expert:
        return f"{hp.arch} has no experts"
    if hp.arch == "deepseek2" and not (
        hp.kv_lora_rank and 0 < hp.rope_dim < hp.n_embd_head and hp.v_head_dim and hp.n_head_kv == 1
    ):
        return "deepseek2 needs kv_lora_rank, rope_dim below head_dim, v_head_dim and one KV head (MLA)"
    if hp.arch == "deepseek2" and hp.n_dense_lead < hp.n_layer and not (hp.n_expert and hp.n_expert_used):
        return "deepseek2 needs n_expert and n_expert_used for its mixture-of-experts layers"
    if hp.arch == "lfm2moe" and not (hp.n_expert and hp.n_expert_used):
        return "lfm2moe needs n_expert and n_expert_used"
    if hp.arch in ("lfm2", "lfm2moe") and not (hp.attn_layers and hp.conv_l_cache > 1):
        return f"{hp.arch} needs its attention layers and a convolution length above 1"
    if any(not 0 <= i < hp.n_layer for i in hp.attn_layers):
        return "an attention layer index is outside the model"
    return None


def tensors(hp: HyperParams) -> list[Tensor]:
    """Every tensor of the model, as convert_hf_to_gguf.py names and shapes them; ValueError if not covered."""
    reason = problem(hp)
    if reason:
        raise ValueError(reason)
    builder = _Builder(hp)
    _BUILDERS[hp.arch](builder)
    return builder.out


def predict_for(hp: HyperParams, target: str | QuantType) -> QuantPrediction:
    """type_rules.predict for a model known only by its hyper-parameters."""
    return predict(tensors(hp), hp.facts(), target)


# What every published GGUF of an architecture does that llama.cpp's defaults do not, as llama-quantize
# --tensor-type overrides. gpt-oss: OpenAI released the experts in MXFP4 and the converter keeps them so; the
# quantized files people download (ggml-org's MXFP4, unsloth's Q2_K … Q8_0 and F16) keep them in MXFP4 too
# and quantize only the rest, whereas llama_model_quantize's own rules would make the 2880-wide experts Q5_0 or
# Q8_0 at Q4_K_M (15.8 GB against 11.6 GB for gpt-oss-20b).
PUBLISHED_OVERRIDES: dict[str, tuple[Override, ...]] = {"gpt-oss": ((r"_exps\.weight$", GGMLType.MXFP4),)}


@functools.lru_cache(maxsize=64)
def published_layout(hp: HyperParams) -> TensorLayout:
    """``tensors(hp)`` as type_rules.TensorLayout, made once per model (ValueError if not covered).

    Why cached: the ladder asks for every catalogue model at seven quant types, and the tensor list, its write
    order and each tensor's category are the same for all seven (the catalogue has ~30 models).
    """
    return tensor_layout(tensors(hp), hp.arch)


def predict_published(hp: HyperParams, target: str | QuantType) -> QuantPrediction:
    """The files published for this architecture at ``target``: predict_for with the arch's PUBLISHED_OVERRIDES.

    llama.cpp applies overrides to quantized targets only; an unquantized one (F16, BF16, F32) is published as the
    converter writes it, so the overridden tensors keep their native type there too.
    """
    overrides = PUBLISHED_OVERRIDES.get(hp.arch, ())
    plan = predict(published_layout(hp), hp.facts(), target, overrides=overrides)
    if not overrides or DEFAULT_TYPE[plan.target] not in NOT_QUANTIZED:
        return plan
    patterns = [(re.compile(p), kind) for p, kind in overrides]

    def native(t: TensorPlan) -> TensorPlan:
        kind = next((k for p, k in patterns if p.search(t.name)), None)
        return t if kind is None else replace(t, ggml_type=kind, n_bytes=tensor_bytes(kind, t.shape))

    return QuantPrediction(plan.target, tuple(native(t) for t in plan.tensors))


def published_types(hp: HyperParams, target: str | QuantType) -> tuple[TensorLayout, list[GGMLType]]:
    """``predict_published``'s tensor types alone, with the layout they follow: the ladder's virtual headers
    make their own tensor records from these, which spares ~13k TensorPlan records per quant of the catalogue."""
    overrides = PUBLISHED_OVERRIDES.get(hp.arch, ())
    layout = published_layout(hp)
    ft, types, _ = choose_types(layout, hp.facts(), target, overrides=overrides)
    if overrides and DEFAULT_TYPE[ft] in NOT_QUANTIZED:
        patterns = [(re.compile(p), kind) for p, kind in overrides]
        types = [next((k for p, k in patterns if p.search(n)), t) for n, t in zip(layout.names, types, strict=True)]
    return layout, types


def predicted_file_bytes(hp: HyperParams, target: str | QuantType, metadata_bytes: int) -> int:
    """The exact file size, given the key/value bytes the file carries (type_rules.output_metadata_bytes)."""
    return file_bytes(predict_for(hp, target), metadata_bytes)
