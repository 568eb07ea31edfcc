"""The compute buffer, predicted the way llama.cpp sizes it: build the worst-case graph, then allocate it.

llama.cpp does not compute its compute-buffer size from a formula. At context creation it builds
the graph for one worst-case micro-batch (``n_tokens = min(n_ctx, n_ubatch)`` tokens, every KV
cell visible, one output row per token) and hands it to ggml's graph allocator (``ggml-alloc.c``),
which walks the nodes in order, gives each tensor the best-fitting free block, frees a tensor once
its last consumer has run, and lets some ops write in place over their input. The buffer it
reports is the high-water mark of that walk — including fragmentation, which is why the size is
not simply "the biggest tensors added up" (for SmolLM2 the 96 MiB logits land at an offset the
earlier layers decided).

So this module does the same thing on symbolic tensors: ``DecoderGraph`` emits the tensors of a
standard decoder (embedding lookup, per-layer norm → Q/K/V → RoPE → attention → output
projection → residual → norm → gated FFN → residual, final norm and the logits) in ggml's
depth-first order, and ``simulate_allocator`` replays ggml-alloc's dynamic allocator on them
(best fit among free blocks except the last, growing the last block otherwise, 32-byte alignment,
in-place reuse for the ops ggml marks as such, views that keep their source alive). Sizes come
from the GGUF header, so the result follows the model and the settings instead of any stored
per-model number. Tiny tensors that do not move the result are left out (RoPE factors, norms'
weights are external anyway). Layers that are not attention blocks have helpers of their own, in llama.cpp's order:
lfm2's short convolutions (``_shortconv``), deepseek2's multi-head latent attention (``_mla_attention``), the
experts' routing (``_moe_ffn``, with DeepSeek-V3's expert groups in ``_expert_groups``).

Only the shapes of the graph matter here; the arithmetic is never run.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

TENSOR_ALIGNMENT = 32  # ggml's CPU buffer alignment (ggml-impl.h TENSOR_ALIGNMENT)

# ggml_op_can_inplace() in ggml-alloc.c: the result may reuse its first eligible parent's memory.
_INPLACE_OPS = frozenset(
    {"scale", "add", "add_id", "mul", "rms_norm", "rope", "soft_max", "unary", "div", "sub", "sqr", "sqrt", "clamp"}
)


@dataclass(eq=False, slots=True)
class Tensor:
    """A symbolic ggml tensor: size, producing op, sources, and what it is a view of."""

    name: str
    nbytes: int
    op: str  # "none" for leaves (inputs, weights, caches); "view" for views; else the op name
    srcs: list[Tensor] = field(default_factory=list)
    layout: tuple[object, ...] = ()
    view_src: Tensor | None = None
    external: bool = False  # lives in another buffer (weights, KV cache): never allocated here
    is_input: bool = False
    is_output: bool = False
    tag: int = -1  # the layer whose build appended it to the graph (the state keys name tensors by it)
    # simulate_allocator's bookkeeping (ggml's hash-set entries): consumers and views still to run, placement
    n_children: int = 0
    n_views: int = 0
    allocated: bool = False
    offset: int = -1
    seen: int = 0  # the stamp of the last graph whose expand visited it (Graph.expand)

    @property
    def is_view(self) -> bool:
        return self.view_src is not None


_GRAPH_STAMPS = itertools.count(1)
_WIDTH = {"f32": 4, "f16": 2, "i32": 4, "i64": 8}


class Graph:
    """Tensors plus ggml's node/leaf order (post-order depth-first from each expand call)."""

    def __init__(self) -> None:
        self.nodes: list[Tensor] = []
        self.leafs: list[Tensor] = []
        self._stamp = next(_GRAPH_STAMPS)  # marks the tensors this graph's expand has visited (Tensor.seen)
        self.layer = -1  # the layer being built: tags the nodes appended meanwhile
        self.marks: list[int] = []  # len(nodes) after each layer's attention: the layer boundaries

    # -- construction helpers ------------------------------------------------------------------
    @staticmethod
    def input(name: str, nbytes: int, shape: tuple[int, ...], dtype: str) -> Tensor:
        return Tensor(name, nbytes, "none", layout=("c", dtype, shape), is_input=True)

    def external(self, name: str) -> Tensor:
        """A weight or cache, tagged with the layer being built: the layer it belongs to (a node's tag is the
        layer whose expansion appended it, which for a layer's FFN is the next one's)."""
        return Tensor(name, 0, "none", external=True, tag=self.layer)

    @staticmethod
    def new(name: str, op: str, srcs: Sequence[Tensor], shape: tuple[int, ...], dtype: str = "f32") -> Tensor:
        n = _WIDTH[dtype]
        for d in shape:
            n *= d
        return Tensor(name, n, op, list(srcs), layout=("c", dtype, shape))

    @staticmethod
    def view(src: Tensor, name: str = "view", shape: tuple[int, ...] | None = None, contiguous: bool = True) -> Tensor:
        """A reshape/permute/view: no memory of its own; keeps its root source alive while used."""
        root = src.view_src or src
        if contiguous and shape is not None and src.layout and src.layout[0] == "c":
            layout: tuple[object, ...] = ("c", src.layout[1], shape)
        else:
            layout = ("v", id(src), name)
        return Tensor(name, src.nbytes, "view", [src], layout=layout, view_src=root, external=root.external)

    def expand(self, t: Tensor) -> None:
        """ggml_build_forward_expand: visit sources left to right, then record the tensor.

        Visited tensors carry the graph's stamp rather than sit in a set of ids: the walk is the largest part of
        building a graph, and the ladder builds a few hundred."""
        stamp = self._stamp
        if t.seen == stamp:
            return
        t.seen = stamp
        nodes, leafs, layer = self.nodes, self.leafs, self.layer
        stack: list[tuple[Tensor, int]] = [(t, 0)]
        push, pop = stack.append, stack.pop
        while stack:
            node, i = pop()
            srcs = node.srcs
            n = len(srcs)
            while i < n:  # the next source not visited yet goes first; this node resumes after it
                src = srcs[i]
                i += 1
                if src.seen != stamp:
                    src.seen = stamp
                    push((node, i))
                    node, i, srcs = src, 0, src.srcs
                    n = len(srcs)
            if not node.external:
                node.tag = layer
            (leafs if node.op == "none" else nodes).append(node)


# -- ggml-alloc's dynamic allocator -----------------------------------------------------------------


def _align(n: int) -> int:
    return (n + TENSOR_ALIGNMENT - 1) // TENSOR_ALIGNMENT * TENSOR_ALIGNMENT


class _DynAllocator:
    """ggml_dyn_tallocr with one chunk (CPU buffers have no maximum size)."""

    def __init__(self) -> None:
        self.free: list[list[int]] = [[0, 1 << 62]]  # [offset, size], sorted by offset; last block is the tail
        self.max_size = 0

    def alloc(self, size: int) -> int:
        size = _align(size)
        free = self.free
        last = len(free) - 1
        best = last  # the tail, unless a block before it fits (best fit among all blocks but the last)
        best_size = 1 << 63
        for i in range(last):
            block_size = free[i][1]
            if size <= block_size <= best_size:
                best, best_size = i, block_size
        block = free[best]
        offset = block[0]
        block[0] += size
        block[1] -= size
        if block[1] == 0:
            del free[best]
        if offset + size > self.max_size:
            self.max_size = offset + size
        return offset

    def release(self, offset: int, size: int) -> None:
        size = _align(size)
        for i, block in enumerate(self.free):
            if block[0] + block[1] == offset:  # block ends where the freed range starts
                block[1] += size
                if i + 1 < len(self.free) and block[0] + block[1] == self.free[i + 1][0]:
                    block[1] += self.free[i + 1][1]
                    del self.free[i + 1]
                return
            if offset + size == block[0]:  # freed range ends where the block starts
                block[0] = offset
                block[1] += size
                if i > 0 and self.free[i - 1][0] + self.free[i - 1][1] == offset:
                    self.free[i - 1][1] += block[1]
                    del self.free[i]
                return
        pos = 0
        while pos < len(self.free) and self.free[pos][0] < offset:
            pos += 1
        self.free.insert(pos, [offset, size])


def simulate_allocator(graph: Graph, states: list[tuple[tuple[object, ...], int]] | None = None) -> int:
    """Replay ggml_gallocr_alloc_graph_impl and return the buffer's high-water mark in bytes.

    With ``states``, (state, high-water mark so far) at each layer boundary (``graph.marks``) is appended to
    it; two boundaries share the state key exactly when everything ahead would be allocated the same
    (``_state_key``).

    Long on purpose (~90 lines): it follows ggml-alloc.c's one function step by step (allocate each
    node's parents, reuse a parent's memory in place where ggml would, free a tensor after its last
    consumer) so it can be read against the C source side by side; split up, that order would be lost.
    """
    alloc = _DynAllocator()
    for t in (*graph.leafs, *graph.nodes):  # the allocator's bookkeeping lives on the tensors: start afresh
        t.n_children = t.n_views = 0
        t.allocated = False
        t.offset = -1

    def allocate(t: Tensor) -> None:
        if t.external or t.allocated or t.view_src is not None:  # allocated already, or a view
            return
        t.allocated = True
        if t.op in _INPLACE_OPS:
            for parent in t.srcs:
                # ggml_gallocr_is_own(): views are never "allocated" themselves, so an op never
                # writes in place over a reshaped/permuted input (the view branch in ggml is dead).
                if parent.external or not parent.allocated:
                    continue
                if parent.is_output or (parent.view_src is not None and parent.view_src.is_output):
                    continue
                if parent.layout != t.layout:
                    continue
                if parent.n_children == 1 and parent.n_views == 0:
                    if parent.view_src is not None:
                        root = parent.view_src
                        assert root is not None
                        if root.external or not root.allocated:
                            continue
                        if root.n_views == 1 and root.n_children == 0:
                            t.offset = root.offset
                            parent.allocated = False
                            root.allocated = False
                            _free_extra(root, t, root.offset)
                            return
                    else:
                        t.offset = parent.offset
                        parent.allocated = False
                        _free_extra(parent, t, parent.offset)
                        return
        t.offset = alloc.alloc(t.nbytes)

    def _free_extra(parent: Tensor, node: Tensor, offset: int) -> None:
        extra = _align(parent.nbytes) - _align(node.nbytes)
        if extra > 0:
            alloc.release(offset + _align(node.nbytes), extra)

    def free(t: Tensor) -> None:
        if t.is_output:
            return
        alloc.release(t.offset, t.nbytes)
        t.allocated = False

    for leaf in graph.leafs:
        allocate(leaf)
    for node in graph.nodes:
        if node.view_src is not None:
            node.view_src.n_views += 1
        if node.is_input:
            allocate(node)
        for src in node.srcs:
            src.n_children += 1
            if src.is_input:
                allocate(src)
    marks = set(graph.marks) if states is not None else set()
    for i, node in enumerate(graph.nodes):
        if i in marks and states is not None:
            states.append((_state_key(graph, alloc.free, i, len(states)), alloc.max_size))
        for parent in node.srcs:
            # allocate()'s own first test, made here: most parents are allocated already, weights or views, and
            # the call alone was a tenth of a simulation
            if not (parent.allocated or parent.external or parent.view_src is not None):
                allocate(parent)
        allocate(node)
        for parent in node.srcs:
            parent.n_children -= 1
            if parent.n_children == 0 and parent.n_views == 0:
                if parent.view_src is not None:
                    root = parent.view_src
                    assert root is not None
                    root.n_views -= 1
                    if root.n_views == 0 and root.n_children == 0 and root.allocated and not root.external:
                        free(root)
                elif parent.allocated and not parent.external:
                    free(parent)
    if len(graph.nodes) in marks and states is not None:
        states.append((_state_key(graph, alloc.free, len(graph.nodes), len(states)), alloc.max_size))
    return alloc.max_size


def _state_key(graph: Graph, free: list[list[int]], end: int, layer: int) -> tuple[object, ...]:
    """The allocator's state after ``graph.nodes[:end]``, with tensors named by (layers back, name).

    Everything later nodes can touch: the free blocks, every tensor still allocated or still awaited by a
    consumer or a view, and the inputs (their offsets; not how many consumers they have left, which only
    matters at their last use — callers compare boundaries before any input's last use).
    """
    live = []
    for t in graph.nodes[:end]:
        if t.allocated or t.n_children or t.n_views:
            live.append((t.tag - layer, t.name, t.offset if t.allocated else -1, t.n_children, t.n_views))
    inputs = []
    for t in graph.leafs:
        if t.is_input:
            inputs.append((t.name, t.offset if t.allocated else -1, t.n_views))
    return tuple(map(tuple, free)), tuple(live), tuple(inputs)


# -- the decoder graph ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerShape:
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_ff: int
    swa: bool  # a sliding-window layer (its own KV cache and mask)
    rope: bool = True  # False: a NoPE layer (smollm3's every 4th): Q and K go to attention as projected
    conv: int = 0  # a short-convolution layer (lfm2's hybrid) with this many state columns (L_cache - 1): no attention
    dense_ffn: bool = False  # a leading dense layer of a mixture-of-experts model (deepseek2's first_k_dense_replace)
    n_ff_shared: int = 0  # the shared experts' width beside the routed ones (deepseek2: n_expert_shared × n_ff_exp)


@dataclass(frozen=True)
class DecoderSpec:
    """The shapes and the per-architecture graph features that change which tensors exist."""

    n_embd: int
    n_vocab: int
    layers: tuple[LayerShape, ...]
    qk_norm: bool = False  # RMS norm on Q and K heads (gemma3, qwen3, olmo2 …)
    qk_norm_rows: bool = False  # RMS norm on whole Q and K rows, before the heads are split (olmoe)
    post_norms: bool = False  # norm after attention and after the FFN (gemma2/3)
    scale_input: bool = False  # embeddings multiplied by sqrt(n_embd) (gemma family)
    scale_q: bool = False  # Q scaled by a separate op before attention (gemma3)
    gated_ffn: bool = True
    final_softcap: bool = False  # tanh soft-capping of the logits: three extra logits-sized ops, in place
    # Mixture of experts (build_moe_ffn): every layer's FFN routes each token to n_expert_used of n_expert
    # experts of width LayerShape.n_ff (softmax gating, gate/up/down as mul_mat_id, SiLU); 0 = a dense FFN.
    n_expert: int = 0
    n_expert_used: int = 0
    moe_norm_w: bool = False  # the selected experts' weights renormalised to sum 1 (qwen3moe, not olmoe)
    # gpt-oss: experts chosen on the raw router logits, a softmax over the chosen ones only
    # (LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX_WEIGHT); biases on the router and on every expert (add_id)
    moe_softmax_weight: bool = False
    moe_biases: bool = False
    # DeepSeek-V3's routing: sigmoid scores, a selection bias (exp_probs_b), the chosen weights scaled, experts
    # chosen within the best groups: (n_expert_groups, n_group_used), (0, 0) for none
    moe_sigmoid: bool = False
    moe_probs_bias: bool = False
    moe_scale: bool = False
    moe_groups: tuple[int, int] = (0, 0)
    # gpt-oss: the last layer runs on every token and the output rows are picked after it (its hidden state
    # is a graph output), instead of before the last layer's FFN
    out_rows_last: bool = False
    qkv_bias: bool = False  # Q/K/V biases added after each projection, in place over it (qwen2)
    fused_qkv: bool = False  # one QKV projection that Q, K and V view into (phi3): they are not contiguous
    fused_up: bool = False  # one up projection of 2 × n_ff holding gate and up, split by the GLU op (phi3)
    residual_first: bool = False  # the layer's last add is residual + FFN output (phi3): another in-place parent
    residual_scale: bool = False  # attention and FFN outputs scaled before their residual adds, in place (granite)
    logit_scale: bool = False  # the logits scaled by one op, in place (granite)
    attn_softcap: bool = False  # tanh soft-capping of KQ without flash attention: three ops, in place (gemma2)
    pre_norms: bool = True  # False: no norm before attention or the FFN, each takes the residual stream (olmo2)
    qk_norm_flat: bool = False  # RMS norm over the whole Q and K projections before the head split (olmo2): in place
    residual_first_attn: bool = False  # the attention's residual add is residual + output (lfm2): in place over it
    # deepseek2's MLA: the compressed KV's rank and the RoPE part of a head (0: ordinary attention). The layers'
    # head_dim_k / head_dim_v are then the decompressed heads (nope + rope, v_head_dim); the cache holds rank + rope
    mla_rank: int = 0
    mla_rope: int = 0
    mla_q_lora: int = 0  # compressed queries (DeepSeek-V2/V3's q_lora_rank): wq_a, its norm, then wq_b


@dataclass(frozen=True)
class GraphSettings:
    n_tokens: int  # micro-batch tokens in the reserve graph: min(n_ctx, n_ubatch)
    n_outputs: int  # logits rows reserved: min(n_tokens, n_batch)
    n_kv: int  # KV cells visible to full-attention layers
    n_kv_swa: int  # KV cells visible to sliding-window layers
    flash_attn: bool
    k_rot: int  # Hadamard rotation size for a quantized K cache (0 = none)
    v_rot: int


def build_decoder_graph(spec: DecoderSpec, gs: GraphSettings) -> Graph:
    """Emit the worst-case graph the way llama.cpp's llm_graph_context builds it (llama and the others
    memory_model lists as known).

    Long on purpose (~130 lines): the allocator's high-water mark depends on the exact order in which
    nodes are created, so the nodes are emitted in llama.cpp's order in one place, mirroring its builder
    line by line, rather than spread over helpers whose call order would have to be kept in sync.
    """
    g = Graph()
    T, E = gs.n_tokens, spec.n_embd
    fa = gs.flash_attn
    mask_dtype, mask_w = ("f16", 2) if fa else ("f32", 4)

    tokens = g.input("inp_tokens", 4 * T, (T,), "i32")
    inp_embd = g.input("inp_embd", 4 * E * T, (E, T), "f32")
    tok_embd = g.external("token_embd")
    cur = g.new("get_rows", "get_rows", [tok_embd, tokens], (E, T))
    # build_forward_select keeps both inputs in the graph: the token path and the raw-embedding leaf
    g.expand(cur)
    g.expand(inp_embd)
    if spec.scale_input:
        cur = g.new("inp_scaled", "scale", [cur], (E, T))
    pos = g.input("inp_pos", 4 * T, (T,), "i32")

    def kv_inputs(n_kv: int, tag: str) -> tuple[Tensor, Tensor, Tensor]:
        head_v_max = max(ly.head_dim_v * ly.n_head_kv for ly in spec.layers)
        k_idxs = g.input(f"k_idxs{tag}", 8 * T, (T,), "i64")
        v_n = T if fa else T * head_v_max
        v_idxs = g.input(f"v_idxs{tag}", 8 * v_n, (v_n,), "i64")
        mask = g.input(f"kq_mask{tag}", mask_w * n_kv * T, (n_kv, T), mask_dtype)
        return k_idxs, v_idxs, mask

    def rot_inputs(tag: str) -> tuple[Tensor | None, Tensor | None]:
        k = g.input(f"k_rot{tag}", 4 * gs.k_rot * gs.k_rot, (gs.k_rot, gs.k_rot), "f32") if gs.k_rot else None
        v = g.input(f"v_rot{tag}", 4 * gs.v_rot * gs.v_rot, (gs.v_rot, gs.v_rot), "f32") if gs.v_rot else None
        return k, v

    # A model with sliding-window layers gets two KV caches (llama_kv_cache_iswa), each with its own
    # index, mask and rotation inputs; its build_attn also expands Q, K, V in that order, where the
    # single-cache build_attn expands Q, V, K. Both orders are kept: they move where tensors land.
    has_swa = any(ly.swa for ly in spec.layers)
    base_inputs = kv_inputs(gs.n_kv, "")
    swa_inputs = kv_inputs(gs.n_kv_swa, "_swa") if has_swa else base_inputs
    base_rot = rot_inputs("")
    swa_rot = rot_inputs("_swa") if has_swa else base_rot
    out_ids = g.input("out_ids", 4 * gs.n_outputs, (gs.n_outputs,), "i32")
    # the recurrent memory's state-copy indices (build_rs_inp_impl: one per sequence, here one)
    rs_copy = g.input("rs_s_copy", 4, (1,), "i32") if any(ly.conv for ly in spec.layers) else None
    # its two views (s_copy_main, s_copy_extra) are made once and shared by every layer, as build_inp_rs does
    rs_views = None
    if rs_copy is not None:
        rs_views = (
            g.view(rs_copy, "rs_copy_main", contiguous=False),
            g.view(rs_copy, "rs_copy_extra", contiguous=False),
        )
        rs_views[1].nbytes = 0  # n_rs - n_seqs states beyond the sequences: none here (a copy of it is 0 bytes)

    def norm(x: Tensor, shape: tuple[int, ...], name: str) -> Tensor:
        n = g.new(f"{name}_rms", "rms_norm", [x], shape)
        return g.new(name, "mul", [n, g.external(f"{name}.w")], shape)

    def hadamard(x: Tensor, rot: Tensor, n: int, shape: tuple[int, ...]) -> Tensor:
        # llama_mul_mat_hadamard: a reshape of a contiguous input, a copy (ggml_cont_2d) of a strided view
        if x.layout[0] == "c":
            flat = g.view(x, "rot_in", (n, _prod(shape) // n))
        else:
            flat = g.new("rot_cont", "cont", [x], (n, _prod(shape) // n))
        y = g.new("rot", "mul_mat", [rot, flat], (n, _prod(shape) // n))
        return g.view(y, "rot_out", shape)

    inp_l = cur
    n_layer = len(spec.layers)
    for il, ly in enumerate(spec.layers):
        g.layer = il
        k_idxs, v_idxs, mask = swa_inputs if ly.swa else base_inputs
        k_rot, v_rot = swa_rot if ly.swa else base_rot
        n_kv = gs.n_kv_swa if ly.swa else gs.n_kv
        hq, hk, hv = ly.n_head, ly.n_head_kv, ly.n_head_kv
        dq, dk, dv = ly.head_dim_k, ly.head_dim_k, ly.head_dim_v
        x = norm(inp_l, (E, T), "attn_norm") if spec.pre_norms else inp_l
        if ly.conv:  # a short-convolution layer (lfm2) in the attention's place
            att = _shortconv(g, x, E, T, ly.conv, rs_views)
            g.marks.append(len(g.nodes))
        elif spec.mla_rank:  # deepseek2's multi-head latent attention over its K-only cache
            att = _mla_attention(g, spec, ly, x, (pos, k_idxs, mask), T, n_kv, fa, norm)
            g.expand(att)
            g.marks.append(len(g.nodes))
            att = g.new("attn_out", "mul_mat", [g.external("wo"), att], (E, T))
        else:
            if spec.fused_qkv:  # build_qkv's fused path: ggml_view_3d into each row of the one projection
                qkv = g.new("qkv", "mul_mat", [g.external("wqkv"), x], (dq * hq + dk * hk + dv * hv, T))
                q, k, v = (g.view(qkv, name, contiguous=False) for name in ("q3", "k3", "v3"))
            else:
                q = _proj(g, "q", x, dq * hq, T, spec.qkv_bias)
                k = _proj(g, "k", x, dk * hk, T, spec.qkv_bias)
                if spec.qk_norm_flat or spec.qk_norm_rows:  # build_qkv(reshape=false), norms, then ggml_reshape_3d
                    q, k = norm(q, (dq * hq, T), "q_norm"), norm(k, (dk * hk, T), "k_norm")
                q = g.view(q, "q3", (dq, hq, T))
                k = g.view(k, "k3", (dk, hk, T))
                v = g.view(_proj(g, "v", x, dv * hv, T, spec.qkv_bias), "v3", (dv, hv, T))
            if spec.qk_norm:
                q = norm(q, (dq, hq, T), "q_norm")
            if ly.rope:
                q = g.new("q_rope", "rope", [q, pos], (dq, hq, T))
            if spec.qk_norm:
                k = norm(k, (dk, hk, T), "k_norm")
            if ly.rope:
                k = g.new("k_rope", "rope", [k, pos], (dk, hk, T))
            if spec.scale_q:
                q = g.new("q_scaled", "scale", [q], (dq, hq, T))
            if k_rot is not None:
                q = hadamard(q, k_rot, gs.k_rot, (dq, hq, T))
                k = hadamard(k, k_rot, gs.k_rot, (dk, hk, T))
            if v_rot is not None:
                v = hadamard(v, v_rot, gs.v_rot, (dv, hv, T))
            for t in (q, k, v) if has_swa else (q, v, k):
                g.expand(t)
            k_cache, v_cache = g.external(f"cache_k{il}"), g.external(f"cache_v{il}")
            g.expand(_set_rows(g, k_cache, g.view(k, "k2d", (dk * hk, T)), k_idxs))
            if fa:
                g.expand(_set_rows(g, v_cache, g.view(v, "v2d", (dv * hv, T)), v_idxs))
            else:
                # cpy_v into the transposed cache: a reshape, or a copy (ggml_cont_2d) of a strided V
                contiguous = v.layout[0] == "c"
                v2d = g.view(v, "v2d", (dv * hv, T)) if contiguous else g.new("v_cont", "cont", [v], (dv * hv, T))
                v1 = g.view(v2d, "v1", (1, dv * hv * T))
                g.expand(_set_rows(g, g.view(v_cache, "v_cache_1d"), v1, v_idxs))  # into a reshape of the cache
            kv_k = g.view(g.view(k_cache, "k_view"), "k_perm", contiguous=False)
            kv_v = g.view(g.view(v_cache, "v_view"), "v_perm", contiguous=False)
            qp = g.view(g.view(q, "q4", (dq, hq, T)), "q_perm", contiguous=False)
            if fa:
                att = g.new("fattn", "flash_attn_ext", [qp, kv_k, kv_v, mask], (dv, hq, T))
                att = g.view(att, "fattn2d", (dv * hq, T))
            else:
                kq = g.new("kq", "mul_mat", [kv_k, qp], (n_kv, T, hq))
                if spec.attn_softcap:  # with flash attention the cap is a parameter of flash_attn_ext
                    kq = g.new("kq_scaled_1", "scale", [kq], (n_kv, T, hq))
                    kq = g.new("kq_tanh", "unary", [kq], (n_kv, T, hq))
                    kq = g.new("kq_scaled_2", "scale", [kq], (n_kv, T, hq))
                kq = g.new("kq_soft_max", "soft_max", [kq, mask], (n_kv, T, hq))
                kqv = g.new("kqv", "mul_mat", [kv_v, kq], (dv, T, hq))
                att = g.new("kqv_cont", "cont", [g.view(kqv, "kqv_perm", contiguous=False)], (dv * hq, T))
            g.expand(att)
            g.marks.append(len(g.nodes))
            if v_rot is not None:
                att = hadamard(att, v_rot, gs.v_rot, (dv * hq, T))
            att = g.new("attn_out", "mul_mat", [g.external("wo"), att], (E, T))
        t_cur = T
        residual = inp_l
        if il == n_layer - 1 and not spec.out_rows_last:
            t_cur = gs.n_outputs
            att = g.new("att_rows", "get_rows", [att, out_ids], (E, t_cur))
            residual = g.new("res_rows", "get_rows", [residual, out_ids], (E, t_cur))
        if spec.post_norms:
            att = norm(att, (E, t_cur), "attn_post_norm")
        if spec.residual_scale:
            att = g.new("attn_scaled", "scale", [att], (E, t_cur))
        ffn_inp = g.new("ffn_inp", "add", [residual, att] if spec.residual_first_attn else [att, residual], (E, t_cur))
        x = norm(ffn_inp, (E, t_cur), "ffn_norm") if spec.pre_norms else ffn_inp
        if spec.n_expert and not ly.dense_ffn:
            down = _moe_ffn(g, spec, x, ly.n_ff, t_cur)
            if ly.n_ff_shared:  # deepseek2's shared experts: one more gated FFN on every token, added to the routed
                shared = _gated_ffn(g, x, E, ly.n_ff_shared, t_cur, "ffn_shexp")
                down = g.new("ffn_moe_shexp", "add", [down, shared], (E, t_cur))
        else:
            up_width = 2 * ly.n_ff if spec.fused_up else ly.n_ff
            up = g.new("ffn_up", "mul_mat", [g.external("w_up"), x], (up_width, t_cur))
            if spec.fused_up:  # build_ffn(LLM_FFN_SWIGLU, LLM_FFN_SEQ) without a gate: ggml_swiglu splits the rows
                act = g.new("ffn_glu", "glu", [up], (ly.n_ff, t_cur))
            elif spec.gated_ffn:
                gate = g.new("ffn_gate", "mul_mat", [g.external("w_gate"), x], (ly.n_ff, t_cur))
                act = g.new("ffn_glu", "glu", [gate, up], (ly.n_ff, t_cur))
            else:
                act = g.new("ffn_act", "unary", [up], (ly.n_ff, t_cur))
            down = g.new("ffn_down", "mul_mat", [g.external("w_down"), act], (E, t_cur))
        if spec.post_norms:
            down = norm(down, (E, t_cur), "ffn_post_norm")
        if spec.residual_scale:
            down = g.new("ffn_scaled", "scale", [down], (E, t_cur))
        pair = [ffn_inp, down] if spec.residual_first else [down, ffn_inp]
        inp_l = g.new("l_out", "add", pair, (E, t_cur))

    g.layer = n_layer
    n_out = gs.n_outputs
    if spec.out_rows_last:
        inp_l.is_output = True  # res->t_h_nextn
        inp_l = g.new("out_rows", "get_rows", [inp_l, out_ids], (E, n_out))
    result_norm = norm(inp_l, (E, n_out), "result_norm")
    result_norm.is_output = True
    logits = g.new("result_output", "mul_mat", [g.external("output"), result_norm], (spec.n_vocab, n_out))
    if spec.logit_scale:
        logits = g.new("logit_scale", "scale", [logits], (spec.n_vocab, n_out))
    if spec.final_softcap:
        logits = g.new("softcap_scale", "scale", [logits], (spec.n_vocab, n_out))
        logits = g.new("softcap_tanh", "unary", [logits], (spec.n_vocab, n_out))
        logits = g.new("softcap_scale2", "scale", [logits], (spec.n_vocab, n_out))
    logits.is_output = True
    g.expand(logits)
    return g


def _moe_ffn(g: Graph, spec: DecoderSpec, x: Tensor, n_ff: int, t: int) -> Tensor:
    """llm_graph_context::build_moe_ffn with softmax gating, separate gate/up experts and SiLU, in its order.

    The routing (router logits, softmax, top-k argsort, the chosen experts' weights, their renormalisation)
    is expanded first, as llama.cpp does to let backends fuse it; then the experts' matmuls run on
    [width, n_expert_used, tokens] tensors, the weights scale the down projections, and per-expert views of
    them are expanded before they are added up one by one.
    """
    E, n_exp, k = spec.n_embd, spec.n_expert, spec.n_expert_used
    logits = g.new("ffn_moe_logits", "mul_mat", [g.external("w_gate_inp"), x], (n_exp, t))
    if spec.moe_biases:
        logits = g.new("ffn_moe_logits_biased", "add", [logits, g.external("b_gate_inp")], (n_exp, t))
    if spec.moe_softmax_weight:
        probs = logits
    elif spec.moe_sigmoid:  # DeepSeek-V3's scoring: a sigmoid per expert, in place over the logits
        probs = g.new("ffn_moe_probs", "unary", [logits], (n_exp, t))
    else:
        probs = g.new("ffn_moe_probs", "soft_max", [logits], (n_exp, t))
    selection = probs
    if spec.moe_probs_bias:  # exp_probs_b: chosen on biased scores, weighted by the unbiased ones (a new tensor)
        selection = g.new("ffn_moe_probs_biased", "add", [probs, g.external("exp_probs_b")], (n_exp, t))
    if spec.moe_groups[0] > 1:
        selection = _expert_groups(g, selection, n_exp, t, *spec.moe_groups)
    argsort = g.new("ffn_moe_argsort", "argsort", [selection], (n_exp, t), "i32")
    selected = g.view(argsort, "ffn_moe_topk", (k, t), contiguous=False)
    weights = g.new("ffn_moe_weights", "get_rows", [g.view(probs, "probs3", (1, n_exp, t)), selected], (1, k, t))
    if spec.moe_softmax_weight:
        soft = g.new("ffn_moe_weights_softmax", "soft_max", [g.view(weights, "weights2d", (k, t))], (k, t))
        weights = g.view(soft, "weights3d", (1, k, t))
    if spec.moe_norm_w:
        w2 = g.view(weights, "weights2d", (k, t))
        total = g.new("ffn_moe_weights_sum", "sum_rows", [w2], (1, t))
        total = g.new("ffn_moe_weights_sum_clamped", "clamp", [total], (1, t))
        weights = g.view(g.new("ffn_moe_weights_norm", "div", [w2, total], (k, t)), "weights3d", (1, k, t))
    if spec.moe_scale:  # expert_weights_scale (V3: 2.5): over a view, so a new tensor
        weights = g.new("ffn_moe_weights_scaled", "scale", [weights], (1, k, t))
    g.expand(weights)
    cur = g.view(x, "ffn_moe_in3d", (E, 1, t))

    def biased(y: Tensor, name: str) -> Tensor:
        if not spec.moe_biases:
            return y
        return g.new(f"{y.name}_biased", "add_id", [y, g.external(name), selected], _shape(y))

    up = g.new("ffn_moe_up", "mul_mat_id", [g.external("w_up_exps"), cur, selected], (n_ff, k, t))
    up = biased(up, "b_up_exps")
    gate = g.new("ffn_moe_gate", "mul_mat_id", [g.external("w_gate_exps"), cur, selected], (n_ff, k, t))
    gate = biased(gate, "b_gate_exps")
    act = g.new("ffn_moe_swiglu", "glu", [gate, up], (n_ff, k, t))  # swiglu_oai for gpt-oss: the same shapes
    experts = g.new("ffn_moe_down", "mul_mat_id", [g.external("w_down_exps"), act, selected], (E, k, t))
    experts = biased(experts, "b_down_exps")
    experts = g.new("ffn_moe_weighted", "mul", [experts, weights], (E, k, t))
    g.expand(experts)
    views = [g.view(experts, f"ffn_moe_expert{i}", (E, t), contiguous=False) for i in range(k)]
    for v in views:
        g.expand(v)
    out = views[0]
    for v in views[1:]:
        out = g.new("ffn_moe_sum", "add", [out, v], (E, t))
        g.expand(out)
    if k == 1:
        out = g.new("ffn_moe_out", "cont", [out], (E, t))
    return out


def _mla_attention(
    g: Graph,
    spec: DecoderSpec,
    ly: LayerShape,
    x: Tensor,
    inputs: tuple[Tensor, Tensor, Tensor],
    T: int,
    n_kv: int,
    fa: bool,
    norm: Callable[[Tensor, tuple[int, ...], str], Tensor],
) -> Tensor:
    """deepseek2's attention with MLA's absorption (models/deepseek2.cpp, build_attn over llm_graph_input_attn_k and
    build_attn_mha with v_mla), in its order, up to the output projection (not included).

    Q (nope + rope per head) and the compressed KV plus one shared RoPE part come from two projections; the RoPE
    parts are rotated, the compressed KV normed, Q's nope part absorbed into the latent space (wk_b, per head), so
    that attention runs as MQA over one cache row of rank + rope values per token, V being a view of K's first
    ``rank`` values. The result is decompressed per head by wv_b. Without flash attention V is copied transposed
    (ggml_cont, in the cache's type): a rank × n_kv tensor that grows with the context. The K-only input has no
    Hadamard rotation even for a quantized cache (build_attn_inp_k_impl builds none).
    """
    pos, k_idxs, mask = inputs
    H, rank, rope = ly.n_head, spec.mla_rank, spec.mla_rope
    dk, dv = ly.head_dim_k, ly.head_dim_v
    if spec.mla_q_lora:
        q_a = g.new("q_a", "mul_mat", [g.external("wq_a"), x], (spec.mla_q_lora, T))
        q_a = norm(q_a, (spec.mla_q_lora, T), "q_a_norm")
        q = g.new("q", "mul_mat", [g.external("wq_b"), q_a], (dk * H, T))
    else:
        q = g.new("q", "mul_mat", [g.external("wq"), x], (dk * H, T))
    q = g.view(q, "q3", (dk, H, T))
    kv_pe = g.new("kv_cmpr_pe", "mul_mat", [g.external("wkv_a_mqa"), x], (rank + rope, T))
    k_pe = g.new("k_pe", "rope", [g.view(kv_pe, "k_pe_view", contiguous=False), pos], (rope, 1, T))
    kv_cmpr = norm(g.view(kv_pe, "kv_cmpr_view", contiguous=False), (rank, T), "kv_a_norm")
    q_pe = g.new("q_pe", "rope", [g.view(q, "q_pe_view", contiguous=False), pos], (rope, H, T))
    q_nope = g.view(g.view(q, "q_nope", contiguous=False), "q_nope_perm", contiguous=False)
    absorbed = g.new("q_nope_absorbed", "mul_mat", [g.external("wk_b"), q_nope], (rank, T, H))
    absorbed = g.view(absorbed, "q_nope_absorbed_perm", contiguous=False)
    q_cur = g.new("q_cat", "concat", [absorbed, q_pe], (rank + rope, H, T))
    v_cur = g.view(kv_cmpr, "kv_cmpr3d", (rank, 1, T))
    k_cur = g.new("k_cat", "concat", [v_cur, k_pe], (rank + rope, 1, T))
    for t in (q_cur, v_cur, k_cur):
        g.expand(t)
    cache = g.external("cache_k")
    g.expand(_set_rows(g, cache, g.view(k_cur, "k2d", (rank + rope, T)), k_idxs))
    qp = g.view(g.view(q_cur, "q4"), "q_perm", contiguous=False)
    kp = g.view(g.view(cache, "k_view"), "k_perm", contiguous=False)
    vp = g.view(g.view(cache, "v_view"), "v_perm", contiguous=False)
    if fa:
        att = g.new("fattn", "flash_attn_ext", [qp, kp, vp, mask], (rank, H, T))
        att = g.view(att, "fattn_perm", contiguous=False)
        att = g.new("fattn_mla", "mul_mat", [g.external("wv_b"), att], (dv, T, H))
        att = g.new("fattn_mla_cont", "cont", [g.view(att, "fattn_mla_perm", contiguous=False)], (dv, H, T))
        return g.view(att, "fattn2d", (dv * H, T))
    kq = g.new("kq", "mul_mat", [kp, qp], (n_kv, T, H))
    kq = g.new("kq_soft_max", "soft_max", [kq, mask], (n_kv, T, H))
    v_cont = g.new("v_cont", "cont", [g.view(vp, "v_t", contiguous=False)], (n_kv, rank, 1), "f16")
    kqv = g.new("kqv", "mul_mat", [v_cont, kq], (rank, T, H))
    kqv = g.new("kqv_mla", "mul_mat", [g.external("wv_b"), kqv], (dv, T, H))
    return g.new("kqv_cont", "cont", [g.view(kqv, "kqv_perm", contiguous=False)], (dv * H, T))


def _gated_ffn(g: Graph, x: Tensor, E: int, n_ff: int, t: int, name: str) -> Tensor:
    """build_ffn with gate and up in parallel and SiLU (LLM_FFN_SILU, LLM_FFN_PAR): up, gate, their GLU, down."""
    up = g.new(f"{name}_up", "mul_mat", [g.external(f"w_{name}_up"), x], (n_ff, t))
    gate = g.new(f"{name}_gate", "mul_mat", [g.external(f"w_{name}_gate"), x], (n_ff, t))
    act = g.new(f"{name}_glu", "glu", [gate, up], (n_ff, t))
    return g.new(f"{name}_down", "mul_mat", [g.external(f"w_{name}_down"), act], (E, t))


def _shortconv(g: Graph, x: Tensor, E: int, T: int, d_conv: int, rs_copy: tuple[Tensor, Tensor] | None) -> Tensor:
    """lfm2's build_shortconv_block for one sequence of T tokens, in its order: in_proj to B, C and X (views of one
    3 × E projection), B·X transposed, the conv state read through build_rs (its zeroing and extra-state copy are
    views of the cache, no memory), the state prepended (ggml_concat), the new state written back (a view), the
    convolution (ggml_ssm_conv), C times it (in place over the convolution) and out_proj.

    Why its own graph: the projection of 3 × E stays alive until C is used, past the concat and the convolution,
    which no attention layer of the same width holds; those tensors set the compute buffer of a hybrid model.
    """
    assert rs_copy is not None
    cur = g.view(x, "conv_in3d", (E, T, 1))
    bcx = g.new("conv_in_proj", "mul_mat", [g.external("w_in_proj"), cur], (3 * E, T, 1))
    b, c, xs = (g.view(bcx, name, contiguous=False) for name in ("conv_b", "conv_c", "conv_x"))
    bx = g.view(g.new("conv_bx", "mul", [b, xs], (E, T, 1)), "conv_bx_t", contiguous=False)
    cache = g.external("cache_r")
    states = g.view(cache, "conv_states")
    zero = g.view(g.view(states, "conv_state_zero"), "conv_state_zeroed")
    zero.op = "scale"  # ggml_scale_inplace of a view_1d of the states: a view of the cache
    g.expand(zero)
    main, extra = rs_copy
    conv_rs = g.new("conv_rs", "get_rows", [states, main], (E * d_conv, 1))
    g.expand(conv_rs)
    extra_rows = g.new("conv_rs_extra", "get_rows", [states, extra], (E * d_conv, 0))
    g.expand(_cpy(g, extra_rows, cache))
    conv = g.view(conv_rs, "conv_state3d", (d_conv, E, 1))
    cat = g.new("conv_concat", "concat", [conv, bx], (d_conv + T, E, 1))
    g.expand(_cpy(g, g.view(cat, "conv_snap", contiguous=False), cache))
    out = g.new("conv_out", "ssm_conv", [cat, g.external("w_conv")], (E, T, 1))
    y = g.new("conv_y", "mul", [c, out], (E, T, 1))
    y = g.new("conv_out_proj", "mul_mat", [g.external("w_out_proj"), y], (E, T, 1))
    return g.view(y, "conv_out2d", (E, T))  # not expanded here: the next layer's state reads come before it


def _cpy(g: Graph, src: Tensor, cache: Tensor) -> Tensor:
    """ggml_cpy into a view of a cache: the result is that view (no memory), its sources (values, destination)."""
    dst = g.view(cache, "cache_view")
    t = g.view(dst, "cpy")
    t.op = "cpy"
    t.srcs = [src, dst]
    return t


def _expert_groups(g: Graph, selection: Tensor, n_exp: int, t: int, n_groups: int, n_used: int) -> Tensor:
    """build_moe_ffn's group-limited routing (n_expert_groups > 1, DeepSeek-V3): each group scored by its two best
    experts (argsort, get_rows, sum_rows), the best ``n_used`` groups kept (argsort), their scores copied into a
    tensor filled with -inf (ggml_fill, then ggml_set_rows, a view of it): the scores the experts are chosen from."""
    per = n_exp // n_groups
    groups = g.view(selection, "selection_groups", (per, n_groups, t))
    best2 = g.new("group_argsort", "argsort", [groups], (per, n_groups, t), "i32")
    best2 = g.view(best2, "group_top2", contiguous=False)
    groups4d = g.view(groups, "groups4d", (1, per, n_groups, t))
    scores = g.new("group_scores", "get_rows", [groups4d, best2], (1, 2, n_groups, t))
    scores = g.new("group_sum", "sum_rows", [g.view(scores, "scores3d", (2, n_groups, t))], (1, n_groups, t))
    kept = g.new("groups_argsort", "argsort", [g.view(scores, "scores2d", (n_groups, t))], (n_groups, t), "i32")
    kept = g.view(kept, "groups_topk", (n_used, t), contiguous=False)
    chosen = g.new("group_probs", "get_rows", [groups, kept], (per, n_used, t))
    filled = g.new("group_fill", "fill", [groups], (per, n_groups, t))
    masked = g.view(filled, "group_set_rows")
    masked.op, masked.srcs = "set_rows", [filled, chosen, kept]
    return g.view(masked, "selection_masked", (n_exp, t))


def _shape(t: Tensor) -> tuple[int, ...]:
    shape = t.layout[2]
    assert isinstance(shape, tuple)
    return shape


def _proj(g: Graph, name: str, x: Tensor, width: int, n_tokens: int, bias: bool) -> Tensor:
    """A Q/K/V projection (build_qkv's separate path), with its bias added in place when the model has one."""
    t = g.new(name, "mul_mat", [g.external(f"w{name}"), x], (width, n_tokens))
    return g.new(f"{name}_b", "add", [t, g.external(f"b{name}")], (width, n_tokens)) if bias else t


def _set_rows(g: Graph, cache: Tensor, src: Tensor, idxs: Tensor) -> Tensor:
    """ggml_set_rows: a view of the cache (no memory) whose sources are (values, indices, cache)."""
    t = g.view(cache, "set_rows")
    t.op = "set_rows"
    t.srcs = [src, idxs, cache]
    return t


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@functools.lru_cache(maxsize=4096)
def compute_buffer_bytes(spec: DecoderSpec, gs: GraphSettings) -> int:
    """Bytes of the CPU compute buffer llama.cpp reserves for these shapes and settings.

    Cached: the simulation takes ~10 ms for a 70B-sized graph, and the same shapes recur — the largest-context
    and auto-offload searches ask again for settings they tried, and every quant of one model has the same
    graph (the ladder asks for seven). Both keys are frozen dataclasses, and the result depends on nothing else.

    A deep graph of repeating layers is simulated at a shorter, equivalent depth (``reduced_depth``), so a
    layer-split search that asks for every depth costs a few short graphs.
    """
    depth, floor, known = _reduce(spec, gs)
    if known is not None:
        return known
    if depth == len(spec.layers):
        return simulate_allocator(build_decoder_graph(spec, gs))
    return max(floor, compute_buffer_bytes(_with_depth(spec, depth), gs))


MAX_PERIOD = 8  # longest repeating layer pattern looked for (gemma3: 6 layers, 5 sliding-window + 1 full)


def layer_period(layers: Sequence[LayerShape]) -> int:
    """The shortest p with layers[i] == layers[i - p] throughout (1: all alike), 0 if none up to MAX_PERIOD."""
    for p in range(1, min(len(layers), MAX_PERIOD) + 1):
        if all(layers[i] == layers[i - p] for i in range(p, len(layers))):
            return p
    return 0


def _with_depth(spec: DecoderSpec, depth: int) -> DecoderSpec:
    """The same spec with its layer pattern (from the same first layer) repeated to ``depth`` layers."""
    p = layer_period(spec.layers)
    return replace(spec, layers=tuple(spec.layers[i % p] for i in range(depth)))


def reduced_depth(spec: DecoderSpec, gs: GraphSettings) -> tuple[int, int]:
    """(d, floor): ``spec``'s buffer is max(floor, the buffer of its pattern at depth d); (its depth, 0) if none known.

    Why it is exact: with a layer pattern of period P, graphs of the same pattern differ only in how many
    times it repeats. Every input is last used in the final P layers, so up to the boundary P layers before
    the end (the "common part") the allocator does the same in all of them. A short probe graph records
    the allocator's state at each layer boundary; once the state at boundary j recurs at j + p (p a multiple
    of P), every later boundary repeats with period p and the high-water mark stops rising past its value
    at j + p (the floor). What follows the common part (the last P layers, the output) depends only on the
    state it starts from, and the high-water mark only grows, so a graph whose common part ends at or
    past j + p reserves max(floor, what the shortest graph whose common part ends at the same phase,
    from j on, reserves).
    """
    depth, floor, _ = _reduce(spec, gs)
    return depth, floor


def _reduce(spec: DecoderSpec, gs: GraphSettings) -> tuple[int, int, int | None]:
    """``reduced_depth``'s (d, floor), and the answer itself where the probe was such a graph (else None)."""
    n = len(spec.layers)
    period = layer_period(spec.layers)
    depth = 2 * period + 2  # its common part (boundaries 0 … P+1) can show a state recurring a period later
    while period and depth < n:
        cycle = _recurrence(_with_depth(spec, depth), gs, period)
        if cycle is not None:
            first, p, floor, probe_bytes = cycle
            last = n - 1 - period  # the boundary where spec's common part ends
            if last < first + p:
                return n, 0, None
            phase = (last - first) % p
            probe_last = depth - 1 - period  # at or past first + p: the recurrence was seen in it
            known = probe_bytes if (probe_last - first) % p == phase else None
            return first + phase + 1 + period, floor, known
        depth *= 2
    return n, 0, None


@functools.lru_cache(maxsize=1024)
def _recurrence(probe: DecoderSpec, gs: GraphSettings, period: int) -> tuple[int, int, int, int] | None:
    """(j, p, floor, bytes): the first boundary j of the probe's common part whose state recurs at j + p, the
    high-water mark at j + p, and the probe's own buffer size."""
    states: list[tuple[tuple[object, ...], int]] = []
    probe_bytes = simulate_allocator(build_decoder_graph(probe, gs), states)
    seen: dict[tuple[int, tuple[object, ...]], int] = {}
    for j in range(len(probe.layers) - period):  # boundaries 0 … n-1-P: the common part
        key = (j % period, states[j][0])
        if key in seen:
            return seen[key], j - seen[key], states[j][1], probe_bytes
        seen[key] = j
    return None
