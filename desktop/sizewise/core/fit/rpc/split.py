"""Predict how llama.cpp's RPC backend splits a model over rpc-servers, and what each host must hold.

The rules, read in the llama.cpp that ``scripts/native-tools.sh`` builds (tag b11434):

* **Devices** (``llama_prepare_model_devices``): the rpc-servers come first, in ``--rpc`` order; the machine that
  runs llama-server keeps the input layer (token embeddings) and the output buffer on its CPU.
* **Layers** (``load_tensors``): with no ``--tensor-split``, each device's share is its free memory as the
  rpc-server reports it (``ggml_backend_dev_memory``; a CPU rpc-server reports its machine's physical RAM as
  free, whatever is in use). The shares
  are summed into cumulative split points in 32-bit floats, and offload slot ``il`` (blocks, then the output
  layer) goes to the first device whose split point is above ``(il - i_gpu_start) / n_offloaded``. A model that
  ties its output to the embeddings gets a copy of them on the output layer's device.
* **KV cache**: each layer's K and V live on the device of the layer.
* **Compute buffers**: each device allocates the graph of its own layers (the allocator simulation of
  ``core.compute_graph``; the device with the output layer also holds the logits, one row: llama-server reserves
  ``n_outputs_max = 1``). With every layer offloaded to two or more devices llama.cpp turns on *pipeline
  parallelism*: the scheduler keeps ``GGML_SCHED_MAX_COPIES`` (4) copies of the graph's inputs on the host and
  of each split's incoming tensors on its device, allocated ahead of the graph and never reused. Those copies are
  the KQ masks (cells × micro-batch, f16 with flash attention, f32 without; one per cache kind) and the KV
  index inputs, sized from the header and settings, plus a few hidden-state-sized tensors per buffer whose count
  was measured on llama-server b11434 (``_HOST_ROWS`` …): the one calibrated figure here. With layers left on
  the CPU there is no pipeline parallelism; the host runs its own layers' graph (``_PARTIAL_DEVICE_ROWS``).

Weights and KV come from ``memory_model``'s per-layer tables, so a split adds up to the one-device prediction.
Checked against llama-server's own buffer lines on a real split over two rpc-servers
(tests/core/fit/test_rpc_split_native.py).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sizewise.core.fit.memory_model import (
    Backend,
    EffectiveSettings,
    effective_settings,
    header_shape,
    kv_bytes_for_layers,
    layer_graph_bytes,
    predict,
    slot_weight_bytes,
    tied_output_bytes,
)
from sizewise.core.fit.rpc.hosts import RpcHost
from sizewise.core.fit.verdict import margin_for
from sizewise.core.gguf.header import GGUFHeader
from sizewise.core.sampling import LoadParams

SCHED_COPIES = 4  # GGML_SCHED_MAX_COPIES: input copies the scheduler keeps when pipeline parallelism is on
N_OUTPUTS = 1  # llama-server's n_outputs_max for one slot: the graph reserves one row of logits
LOCAL = "local"
# Hidden states (n_embd × micro-batch × 4 bytes) each buffer holds besides the graph and the input copies, measured
# on llama-server b11434 (SmolLM2 and Gemma-3, micro-batches of 256 and 512, contexts of 1024-4096, flash attention
# on and off, 3:1, 5:3, 1:1 and 2:1:1 splits — the same number everywhere): the host that runs llama-server (with
# pipeline parallelism; with one device), the first device, every later device.
_HOST_ROWS, _HOST_ROWS_ONE, _FIRST_ROWS, _NEXT_ROWS = 10.02, 4.01, 12.04, 3.02
# With some layers left on the CPU (no pipeline parallelism) a device's buffer is its layers' graph less these
# hidden states (flash attention on / off), and the host's is its layers' graph plus one: measured on llama-server
# b11434 with SmolLM2 at 20, 10 and 25 of 31 layers offloaded (tests/benchmarks/test_rpc_split_bench.py).
_PARTIAL_DEVICE_ROWS = {True: 2.0, False: 1.0}


def _f32(x: float) -> float:
    """``x`` rounded to a 32-bit float, as llama.cpp's ``std::vector<float> splits`` holds it."""
    return float(struct.unpack("f", struct.pack("f", x))[0])


def assign_slots(memory: Sequence[int], n_layer: int, gpu_layers: int) -> list[int]:
    """The device index of each offload slot 0 … n_layer (the last is the output layer); -1 stays on the CPU.

    ``load_tensors``' ``get_layer_buft_list``: cumulative float split points, then ``std::upper_bound``.
    """
    n_dev = len(memory)
    if n_dev == 0 or sum(memory) <= 0:
        return [-1] * (n_layer + 1)
    splits: list[float] = []
    total = 0.0
    for m in memory:
        total = _f32(total + _f32(float(m)))
        splits.append(total)
    splits = [_f32(s / total) for s in splits]
    act = min(max(gpu_layers, 0), n_layer + 1)
    start = max(n_layer + 1 - gpu_layers, 0)
    out = []
    for il in range(n_layer + 1):
        if il < start or il - start >= act:
            out.append(-1)
            continue
        x = _f32(float(il - start) / act)
        out.append(min(next((i for i, s in enumerate(splits) if s > x), n_dev), n_dev - 1))
    return out


@dataclass(frozen=True)
class _InputSizes:
    """The graph inputs the scheduler copies: per cache kind (full attention, sliding window) a KQ mask and the K and
    V row indices, and the token positions."""

    swa: tuple[bool, ...]
    es: EffectiveSettings
    n_head_kv: tuple[int, ...]
    head_dim_v: int
    t: int

    def per_copy(self, layers: range) -> int:
        kinds = {self.swa[il] for il in layers} or {False}
        mask_w = 2 if self.es.flash_attn else 4
        v_width = max((kv * self.head_dim_v for kv in self.n_head_kv), default=1)
        v_rows = self.t if self.es.flash_attn else self.t * v_width  # without flash attention V is set row by row
        per_kind = self.es.n_ctx_cells * self.t * mask_w + 8 * self.t + 8 * v_rows
        return len(kinds) * per_kind + 4 * self.t


@dataclass(frozen=True)
class HostShare:
    """What one machine of the group holds, in bytes, and whether its memory has room."""

    name: str
    role: str  # "local": runs llama-server (input layer, output buffer); "rpc": an rpc-server
    first_layer: int  # blocks first_layer … last_layer - 1 (none when equal)
    last_layer: int
    output_layer: bool
    weights_bytes: int
    kv_bytes: int
    compute_bytes: int
    output_bytes: int
    budget_bytes: int | None  # None: not known (the local host without a budget)

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.compute_bytes + self.output_bytes

    @property
    def margin_bytes(self) -> int:
        return margin_for(self.total_bytes)

    @property
    def verdict(self) -> str:
        """fits (with the safety margin) | tight (only without it) | too large | unknown (no budget)."""
        if self.budget_bytes is None:
            return "unknown"
        if self.total_bytes + self.margin_bytes <= self.budget_bytes:
            return "fits"
        return "tight" if self.total_bytes <= self.budget_bytes else "too large"

    @property
    def layers_label(self) -> str:
        n = self.last_layer - self.first_layer
        text = f"{self.first_layer}-{self.last_layer - 1}" if n > 1 else (str(self.first_layer) if n else "none")
        return text + (" + output" if self.output_layer else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "layers": [self.first_layer, self.last_layer],
            "n_layers": self.last_layer - self.first_layer,
            "output_layer": self.output_layer,
            "weights_bytes": self.weights_bytes,
            "kv_bytes": self.kv_bytes,
            "compute_bytes": self.compute_bytes,
            "output_bytes": self.output_bytes,
            "total_bytes": self.total_bytes,
            "budget_bytes": self.budget_bytes,
            "safety_margin_bytes": self.margin_bytes,
            "verdict": self.verdict,
        }


_ORDER = {"too large": 3, "tight": 2, "unknown": 1, "fits": 0}


@dataclass(frozen=True)
class RpcSplit:
    """The predicted split: the local host first, then the rpc-servers in ``--rpc`` order."""

    hosts: tuple[HostShare, ...]
    n_layers: int
    gpu_layers: int  # offloaded slots, the output layer included
    pipeline_parallel: bool
    confidence: str
    confidence_reason: str

    @property
    def verdict(self) -> str:
        """The group's: its worst host's (a host with no budget does not spoil a group that otherwise fits)."""
        known = [h.verdict for h in self.hosts if h.verdict != "unknown"]
        return max(known, key=_ORDER.__getitem__) if known else "unknown"

    def words(self) -> str:
        over = [h.name for h in self.hosts if h.verdict == "too large"]
        tight = [h.name for h in self.hosts if h.verdict == "tight"]
        if over:
            return f"Too large for the group: {', '.join(over)} would run out of memory."
        if tight:
            return f"Fits only without the safety margin on {', '.join(tight)}."
        if self.verdict == "fits":
            return "Fits the group: every host has room, safety margin included."
        return "No host memory was given, so fit cannot be judged."

    @property
    def tensor_split(self) -> str:
        """``--tensor-split`` for llama-server that gives this split whatever the servers report."""
        return ",".join(str(h.budget_bytes // (1 << 20)) for h in self.hosts if h.role == "rpc" and h.budget_bytes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hosts": [h.to_dict() for h in self.hosts],
            "n_layers": self.n_layers,
            "gpu_layers": self.gpu_layers,
            "pipeline_parallel": self.pipeline_parallel,
            "tensor_split": self.tensor_split,
            "verdict": self.verdict,
            "words": self.words(),
            "confidence": self.confidence,
            "confidence_reason": self.confidence_reason,
        }


def predict_rpc_split(
    header: GGUFHeader,
    params: LoadParams,
    hosts: Sequence[RpcHost],
    *,
    local_budget_bytes: int | None = None,
) -> RpcSplit:
    """Per-host bytes of ``header`` loaded by llama-server with ``--rpc`` over ``hosts`` (in that order), each
    sharing layers in proportion to its memory. ``params.n_gpu_layers`` < 0 offloads every layer."""
    if not hosts:
        raise ValueError("an RPC split needs at least one rpc-server")
    shape = header_shape(header)
    backend = Backend(gpu=True, repack=False, gpu_backend="rpc")  # RPC buffers hold ggml_nbytes, unpadded
    es = effective_settings(shape, params, backend)
    n_layer = shape.n_layer
    slots = assign_slots([h.memory_bytes for h in hosts], n_layer, es.gpu_layers)
    weights = slot_weight_bytes(header)
    local = predict(header, params, backend)  # the host's mapped range, CPU layers' KV, output buffer
    pipeline = len(hosts) > 1 and es.gpu_layers > n_layer
    t = min(es.n_ctx_cells, es.n_ubatch)
    hidden = shape.n_embd * t * 4
    inputs = _InputSizes(shape.swa, es, shape.n_head_kv, shape.head_dim_v, t)
    shares = []
    first_device = True
    for d, host in enumerate(hosts):
        mine = [il for il in range(n_layer) if slots[il] == d]
        lo, hi = (mine[0], mine[-1] + 1) if mine else (0, 0)
        has_output = slots[n_layer] == d
        w = sum(weights.get(il, 0) for il in mine)
        if has_output:
            w += weights.get(n_layer, 0) + tied_output_bytes(header)
        kv = kv_bytes_for_layers(shape, es, lo, hi)
        graph = layer_graph_bytes(shape, es, lo, hi, logits=has_output, n_outputs=N_OUTPUTS)
        if has_output and not mine:  # only the output layer: its input and the logits
            graph = hidden + shape.n_vocab * N_OUTPUTS * 4
        if pipeline and (mine or has_output):
            rows = _FIRST_ROWS if first_device else _NEXT_ROWS
            graph += (SCHED_COPIES - 1) * inputs.per_copy(range(lo, hi)) + int(rows * hidden)
        elif mine and es.gpu_layers <= n_layer:  # partial offload: the embeddings' tensors stay with the CPU's graph
            graph = max(graph - int(_PARTIAL_DEVICE_ROWS[es.flash_attn] * hidden), 0)
        if mine or has_output:
            first_device = False
        shares.append(
            HostShare(
                host.name, "rpc", lo, hi, has_output, w, kv, graph if mine or has_output else 0, 0, host.memory_bytes
            )
        )
    if pipeline:
        local_compute = SCHED_COPIES * inputs.per_copy(range(n_layer)) + int(_HOST_ROWS * hidden)
    elif es.gpu_layers > n_layer:  # one device holds every layer: the host keeps the inputs and the embeddings
        local_compute = inputs.per_copy(range(n_layer)) + int(_HOST_ROWS_ONE * hidden)
    else:  # partial offload: the CPU runs its own layers' graph, plus one hidden state
        cpu_stop = max((il + 1 for il in range(n_layer) if slots[il] < 0), default=0)
        graph = layer_graph_bytes(shape, es, 0, cpu_stop, logits=slots[n_layer] < 0, n_outputs=N_OUTPUTS)
        local_compute = graph + hidden
    cpu_layers = [il for il in range(n_layer) if slots[il] < 0]
    local_share = HostShare(
        LOCAL,
        "local",
        cpu_layers[0] if cpu_layers else 0,
        cpu_layers[-1] + 1 if cpu_layers else 0,
        slots[n_layer] < 0,
        local.weights_cpu,
        local.kv_cpu,
        local_compute,
        shape.n_vocab * 4 * N_OUTPUTS,
        local_budget_bytes,
    )
    if shape.known:
        confidence, reason = (
            "estimate",
            "layers, weights and KV follow llama.cpp's split rules; compute buffers are the simulated graphs plus "
            "pipeline-parallel copies calibrated on llama-server b11434",
        )
    else:
        confidence, reason = "rough", local.confidence_reason
    return RpcSplit(
        hosts=(local_share, *shares),
        n_layers=n_layer,
        gpu_layers=es.gpu_layers,
        pipeline_parallel=pipeline,
        confidence=confidence,
        confidence_reason=reason,
    )


def with_budget(split: RpcSplit, local_budget_bytes: int | None) -> RpcSplit:
    """The same split judged against another budget for the local host."""
    hosts = tuple(replace(h, budget_bytes=local_budget_bytes) if h.role == "local" else h for h in split.hosts)
    return replace(split, hosts=hosts)
