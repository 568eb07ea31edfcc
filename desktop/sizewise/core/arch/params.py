"""Parameter counts from hyper-parameters alone: every weight and bias of the tensors llama.cpp builds for an
architecture, summed, so a catalogue entry's stored count can be checked against its own shape and a model can
be sized before its file is opened.

The count is the model as published (the transformers checkpoint of the text model), which is what model cards
quote: Qwen2.5-7B-Instruct gives 7,615,616,512, Llama-3.1-8B 8,030,261,248, SmolLM2-135M 134,515,008 — the
same as the GGUF's tensors, except that llama.cpp adds a 64-float ``rope_freqs`` table for Llama 3.1+ and drops
Gemma 3's padding rows (262,208 → 262,144 token embeddings). Vision towers are not counted: a GGUF for
llama.cpp holds the text model only.

Per layer: attention (Q, K, V, output, with the biases and norms the architecture has), two RMS norms (four for
Gemma's norms before and after each block), and the feed-forward (gate, up, down), or for a mixture of experts
a router plus ``n_expert`` experts of width ``n_ff_exp`` (and a shared expert when there is one). Then the token
embeddings, the output matrix unless it is tied to them, and the final norm.

``active`` is the count a token passes through: the experts it is not routed to left out, the embeddings kept
(Qwen's "3.3B activated" for Qwen3-30B-A3B and OLMoE's 1.3B count the same way; OpenAI's "3.6B active" for
gpt-oss-20b also leaves out the input embedding table, from which a token reads one row).
"""

from __future__ import annotations

from dataclasses import dataclass

from sizewise.core.arch.shape import ModelShape

QKV_BIAS = frozenset({"qwen2", "gpt-oss"})
OUTPUT_BIAS = frozenset({"gpt-oss"})  # on the attention output projection
ATTN_SINKS = frozenset({"gpt-oss"})  # one learned logit per head
HEAD_QK_NORM = frozenset({"qwen3", "qwen3moe", "gemma3"})  # one head_dim-wide RMS norm each for Q and K
FULL_QK_NORM = frozenset({"olmoe"})  # RMS norms over all of Q (n_head × head_dim) and all of K
SANDWICH_NORMS = frozenset({"gemma2", "gemma3"})  # norms before and after attention and feed-forward
EXPERT_BIAS = frozenset({"gpt-oss"})  # the router and every expert's projections have biases


@dataclass(frozen=True)
class ParamCount:
    """Parameters in all, and the ones a token uses (the same number for a dense model)."""

    total: int
    active: int


def _attention(shape: ModelShape) -> int:
    e, q, kv = shape.n_embd, shape.n_head * shape.head_dim, shape.n_head_kv * shape.head_dim
    n = e * q + 2 * e * kv + q * e
    if shape.arch in QKV_BIAS:
        n += q + 2 * kv
    if shape.arch in OUTPUT_BIAS:
        n += e
    if shape.arch in ATTN_SINKS:
        n += shape.n_head
    if shape.arch in HEAD_QK_NORM:
        n += 2 * shape.head_dim
    if shape.arch in FULL_QK_NORM:
        n += q + kv
    return n


def _expert(shape: ModelShape) -> int:
    e, f = shape.n_embd, shape.n_ff_exp
    return 3 * e * f + (2 * f + e if shape.arch in EXPERT_BIAS else 0)  # gate and up biases are f wide, down's e


def count_params(shape: ModelShape) -> ParamCount:
    """The parameter count ``shape`` implies (see the module docstring for what is counted)."""
    e = shape.n_embd
    fixed = _attention(shape) + (4 if shape.arch in SANDWICH_NORMS else 2) * e
    if shape.is_moe:
        router = e * shape.n_expert + (shape.n_expert if shape.arch in EXPERT_BIAS else 0)
        shared = 3 * e * shape.n_ff_shexp
        every = fixed + router + shared + shape.n_expert * _expert(shape)
        used = fixed + router + shared + shape.n_expert_used * _expert(shape)
    else:
        every = used = fixed + 3 * e * shape.n_ff
    outside = shape.n_vocab * e * (1 if shape.tied_embeddings else 2) + e
    return ParamCount(shape.n_layer * every + outside, shape.n_layer * used + outside)
