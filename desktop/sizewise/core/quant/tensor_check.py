"""Does a GGUF's tensor list match what its own header says the model is? One sentence naming the first tensor
that does not, before anything is sized or loaded.

A damaged or hand-edited file — a tensor missing, a shape from another model, fewer experts than the header
declares — would otherwise get a memory figure computed from numbers that describe no loadable model, and then a
long load that llama.cpp refuses. For the architectures whose tensor list shapes.py reproduces, the expected list
follows from the header's hyper-parameters alone, so the check is exact; extra tensors are allowed (optional
tensors of variants), missing or misshapen expected ones are not.
"""

from __future__ import annotations

from dataclasses import replace

from sizewise.core.gguf.header import GGUFHeader, header_int
from sizewise.core.quant.shapes import ARCHES, HyperParams, problem, tensors


def _hyper_params(header: GGUFHeader) -> HyperParams | None:
    """The header's hyper-parameters as shapes.py needs them; None when they are per-layer arrays or absent (the
    expected list is then unknown, and nothing is claimed)."""
    keys = ("block_count", "embedding_length", "feed_forward_length", "attention.head_count", "attention.head_count_kv")
    values = [header.arch_key(k) for k in keys]
    attn_layers: tuple[int, ...] = ()
    if header.architecture in ("lfm2", "lfm2moe") and isinstance(values[4], list):
        # LFM2's converter writes one KV head count per layer, 0 for a short-convolution layer
        heads = {header_int(v) for v in values[4]} - {0}
        if len(heads) != 1:
            return None
        attn_layers = tuple(i for i, v in enumerate(values[4]) if header_int(v))
        values[4] = heads.pop()
    if any(isinstance(v, list) for v in values):
        return None
    n_layer, n_embd, n_ff, n_head, n_head_kv = (header_int(v) for v in values)
    by_name = {t.name: t for t in header.tensors}
    emb = by_name.get("token_embd.weight")
    if emb is None or len(emb.shape) < 2 or not (n_layer and n_embd and n_head):
        return None
    head_k = header_int(header.arch_key("attention.key_length"))
    if header.architecture == "deepseek2":  # MLA: the heads shapes.py needs are the decompressed ones
        head_k = header_int(header.arch_key("attention.key_length_mla"))
        if not head_k:
            return None  # an old conversion without MLA's key lengths: the unsplit wkv_b, not a list shapes.py writes
    hp = HyperParams(
        arch=header.architecture,
        n_layer=n_layer,
        n_embd=n_embd,
        n_ff=n_ff or 1,
        n_head=n_head,
        n_head_kv=n_head_kv or n_head,
        n_vocab=int(emb.shape[1]),
        head_dim=head_k if head_k and head_k != n_embd // n_head else 0,
        tied_embeddings="output.weight" not in by_name,
        n_expert=header_int(header.arch_key("expert_count")),
        n_expert_used=header_int(header.arch_key("expert_used_count")),
        n_ff_exp=header_int(header.arch_key("expert_feed_forward_length")),
        rope_tensors="rope_freqs.weight" in by_name or "rope_factors_long.weight" in by_name,
        attn_layers=attn_layers,
        conv_l_cache=header_int(header.arch_key("shortconv.l_cache")) or 3,
    )
    if header.architecture == "lfm2moe":
        return replace(hp, n_dense_lead=header_int(header.arch_key("leading_dense_block_count")))
    if header.architecture != "deepseek2":
        return hp
    return replace(
        hp,
        kv_lora_rank=header_int(header.arch_key("attention.kv_lora_rank")),
        rope_dim=header_int(header.arch_key("rope.dimension_count")),
        v_head_dim=header_int(header.arch_key("attention.value_length_mla")),
        n_expert_shared=header_int(header.arch_key("expert_shared_count")),
        n_dense_lead=header_int(header.arch_key("leading_dense_block_count")),
        q_lora_rank=header_int(header.arch_key("attention.q_lora_rank")),
        expert_bias=any(t.name.endswith("exp_probs_b.bias") for t in header.tensors),
    )


def tensor_mismatch(header: GGUFHeader) -> str | None:
    """The first tensor that contradicts the header (missing, or of another shape), as one sentence; None when
    the list matches or the architecture's list is not known here."""
    if header.architecture not in ARCHES:
        return None
    hp = _hyper_params(header)
    if hp is None or problem(hp):
        return None
    actual = {t.name: tuple(int(d) for d in t.shape) for t in header.tensors}
    arch = header.architecture
    for t in tensors(hp):
        got = actual.get(t.name)
        if got is None:
            return f"the tensor {t.name} is missing: a {arch} model with {hp.n_layer} layers has one"
        if got == t.shape:
            continue
        if "_exps" in t.name and got[:-1] == t.shape[:-1]:
            return f"the tensor {t.name} holds {got[-1]} experts where the header declares {hp.n_expert}"
        return (
            f"the tensor {t.name} has the shape {list(got)} where this {arch} header's hyper-parameters make it "
            f"{list(t.shape)}"
        )
    return None
