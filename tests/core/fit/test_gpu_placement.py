"""Where a GPU backend puts weights, per backend: the rules tests/gpu/test_vulkan_memory.py checks against real
Vulkan loads, held here on the CPU-only machines too, so a change to them fails the main suite."""

from __future__ import annotations

from pathlib import Path

from sizewise.core.fit.memory_model import Backend, predict
from sizewise.core.gguf.header import read_header
from sizewise.core.sampling import LoadParams

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


def test_a_gpu_build_with_no_layer_offloaded_is_an_estimate(smollm2_path: Path) -> None:
    """llama.cpp's op offload puts a prompt batch's matrix multiplications on the GPU even at 0 layers (126 MiB of
    Vulkan0 compute for SmolLM2 on lavapipe, not predicted): only a CPU-only build's prediction is 'measured'."""
    header = read_header(smollm2_path)
    params = LoadParams(n_ctx=2048, n_gpu_layers=0)
    on_gpu_build = predict(header, params, VULKAN)
    assert on_gpu_build.confidence == "estimate" and "op offload" in on_gpu_build.confidence_reason
    assert predict(header, params, Backend(repack=True)).confidence == "measured"
