"""The compute buffers of a GPU build, per device, found the way ggml's backend scheduler finds them.

With a GPU backend, llama.cpp does not allocate "the GPU layers' graph" and "the CPU layers' graph": it
hands the whole worst-case graph to ``ggml_backend_sched`` (ggml-backend.cpp), which

1. places every node whose weight lives in a buffer on that buffer's device — except that a weight in host
   memory does not keep its matrix multiplication on the CPU when the GPU asks for it (**op offload**: the
   Vulkan backend takes any op whose batch, ``ggml_vk_get_op_batch_size``, is at least 32 rows, and it runs
   with the weight copied in). So a prompt-sized batch runs on the GPU even with 0 layers offloaded, and the
   GPU's compute buffer then holds the logits and a copy of the output matrix (126 MiB for SmolLM2);
2. spreads the GPU's placements up and down the graph over the nodes nothing pins, but never onto a node
   the device refuses (``supports_op``: Vulkan refuses any tensor above maxStorageBufferRange, so at
   context 8192 SmolLM2's 151 MiB attention scores are computed on the CPU, in the ``Vulkan_Host`` buffer);
3. cuts the graph into runs on one device and gives each run a copy of every input that lives elsewhere
   (activations, the KV cache of a CPU layer, a host weight) at the start of the run;
4. lets the GPU backend reorder each of its runs (Vulkan groups independent nodes: ``vulkan_order.py``);
5. allocates the copied graph with ggml-alloc, one buffer per device (``Vulkan0``, and the host buffer of
   the CPU backend, ``Vulkan_Host``), each tensor in its node's buffer.

This module replays those steps on ``compute_graph``'s symbolic graph and returns the high-water mark of
each buffer. Weights and caches have no bytes in that graph (they live in other buffers); ``Placement``
gives their device and, for the copies, their size.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sizewise.core.fit.compute_graph import (
    _INPLACE_OPS,
    DecoderSpec,
    Graph,
    GraphSettings,
    Tensor,
    _align,
    _DynAllocator,
    build_decoder_graph,
    layer_period,
)
from sizewise.core.fit.offload.vulkan_order import reorder

GPU, CPU = 0, 1  # backend ids in the scheduler's priority order (the CPU is always last)
OP_OFFLOAD_MIN_BATCH = 32  # GGML_OP_OFFLOAD_MIN_BATCH's default in the Vulkan (and SYCL, Metal) backends


@dataclass(frozen=True)
class Placement:
    """Where the graph's weights and caches live, and how large the GPU lets a tensor be.

    ``on_gpu(t)``: an external tensor (weight or KV cache) is in a GPU buffer. ``ext_bytes(t)``: its bytes (a
    cache's: the view of the cells the graph reads). ``max_tensor``: the largest tensor the GPU computes with
    (0: no limit). ``op_offload``: llama.cpp's default (``cparams.op_offload``), on.
    """

    on_gpu: Callable[[Tensor], bool]
    ext_bytes: Callable[[Tensor], int]
    max_tensor: int = 0
    op_offload: bool = True
    min_batch: int = OP_OFFLOAD_MIN_BATCH
    vulkan_order: bool = False  # the GPU runs' nodes in the Vulkan backend's order (vulkan_order.py)


def _is_view(t: Tensor) -> bool:
    return t.op == "view"  # ggml_is_view_op: VIEW, RESHAPE, PERMUTE, TRANSPOSE


def _is_weight(t: Tensor) -> bool:
    return t.external and t.view_src is None and not t.name.startswith("cache_")


def _shape(t: Tensor) -> tuple[int, ...]:
    if t.layout and t.layout[0] == "c":
        shape = t.layout[2]
        assert isinstance(shape, tuple)
        return shape
    return ()


def _batch(t: Tensor) -> int:
    """ggml_vk_get_op_batch_size: the rows an op works on (the op-offload test)."""
    shape = _shape(t)
    if t.op == "get_rows":
        return 0
    if t.op == "mul_mat":
        return shape[1] if len(shape) > 1 else 1
    if t.op in ("mul_mat_id", "rope"):
        return shape[2] if len(shape) > 2 else 1
    rows = 1
    for d in shape[1:]:
        rows *= d
    return rows


class _Sched:
    def __init__(self, graph: Graph, place: Placement) -> None:
        self.g = graph
        self.p = place
        self.backend: dict[int, int] = {}

    def size(self, t: Tensor) -> int:
        root = t.view_src or t
        return self.p.ext_bytes(t) if root.external else t.nbytes

    def gpu_supports(self, node: Tensor) -> bool:
        limit = self.p.max_tensor
        if not limit:
            return True
        return self.size(node) <= limit and all(self.size(s) <= limit for s in node.srcs)

    def supports(self, b: int, node: Tensor) -> bool:
        return b == CPU or self.gpu_supports(node)

    def buffer_backend(self, t: Tensor) -> int:
        """The device of the buffer a tensor lives in (-1: not known yet)."""
        root = t.view_src or t
        if root.external:
            return GPU if self.p.on_gpu(root) else CPU
        b = self.backend.get(id(t), -1)
        if b == -1 and t.view_src is not None:
            b = self.backend.get(id(t.view_src), -1)
        return b

    def from_cur(self, t: Tensor) -> int:
        """ggml_backend_sched_backend_id_from_cur."""
        root = t.view_src or t
        if root.external:
            return GPU if self.p.on_gpu(root) else CPU
        if t.is_input:
            return CPU
        if t.op in ("rope", "flash_attn_ext"):
            return -1
        for src in t.srcs:
            if _is_weight(src):
                b = GPU if self.p.on_gpu(src) else CPU
                if b == CPU and self.p.op_offload and self.gpu_supports(t) and _batch(t) >= self.p.min_batch:
                    return GPU
                return b
        return -1

    def assign(self) -> None:
        be = self.backend
        for leaf in self.g.leafs:
            be.setdefault(id(leaf), self.from_cur(leaf))
        nodes = self.g.nodes
        for node in nodes:
            if be.get(id(node), -1) == -1:
                be[id(node)] = self.from_cur(node)
                for src in node.srcs:
                    if be.get(id(src), -1) == -1:
                        be[id(src)] = self.from_cur(src)
        # pass 2: the GPU down and up (the CPU does not spread), then any device down and up
        for order, skip_cpu in ((nodes, True), (nodes[::-1], True), (nodes, False), (nodes[::-1], False)):
            cur = -1
            for node in order:
                if _is_view(node):
                    continue
                b = be.get(id(node), -1)
                if b != -1:
                    cur = -1 if (skip_cpu and b == CPU) else b
                elif cur != -1 and self.supports(cur, node):
                    be[id(node)] = cur
        # pass 3: what is left goes where most of its inputs' buffers are usable
        for node in nodes:
            if _is_view(node) or be.get(id(node), -1) != -1:
                continue
            best = -1
            for b in (GPU, CPU):
                if self.supports(b, node):
                    n = sum(1 for s in node.srcs if self._usable(s, b))
                    if n > best:
                        best, be[id(node)] = n, b
        # pass 4: views follow their source, unassigned sources their consumer
        for node in nodes:
            if node.view_src is not None and be.get(id(node), -1) == -1:
                be[id(node)] = self.buffer_backend(node.view_src)
            for src in node.srcs:
                if be.get(id(src), -1) == -1:
                    be[id(src)] = self.buffer_backend(src.view_src) if src.view_src is not None else be[id(node)]
            if be.get(id(node), -1) == -1:
                be[id(node)] = GPU if self.gpu_supports(node) else CPU

    def _usable(self, src: Tensor, b: int) -> bool:
        """ggml_backend_sched_buffer_supported: the GPU reads only its own buffers, the CPU only host ones."""
        sb = self.buffer_backend(src)
        return sb == b if sb != -1 else False

    def split(self) -> tuple[list[Tensor], dict[int, int]]:
        """Pass 5 and the graph copy: (nodes in order with the input copies, buffer id per node)."""
        be = self.backend
        out: list[Tensor] = []
        buf: dict[int, int] = {}
        copies: dict[tuple[int, int], Tensor] = {}
        pending: list[Tensor] = []  # the current run's nodes (their copies go first)
        run_inputs: list[Tensor] = []
        cur = -1

        def flush() -> None:
            run = reorder(pending) if cur == GPU and self.p.vulkan_order else pending
            for t in run:
                buf.setdefault(id(t), cur)  # the dependency nodes the reorder adds belong to the run
            out.extend(run)
            pending.clear()

        for node in self.g.nodes:
            if _is_view(node):
                pending.append(node)
                buf[id(node)] = be[id(node)]
                continue
            b = be[id(node)]
            new_run = b != cur
            if not new_run and run_inputs:
                new_run = any(
                    _is_weight(s) and self.buffer_backend(s) != cur and not self._usable(s, cur) for s in node.srcs
                )
            if new_run:
                flush()
                run_inputs = []
                cur = b
            for j, src in enumerate(node.srcs):
                if self.buffer_backend(src) == cur or self._usable(src, cur):
                    continue
                key = (id(src), cur)
                cpy = copies.get(key)
                if cpy is None:
                    cpy = copies[key] = Tensor(f"{src.name}#copy", self.size(src), "none", layout=src.layout)
                    dep = Tensor(f"{src.name}#dep", 0, "none", [src], view_src=src.view_src or src)
                    buf[id(dep)] = self.buffer_backend(src)
                    buf[id(cpy)] = cur
                    out.extend((dep, cpy))  # at the start of the run (before its nodes)
                    run_inputs.append(src)
                node.srcs[j] = cpy
            pending.append(node)
            buf[id(node)] = b
        flush()
        return out, buf


def allocate(graph: Graph, nodes: list[Tensor], buf: dict[int, int], leaf_buf: dict[int, int]) -> dict[int, int]:
    """ggml_gallocr_alloc_graph_impl with one dynamic allocator per buffer: the high-water mark of each.

    The same walk as ``compute_graph.simulate_allocator`` (read it there against ggml-alloc.c), with a
    tensor allocated in its node's buffer and an op reusing a parent's memory only in the same buffer.
    """
    allocs = {GPU: _DynAllocator(), CPU: _DynAllocator()}
    where: dict[int, int] = {}
    for t in (*graph.leafs, *nodes):
        t.n_children = t.n_views = 0
        t.allocated = False
        t.offset = -1

    def alloc(t: Tensor, b: int) -> None:
        if t.external or t.allocated or t.view_src is not None:
            return
        t.allocated = True
        if t.op in _INPLACE_OPS:
            for parent in t.srcs:
                if parent.external or not parent.allocated or parent.layout != t.layout:
                    continue
                if parent.is_output or (parent.view_src is not None and parent.view_src.is_output):
                    continue
                if parent.n_children != 1 or parent.n_views != 0:
                    continue
                owner = parent.view_src or parent  # its memory: the view's root
                if owner.external or not owner.allocated or where.get(id(owner)) != b:
                    continue
                if parent.view_src is not None and not (owner.n_views == 1 and owner.n_children == 0):
                    continue
                t.offset = owner.offset
                parent.allocated = False
                owner.allocated = False
                where[id(t)] = b
                extra = _align(owner.nbytes) - _align(t.nbytes)
                if extra > 0:
                    allocs[b].release(t.offset + _align(t.nbytes), extra)
                return
        t.offset = allocs[b].alloc(t.nbytes)
        where[id(t)] = b

    def free(t: Tensor) -> None:
        if t.is_output:
            return
        allocs[where[id(t)]].release(t.offset, t.nbytes)
        t.allocated = False

    for leaf in graph.leafs:
        alloc(leaf, leaf_buf.get(id(leaf), CPU))
    for node in nodes:
        if node.view_src is not None and node.op != "none":
            node.view_src.n_views += 1
        for src in node.srcs:
            src.n_children += 1
            if src.is_input:
                alloc(src, buf[id(node)])
    for node in nodes:
        b = buf[id(node)]
        for parent in node.srcs:
            alloc(parent, b)
        alloc(node, b)
        for parent in node.srcs:
            parent.n_children -= 1
            if parent.n_children == 0 and parent.n_views == 0:
                if parent.view_src is not None:
                    root = parent.view_src
                    root.n_views -= 1
                    if root.n_views == 0 and root.n_children == 0 and root.allocated and not root.external:
                        free(root)
                elif parent.allocated and not parent.external:
                    free(parent)
    return {b: a.max_size for b, a in allocs.items()}


def split_compute_bytes(graph: Graph, place: Placement) -> tuple[int, int]:
    """(CPU host buffer, GPU buffer) bytes of the compute buffers for this graph and placement."""
    s = _Sched(graph, place)
    s.assign()
    nodes, buf = s.split()
    leaf_buf = {id(leaf): s.backend.get(id(leaf), CPU) for leaf in graph.leafs}
    sizes = allocate(graph, nodes, buf, leaf_buf)
    return sizes[CPU], sizes[GPU]


# The GGUF tensor of each external in compute_graph's decoder graph (by the name the graph gives it).
_GRAPH_NAME = {
    "attn_q": "wq", "attn_k": "wk", "attn_v": "wv", "attn_qkv": "wqkv", "attn_output": "wo",
    "ffn_up": "w_up", "ffn_gate": "w_gate", "ffn_down": "w_down", "ffn_gate_inp": "w_gate_inp",
    "ffn_up_exps": "w_up_exps", "ffn_gate_exps": "w_gate_exps", "ffn_down_exps": "w_down_exps",
    "attn_norm": "attn_norm.w", "ffn_norm": "ffn_norm.w", "attn_q_norm": "q_norm.w", "attn_k_norm": "k_norm.w",
    "post_attention_norm": "attn_post_norm.w", "post_ffw_norm": "ffn_post_norm.w",
    # deepseek2's latent attention and shared experts
    "attn_q_a": "wq_a", "attn_q_b": "wq_b", "attn_kv_a_mqa": "wkv_a_mqa", "attn_k_b": "wk_b", "attn_v_b": "wv_b",
    "attn_q_a_norm": "q_a_norm.w", "attn_kv_a_norm": "kv_a_norm.w",
    "ffn_up_shexp": "w_ffn_shexp_up", "ffn_gate_shexp": "w_ffn_shexp_gate", "ffn_down_shexp": "w_ffn_shexp_down",
    # lfm2's short convolution (blk.N.shortconv.in_proj.weight)
    "shortconv.in_proj": "w_in_proj", "shortconv.conv": "w_conv", "shortconv.out_proj": "w_out_proj",
}  # fmt: skip
_GRAPH_BIAS = {"attn_q": "bq", "attn_k": "bk", "attn_v": "bv", "ffn_gate_inp": "b_gate_inp",
               "ffn_up_exps": "b_up_exps", "ffn_gate_exps": "b_gate_exps", "ffn_down_exps": "b_down_exps",
               "exp_probs_b": "exp_probs_b"}  # fmt: skip


def graph_weight_bytes(tensors: list[tuple[str, int]], n_layer: int) -> tuple[tuple[int, str, int], ...]:
    """(layer tag, graph name, bytes) of the weights the decoder graph names, from (GGUF name, bytes) pairs:
    the copies op offload makes are their size. The output layer's tag is ``n_layer``, the inputs' -1."""
    rows, output = graph_weight_rows([name for name, _ in tensors], n_layer)
    sizes = [n for _, n in tensors]
    return graph_weights_of(rows, output, sizes, n_layer)


def graph_weights_of(
    rows: tuple[tuple[int, int, str], ...], output: int, sizes: Sequence[int], n_layer: int
) -> tuple[tuple[int, str, int], ...]:
    """``graph_weight_bytes`` from ``graph_weight_rows``' answer and the tensors' bytes, in tensor order."""
    weights = [(tag, graph_name, sizes[i]) for i, tag, graph_name in rows]
    weights.append((n_layer, "output", sizes[output] if output >= 0 else 0))
    return tuple(weights)


def graph_weight_rows(names: Sequence[str], n_layer: int) -> tuple[tuple[tuple[int, int, str], ...], int]:
    """``graph_weight_bytes``' rows without their bytes: (tensor index, layer tag, graph name), and the index of the
    output matrix (output.weight, else the tied token_embd.weight; -1: neither).

    Apart so that it is worked out once per tensor list: the names are the same in every quant of a model, which is
    how the ladder meets them (seven headers a model, core/fit/memory_model._tensor_plan)."""
    out = []
    index = {name: i for i, name in enumerate(names)}
    for i, name in enumerate(names):
        parts = name.split(".")
        if parts[0] == "blk" and len(parts) in (4, 5) and parts[1].isdigit():
            table = _GRAPH_NAME if parts[-1] == "weight" else _GRAPH_BIAS
            graph_name = table.get(".".join(parts[2:-1]))
            if graph_name:
                out.append((i, int(parts[1]), graph_name))
            if parts[2] == "post_attention_norm" and f"blk.{parts[1]}.ffn_norm.weight" not in index:
                out.append((i, int(parts[1]), "ffn_norm.w"))  # gpt-oss: its only norm before the FFN
        elif name == "output_norm.weight" or (name == "token_embd_norm.weight" and "output_norm.weight" not in index):
            # lfm2 names its output norm token_embd_norm
            out.append((i, n_layer, "result_norm.w"))
        elif name == "token_embd.weight":
            out.append((i, -1, "token_embd"))
    return tuple(out), index.get("output.weight", index.get("token_embd.weight", -1))


_KV_CACHE = re.compile(r"cache_([kv])(\d+)")


def _cache_layer(t: Tensor) -> int:
    m = _KV_CACHE.fullmatch(t.name)
    return int(m.group(2)) if m else t.tag  # a cache named without its layer is tagged with it


@dataclass(frozen=True)
class SplitQuery:
    """One GPU split of a decoder graph: everything its compute buffers depend on, hashable (the replay's cache key).

    ``weights``: ``graph_weight_bytes``. ``kv_rows``: per layer, K and V bytes per cell. ``gpu_from``: the first
    offloaded layer (``n_layer`` + 1 with none offloaded; the output layer, tagged ``n_layer``, is offloaded
    from ``n_layer`` down). ``output_on_gpu``: the output matrix is in the GPU's buffer (offloaded and not too
    large for it). ``max_tensor``: the GPU's largest tensor (0: no limit). ``vulkan_order``: the GPU runs in the
    Vulkan backend's node order.
    """

    spec: DecoderSpec
    gs: GraphSettings
    weights: tuple[tuple[int, str, int], ...]
    kv_rows: tuple[tuple[int, int], ...]
    gpu_from: int
    output_on_gpu: bool
    max_tensor: int
    vulkan_order: bool = False


@functools.lru_cache(maxsize=512)
def gpu_split_bytes(q: SplitQuery) -> tuple[int, int]:
    """(host, GPU) compute buffer bytes of the decoder graph on a GPU build, ggml's scheduler replayed."""
    spec, gs, kv_rows, gpu_from, max_tensor = q.spec, q.gs, q.kv_rows, q.gpu_from, q.max_tensor
    n_layer = len(spec.layers)
    size = {(tag, name): n for tag, name, n in q.weights}

    def on_gpu(t: Tensor) -> bool:
        if t.name.startswith("cache_"):  # a layer's KV cache (or MLA's, or a recurrent state): with its layer
            return _cache_layer(t) >= gpu_from
        if t.name == "output":
            return q.output_on_gpu
        if t.tag < 0 or t.tag < gpu_from:
            return False
        return not (max_tensor and size.get((t.tag, t.name), 0) > max_tensor)

    def ext_bytes(t: Tensor) -> int:
        root = t.view_src or t
        m = _KV_CACHE.fullmatch(root.name)
        if m:
            il = int(m.group(2))
            cells = gs.n_kv_swa if spec.layers[il].swa else gs.n_kv
            return cells * kv_rows[il][0 if m.group(1) == "k" else 1]
        return size.get((root.tag, root.name), 0)  # other caches (MLA's, recurrent states): not sized here

    graph = build_decoder_graph(spec, gs)
    assert n_layer == 0 or graph.nodes
    return split_compute_bytes(graph, Placement(on_gpu, ext_bytes, max_tensor, vulkan_order=q.vulkan_order))


REGION_LAYERS = 8  # layers kept of each region (CPU layers, GPU layers) at least, rounded up to the layer pattern


def kept_layers(n_layer: int, gpu_from: int, period: int) -> list[int]:
    """The layers a shorter, equivalent graph keeps: of each run of CPU and GPU layers, the last ones, as many as
    ``REGION_LAYERS`` rounded up to whole layer patterns plus the run's remainder (so each kept layer has the
    kind its place in the pattern gives it). A run of repeating layers allocates the same way layer after layer:
    the buffers peak at a region's boundaries and ends, which the kept layers still have. All layers where the
    model has no repeating pattern (``period`` 0) or few layers.

    Checked against the full graph for SmolLM2 at every split and for 48-layer llama- and Gemma-3-like graphs
    (tests/core/fit/test_gpu_placement.py);
    it takes the auto-offload and largest-context searches over an 80-layer model from minutes to seconds."""
    if period <= 0:
        return list(range(n_layer))
    keep = -(-REGION_LAYERS // period) * period
    out: list[int] = []
    for lo, hi in ((0, min(gpu_from, n_layer)), (min(gpu_from, n_layer), n_layer)):
        length = hi - lo
        k = length if length <= keep + period else keep + (length - keep) % period
        out += range(hi - k, hi)
    return out


def reduced_split_bytes(q: SplitQuery) -> tuple[int, int]:
    """``gpu_split_bytes`` on the graph of ``kept_layers`` (the same when all are kept)."""
    n = len(q.spec.layers)
    kept = kept_layers(n, q.gpu_from, layer_period(q.spec.layers))
    if len(kept) == n:
        return gpu_split_bytes(q)
    new = {old: i for i, old in enumerate(kept)}
    m = len(kept)
    new[n] = m  # the output layer
    new[-1] = -1  # the inputs
    return gpu_split_bytes(
        replace(
            q,
            spec=replace(q.spec, layers=tuple(q.spec.layers[i] for i in kept)),
            weights=tuple((new[tag], name, b) for tag, name, b in q.weights if tag in new),
            kv_rows=tuple(q.kv_rows[i] for i in kept),
            gpu_from=sum(1 for i in kept if i < q.gpu_from) if q.gpu_from <= n else m + 1,
        )
    )
