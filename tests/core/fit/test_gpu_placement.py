"""Where a GPU backend puts weights, per backend: the rules tests/gpu/test_vulkan_memory.py checks against real
Vulkan loads, held here on the CPU-only machines too, so a change to them fails the main suite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sizewise.core.fit.compute_graph import DecoderSpec, GraphSettings, LayerShape, build_decoder_graph
from sizewise.core.fit.memory_model import Backend, MemoryPrediction, _build_spec, header_shape, predict
from sizewise.core.fit.offload import scheduler
from sizewise.core.fit.offload.vulkan_order import reorder
from sizewise.core.gguf.header import read_header
from sizewise.core.sampling import LoadParams
from tests.core.fit.test_memory_model_dense import DENSE
from tests.core.fit.test_memory_model_hybrid import HYBRID
from tests.core.fit.test_memory_model_moe import MODELS as MOE_MODELS
from tests.gpu.device_buffers import SPARSE, write_sparse
from tests.quant_models import write_model

MiB = 1 << 20
VULKAN = Backend(gpu=True, repack=True, gpu_backend="vulkan")
CUDA = Backend(gpu=True, repack=True, gpu_backend="cuda")


def test_vulkan_allocates_weights_at_their_size_cuda_pads_each_tensor_once(smollm2_path: Path) -> None:
    header = read_header(smollm2_path)
    params = LoadParams(n_ctx=512, n_gpu_layers=-1)
    vulkan, cuda = predict(header, params, VULKAN), predict(header, params, CUDA)
    # all 30 layers plus the output layer's copy of the tied embeddings: 92.10 MiB in the Vulkan build's log
    assert abs(vulkan.weights_gpu - 92.10 * MiB) <= 0.005 * MiB
    # CUDA adds one row's worth of values up to a multiple of 512 per quantized tensor (576-wide rows: 448 values),
    # not per row, which had put ~40 MiB on top of SmolLM2's offloaded weights
    extra = cuda.weights_gpu - vulkan.weights_gpu
    assert 0 < extra < 0.5 * MiB, extra
    assert Backend(gpu=True).pads_rows and not VULKAN.pads_rows  # an unknown GPU backend: assume the padding


def test_a_weight_too_large_for_the_device_stays_in_host_memory(gemma_path: Path) -> None:
    header = read_header(gemma_path)
    params = LoadParams(n_ctx=512, n_gpu_layers=1)  # the output layer only: its weight is the tied embeddings
    unlimited = predict(header, params, VULKAN)
    assert unlimited.weights_gpu >= 170 * MiB  # a copy of the 170 MiB embeddings
    lavapipe = Backend(gpu=True, repack=True, gpu_backend="vulkan", gpu_max_tensor_bytes=128 * MiB)
    limited = predict(header, params, lavapipe)
    # as llama.cpp logged on lavapipe: 0.00 MiB on Vulkan0, the whole file (235.16 MiB) mapped on the CPU
    assert limited.weights_gpu < 0.01 * MiB
    assert abs(limited.weights_cpu - 235.16 * MiB) <= 0.005 * MiB
    all_layers = predict(header, LoadParams(n_ctx=512, n_gpu_layers=-1), lavapipe)
    assert abs(all_layers.weights_gpu - 65.16 * MiB) <= 0.005 * MiB  # the 18 layers, without the embeddings


LAVAPIPE = Backend(gpu=True, repack=True, gpu_backend="vulkan", gpu_max_tensor_bytes=1 << 27)  # as probed


def _near(predicted: int, logged: int, pct: float) -> bool:
    return abs(predicted - logged) <= pct / 100 * logged + 0.005 * MiB


def test_op_offload_puts_a_prompt_batch_on_the_gpu_with_no_layer_offloaded(smollm2_path: Path) -> None:
    """llama.cpp's op offload runs a prompt batch's matrix multiplications on the GPU even at 0 layers, with each
    host weight copied in: the Vulkan build logged 126.34 MiB of Vulkan0 compute for SmolLM2 (the 96 MiB of logits
    and the 28.7 MiB output matrix among them) and 7.01 MiB of Vulkan_Host compute (the graph's inputs and the
    token embeddings' rows), where the model had predicted nothing on the GPU and 99.4 MiB on the host."""
    header = read_header(smollm2_path)
    params = LoadParams(n_ctx=2048, n_gpu_layers=0)
    pred = predict(header, params, LAVAPIPE)
    assert pred.weights_gpu == pred.kv_gpu == 0
    assert _near(pred.compute_gpu, 132477092, 3), pred.compute_gpu
    assert _near(pred.compute_cpu, 7350518, 1), pred.compute_cpu
    # a prompt batch under GGML_OP_OFFLOAD_MIN_BATCH (32 tokens) stays on the CPU: nothing on the GPU
    assert predict(header, LoadParams(n_ctx=16, n_batch=16, n_gpu_layers=0), LAVAPIPE).compute_gpu == 0
    cpu_only = predict(header, params, Backend(repack=True))
    assert cpu_only.confidence == "measured" and cpu_only.compute_gpu == 0
    # checked per device on Vulkan (tests/gpu, the benchmark): 'measured' there, an estimate on other backends
    assert pred.confidence == "measured"
    cuda = predict(header, params, CUDA)
    assert cuda.confidence == "estimate"
    # other GPU backends keep the cheaper per-device split estimate (one simulation per layer run, shared by every
    # quant of a model: the whole catalogue's ladder on a GPU budget in ~0.9 s instead of ~8 s), which leaves op
    # offload's buffer out; the label says estimate and why
    assert cuda.compute_gpu == 0 and "Vulkan" in cuda.confidence_reason


def test_attention_scores_too_large_for_the_device_are_computed_on_the_host(smollm2_path: Path) -> None:
    """At context 8192 SmolLM2's f16 attention scores (8192 x 512 x 9 heads x 4 bytes: 144 MiB) exceed lavapipe's
    128 MiB maxStorageBufferRange, so Vulkan refuses the op and ggml's scheduler runs it on the CPU: 169.01 MiB
    of Vulkan_Host compute logged with every layer offloaded (the model had said 2.3) and 97.12 MiB on Vulkan0
    (it had said 166.4); with flash attention no such tensor exists and the host buffer stays at 10.29 MiB."""
    header = read_header(smollm2_path)
    f16 = predict(header, LoadParams(n_ctx=8192, n_gpu_layers=-1), LAVAPIPE)
    assert _near(f16.compute_cpu, 177219830, 1) and _near(f16.compute_gpu, 101837701, 3), f16
    fa = predict(header, LoadParams(n_ctx=8192, n_gpu_layers=-1, kv_type="q8_0", flash_attn=True), LAVAPIPE)
    assert _near(fa.compute_cpu, 10789847, 1) and _near(fa.compute_gpu, 101837701, 3), fa
    # without the limit (a GPU with a larger range) the scores stay on the GPU; the host keeps the inputs (the
    # 16 MiB f32 mask among them)
    roomy = predict(header, LoadParams(n_ctx=8192, n_gpu_layers=-1), VULKAN)
    assert roomy.compute_gpu > 144 * MiB and roomy.compute_cpu < 24 * MiB


def test_the_vulkan_backends_node_order_moves_the_gpu_compute_buffer(
    gemma_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Vulkan backend regroups a GPU run's nodes before ggml-alloc places them (ggml_vk_graph_optimize), and
    GGML_VK_DISABLE_GRAPH_OPTIMIZE switches that off, in llama.cpp and in the model alike: Gemma-3 with every layer
    offloaded at context 512 logged 20.51 MiB of Vulkan0 compute with the reordering and 18.51 MiB without."""
    header = read_header(gemma_path)
    params = LoadParams(n_ctx=512, n_gpu_layers=-1)
    assert _near(predict(header, params, LAVAPIPE).compute_gpu, 21506294, 1)
    monkeypatch.setenv("GGML_VK_DISABLE_GRAPH_OPTIMIZE", "1")
    assert _near(predict(header, params, LAVAPIPE).compute_gpu, 19409142, 1)


def test_the_vulkan_order_keeps_every_node_after_its_sources(smollm2_path: Path) -> None:
    shape = header_shape(read_header(smollm2_path))
    spec = _build_spec(shape, range(shape.n_layer))
    graph = build_decoder_graph(spec, GraphSettings(512, 512, 2048, 2048, False, 0, 0))
    order = reorder(graph.nodes)
    assert sorted(map(id, order)) == sorted(map(id, graph.nodes)) and order != graph.nodes
    seen: set[int] = set()
    nodes = {id(t) for t in graph.nodes}
    for t in order:
        assert all(id(s) in seen for s in t.srcs if id(s) in nodes), t.name
        seen.add(id(t))


def test_every_weight_the_graph_reads_has_its_size(smollm2_path: Path, tmp_path: Path) -> None:
    """Op offload copies a host weight to the GPU for a prompt batch: the copy is the weight's size, which the model
    finds by the graph's name for it. lfm2's short-convolution weights (blk.N.shortconv.in_proj.weight, five parts),
    deepseek2's latent-attention and shared-expert weights, the expert-selection bias and lfm2's output norm
    (token_embd_norm) had none: 0-byte copies, which put lfm2's GPU compute buffer -7.5 % off at 4 of 6 layers."""
    models = {
        **{f"dense-{k}": (hp, {}) for k, hp in DENSE.items()},
        **{k: (hp, keys) for k, (hp, keys, _) in SPARSE.items()},
    }
    for name, (hp, keys) in models.items():
        header = read_header(write_model(tmp_path / f"{name}.gguf", hp, zeros=True, extra_keys=keys))
        shape = header_shape(header)
        spec = _build_spec(shape, range(shape.n_layer))
        sizes = {
            (tag, n)
            for tag, n, _ in scheduler.graph_weight_bytes([(t.name, t.n_bytes) for t in header.tensors], shape.n_layer)
        }
        graph = build_decoder_graph(spec, GraphSettings(512, 512, 512, 512, False, 0, 0))
        roots = {s.view_src or s for t in graph.nodes for s in t.srcs}
        read = {(r.tag, r.name) for r in roots if r.external and not r.name.startswith("cache_")}
        assert read <= sizes, (name, sorted(read - sizes))


def test_lfm2_and_lfm2moe_gpu_splits_as_vulkan_logged(smollm2_path: Path, tmp_path: Path) -> None:
    """Two splits the Vulkan build logged on lavapipe, which the replay missed before:
    - lfm2 (6 layers, attention at 2 and 5) with 4 layers offloaded, context 512, f16 KV: 108.13 MiB of Vulkan0
      compute (the model said 100.01: the short-convolution weights' copies had no size);
    - lfm2moe with 6 of its 6 layers offloaded, context 2048, f16 KV: 99.51 MiB (it said 135.51: the backend keeps
      the router's top-k nodes together and the router logits alive until they have run, so the sigmoid cannot
      reuse them in place)."""
    lfm2 = read_header(write_sparse("lfm2", tmp_path, smollm2_path))
    pred = predict(lfm2, LoadParams(n_ctx=512, n_gpu_layers=4), LAVAPIPE)
    assert _near(pred.compute_gpu, 113382523, 1), pred.compute_gpu
    lfm2moe = read_header(write_sparse("lfm2moe", tmp_path, smollm2_path))
    pred = predict(lfm2moe, LoadParams(n_ctx=2048, n_gpu_layers=6), LAVAPIPE)
    assert _near(pred.compute_gpu, 104343798, 1), pred.compute_gpu
    assert pred.confidence == "measured"


def test_the_vulkan_order_keeps_the_routers_inputs_alive_through_its_top_k(tmp_path: Path) -> None:
    """ggml_vk_graph_optimize keeps a top-k routing pattern (sigmoid, bias, argsort, get_rows, sum, clamp, div) in
    one piece and asks the scheduler to keep the pattern's outside inputs (the router logits, the selection bias)
    until its last node: one dependency node right after it, reading them."""
    header = read_header(write_model(tmp_path / "lfm2moe.gguf", HYBRID["lfm2moe"], zeros=True))
    shape = header_shape(header)
    graph = build_decoder_graph(
        _build_spec(shape, range(shape.n_layer)), GraphSettings(512, 512, 512, 512, False, 0, 0)
    )
    order = reorder(graph.nodes)
    kept = [i for i, t in enumerate(order) if t.name.endswith("#kept")]
    n_moe_layers = sum(not ly.dense_ffn for ly in _build_spec(shape, range(shape.n_layer)).layers)
    assert len(kept) == n_moe_layers == 5
    for i in kept:
        assert order[i - 1].name == "ffn_moe_weights_norm" or order[i - 1].op == "view", order[i - 1].name
        names = {s.name for s in order[i].srcs}
        assert {"ffn_moe_logits", "exp_probs_b"} <= names, names
        ops = [t.op for t in order[i - 11 : i]]
        assert ops == [
            "unary",
            "view",
            "add",
            "argsort",
            "view",
            "get_rows",
            "view",
            "sum_rows",
            "clamp",
            "div",
            "view",
        ]
    assert sorted(map(id, (t for t in order if not t.name.endswith("#kept")))) == sorted(map(id, graph.nodes))


def _compute(pred: MemoryPrediction) -> tuple[int, int]:
    return pred.compute_cpu, pred.compute_gpu


def test_a_shorter_equivalent_graph_gives_the_same_buffers(smollm2_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The searches simulate a GPU split on fewer layers (scheduler.kept_layers): the same bytes as the whole graph
    for SmolLM2 at every split, and for 48-layer graphs (llama's; Gemma-3's sliding-window pattern of 6)."""
    header = read_header(smollm2_path)
    n = header_shape(header).n_layer

    def both(fn: Callable[[], tuple[int, int]]) -> tuple[tuple[int, int], tuple[int, int]]:
        short = fn()
        monkeypatch.setattr(scheduler, "REGION_LAYERS", 10**6)
        full = fn()
        monkeypatch.setattr(scheduler, "REGION_LAYERS", 8)
        return short, full

    for ngl in range(0, n + 2, 3):
        for kv, fa in (("f16", False), ("q8_0", True)):
            params = LoadParams(n_ctx=8192, n_gpu_layers=ngl, kv_type=kv, flash_attn=fa)
            short, full = both(
                lambda p=params: (lambda r: (r.compute_cpu, r.compute_gpu))(predict(header, p, LAVAPIPE))
            )
            assert short == full, (ngl, kv)
    assert len(scheduler.kept_layers(n, 15, 1)) < n  # the shorter graph is shorter
    gemma_like = tuple(LayerShape(8, 4, 256, 256, 10240, il % 6 < 5) for il in range(48))
    for spec in (
        DecoderSpec(4096, 128256, (LayerShape(32, 8, 128, 128, 14336, False),) * 48),
        DecoderSpec(3840, 262144, gemma_like, qk_norm=True, post_norms=True, scale_input=True, scale_q=True),
    ):
        gs = GraphSettings(512, 512, 8192, 1024, False, 0, 0)
        weights = tuple((il, w, 20 << 20) for il in range(48) for w in ("wq", "wk", "wv", "wo", "w_up", "w_down"))
        for gpu_from in (0, 1, 17, 30, 47, 49):
            query = scheduler.SplitQuery(
                spec, gs, weights, ((2048, 2048),) * 48, gpu_from, gpu_from < 49, 1 << 30, True
            )
            short, full = both(lambda q=query: scheduler.reduced_split_bytes(q))
            assert short == full, gpu_from


def test_measured_on_a_gpu_only_for_the_graphs_checked_on_vulkan(tmp_path: Path) -> None:
    """A GPU split is 'measured' for the graphs the benchmark holds to Vulkan loads per device (dense, mixture of
    experts, hybrid, MLA) and an estimate on CUDA (never checked), with the reason."""
    dense = read_header(write_model(tmp_path / "qwen2.gguf", DENSE["qwen2"], zeros=True))
    moe = read_header(write_model(tmp_path / "qwen3moe.gguf", MOE_MODELS["qwen3moe"], zeros=True))
    lfm2 = read_header(write_model(tmp_path / "lfm2.gguf", HYBRID["lfm2"], zeros=True))
    params = LoadParams(n_ctx=512, n_gpu_layers=2)
    assert predict(dense, params, LAVAPIPE).confidence == "measured"
    assert predict(moe, params, LAVAPIPE).confidence == "measured"
    assert predict(dense, params, CUDA).confidence == "estimate"
    assert predict(moe, params, CUDA).confidence == "estimate"
    assert predict(lfm2, params, LAVAPIPE).confidence == "measured"
    on_cuda = predict(lfm2, params, CUDA)
    assert on_cuda.confidence == "estimate" and "not for lfm2 on cuda" in on_cuda.confidence_reason
    assert predict(lfm2, params, Backend(repack=True)).confidence == "measured"  # its CPU graph is checked
