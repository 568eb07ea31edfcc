"""The memory model per device against llama.cpp's own buffer log on the Vulkan build (lavapipe without a GPU).

For 1, half and all of each test model's layers offloaded, context 512/2048/8192, KV f16 and q8_0 with flash
attention: the weights on each device (the CPU's mapped file range, Vulkan0's model buffer), the KV cache on each
device and the output buffer (host memory) within 3 % of what llama.cpp logs. Vulkan allocates a weight at exactly
its size (no CUDA row padding): before that rule the model predicted SmolLM2's 16 offloaded layers at 106.1 MB
against 63.3 MB logged. And Vulkan refuses a weight larger than its maxStorageBufferRange (128 MiB on lavapipe; the
engine finds the limit by asking the device, engine/backend_devices.py): Gemma-3's 170 MiB token embeddings then
stay in host memory even with the output layer offloaded, where the model had put a 170 MiB copy on Vulkan0.

Not held to 3 % here: the compute buffers of a split graph (llama.cpp's scheduler places each node and copies
between devices; the model splits the graph at the layer boundary). Measured in the run that added this test:
SmolLM2's Vulkan0 compute buffer came within -3.3 % to +2.3 % of the prediction up to context 2048, but at 8192
with f16 KV and no flash attention 97.1 MiB were logged against 166.4 predicted (the attention scores went to the
host buffer: 169.0 MiB of Vulkan_Host compute against 71.5); Gemma-3's output matrix stays on the CPU (too large
for lavapipe), so its 514.5 MiB of logits are in Vulkan_Host (the model put them on Vulkan0 until it learned that the
logits follow the output matrix; held here: a logged host buffer of over 256 MiB must be predicted within 3 %); and with
0 layers offloaded a GPU build still runs the large-batch matrix multiplications on the GPU (llama.cpp's op
offload: 132 MB of Vulkan0 compute for SmolLM2, the output matrix copied in), which the model does not predict. Those
predictions stay labelled ``estimate``. The table is printed (``pytest -s``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sizewise.core.fit.hardware import probe_hardware
from sizewise.core.fit.llama_log import MeasuredBuffers
from sizewise.core.fit.memory_model import model_shape, predict
from sizewise.core.gguf.header import read_header
from sizewise.core.sampling import LoadParams
from sizewise.engine.session import EngineSession

pytestmark = [pytest.mark.gpu, pytest.mark.slow]

TOLERANCE = 0.03
LOG_ROUNDING_BYTES = 0.005 * 2**20  # llama.cpp prints each buffer in MiB with two decimals
CONTEXTS = (512, 2048, 8192)
KV_SETTINGS = (("f16", False), ("q8_0", True))


def _within(predicted: int, measured: int) -> bool:
    return abs(predicted - measured) <= TOLERANCE * measured + LOG_ROUNDING_BYTES


def _check(path: Path, log: Path) -> list[str]:
    header = read_header(path)
    n_layer = model_shape(header).n_layer
    failures = []
    with EngineSession(log_path=log) as session:
        ready = session.start()
        backend = probe_hardware(ready).backend()  # as the app builds it: the device's limits included
        assert backend.gpu and backend.gpu_backend == "vulkan", backend
        for ngl in (1, n_layer // 2, n_layer + 1):
            for ctx in CONTEXTS:
                for kv, fa in KV_SETTINGS:
                    params = LoadParams(n_ctx=ctx, n_gpu_layers=ngl, kv_type=kv, flash_attn=fa)
                    m = MeasuredBuffers.from_lines(session.load(path, params)["buffers"]).by_device()
                    pred = predict(header, params, backend)
                    pairs = {
                        "CPU weights": (
                            pred.weights_cpu + pred.weights_repack,
                            m.get("CPU_Mapped", {}).get("weights", 0),
                        ),
                        "Vulkan0 weights": (pred.weights_gpu, m.get("Vulkan0", {}).get("weights", 0)),
                        "CPU KV": (pred.kv_cpu, m.get("CPU", {}).get("kv", 0)),
                        "Vulkan0 KV": (pred.kv_gpu, m.get("Vulkan0", {}).get("kv", 0)),
                        "output": (pred.output_bytes, sum(d.get("output", 0) for d in m.values())),
                    }
                    compute = (pred.compute_gpu, m.get("Vulkan0", {}).get("compute", 0))
                    host = (pred.compute_cpu, m.get("Vulkan_Host", {}).get("compute", 0))
                    print(
                        f"\n{path.name} ngl={ngl} ctx={ctx} kv={kv} fa={fa}: predicted/logged MiB "
                        + " ".join(f"{k} {p / 2**20:.2f}/{q / 2**20:.2f}" for k, (p, q) in pairs.items())
                        + f" | Vulkan0 compute {compute[0] / 2**20:.2f}/{compute[1] / 2**20:.2f}"
                        f" Vulkan_Host compute {host[0] / 2**20:.2f}/{host[1] / 2**20:.2f}"
                    )
                    if pred.weights_gpu + pred.kv_gpu and not _within(host[0], host[1]) and host[1] > 256 * 2**20:
                        # the logits follow the output matrix: where it stays on the CPU (Gemma-3 on lavapipe), the
                        # host buffer holds them (514.5 MiB), and the prediction must say so
                        failures.append(
                            f"ngl={ngl} ctx={ctx} kv={kv}: host compute predicted {host[0]} logged {host[1]}"
                        )
                    for name, (p, q) in pairs.items():
                        if not _within(p, q):
                            failures.append(f"ngl={ngl} ctx={ctx} kv={kv}: {name} predicted {p} logged {q}")
                    if pred.confidence != "estimate":
                        failures.append(f"ngl={ngl}: a split graph must stay 'estimate', not {pred.confidence}")
    return failures


def test_smollm2_per_device(gpu_build: Path, smollm2_path: Path, tmp_path: Path) -> None:
    failures = _check(smollm2_path, tmp_path / "engine.log")
    assert not failures, "\n".join(failures)


def test_gemma3_per_device(gpu_build: Path, gemma_path: Path, tmp_path: Path) -> None:
    failures = _check(gemma_path, tmp_path / "engine.log")
    assert not failures, "\n".join(failures)
