"""A deep graph of repeating layers is simulated at a shorter depth (compute_graph.reduced_depth): exactly.

The shortcut must give the byte the full simulation gives, for every layer split the searches ask for. Here:
models with one kind of layer, Gemma 3's five-sliding-one-full pattern and three mixtures of experts (OLMoE,
Qwen3-30B-A3B; gpt-oss, sliding-window every other layer, its output rows picked after the last layer), every
prefix (the CPU's layers) and suffix (the GPU's) of their layers, at settings that move the allocator
differently (contexts, one or all outputs, flash attention with rotated quantized K/V). A one-off run over the
whole catalogue at nine settings (17,880 reduced cases) found no difference either.
"""

from __future__ import annotations

import pytest

from sizewise.core.fit import compute_graph as cg
from sizewise.core.fit.memory_model import _build_spec, model_shape
from sizewise.core.ladder.catalogue_rows import ladder_rows
from sizewise.core.ladder.virtual_header import virtual_header

SETTINGS = [
    cg.GraphSettings(n_tokens=512, n_outputs=512, n_kv=4096, n_kv_swa=4096, flash_attn=False, k_rot=0, v_rot=0),
    cg.GraphSettings(n_tokens=512, n_outputs=1, n_kv=32768, n_kv_swa=32768, flash_attn=False, k_rot=0, v_rot=0),
    cg.GraphSettings(n_tokens=512, n_outputs=512, n_kv=8192, n_kv_swa=8192, flash_attn=True, k_rot=128, v_rot=64),
]


@pytest.mark.parametrize(
    "name",
    [
        "Qwen3 1.7B",
        "Gemma 3 1B Instruct",
        "Llama 3.2 1B Instruct",
        "Qwen2.5 0.5B Instruct",
        "Phi-4 mini Instruct",
        "OLMoE 1B-7B Instruct",
        "gpt-oss 20B",
        "Qwen3 30B-A3B",
    ],
)
def test_reduced_depth_gives_the_full_simulations_bytes(name: str) -> None:
    model = next(m for m in ladder_rows().models if m.name == name)
    shape = model_shape(virtual_header(model.shape, "Q4_K_M"))
    n, reduced = shape.n_layer, 0
    for gs in SETTINGS:
        for layers in [range(k) for k in range(1, n + 1)] + [range(n - k, n) for k in range(1, n)]:
            spec = _build_spec(shape, layers)
            depth, _ = cg.reduced_depth(spec, gs)
            if depth == len(spec.layers):
                continue
            reduced += 1
            full = cg.simulate_allocator(cg.build_decoder_graph(spec, gs))
            assert cg.compute_buffer_bytes(spec, gs) == full, (name, gs, layers.start, layers.stop, depth)
    assert reduced > n  # the shortcut was taken, for most splits


def test_layers_that_do_not_repeat_are_simulated_in_full() -> None:
    a = cg.LayerShape(n_head=8, n_head_kv=2, head_dim_k=64, head_dim_v=64, n_ff=1024, swa=False)
    b = cg.LayerShape(n_head=8, n_head_kv=2, head_dim_k=64, head_dim_v=64, n_ff=2048, swa=False)
    spec = cg.DecoderSpec(n_embd=512, n_vocab=1000, layers=(a, b, a, a, b, b, a, b, b, b, a, a, a, b, a))
    assert cg.layer_period(spec.layers) == 0
    assert cg.reduced_depth(spec, SETTINGS[0]) == (len(spec.layers), 0)
    assert cg.layer_period((a, b) * 10) == 2 and cg.layer_period((a,) * 12) == 1


def test_nope_layers_repeat_with_their_period_and_reduce_exactly() -> None:
    """smollm3's every-4th NoPE layer makes a period of 4 (the shortcut must still give the full simulation's byte)."""
    layers = tuple(
        cg.LayerShape(n_head=8, n_head_kv=2, head_dim_k=64, head_dim_v=64, n_ff=2048, swa=False, rope=(il + 1) % 4 != 0)
        for il in range(36)
    )
    assert cg.layer_period(layers) == 4 and not layers[3].rope
    reduced = 0
    for gs in SETTINGS:
        for part in [range(k) for k in range(1, 37)] + [range(36 - k, 36) for k in range(1, 36)]:
            sub = cg.DecoderSpec(n_embd=512, n_vocab=49152, layers=layers[part.start : part.stop])
            depth, _ = cg.reduced_depth(sub, gs)
            if depth == len(sub.layers):
                continue
            reduced += 1
            full = cg.simulate_allocator(cg.build_decoder_graph(sub, gs))
            assert cg.compute_buffer_bytes(sub, gs) == full, (gs, part.start, part.stop, depth)
    assert reduced > 36
