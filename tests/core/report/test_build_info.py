"""Parsing llama_print_system_info(): the real CPU build here, and GPU builds' formats from ggml's sources."""

from __future__ import annotations

from sizewise.core.report.build_info import describe_backends, parse_system_info
from sizewise.engine.session import EngineSession

# Formats written by llama_print_system_info() for builds not available here (no GPU on this machine):
# ggml-cuda.cu's ggml_backend_cuda_get_features, ggml-metal.cpp's (registry name MTL), GPU backends first.
CUDA_BUILD = "CUDA : ARCHS = 890 | USE_GRAPHS = 1 | PEER_MAX_BATCH_SIZE = 128 | CPU : SSE3 = 1 | AVX2 = 1 | F16C = 0 | "
METAL_BUILD = "MTL : EMBED_LIBRARY = 1 | CPU : NEON = 1 | ARM_FMA = 1 | FP16_VA = 1 | DOTPROD = 1 | REPACK = 1 | "
VULKAN_BUILD = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | REPACK = 1 | "  # ggml-vulkan reports no features


def test_the_real_cpu_build() -> None:
    with EngineSession() as session:
        ready = session.start()
    backends = parse_system_info(ready["system_info"])
    assert [b.name for b in backends][-1] == "CPU"
    cpu = backends[-1]
    assert cpu.features, ready["system_info"]
    assert all(v in ("0", "1") or v.isdigit() for v in cpu.features.values())
    line = describe_backends(ready)
    assert line.startswith("CPU (") and all(f in line for f in cpu.enabled)


def test_gpu_backends_come_first_with_their_features() -> None:
    backends = parse_system_info(CUDA_BUILD)
    assert [b.name for b in backends] == ["CUDA", "CPU"]
    assert backends[0].features == {"ARCHS": "890", "USE_GRAPHS": "1", "PEER_MAX_BATCH_SIZE": "128"}
    assert backends[1].enabled == ["SSE3", "AVX2"]
    line = describe_backends({"gpu_offload": True, "system_info": CUDA_BUILD})
    assert line == "CUDA (ARCHS 890, USE_GRAPHS, PEER_MAX_BATCH_SIZE 128) + CPU (SSE3, AVX2)"


def test_metal_is_called_metal() -> None:
    assert [b.name for b in parse_system_info(METAL_BUILD)] == ["MTL", "CPU"]
    line = describe_backends({"gpu_offload": True, "system_info": METAL_BUILD})
    assert line == "Metal (EMBED_LIBRARY) + CPU (NEON, ARM_FMA, FP16_VA, DOTPROD, REPACK)"


def test_offload_without_a_named_gpu_backend_is_not_called_cpu_only() -> None:
    line = describe_backends({"gpu_offload": True, "system_info": VULKAN_BUILD})
    assert line.startswith("a GPU backend that lists no features")
    assert describe_backends({"gpu_offload": False, "system_info": VULKAN_BUILD}).startswith("CPU (")
    assert "not started" in describe_backends({})
