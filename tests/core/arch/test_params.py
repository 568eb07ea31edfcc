"""Parameter counts from hyper-parameters (core/arch/params.py): each architecture's extra tensors are counted once,
tying removes exactly the output matrix, and a token's count leaves out only the experts it is not routed to.
The counts of real families against their published totals: tests/core/hub/test_catalogue_counts.py."""

from __future__ import annotations

import dataclasses

import pytest

from sizewise.core.arch.params import count_params
from sizewise.core.arch.shape import ARCHES, DENSE_ARCHES, MOE_ARCHES, ModelShape

# d=64, 4 query heads and 2 KV heads of 16, ffn 256, 1000 tokens, 3 layers: small enough to count by hand.
E, Q, KV, F, V, L = 64, 64, 32, 256, 1000, 3
PLAIN = ModelShape(
    arch="llama",
    n_layer=L,
    n_embd=E,
    n_ff=F,
    n_head=4,
    n_head_kv=2,
    head_dim=16,
    n_vocab=V,
    context_length=4096,
    tied_embeddings=True,
)
ATTENTION = E * Q + 2 * E * KV + Q * E
LAYER = ATTENTION + 2 * E + 3 * E * F


def test_a_plain_llama_layer_by_hand() -> None:
    assert count_params(PLAIN).total == L * LAYER + V * E + E  # embeddings, final norm
    assert count_params(dataclasses.replace(PLAIN, tied_embeddings=False)).total == L * LAYER + 2 * V * E + E


@pytest.mark.parametrize(
    ("arch", "extra_per_layer"),
    [
        ("llama", 0),
        ("phi3", 0),  # fused QKV and gate-up: the same weights
        ("qwen2", Q + 2 * KV),  # Q, K and V biases
        ("qwen3", 2 * 16),  # one head_dim-wide norm each for Q and K
        ("gemma2", 2 * E),  # norms after attention and after the feed-forward too
        ("gemma3", 2 * E + 2 * 16),
    ],
)
def test_each_dense_arch_adds_its_own_tensors(arch: str, extra_per_layer: int) -> None:
    shape = dataclasses.replace(PLAIN, arch=arch)
    count = count_params(shape)
    assert count.total == count_params(PLAIN).total + L * extra_per_layer
    assert count.active == count.total


MOE = dataclasses.replace(PLAIN, arch="qwen3moe", n_expert=8, n_expert_used=2, n_ff_exp=32)
EXPERT = 3 * E * 32


@pytest.mark.parametrize(
    ("arch", "attention_extra", "router_bias", "expert_bias"),
    [
        ("qwen3moe", 2 * 16, 0, 0),
        ("olmoe", Q + KV, 0, 0),  # Q and K norms over all heads
        ("gpt-oss", Q + 2 * KV + E + 4, 8, 2 * 32 + E),  # QKV and output biases, one sink per head; biased experts
    ],
)
def test_a_token_uses_the_router_and_its_experts_only(
    arch: str, attention_extra: int, router_bias: int, expert_bias: int
) -> None:
    shape = dataclasses.replace(MOE, arch=arch)
    fixed = ATTENTION + attention_extra + 2 * E + E * 8 + router_bias
    count = count_params(shape)
    assert count.total == L * (fixed + 8 * (EXPERT + expert_bias)) + V * E + E
    assert count.total - count.active == L * 6 * (EXPERT + expert_bias)  # the six experts a token skips


def test_a_shared_expert_is_used_by_every_token() -> None:
    shared = dataclasses.replace(MOE, n_ff_shexp=48)
    assert count_params(shared).total - count_params(MOE).total == L * 3 * E * 48
    assert count_params(shared).active - count_params(MOE).active == L * 3 * E * 48


def test_n_ff_is_not_counted_when_every_layer_is_routed() -> None:
    """qwen3moe's config has an intermediate_size no tensor uses (GGUF feed_forward_length)."""
    assert count_params(dataclasses.replace(MOE, n_ff=1)).total == count_params(MOE).total


def test_the_arch_lists_do_not_overlap() -> None:
    assert not DENSE_ARCHES & MOE_ARCHES and ARCHES == DENSE_ARCHES | MOE_ARCHES
