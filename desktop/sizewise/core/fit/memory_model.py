"""Predict, before loading, how many bytes llama.cpp will allocate for a model — per component and device.

Every figure follows a rule in llama.cpp (read at the version llama-cpp-python 0.3.36 vendors) and is
computed from the GGUF header and the load settings; nothing is stored per model.

* **Weights** (``load_tensors``): blocks ``blk.N`` go to the GPU from layer ``n_layer + 1 - gpu_layers``
  upward, the output layer (``output``/``output_norm``) counts as the first offloaded layer, token
  embeddings always stay on the CPU. With mmap the CPU part is one mapped range of the file, from the
  first CPU tensor's offset to the last one's end (``CPU_Mapped``). A CPU-only build with the REPACK
  extra buffer also copies the matmul weights whose type it can interleave for this CPU's SIMD units
  into ``CPU_REPACK`` (Q4_0/Q4_K/IQ4_NL/MXFP4 with AVX2, Q2_K with AVX-512, more on ARM dot-product
  cores) — the stacked 3-D experts (``*_exps``, MUL_MAT_ID) as well as the 2-D matrices — and the mapped
  range then spans only the tensors left in the CPU buffer. A model whose output layer is tied to the
  embeddings gets a duplicate of them where the output layer lives when that is not the CPU mapping.
* **KV cache** (``llama_kv_cache``): ``n_ctx`` is padded up to a multiple of 256 cells; each layer
  holds ``cells × n_head_kv(il) × head_dim`` values for K and for V (the V row is padded to the widest
  layer when flash attention is off), in f16, q8_0 (34 bytes per 32 values) or q4_0 (18 per 32).
  Models with sliding-window layers get a second cache for those layers, sized
  ``pad256(min(n_ctx, n_swa + n_ubatch))`` unless ``swa_full`` (llama-cpp-python's default) keeps it
  full size. phi3's window is ignored, as llama.cpp ignores it ("Phi SWA is currently disabled").
  A hybrid (lfm2, lfm2moe) has a KV cache for its attention layers only and, for its short-convolution layers, a
  recurrent state (``RS buffer``: n_embd × (L_cache − 1) f32 values per layer, one sequence), counted with it.
  deepseek2's MLA caches K only: one row of kv_lora_rank + rope values per token (its header's key_length).
* **Compute buffer**: simulated with ``core.compute_graph`` — llama.cpp's worst-case graph run through
  ggml's allocator, logits (``n_vocab × n_ubatch × 4`` bytes) included. With a GPU, ggml's scheduler decides
  which device computes each node (``core.fit.offload.scheduler``): a GPU buffer and a host one (``*_Host``).
* **Output buffer**: ``n_vocab × 4`` bytes (one row of logits; llama-cpp-python asks for one output).
* **Overhead**: what the engine process holds besides llama.cpp's logged buffers — the Python
  interpreter and libraries (the engine's measured start-up RSS when it is running), the tokenizer's
  tables, the allocator's and threads' share of a load, and the matmul work area. This is the one part
  estimated from constants (measured on the engine worker), and it is labelled as such.

**Allocated vs needed.** The per-component figures are what llama.cpp allocates and logs, and the
accuracy tests hold them to its log. The RAM a machine must have is less: the CPU compute buffer is
sized for a micro-batch in which every token asks for logits (``n_ubatch × n_vocab × 4`` bytes: 96
MiB for SmolLM2's 49k vocabulary, 512 MiB for Gemma-3's 262k), but the engine asks for the last
token's logits only (llama-cpp-python without ``logits_all``; ``llama_batch_get_one`` in the
benchmark), so those rows are reserved and never written, and an operating system that commits
memory page by page (Linux, macOS) never gives them RAM. ``ram_bytes`` — what verdicts compare with
a budget — counts the compute graph the engine really runs (one row of logits); ``ram_reserved_bytes``
adds the unwritten rows back. Device memory is committed when allocated, so VRAM counts every byte.
Measured on the worst case a chat produces (a full micro-batch, then the context filled), the
worker's peak RSS came within 0.2 % of ``ram_bytes`` for both test models at n_ctx 1024 (and for
SmolLM2 at 2048), where the reservation would have overstated it by 45 % and 132 %; the tests hold it
to 1 % (tests/core/fit/test_fit.py's memory-cap test, numbers in its docstring, and
tests/core/fit/test_memory_model.py).

Architectures whose graph this module reproduces get ``confidence = "measured"``: ``llama`` and
``gemma3`` (checked against SmolLM2 and Gemma-3 within 0.5 %, tests/core/fit/test_memory_model.py),
``qwen2``, ``qwen3``, ``phi3``, ``smollm3``, ``granite``, ``gemma2`` and ``olmo2`` (random-weight files
of small shapes within 1 %, tests/core/fit/test_memory_model_dense.py; a test keeps this list and the
tested one the same) and the mixture-of-experts ``qwen3moe``, ``olmoe`` and ``gpt-oss``
(tests/core/fit/test_memory_model_moe.py), the hybrids ``lfm2`` and ``lfm2moe``
(tests/core/fit/test_memory_model_hybrid.py) and
``deepseek2``'s multi-head latent attention (tests/core/fit/test_memory_model_mla.py).
On a build with a GPU the compute buffers per device come from ggml's scheduler replayed on the graph
(``core.fit.offload``: op offload, so with 0 layers offloaded too, the tensors the device refuses, and the Vulkan
backend's node order); the dense graphs checked that way on Vulkan stay ``"measured"`` there (every device
component against Vulkan loads, tests/gpu/ and ``pytest -m benchmarks``), other GPU backends and the other graphs
on a GPU are ``"estimate"``; anything else is ``"rough"``, with the reason.
"""

from __future__ import annotations

import functools
import os
import re
import weakref
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sizewise.core.fit.compute_graph import DecoderSpec, GraphSettings, LayerShape, compute_buffer_bytes
from sizewise.core.fit.offload.scheduler import SplitQuery, graph_weight_rows, graph_weights_of, reduced_split_bytes
from sizewise.core.gguf.header import GGUFHeader, TensorInfo, header_int, vocab_size
from sizewise.core.sampling import LoadParams

MiB = 1 << 20
BIG_TENSOR = (
    64 * MiB
)  # no GPU limits a tensor below this: smaller ones need no check against Backend.gpu_max_tensor_bytes
KV_CELL_PAD = 256  # llama_context: cparams.n_ctx = GGML_PAD(n_ctx, 256); the SWA cache is padded the same way
# (values per block, bytes per block) of the KV cache types llama.cpp accepts here (ggml's type table)
KV_TYPE_BLOCKS = {"f16": (1, 2), "q8_0": (32, 34), "q4_0": (32, 18)}

# The engine worker before it loads anything: Python, llama-cpp-python, numpy, psutil, libllama. Its
# RSS is 42-52 MiB on x86-64 Linux with Python 3.11 (~31 MiB private, the rest library pages, as many as
# were already cached); callers that
# started the engine pass the measured figure instead (``baseline_bytes``). Used for targets and
# ``--no-engine``; tests/core/fit/test_memory_model.py::test_overhead_estimate_covers_the_worker keeps it honest.
ENGINE_BASELINE_BYTES = 56 * MiB
# Private memory a load adds besides llama.cpp's logged buffers, apart from the vocabulary: compute
# threads' stacks and allocator arenas, llama-cpp-python's per-model state and the GGUF metadata kept
# while loading. Measured as (worker RSS after the worst-case chat) − (RSS at start-up) − (buffers the
# chat writes) − vocabulary − work area: 22.6 MiB for SmolLM2 and 22.4-23.9 MiB for Gemma-3, the same
# at n_ctx 1024 and 2048.
ENGINE_LOAD_BYTES = 23 * MiB
# The tokenizer's C++ tables (token text, scores, attributes, lookup maps, the BPE merges of models that
# have them) plus llama-cpp-python's per-token candidate array, per vocabulary entry: the slope between
# SmolLM2's 49 152 tokens and Gemma-3's 262 144 (30.1 vs 56.5 MiB of private memory besides buffers).
VOCAB_BYTES_PER_TOKEN = 128

# Architectures whose compute graph compute_graph reproduces, with the features that change it.
_KNOWN_GRAPHS: dict[str, dict[str, bool]] = {
    "llama": {},
    "gemma3": {"qk_norm": True, "post_norms": True, "scale_input": True, "scale_q": True},
    "qwen2": {"qkv_bias": True},
    "qwen3": {"qk_norm": True},
    "phi3": {"fused_qkv": True, "fused_up": True, "scale_q": True, "residual_first": True},
    "smollm3": {},  # llama's graph with NoPE layers (_NO_ROPE_STEP)
    "granite": {"scale_input": True, "residual_scale": True, "logit_scale": True},
    "gemma2": {"post_norms": True, "scale_input": True, "scale_q": True, "attn_softcap": True},
    "olmo2": {"pre_norms": False, "qk_norm_flat": True, "post_norms": True},
    # mixture of experts (tests/core/fit/test_memory_model_moe.py): qwen3's attention, softmax routing whose
    # chosen weights are renormalised
    "qwen3moe": {"qk_norm": True, "moe_norm_w": True},
    # llama's attention with Q and K normalised over whole rows; softmax routing without renormalisation
    "olmoe": {"qk_norm_rows": True},
    # experts chosen on the raw router logits, biases on the router and the experts, the output rows picked
    # after the last layer; its attention's q/k/v and output biases (in-place adds) and sinks (no tensor of
    # their own) change no buffer, and its sliding-window layers get the second KV cache
    "gpt-oss": {"moe_softmax_weight": True, "moe_biases": True, "out_rows_last": True},
    # hybrid (tests/core/fit/test_memory_model_hybrid.py): short-convolution layers where the header gives no KV
    # heads (LayerShape.conv), per-head Q/K norms, both residual adds with the residual first
    "lfm2": {"qk_norm": True, "residual_first": True, "residual_first_attn": True},
    # lfm2's graph with experts after the leading dense layers (LFM2-8B-A1B); routing options from the header
    "lfm2moe": {"qk_norm": True, "residual_first": True, "residual_first_attn": True},
    # multi-head latent attention (tests/core/fit/test_memory_model_mla.py): a K-only cache of the compressed KV, the
    # queries absorbed into it, per-head decompression; leading dense layers and shared experts; the routing options
    # (V2's softmax, V3's sigmoid with a bias, normed and scaled weights, groups) and q_lora come from the header
    "deepseek2": {},
}
# Hybrid architectures whose recurrent layers are short convolutions with a state of (L_cache - 1) × n_embd f32
# values per layer (llama_hparams::n_embd_r for LFM2; n_embd_s is 0): the RS buffer of llama_memory_recurrent.
_SHORTCONV = frozenset({"lfm2", "lfm2moe"})
# Architectures whose GPU split (ggml's scheduler, the Vulkan backend's node order) was checked per device against
# Vulkan loads, every component within 3 % at 0, 1, half and all layers offloaded: the test models, the dense
# synthetic ones, and the mixture-of-experts, hybrid and MLA ones (tests/benchmarks/test_gpu_memory_benchmarks.py, which
# also runs every layer count, and tests/gpu/test_vulkan_memory.py). Every architecture compute_graph knows.
GPU_CHECKED = frozenset(
    {
        *("llama", "gemma3", "qwen2", "qwen3", "phi3", "smollm3", "granite", "gemma2", "olmo2"),
        *("qwen3moe", "olmoe", "gpt-oss", "lfm2", "lfm2moe", "deepseek2"),
    }
)
# Mixture-of-experts architectures whose expert routing (build_moe_ffn) compute_graph reproduces; any other
# header with experts gets a note (and "rough"), since its FFN is then simulated as a dense one.
_MOE_GRAPHS = frozenset({"qwen3moe", "olmoe", "gpt-oss", "deepseek2", "lfm2moe"})
# Every n-th layer skips RoPE (llama.cpp's n_no_rope_layer_step, fixed at 4 in smollm3's load_arch_hparams).
_NO_ROPE_STEP = {"smollm3": 4}
# Architectures whose sliding window the pinned llama.cpp switches off (full attention, one cache) whatever the
# header says: phi3's load_arch_hparams ("Phi SWA is currently disabled").
_SWA_DISABLED = frozenset({"phi3"})
# Default sliding-window patterns (llama.cpp's load_swa_pattern calls), for headers that carry a window
# but no pattern. Every n-th layer is full attention, the others slide.
_SWA_PATTERN_DEFAULT = {"gemma3": 6, "gemma2": 2, "cohere2": 4, "gemma3n": 5, "gpt-oss": 2, "olmo2": 4}
# Windows llama.cpp assumes when the header has none (gemma2's load_arch_hparams: "default value of gemma 2").
_SWA_WINDOW_DEFAULT = {"gemma2": 4096}
_RECURRENT_HINTS = ("mamba", "rwkv", "lfm2", "jamba", "falcon-h1", "granitehybrid", "qwen3next", "nemotron_h", "plamo2")


@dataclass(frozen=True)
class ModelShape:
    """The hyper-parameters the memory model needs, read from a GGUF header."""

    architecture: str
    n_layer: int
    n_embd: int
    n_vocab: int
    n_head: tuple[int, ...]
    n_head_kv: tuple[int, ...]
    head_dim_k: int
    head_dim_v: int
    n_ff: tuple[int, ...]
    swa: tuple[bool, ...]
    n_swa: int
    final_softcap: bool
    tied_output: bool
    notes: tuple[str, ...] = ()
    n_expert: int = 0  # mixture of experts: experts per layer, experts used per token, one expert's width
    n_expert_used: int = 0
    n_ff_exp: int = 0
    # hybrid (lfm2): the short-convolution layers (no KV cache, a recurrent state instead) and the state's columns
    recurrent: tuple[bool, ...] = ()
    conv_state: int = 0
    # deepseek2's MLA: the compressed KV's rank and RoPE part (the cache row is head_dim_k = rank + rope, with no V),
    # the decompressed Q/K and V heads; mixture of experts: leading dense layers and shared experts
    mla_rank: int = 0
    mla_rope: int = 0
    mla_head_k: int = 0
    mla_head_v: int = 0
    n_dense_lead: int = 0
    n_expert_shared: int = 0
    mla_q_lora: int = 0
    # build_moe_ffn's routing options (deepseek2's keys): sigmoid scores, a selection bias, renormalised and scaled
    # weights, expert groups (n_expert_groups, n_group_used)
    moe_sigmoid: bool = False
    moe_probs_bias: bool = False
    moe_norm_w: bool = False
    moe_scale: bool = False
    moe_groups: tuple[int, int] = (0, 0)

    @property
    def known(self) -> bool:
        return self.architecture in _KNOWN_GRAPHS and not self.notes


def _per_layer(value: Any, n_layer: int, default: int) -> tuple[int, ...]:
    """A scalar hyper-parameter or a per-layer array (llama.cpp accepts both), as one value per layer."""
    if n_layer <= 0:
        return ()
    if isinstance(value, list) and value:
        vals = [min(max(header_int(v, default), 0), MAX_WIDTH) for v in value[:n_layer]]
        return tuple(vals + [vals[-1]] * (n_layer - len(vals)))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (min(max(header_int(value, default), 0), MAX_WIDTH),) * n_layer
    return (default,) * n_layer


MAX_LAYERS = 4096  # far above any real model; a damaged header must not make the model loop for hours
MAX_WIDTH = 1 << 24


def model_shape(header: GGUFHeader) -> ModelShape:
    """Read layers, heads, head sizes, FFN width, vocabulary and sliding-window layout from the header.

    Raises ValueError for counts no real model has (a damaged or hostile header).
    """
    arch = header.architecture
    notes: list[str] = []
    n_layer = header_int(header.arch_key("block_count"))
    n_embd = header_int(header.arch_key("embedding_length"))
    if not 0 <= n_layer <= MAX_LAYERS or not 0 <= n_embd <= MAX_WIDTH:
        raise ValueError(f"the header declares {n_layer} layers of width {n_embd}, which no real model has")
    by_name = {t.name: t for t in header.tensors}
    if n_layer <= 0:
        n_layer = 1 + max((int(m.group(1)) for t in header.tensors if (m := _BLK.match(t.name))), default=-1)
        n_layer = min(n_layer, MAX_LAYERS)
        notes.append("the header has no block_count; layers were counted from tensor names")
    if n_embd <= 0:
        emb = by_name.get("token_embd.weight")
        n_embd = emb.shape[0] if emb and emb.shape else 0
        notes.append("the header has no embedding_length")
    n_head = _per_layer(header.arch_key("attention.head_count"), n_layer, 0)
    if not any(n_head):
        n_head = (max(1, n_embd // 128),) * n_layer
        notes.append("the header has no attention.head_count; assumed 128-wide heads")
    n_head_kv = _per_layer(header.arch_key("attention.head_count_kv"), n_layer, -1)
    n_head_kv = tuple(h if kv < 0 else kv for h, kv in zip(n_head, n_head_kv, strict=True))
    first_heads = next((h for h in n_head if h), 1)
    head_k = header_int(header.arch_key("attention.key_length")) or (n_embd // first_heads if first_heads else 0)
    head_v = header_int(header.arch_key("attention.value_length")) or (n_embd // first_heads if first_heads else 0)
    n_ff = _per_layer(header.arch_key("feed_forward_length"), n_layer, 4 * n_embd)
    n_vocab = _output_rows(by_name) or vocab_size(header)
    n_swa = header_int(header.arch_key("attention.sliding_window")) or _SWA_WINDOW_DEFAULT.get(arch, 0)
    swa = _swa_layers(header, arch, n_layer, n_swa)
    recurrent: tuple[bool, ...] = ()
    conv_state = 0
    if arch in _SHORTCONV:
        # load_arch_hparams: a layer with no KV heads is recurrent; n_embd_r = n_embd × (L_cache − 1)
        l_cache = header_int(header.arch_key("shortconv.l_cache"))
        recurrent = tuple(kv == 0 for kv in n_head_kv)
        conv_state = l_cache - 1 if 1 < l_cache <= 64 else 0
        if not conv_state or all(recurrent):
            notes.append(f"{arch}'s header has no usable shortconv.l_cache or no attention layer")
        if n_swa > 0:  # load_arch_hparams: every attention layer slides, in llama_memory_hybrid_iswa's two caches
            notes.append(f"{arch} with a sliding window (a hybrid memory with two KV caches) is not modelled")
    elif any(hint in arch for hint in _RECURRENT_HINTS):
        notes.append(f"{arch} keeps a recurrent state that this model does not size")
    n_expert = min(max(header_int(header.arch_key("expert_count")), 0), MAX_WIDTH)
    n_expert_used = min(max(header_int(header.arch_key("expert_used_count")), 0), n_expert)
    n_ff_exp = min(max(header_int(header.arch_key("expert_feed_forward_length")), 0), MAX_WIDTH)
    exps = by_name.get("blk.0.ffn_up_exps.weight")
    if n_expert and not n_ff_exp and exps is not None and len(exps.shape) == 3:
        n_ff_exp = min(exps.shape[1], MAX_WIDTH)  # the key is optional (olmoe); one expert's rows say it
    if n_expert and (arch not in _MOE_GRAPHS or not n_expert_used):
        notes.append("mixture-of-experts routing buffers are not modelled")
    softcap = header.arch_key("final_logit_softcapping")
    mla = _mla(header, head_k, notes) if arch == "deepseek2" else (0, 0, 0, 0)
    routing = _routing(header, arch, n_expert, notes) if (arch == "deepseek2" and mla[0]) or arch == "lfm2moe" else {}
    return ModelShape(
        architecture=arch,
        n_layer=n_layer,
        n_embd=n_embd,
        n_vocab=n_vocab,
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim_k=head_k,
        head_dim_v=head_v,
        n_ff=n_ff,
        swa=swa,
        n_swa=n_swa,
        final_softcap=isinstance(softcap, int | float) and softcap != 0,
        tied_output="output.weight" not in by_name,
        notes=tuple(notes),
        n_expert=n_expert,
        n_expert_used=n_expert_used,
        n_ff_exp=n_ff_exp,
        recurrent=recurrent,
        conv_state=conv_state,
        mla_rank=mla[0],
        mla_rope=mla[1],
        mla_head_k=mla[2],
        mla_head_v=mla[3],
        n_dense_lead=min(max(header_int(header.arch_key("leading_dense_block_count")), 0), n_layer)
        if arch in ("deepseek2", "lfm2moe")  # the architectures whose load_arch_hparams reads it
        else 0,
        n_expert_shared=min(max(header_int(header.arch_key("expert_shared_count")), 0), MAX_WIDTH)
        if arch == "deepseek2"
        else 0,
        **routing,
    )


def _mla(header: GGUFHeader, head_k: int, notes: list[str]) -> tuple[int, int, int, int]:
    """(rank, rope, decompressed K head, V head) of deepseek2's MLA (hparams.is_mla(): both *_length_mla keys set),
    or zeros with a note: an old GGUF without them has the unsplit wkv_b and another graph."""
    rank = header_int(header.arch_key("attention.kv_lora_rank"))
    rope = header_int(header.arch_key("rope.dimension_count"))
    k = header_int(header.arch_key("attention.key_length_mla"))
    v = header_int(header.arch_key("attention.value_length_mla"))
    if not (0 < rank <= MAX_WIDTH and 0 < rope < k <= MAX_WIDTH and 0 < v <= MAX_WIDTH and head_k == rank + rope):
        notes.append("the header has no MLA key lengths (an old deepseek2 conversion): its attention is not modelled")
        return 0, 0, 0, 0
    return rank, rope, k, v


def _routing(header: GGUFHeader, arch: str, n_expert: int, notes: list[str]) -> dict[str, Any]:
    """deepseek2's and lfm2moe's routing options (and deepseek2's compressed queries) as ModelShape fields, from the
    keys each one's load_arch_hparams reads. deepseek2: V2-Lite has none of them; DeepSeek-V3 and Kimi K2 have
    q_lora_rank 1536, sigmoid scores with a selection bias, renormalised weights scaled by 2.5 and 8 expert groups
    of which 4 are kept. lfm2moe: sigmoid scores with a selection bias, always renormalised (its graph passes
    norm_w = true), never scaled (expert_weights_scale is not read). Gating functions other than softmax and sigmoid
    get a note."""
    gating = header_int(header.arch_key("expert_gating_func"))
    if gating not in (0, 1, 2):
        notes.append(f"expert gating function {gating} is not modelled")
    scale = header.arch_key("expert_weights_scale")
    groups = min(max(header_int(header.arch_key("expert_group_count")), 0), MAX_WIDTH)
    used = min(max(header_int(header.arch_key("expert_group_used_count")), 0), groups)
    if groups > 1 and (n_expert % groups or not 0 < used < groups or n_expert // groups < 2):
        notes.append("the header's expert groups are not ones llama.cpp accepts")
    deepseek = arch == "deepseek2"
    return {
        "mla_q_lora": min(max(header_int(header.arch_key("attention.q_lora_rank")), 0), MAX_WIDTH) if deepseek else 0,
        "moe_sigmoid": gating == 2,
        "moe_probs_bias": any(t.name.endswith("exp_probs_b.bias") for t in header.tensors),
        "moe_norm_w": header.arch_key("expert_weights_norm") is True if deepseek else True,
        "moe_scale": deepseek and isinstance(scale, int | float) and scale not in (0, 1),
        "moe_groups": (groups, used) if groups > 1 else (0, 0),
    }


_BLK = re.compile(r"^blk\.(\d+)\.")


def _output_rows(by_name: dict[str, TensorInfo]) -> int:
    """Rows of the logits: the output matrix's second dimension (the tied embeddings' when absent)."""
    t = by_name.get("output.weight") or by_name.get("token_embd.weight")
    return int(t.shape[1]) if t is not None and len(t.shape) >= 2 else 0


def _swa_layers(header: GGUFHeader, arch: str, n_layer: int, n_swa: int) -> tuple[bool, ...]:
    if n_swa <= 0 or arch in _SWA_DISABLED:
        return (False,) * n_layer
    pattern = header.arch_key("attention.sliding_window_pattern")
    if isinstance(pattern, list) and pattern:
        flags = [bool(p) for p in pattern[:n_layer]]
        return tuple(flags + [False] * (n_layer - len(flags)))
    n = (
        int(pattern)
        if isinstance(pattern, int) and not isinstance(pattern, bool)
        else _SWA_PATTERN_DEFAULT.get(arch, 0)
    )
    if n <= 0:
        return (False,) * n_layer  # a window without a known pattern: assume full attention (more memory)
    # llama_hparams::set_swa_pattern(n, dense_first=false): the last layer of each group of n is dense
    return tuple(il % n < n - 1 for il in range(n_layer))


# -- settings ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """What the llama.cpp build and the CPU can do, as far as memory placement is concerned."""

    gpu: bool = False  # a GPU backend is compiled in and a device exists (offload possible)
    repack: bool = True  # the CPU backend has the REPACK extra buffer type (llama_print_system_info)
    cpu_features: frozenset[str] = frozenset()  # normalised: avx2, avx512, neon, dotprod, i8mm
    gpu_backend: str = ""  # the GPU's ggml backend in lower case (cuda, vulkan, metal …); "" when not known
    # The largest weight the GPU accepts (0: no limit). Vulkan refuses tensors over its maxStorageBufferRange (128 MiB
    # on lavapipe, 1-4 GiB on GPUs), so llama.cpp keeps such a weight in host memory even in an offloaded layer.
    gpu_max_tensor_bytes: int = 0
    # Replay ggml's scheduler node by node on Vulkan (exact there; one allocator simulation per file, split and
    # context). False: the per-device split estimate other backends get, shared by every quant of a model — the
    # model ladder's hundreds of cells, which on a Vulkan build took 28 s with the replay.
    exact_gpu_split: bool = True

    @property
    def pads_rows(self) -> bool:
        """The GPU backend allocates a quantized weight with extra room (CUDA and the backends built from its code,
        MATRIX_ROW_PADDING); Vulkan and Metal allocate exactly ggml_nbytes. Unknown: assume the padding (more
        memory, never a false "fits")."""
        return self.gpu_backend in ("", "cuda", "hip", "rocm", "musa")

    @classmethod
    def from_system_info(cls, system_info: str, *, gpu_offload: bool = False, gpu_backend: str = "") -> Backend:
        """From llama_print_system_info(), e.g. ``CPU : SSE3 = 1 | AVX2 = 1 | … | REPACK = 1 |``."""
        flags = {m.group(1).upper() for m in re.finditer(r"([A-Za-z0-9_]+)\s*=\s*1", system_info)}
        features = {
            name
            for name, keys in {
                "avx2": ("AVX2",),
                "avx512": ("AVX512",),
                "neon": ("NEON",),
                "dotprod": ("DOTPROD",),
                "i8mm": ("MATMUL_INT8", "I8MM"),
            }.items()
            if flags & set(keys)
        }
        return cls(gpu=gpu_offload, repack="REPACK" in flags, cpu_features=frozenset(features), gpu_backend=gpu_backend)


@functools.lru_cache(maxsize=256)
def _repack_alignment(type_name: str, features: frozenset[str]) -> int:
    """Row multiple at which ggml's CPU_REPACK buffer takes a weight of this type (0: never).

    ggml_repack_get_optimal_repack_type() in ggml-cpu/repack.cpp, for x86 and ARM.
    """
    x86 = {"Q4_0": 8, "Q4_K": 8, "IQ4_NL": 8, "MXFP4": 8} if "avx2" in features else {}
    if "avx512" in features:
        x86["Q2_K"] = 8
    arm: dict[str, int] = {}
    if "neon" in features and ("dotprod" in features or "i8mm" in features):
        arm = {"Q4_0": 4, "Q4_K": 8, "Q5_K": 8, "Q6_K": 8, "Q8_0": 4, "Q1_0": 4}
        if "dotprod" in features:
            arm.update({"IQ4_NL": 4, "MXFP4": 4})
    return x86.get(type_name) or arm.get(type_name) or 0


@dataclass(frozen=True)
class EffectiveSettings:
    """The settings as llama.cpp will really apply them (batch clamped to the context, cells padded)."""

    n_ctx: int  # requested
    n_ctx_cells: int  # KV cells after padding
    n_batch: int
    n_ubatch: int
    gpu_layers: int  # layers actually offloaded, output layer included (0 … n_layer + 1)
    kv_type: str
    flash_attn: bool
    swa_full: bool


def effective_settings(
    shape: ModelShape, params: LoadParams, backend: Backend, swa_full: bool = True
) -> EffectiveSettings:
    n_ctx = max(1, params.n_ctx)
    n_batch = min(n_ctx, params.n_batch)  # llama_context: causal models cap the batch at the context
    n_ubatch = min(n_batch, params.n_ubatch or n_batch)
    cells = -(-n_ctx // KV_CELL_PAD) * KV_CELL_PAD
    offloadable = shape.n_layer + 1
    ngl = offloadable if params.n_gpu_layers < 0 else min(params.n_gpu_layers, offloadable)
    return EffectiveSettings(
        n_ctx=n_ctx,
        n_ctx_cells=cells,
        n_batch=n_batch,
        n_ubatch=n_ubatch,
        gpu_layers=ngl if backend.gpu else 0,
        kv_type=params.kv_type,
        flash_attn=params.flash_attn,
        swa_full=swa_full,
    )


# -- the prediction ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryPrediction:
    """Predicted bytes per component and device. RAM also carries the process overhead."""

    weights_cpu: int
    weights_repack: int
    weights_gpu: int
    kv_cpu: int
    kv_gpu: int
    compute_cpu: int
    compute_gpu: int
    output_bytes: int
    overhead_bytes: int
    settings: EffectiveSettings
    n_layers: int
    confidence: str  # measured | estimate | rough
    confidence_reason: str
    notes: tuple[str, ...] = field(default=())
    # Of compute_cpu: the logits rows for a micro-batch of outputs that the engine never asks for
    # (reserved, never written, so never resident on an OS that commits memory page by page).
    compute_cpu_unwritten: int = 0
    # Of kv_cpu + kv_gpu: a hybrid model's recurrent state (llama.cpp's "RS buffer"), for the report and the tests
    recurrent_bytes: int = 0

    @property
    def weights_bytes(self) -> int:
        return self.weights_cpu + self.weights_repack + self.weights_gpu

    @property
    def kv_bytes(self) -> int:
        return self.kv_cpu + self.kv_gpu

    @property
    def compute_bytes(self) -> int:
        return self.compute_cpu + self.compute_gpu

    @property
    def total_bytes(self) -> int:
        """Everything llama.cpp reports in its load log (comparable with MeasuredBuffers.total())."""
        return self.weights_bytes + self.kv_bytes + self.compute_bytes + self.output_bytes

    @property
    def compute_cpu_written(self) -> int:
        """The part of the CPU compute buffer the engine's graphs really write."""
        return self.compute_cpu - self.compute_cpu_unwritten

    @property
    def ram_bytes(self) -> int:
        """RAM the engine process needs at its worst (what verdicts compare with a budget)."""
        return (
            self.weights_cpu
            + self.weights_repack
            + self.kv_cpu
            + self.compute_cpu_written
            + self.output_bytes
            + self.overhead_bytes
        )

    @property
    def ram_reserved_bytes(self) -> int:
        """``ram_bytes`` plus the compute rows llama.cpp reserves but the engine never writes."""
        return self.ram_bytes + self.compute_cpu_unwritten

    @property
    def vram_bytes(self) -> int:
        return self.weights_gpu + self.kv_gpu + self.compute_gpu

    def components(self) -> dict[str, tuple[int, int]]:
        """(RAM, VRAM) bytes per component of the need (they add up to ``ram_bytes`` and ``vram_bytes``)."""
        return {
            "weights": (self.weights_cpu + self.weights_repack, self.weights_gpu),
            "kv": (self.kv_cpu, self.kv_gpu),
            "compute": (self.compute_cpu_written, self.compute_gpu),
            "output": (self.output_bytes, 0),
            "overhead": (self.overhead_bytes, 0),
        }

    def to_dict(self) -> dict[str, Any]:
        """The issue's ``predicted`` object plus the per-device detail."""
        return {
            "weights_bytes": self.weights_bytes,
            "kv_bytes": self.kv_bytes,
            "recurrent_bytes": self.recurrent_bytes,  # of kv_bytes: a hybrid's recurrent state (RS buffer)
            "compute_bytes": self.compute_bytes,
            "output_bytes": self.output_bytes,
            "overhead_bytes": self.overhead_bytes,
            "ram_bytes": self.ram_bytes,
            "ram_reserved_bytes": self.ram_reserved_bytes,
            "compute_unwritten_bytes": self.compute_cpu_unwritten,
            "vram_bytes": self.vram_bytes,
            "total_bytes": self.total_bytes,
            "devices": {
                "cpu": {
                    "weights_bytes": self.weights_cpu,
                    "repack_bytes": self.weights_repack,
                    "kv_bytes": self.kv_cpu,
                    "compute_bytes": self.compute_cpu,
                },
                "gpu": {"weights_bytes": self.weights_gpu, "kv_bytes": self.kv_gpu, "compute_bytes": self.compute_gpu},
            },
            "confidence": self.confidence,
            "confidence_reason": self.confidence_reason,
            "notes": list(self.notes),
            "effective": asdict(self.settings),
        }


@functools.lru_cache(maxsize=16384)  # the same names recur in every quant of a model and across models
def _layer_of(name: str, n_layer: int) -> int:
    """Which offload slot a tensor belongs to: -1 input (CPU), 0 … n_layer-1 blocks, n_layer output."""
    m = _BLK.match(name)
    if m:
        return int(m.group(1))
    if name.startswith(("output.", "output_norm.")):
        return n_layer
    return -1


def _row_padding_bytes(t: TensorInfo, n_bytes: int | None = None, type_name: str | None = None) -> int:
    """The room CUDA adds to a quantized weight whose rows are not a multiple of 512 values (MATRIX_ROW_PADDING):
    one row's worth of the missing values, once per tensor, so a kernel may read past the last row
    (ggml_backend_cuda_buffer_type_get_alloc_size: ``size += ggml_row_size(type, 512 - ne0 % 512)``).

    ``n_bytes``/``type_name``: the tensor's, when the caller has them already (they are computed properties).
    """
    if len(t.shape) < 2:
        return 0
    ne0 = t.shape[0]
    extra = (-ne0) % 512
    if not extra or (t.type_name if type_name is None else type_name) in _UNPADDED_TYPES:
        return 0
    rows = t.n_elements // ne0 if ne0 else 0
    if not rows:
        return 0
    return extra * ((t.n_bytes if n_bytes is None else n_bytes) // rows) // ne0


_UNPADDED_TYPES = ("F32", "F16", "BF16")  # CUDA pads no row of these (_row_padding_bytes)


@dataclass(frozen=True)
class _TensorPlan:
    """What a tensor list says apart from its types, bytes and offsets, for ``_WeightTable``.

    Why apart: it is the same for every quant of a model, and the ladder builds seven headers a model (~90k
    tensors in all), so the names are parsed once per model instead of once per header (``_tensor_plan``).
    """

    # per tensor: (offload slot, rows of a CPU_REPACK candidate or -1, ne0, values CUDA pads each row with, rows);
    # the padding is ``_row_padding_bytes``': pad_values * (n_bytes // rows) // ne0, where pad_values is not 0
    per_tensor: tuple[tuple[int, int, int, int, int], ...]
    graph: tuple[tuple[int, int, str], ...]  # scheduler.graph_weight_rows
    graph_output: int
    emb: int  # index of token_embd.weight (-1: none)
    output: int  # index of output.weight (-1: none, the tied embeddings are the output)


@functools.lru_cache(maxsize=64)
def _tensor_plan(names: tuple[str, ...], shapes: tuple[tuple[int, ...], ...], n_layer: int) -> _TensorPlan:
    per_tensor = []
    for name, shape in zip(names, shapes, strict=True):
        slot = _layer_of(name, n_layer)
        repack_rows = shape[1] if slot >= 0 and _repack_candidate(name, len(shape)) else -1
        ne0 = shape[0] if len(shape) >= 2 else 0
        pad_values = (-ne0) % 512 if ne0 else 0
        rows = _prod(shape) // ne0 if ne0 else 0
        per_tensor.append((slot, repack_rows, ne0, pad_values if rows else 0, rows))
    graph, graph_output = graph_weight_rows(names, n_layer)
    return _TensorPlan(
        tuple(per_tensor),
        graph,
        graph_output,
        next((i for i, name in enumerate(names) if name == "token_embd.weight"), -1),
        next((i for i, name in enumerate(names) if name == "output.weight"), -1),
    )


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@dataclass(frozen=True)
class _Slot:
    """One offload slot's tensors (see ``_layer_of``), summed once per header."""

    gpu_bytes: int  # their bytes on a GPU (ggml_nbytes)
    lo: int  # first offset
    hi: int  # end of the last one
    # (type, rows, bytes, offset) of the matmul weights CPU_REPACK may copy
    repack: tuple[tuple[str, int, int, int], ...]
    fixed_lo: int  # first offset / end of the last one among the tensors CPU_REPACK never takes
    fixed_hi: int  # (fixed_lo > fixed_hi: there are none)
    gpu_pad: int = 0  # what CUDA's allocation adds to them (Backend.pads_rows)
    big: tuple[tuple[int, int, int], ...] = ()  # (bytes, offset, end) of tensors of BIG_TENSOR bytes or more


class _WeightTable:
    """A header's tensors by offload slot: ``_weights`` for any layer split in O(layers) instead of O(tensors)."""

    def __init__(self, header: GGUFHeader, n_layer: int) -> None:
        tensors = header.tensors
        plan = _tensor_plan(tuple([t.name for t in tensors]), tuple([t.shape for t in tensors]), n_layer)
        acc: dict[int, list[Any]] = {}
        sizes = []
        for t, (slot, repack_rows, ne0, pad_values, rows) in zip(tensors, plan.per_tensor, strict=True):
            # every tensor of every header (the ladder's ~90k): what is the same for every quant is in the plan
            n_bytes, offset = t.n_bytes, t.offset
            end = offset + n_bytes
            sizes.append(n_bytes)
            a = acc.get(slot)
            if a is None:
                a = acc[slot] = [0, offset, 0, [], _NO_OFFSET, 0, 0, []]
            a[0] += n_bytes
            if n_bytes >= BIG_TENSOR:
                a[7].append((n_bytes, offset, end))
            if pad_values and t.type_name not in _UNPADDED_TYPES:  # _row_padding_bytes
                a[6] += pad_values * (n_bytes // rows) // ne0
            if offset < a[1]:
                a[1] = offset
            if end > a[2]:
                a[2] = end
            if repack_rows >= 0:
                a[3].append((t.type_name, repack_rows, n_bytes, offset))
            else:
                if offset < a[4]:
                    a[4] = offset
                if end > a[5]:
                    a[5] = end
        self.slots = sorted(
            (k, _Slot(a[0], a[1], a[2], tuple(a[3]), a[4], a[5], a[6], tuple(a[7]))) for k, a in acc.items()
        )
        self.graph_weights = graph_weights_of(plan.graph, plan.graph_output, sizes, n_layer)
        self.emb = tensors[plan.emb] if plan.emb >= 0 else None
        self.output = tensors[plan.output] if plan.output >= 0 else self.emb
        self._repack: dict[frozenset[str], dict[int, tuple[int, int, int]]] = {}
        self.weights_at: dict[tuple[int, Backend], tuple[int, int, int]] = {}  # _weights' answers

    def repack_layout(self, features: frozenset[str]) -> dict[int, tuple[int, int, int]]:
        """Per slot, (bytes CPU_REPACK copies, first offset, end) on a CPU with these features: the mapped
        CPU buffer spans only the tensors left in it (llama_model_loader::get_mapping_range over the CPU
        buffer type's context), so a slot whose last tensor is repacked maps less of the file."""
        got = self._repack.get(features)
        if got is None:
            got = self._repack[features] = {k: _slot_layout(s, features) for k, s in self.slots}
        return got


_NO_OFFSET = 1 << 62


def _slot_layout(s: _Slot, features: frozenset[str]) -> tuple[int, int, int]:
    repacked, lo, hi = 0, s.fixed_lo, s.fixed_hi
    for ty, rows, b, offset in s.repack:
        if _repack_rows(ty, rows, features):
            repacked += b
        else:
            lo, hi = min(lo, offset), max(hi, offset + b)
    if lo > hi:  # every tensor of the slot went to CPU_REPACK
        lo, hi = _NO_OFFSET, 0
    return repacked, lo, hi


def _repack_candidate(name: str, n_dims: int) -> bool:
    """Whether llama.cpp offers this block tensor to CPU_REPACK: the matmul weights (2-D, MUL_MAT) and the
    stacked experts (3-D ``*_exps``, MUL_MAT_ID; repack.cpp's supports_op takes both, the row rule being the
    one expert's rows, ``ne[1]``). Expert biases (ADD_ID) and norms are not matmul operands."""
    if not name.endswith(".weight"):
        return False
    return n_dims == 2 or (n_dims == 3 and name.endswith("_exps.weight"))


def _repack_rows(type_name: str, rows: int, features: frozenset[str]) -> bool:
    row_multiple = _repack_alignment(type_name, features)
    return bool(row_multiple) and rows % row_multiple == 0


_FACTS: dict[int, tuple[Any, tuple[int, int, int, int], ModelShape, _WeightTable]] = {}


def _header_facts(header: GGUFHeader) -> tuple[ModelShape, _WeightTable]:
    """``model_shape`` and the weight table of a header, worked out once per header object.

    The searches (auto offload, largest context, the ladder's cells) predict the same header dozens of
    times; a header is a parsed record that nothing edits afterwards, and the key also checks that its
    metadata and tensor list are still the same objects of the same length. Dropped with the header.
    """
    token = (id(header.metadata), len(header.metadata), id(header.tensors), len(header.tensors))
    got = _FACTS.get(id(header))
    if got is not None and got[0]() is header and got[1] == token:
        return got[2], got[3]
    shape = model_shape(header)
    table = _WeightTable(header, shape.n_layer)
    key = id(header)
    _FACTS[key] = (weakref.ref(header, lambda _ref: _FACTS.pop(key, None)), token, shape, table)
    return shape, table


def _weights(header: GGUFHeader, shape: ModelShape, es: EffectiveSettings, backend: Backend) -> tuple[int, int, int]:
    """(CPU mapped range, CPU_REPACK copies, GPU) bytes, kept per header (``_WeightTable.weights_at``).

    Why kept: the searches ask for the same split again at every context they try (the ladder: ~6,500 times
    for ~1,750 splits). Exact: besides the header's table they read only ``es.gpu_layers``, the backend (a
    frozen dataclass, so a key) and ``shape``, which every caller takes from the same ``_header_facts``.
    """
    table = _header_facts(header)[1]
    key = (es.gpu_layers, backend)
    got = table.weights_at.get(key)
    if got is None:
        got = table.weights_at[key] = _weights_of(header, shape, es, backend)
    return got


def _weights_of(header: GGUFHeader, shape: ModelShape, es: EffectiveSettings, backend: Backend) -> tuple[int, int, int]:
    table = _header_facts(header)[1]
    i_gpu_start = shape.n_layer + 1 - es.gpu_layers
    use_repack = backend.repack and not backend.gpu  # with a GPU the host buffer type comes first
    layout = table.repack_layout(backend.cpu_features) if use_repack else {}
    cpu_lo, cpu_hi = _NO_OFFSET, 0
    repack = gpu = 0
    limit = backend.gpu_max_tensor_bytes
    for slot, facts in table.slots:
        if slot >= 0 and slot >= i_gpu_start and es.gpu_layers > 0:
            gpu += facts.gpu_bytes + (facts.gpu_pad if backend.pads_rows else 0)
            for n, lo, hi in facts.big:  # too large for the device: stays in the mapped file
                if limit and n > limit:
                    gpu -= n
                    cpu_lo, cpu_hi = min(cpu_lo, lo), max(cpu_hi, hi)
            continue
        got = layout.get(slot)
        if got is None:
            lo, hi = facts.lo, facts.hi
        else:
            repack += got[0]
            lo, hi = got[1], got[2]
        cpu_lo = min(cpu_lo, lo)
        cpu_hi = max(cpu_hi, hi)
    if shape.tied_output:
        emb = table.emb
        if emb is not None:
            if es.gpu_layers > 0 and not (limit and emb.n_bytes > limit):
                # the output layer is offloaded first: a copy of the embeddings goes along (unless the device
                # refuses a tensor that large; then the CPU's copy serves the output layer too)
                gpu += emb.n_bytes + (_row_padding_bytes(emb) if backend.pads_rows else 0)
            elif use_repack:
                row_multiple = _repack_alignment(emb.type_name, backend.cpu_features)
                if row_multiple and emb.shape[1] % row_multiple == 0:
                    repack += emb.n_bytes
    mapped = (cpu_hi - cpu_lo) if cpu_lo < cpu_hi else 0
    return mapped, repack, gpu


def _row_bytes(kv_type: str, n: int) -> int:
    block, size = KV_TYPE_BLOCKS[kv_type]
    return -(-n // block) * size


def _align32(n: int) -> int:
    return (n + 31) // 32 * 32


def _swa_cells(shape: ModelShape, es: EffectiveSettings) -> int:
    """Cells of the sliding-window cache (the full cache's unless it is kept smaller)."""
    if any(shape.swa) and not es.swa_full:
        return min(es.n_ctx_cells, -(-(shape.n_swa + es.n_ubatch) // KV_CELL_PAD) * KV_CELL_PAD)
    return es.n_ctx_cells


def _kv(shape: ModelShape, es: EffectiveSettings) -> tuple[int, int, int]:
    """(CPU bytes, GPU bytes, SWA cells) of the KV cache(s)."""
    base_cells = es.n_ctx_cells
    swa_cells = _swa_cells(shape, es)
    kinds, before = _kv_layer_kinds(shape, es.kv_type, es.flash_attn)
    i_gpu_start = shape.n_layer + 1 - es.gpu_layers if es.gpu_layers > 0 else shape.n_layer
    on_cpu = before[min(max(i_gpu_start, 0), shape.n_layer)]
    cpu = gpu = 0
    for (k_row, v_row, swa), n_all, n_cpu in zip(kinds, before[shape.n_layer], on_cpu, strict=True):
        cells = swa_cells if swa else base_cells
        per_layer = _align32(k_row * cells) + _align32(v_row * cells)
        cpu += n_cpu * per_layer
        gpu += (n_all - n_cpu) * per_layer
    rs_cpu, rs_gpu = _recurrent_state(shape, es)
    return cpu + rs_cpu, gpu + rs_gpu, swa_cells


RS_CELLS = 1  # llama_memory_recurrent's size: max(1, n_seq_max), one sequence here; n_rs_seq 0 adds no snapshot rows


def _recurrent_state(shape: ModelShape, es: EffectiveSettings) -> tuple[int, int]:
    """(CPU bytes, GPU bytes) of the RS buffer: per recurrent layer an f32 conv state of n_embd × (L_cache − 1)
    values (cache_r_l; cache_s_l is empty for a short convolution), on the device of its layer as the KV cache is.
    Logged by llama.cpp as its own "RS buffer" line, which the log parser counts with the KV cache."""
    if not shape.conv_state:
        return 0, 0
    per_layer = _align32(shape.n_embd * shape.conv_state * 4 * RS_CELLS)
    i_gpu_start = shape.n_layer + 1 - es.gpu_layers if es.gpu_layers > 0 else shape.n_layer
    cpu = sum(per_layer for il, r in enumerate(shape.recurrent) if r and il < i_gpu_start)
    gpu = sum(per_layer for il, r in enumerate(shape.recurrent) if r and il >= i_gpu_start)
    return cpu, gpu


@functools.lru_cache(maxsize=256)
def _kv_layer_kinds(
    shape: ModelShape, kv_type: str, flash_attn: bool
) -> tuple[tuple[tuple[int, int, bool], ...], tuple[tuple[int, ...], ...]]:
    """The distinct (K row bytes, V row bytes, sliding window) of the layers, and how many of each come
    before layer i (for i = 0 … n_layer): a cache of any size and split is then a few products."""
    v_width_max = max((kv * shape.head_dim_v for kv in shape.n_head_kv), default=0)
    rows = []
    for il in range(shape.n_layer):
        if shape.recurrent and shape.recurrent[il]:  # the hybrid's KV cache leaves recurrent layers out (filter_attn)
            rows.append((0, 0, shape.swa[il]))
            continue
        if shape.mla_rank:  # MLA's cache has K only (has_v = !is_mla): the compressed KV and the RoPE part
            rows.append((_row_bytes(kv_type, shape.n_head_kv[il] * shape.head_dim_k), 0, shape.swa[il]))
            continue
        v_width = shape.n_head_kv[il] * shape.head_dim_v if flash_attn else v_width_max
        rows.append(
            (_row_bytes(kv_type, shape.n_head_kv[il] * shape.head_dim_k), _row_bytes(kv_type, v_width), shape.swa[il])
        )
    kinds = tuple(dict.fromkeys(rows))
    index = {kind: i for i, kind in enumerate(kinds)}
    counts = [0] * len(kinds)
    before = [tuple(counts)]
    for row in rows:
        counts[index[row]] += 1
        before.append(tuple(counts))
    return kinds, tuple(before)


def kv_bytes_per_token(shape: ModelShape, kv_type: str = "f16") -> tuple[int, int]:
    """(bytes per token on full-attention layers, bytes per token on sliding-window layers) of K plus V.

    The same row sizes as ``_kv`` (which sizes the whole cache); the speed model uses it for the KV bytes a
    token reads at a given depth — a sliding-window layer never holds more than ``n_swa`` tokens.
    """
    full = swa = 0
    for il in range(shape.n_layer):
        v_width = 0 if shape.mla_rank else shape.n_head_kv[il] * shape.head_dim_v  # MLA caches K only
        n = _row_bytes(kv_type, shape.n_head_kv[il] * shape.head_dim_k) + _row_bytes(kv_type, v_width)
        if shape.swa[il]:
            swa += n
        else:
            full += n
    return full, swa


def _rot_size(head_dim: int, *, grow: bool) -> int:
    """Hadamard rotation size llama.cpp uses for a quantized K (largest power of two dividing the head) or V (64)."""
    if head_dim <= 0 or head_dim % 64:
        return 0
    n = 64
    if grow:
        while head_dim % (n * 2) == 0:
            n *= 2
    return n


def _decoder_spec(shape: ModelShape, layers: range) -> DecoderSpec:
    return _spec_of(shape, layers.start, layers.stop)


@functools.lru_cache(maxsize=1024)
def _spec_of(shape: ModelShape, start: int, stop: int) -> DecoderSpec:
    return _build_spec(shape, range(start, stop))


def _build_spec(shape: ModelShape, layers: Iterable[int]) -> DecoderSpec:
    features = _KNOWN_GRAPHS.get(shape.architecture, {})
    if shape.moe_norm_w:  # a header's expert_weights_norm (deepseek2), where the architecture does not fix it
        features = {**features, "moe_norm_w": True}
    moe = bool(shape.n_expert and shape.n_expert_used and shape.architecture in _MOE_GRAPHS)
    no_rope = _NO_ROPE_STEP.get(shape.architecture, 0)
    mla = bool(shape.mla_rank)
    return DecoderSpec(
        n_embd=shape.n_embd,
        n_vocab=shape.n_vocab,
        layers=tuple(
            LayerShape(
                n_head=shape.n_head[il] or 1,
                n_head_kv=shape.n_head_kv[il] or 1,
                head_dim_k=shape.mla_head_k if mla else shape.head_dim_k,
                head_dim_v=shape.mla_head_v if mla else shape.head_dim_v,
                n_ff=(shape.n_ff_exp or shape.n_ff[il]) if moe and il >= shape.n_dense_lead else shape.n_ff[il],
                swa=shape.swa[il],
                rope=not no_rope or (il + 1) % no_rope != 0,
                conv=shape.conv_state if shape.recurrent and shape.recurrent[il] else 0,
                dense_ffn=moe and il < shape.n_dense_lead,
                n_ff_shared=(shape.n_ff_exp * shape.n_expert_shared) if moe and il >= shape.n_dense_lead else 0,
            )
            for il in layers
        ),
        mla_rank=shape.mla_rank,
        mla_rope=shape.mla_rope,
        mla_q_lora=shape.mla_q_lora,
        moe_sigmoid=shape.moe_sigmoid,
        moe_probs_bias=shape.moe_probs_bias,
        moe_scale=shape.moe_scale,
        moe_groups=shape.moe_groups,
        final_softcap=shape.final_softcap,
        n_expert=shape.n_expert if moe else 0,
        n_expert_used=shape.n_expert_used if moe else 0,
        **features,
    )


@functools.lru_cache(maxsize=512)
def _compute(spec: DecoderSpec, gs: GraphSettings) -> int:
    return compute_buffer_bytes(spec, gs)


def _compute_cpu(shape: ModelShape, es: EffectiveSettings, swa_cells: int, n_outputs: int | None = None) -> int:
    """The CPU compute buffer of a build without a GPU; ``n_outputs`` overrides llama.cpp's worst case (one
    logits row per token)."""
    gs = _graph_settings(shape, es, swa_cells, n_outputs)
    if shape.n_layer <= 0 or shape.n_embd <= 0:
        return shape.n_vocab * gs.n_outputs * 4
    return _compute(_decoder_spec(shape, range(shape.n_layer)), gs)


def _graph_settings(shape: ModelShape, es: EffectiveSettings, swa_cells: int, n_outputs: int | None) -> GraphSettings:
    quantized = es.kv_type != "f16"
    return GraphSettings(
        n_tokens=min(es.n_ctx_cells, es.n_ubatch),
        n_outputs=min(es.n_ctx_cells, es.n_ubatch, es.n_batch) if n_outputs is None else n_outputs,
        n_kv=es.n_ctx_cells,
        n_kv_swa=swa_cells,
        flash_attn=es.flash_attn,
        # MLA's K-only cache input builds no rotation (build_attn_inp_k_impl), whatever the cache type
        k_rot=_rot_size(shape.head_dim_k, grow=True) if quantized and not shape.mla_rank else 0,
        v_rot=_rot_size(shape.head_dim_v, grow=False) if quantized and not shape.mla_rank else 0,
    )


def _compute_split_estimate(
    shape: ModelShape,
    es: EffectiveSettings,
    swa_cells: int,
    n_outputs: int | None = None,
    cpu_only: bool = False,
    gpu_only: bool = False,
    output_on_gpu: bool = True,
) -> tuple[int, int]:
    """(CPU, GPU) compute buffer bytes on a GPU backend whose split was never checked against a log (CUDA, Metal,
    a deployment target, a typed budget): each device's graph of its own layers, an estimate that shares one
    allocator simulation per layer run between all the quant types of a model. ggml's scheduler replayed node by
    node (``_compute_gpu_build``) is exact on Vulkan but costs one simulation per file, split and context — ~8 s
    instead of ~0.9 s for the whole catalogue's ladder on a GPU budget — and would be no less an estimate where
    the backend orders and pads its nodes its own way. Not predicted here: op offload's GPU buffer with no layer
    offloaded. ``n_outputs`` overrides llama.cpp's worst case (one per token).

    ``cpu_only`` / ``gpu_only``: the other device's figure is not wanted (returned as 0), so its graph is not
    simulated. ``output_on_gpu`` False: the output matrix stays in host memory although its layer is offloaded
    (the device refuses a tensor that large), so the logits are computed, and allocated, on the CPU side; on
    lavapipe this moved Gemma-3's 514.5 MiB of logits from the Vulkan0 prediction to Vulkan_Host, as logged.
    """
    gs = _graph_settings(shape, es, swa_cells, n_outputs)
    if shape.n_layer <= 0 or shape.n_embd <= 0:
        return shape.n_vocab * gs.n_outputs * 4, 0
    if es.gpu_layers <= 0:
        return (0 if gpu_only else _compute(_decoder_spec(shape, range(shape.n_layer)), gs)), 0
    # Split graphs (an estimate): each device allocates the graph of its own layers; the device that
    # holds the output layer also holds the logits; the CPU keeps the token embeddings and the inputs.
    i_gpu_start = max(0, shape.n_layer + 1 - es.gpu_layers)
    logits = shape.n_vocab * gs.n_outputs * 4
    emb = shape.n_embd * gs.n_tokens * 4
    if i_gpu_start >= shape.n_layer:  # only the output layer is offloaded
        if not output_on_gpu:  # … and its matrix stayed on the CPU: nothing of the graph is on the GPU
            return (0 if gpu_only else _compute(_decoder_spec(shape, range(shape.n_layer)), gs)), 0
        if gpu_only:
            return 0, logits + emb
        full = _compute(_decoder_spec(shape, range(shape.n_layer)), gs)
        return max(full - logits, 0) + emb, logits + emb
    gpu_spec = _decoder_spec(shape, range(i_gpu_start, shape.n_layer))
    if not output_on_gpu:
        gpu_spec = replace(gpu_spec, n_vocab=1)  # the layers' graph without the logits
    gpu = 0 if cpu_only else _compute(gpu_spec, gs)
    host_logits = 0 if output_on_gpu else logits
    if i_gpu_start == 0:
        return 2 * emb + gs.n_tokens * 16 + host_logits, gpu  # embeddings, raw-embedding and index inputs
    if gpu_only:
        return 0, gpu
    cpu = _compute(_decoder_spec(shape, range(i_gpu_start)), gs)
    return max(cpu - logits, 0) + emb + host_logits, gpu


def _compute_gpu_build(
    header: GGUFHeader,
    shape: ModelShape,
    es: EffectiveSettings,
    swa_cells: int,
    backend: Backend,
    n_outputs: int | None = None,
    only: str = "",
) -> tuple[int, int]:
    """(host, GPU) compute buffer bytes on a build with a GPU, any number of layers offloaded (0 included):
    ggml's scheduler replayed on the whole graph (core/fit/offload/scheduler.py), op offload included, on Vulkan
    (where it was checked per device); ``_compute_split_estimate`` on other GPU backends."""
    if backend.gpu_backend != "vulkan" or not backend.exact_gpu_split:
        # ``only`` "cpu" / "gpu": the caller wants one device's figure (the other is 0), so its graph is skipped
        return _compute_split_estimate(
            shape, es, swa_cells, n_outputs, only == "cpu", only == "gpu", _output_fits(header, backend)
        )
    gs = _graph_settings(shape, es, swa_cells, n_outputs)
    if shape.n_layer <= 0 or shape.n_embd <= 0:
        return shape.n_vocab * gs.n_outputs * 4, 0
    rows = []
    for il in range(shape.n_layer):
        v_width = shape.n_head_kv[il] * shape.head_dim_v
        rows.append((_row_bytes(es.kv_type, shape.n_head_kv[il] * shape.head_dim_k), _row_bytes(es.kv_type, v_width)))
    gpu_from = shape.n_layer + 1 - es.gpu_layers if es.gpu_layers > 0 else shape.n_layer + 1
    output_on_gpu = es.gpu_layers > 0 and _output_fits(header, backend)
    return reduced_split_bytes(
        SplitQuery(
            _decoder_spec(shape, range(shape.n_layer)),
            gs,
            _header_facts(header)[1].graph_weights,
            tuple(rows),
            gpu_from,
            output_on_gpu,
            backend.gpu_max_tensor_bytes,
            # the engine inherits this process's environment, where llama.cpp's switch for the reordering is read
            backend.gpu_backend == "vulkan" and not os.environ.get("GGML_VK_DISABLE_GRAPH_OPTIMIZE"),
        )
    )


def _output_fits(header: GGUFHeader, backend: Backend) -> bool:
    """The output matrix (the tied embeddings' copy, or output.weight) is not too large for the GPU."""
    limit = backend.gpu_max_tensor_bytes
    out = _header_facts(header)[1].output
    return not (limit and out is not None and out.n_bytes > limit)


def overhead_bytes(shape: ModelShape, es: EffectiveSettings, baseline: int | None = None) -> int:
    """RAM the engine holds outside llama.cpp's logged buffers (process, load, tokenizer, matmul work area)."""
    work = max((*shape.n_ff, shape.n_embd)) * min(es.n_ctx_cells, es.n_ubatch) * 2
    start = ENGINE_BASELINE_BYTES if baseline is None else baseline
    return start + ENGINE_LOAD_BYTES + shape.n_vocab * VOCAB_BYTES_PER_TOKEN + work


def header_shape(header: GGUFHeader) -> ModelShape:
    """``model_shape(header)``, read once per header object (the memory model's own copy; do not edit it)."""
    return _header_facts(header)[0]


def layer_count(header: GGUFHeader) -> int:
    """The header's blocks as the memory model counts them (``MemoryPrediction.n_layers``)."""
    return _header_facts(header)[0].n_layer


def predict_vram(
    header: GGUFHeader,
    params: LoadParams,
    backend: Backend | None = None,
    *,
    swa_full: bool = True,
    with_compute: bool = True,
) -> int:
    """``predict(...).vram_bytes`` alone: the auto-offload search asks only this, and the CPU side's graphs
    (two more allocator simulations per try) are not needed for it. ``with_compute=False``: the weights and
    KV cache only, a lower bound that costs no simulation."""
    backend = backend or Backend(repack=False)
    shape = _header_facts(header)[0]
    es = effective_settings(shape, params, backend, swa_full)
    _, _, w_gpu = _weights(header, shape, es, backend)
    _, kv_gpu, swa_cells = _kv(shape, es)
    if not with_compute or not backend.gpu:
        return w_gpu + kv_gpu
    _, c_gpu = _compute_gpu_build(header, shape, es, swa_cells, backend, only="gpu")
    return w_gpu + kv_gpu + c_gpu


def predict_ram_bound(
    header: GGUFHeader,
    params: LoadParams,
    backend: Backend | None = None,
    *,
    swa_full: bool = True,
    baseline_bytes: int | None = None,
    upper: bool = False,
) -> int:
    """Bounds on ``predict(...).ram_bytes`` for searches that only ask whether it fits (verdict.will_fit).

    Without ``upper``: everything but the CPU compute buffer, a lower bound that costs no allocator simulation.
    With ``upper``: that plus the CPU graph with one row of logits, an upper bound for one simulation instead of
    two: ``ram_bytes`` counts the written part of the CPU compute buffer, ``min(full graph, one-row graph)``
    (``compute_cpu - compute_cpu_unwritten`` in ``predict``), which is never more than the one-row graph.
    """
    backend = backend or Backend(repack=False)
    shape = _header_facts(header)[0]
    es = effective_settings(shape, params, backend, swa_full)
    w_cpu, w_repack, _ = _weights(header, shape, es, backend)
    kv_cpu, _, swa_cells = _kv(shape, es)
    ram = w_cpu + w_repack + kv_cpu + shape.n_vocab * 4 + overhead_bytes(shape, es, baseline_bytes)
    if not upper:
        return ram
    if backend.gpu:  # the host buffer of the one-row graph, as ggml's scheduler splits it (predict does the same)
        c_one_row = _compute_gpu_build(header, shape, es, swa_cells, backend, n_outputs=1, only="cpu")[0]
    else:
        c_one_row = _compute_cpu(shape, es, swa_cells, n_outputs=1)
    return ram + c_one_row


def predict(
    header: GGUFHeader,
    params: LoadParams,
    backend: Backend | None = None,
    *,
    swa_full: bool = True,
    baseline_bytes: int | None = None,
) -> MemoryPrediction:
    """Bytes llama.cpp will allocate for this model with these settings, per component and device.

    ``backend`` describes the llama.cpp build and CPU (``Backend.from_system_info`` with the engine's
    ``ready`` message); without it, a CPU-only build with no SIMD-specific repacking is assumed.
    ``baseline_bytes`` replaces the engine's measured start-up RSS when the caller knows better.
    """
    backend = backend or Backend(repack=False)
    shape = _header_facts(header)[0]
    es = effective_settings(shape, params, backend, swa_full)
    w_cpu, w_repack, w_gpu = _weights(header, shape, es, backend)
    kv_cpu, kv_gpu, swa_cells = _kv(shape, es)
    if backend.gpu:
        c_cpu, c_gpu = _compute_gpu_build(header, shape, es, swa_cells, backend)
        c_cpu_one_row, _ = _compute_gpu_build(header, shape, es, swa_cells, backend, n_outputs=1, only="cpu")
    else:
        c_cpu, c_gpu = _compute_cpu(shape, es, swa_cells), 0
        c_cpu_one_row = _compute_cpu(shape, es, swa_cells, n_outputs=1)
    notes = list(shape.notes)
    if shape.architecture in _KNOWN_GRAPHS and not shape.notes:
        if backend.gpu and backend.gpu_backend == "vulkan" and not backend.exact_gpu_split:
            confidence, reason = (
                "estimate",
                "a quick per-device estimate of the GPU split (the model ladder's); checking one file replays "
                "llama.cpp's scheduler",
            )
        elif backend.gpu and (backend.gpu_backend != "vulkan" or shape.architecture not in GPU_CHECKED):
            # The per-device compute buffers follow ggml's scheduler (core/fit/offload/scheduler.py) and were checked
            # on Vulkan only (lavapipe, tests/gpu and the benchmark): other GPU backends order their nodes their own
            # way (and CUDA pads weights); a graph not in GPU_CHECKED was never held to a Vulkan load.
            confidence, reason = (
                "estimate",
                "the GPU split follows ggml's scheduler, checked against llama.cpp's log on Vulkan, not for "
                f"{shape.architecture} on {backend.gpu_backend or 'this GPU backend'}",
            )
        elif backend.gpu:
            # Vulkan: every device component within 3 % of llama.cpp's log at 0, 1, half and all layers offloaded
            # (tests/benchmarks/test_gpu_memory_benchmarks.py), the auto-offload choice loaded under a budget just
            # above and below its prediction (tests/gpu/test_vulkan_gpu_layers.py)
            confidence, reason = (
                "measured",
                f"{shape.architecture}'s graph, ggml's scheduler and the Vulkan backend's node order are reproduced "
                "and checked against real loads on each device",
            )
        else:
            confidence, reason = (
                "measured",
                f"{shape.architecture}'s graph is reproduced and checked against real loads",
            )
    else:
        confidence = "rough"
        if shape.architecture not in _KNOWN_GRAPHS:
            reason = (
                f"Sizewise does not know the {shape.architecture} graph; compute memory is estimated with a "
                "llama-style layer and the KV cache from the header's head counts"
            )
        else:
            reason = "; ".join(shape.notes)
    if params.kv_type != "f16":
        block = KV_TYPE_BLOCKS[params.kv_type][0]
        if shape.head_dim_k % block or shape.head_dim_v % block:
            notes.append(f"{params.kv_type} needs head sizes divisible by {block}; llama.cpp will refuse this KV type")
    return MemoryPrediction(
        weights_cpu=w_cpu,
        weights_repack=w_repack,
        weights_gpu=w_gpu,
        kv_cpu=kv_cpu,
        kv_gpu=kv_gpu,
        compute_cpu=c_cpu,
        compute_gpu=c_gpu,
        output_bytes=shape.n_vocab * 4,
        overhead_bytes=overhead_bytes(shape, es, baseline_bytes),
        compute_cpu_unwritten=max(c_cpu - c_cpu_one_row, 0),
        recurrent_bytes=sum(_recurrent_state(shape, es)),
        settings=es,
        n_layers=shape.n_layer,
        confidence=confidence,
        confidence_reason=reason,
        notes=tuple(notes),
    )


# -- per-layer figures for splits over several devices (core.fit.rpc) ----------------------------------


def slot_weight_bytes(header: GGUFHeader) -> dict[int, int]:
    """Bytes of each offload slot's tensors as a device without row padding allocates them (ggml_nbytes): -1 the
    input layer (token embeddings, which llama.cpp keeps on the CPU), 0 … n_layer-1 the blocks, n_layer the output
    layer. The same table ``predict`` sums, so a split over many devices adds up to the one-device figures."""
    return {slot: facts.gpu_bytes for slot, facts in _header_facts(header)[1].slots}


def tied_output_bytes(header: GGUFHeader) -> int:
    """Bytes of the embeddings' copy that goes with an offloaded output layer when the model ties its output to the
    token embeddings (0 when it has an output matrix of its own)."""
    shape, table = _header_facts(header)
    return table.emb.n_bytes if shape.tied_output and table.emb is not None else 0


def kv_bytes_for_layers(shape: ModelShape, es: EffectiveSettings, start: int, stop: int) -> int:
    """KV cache bytes of layers ``start`` … ``stop - 1``: llama.cpp allocates each layer's K and V on the device
    that holds the layer, so a device's KV buffer is the sum over its layers (the same rows as ``_kv``), a hybrid's
    recurrent state included (``_recurrent_state``'s rows)."""
    kinds, before = _kv_layer_kinds(shape, es.kv_type, es.flash_attn)
    swa_cells = _swa_cells(shape, es)
    lo, hi = before[max(0, min(start, shape.n_layer))], before[max(0, min(stop, shape.n_layer))]
    total = 0
    for (k_row, v_row, swa), n_hi, n_lo in zip(kinds, hi, lo, strict=True):
        cells = swa_cells if swa else es.n_ctx_cells
        total += (n_hi - n_lo) * (_align32(k_row * cells) + _align32(v_row * cells))
    if shape.conv_state:
        per_layer = _align32(shape.n_embd * shape.conv_state * 4 * RS_CELLS)
        total += per_layer * sum(1 for il, r in enumerate(shape.recurrent) if r and start <= il < stop)
    return total


def layer_graph_bytes(
    shape: ModelShape, es: EffectiveSettings, start: int, stop: int, *, logits: bool, n_outputs: int
) -> int:
    """Compute buffer of the graph of layers ``start`` … ``stop - 1`` alone (the allocator simulation of
    ``core.compute_graph``), with the logits when ``logits`` (the device holding the output layer) and
    ``n_outputs`` rows of them reserved."""
    if stop <= start or shape.n_layer <= 0 or shape.n_embd <= 0:
        return 0
    gs = _graph_settings(shape, es, _swa_cells(shape, es), n_outputs)
    spec = _decoder_spec(shape, range(start, stop))
    if not logits:
        spec = replace(spec, n_vocab=1)
    return _compute(spec, gs)
