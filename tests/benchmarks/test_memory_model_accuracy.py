"""The memory model's accuracy, one table: every architecture labelled ``measured``, its worst error per component
over the accuracy tests' matrix of real llama.cpp loads.

Run: pytest -m benchmarks tests/benchmarks/test_memory_model_accuracy.py -s

The same files and settings as the accuracy tests (tests/core/fit/test_memory_model*.py; llama and gemma3 are
SmolLM2 and Gemma-3 themselves, here at context 512 / 4096 / 32768), gathered so that the README's claim reads as
one table: weights (mapped range and CPU_REPACK), KV cache, the recurrent state of hybrids (llama.cpp's RS buffer,
also counted in kv), compute, output and the total. Per component: the worst signed error and the worst error
left beyond the log's rounding (0.005 MiB per line), both in percent of the logged size; the second must stay
within 1 %. "—": a buffer the files do not log (a dummy vocabulary's output). Takes a few minutes on 2 cores
(quantizing the files is most of it).

Measured (llama-cpp-python 0.3.36, AVX-512, 2 shared cores; 3 min 23 s before the V3-style and lfm2moe rows were
added, which were measured on their own, with the mixture-of-experts rows again, unchanged): nothing is left beyond
the log's rounding for any architecture; the large signed figures are small buffers printed with two decimals
(lfm2's 16 KiB recurrent state as "0.02 MiB", a q8_0 KV cache of 0.28 MiB as "0.29", the 192 KiB output as "0.19").

| architecture | weights | kv | recurrent | compute | output | total |
|---|---|---|---|---|---|---|
| llama | +0.003 / 0.00 | -0.057 / 0.00 | — | -0.003 / 0.00 | -1.316 / 0.00 | +0.001 / 0.00 |
| gemma3 | +0.000 / 0.00 | +0.026 / 0.00 | — | +0.000 / 0.00 | +0.000 / 0.00 | -0.001 / 0.00 |
| qwen2 | -0.005 / 0.00 | -0.391 / 0.00 | — | +0.002 / 0.00 | -1.316 / 0.00 | -0.004 / 0.00 |
| qwen3 | +0.009 / 0.00 | -0.391 / 0.00 | — | +0.002 / 0.00 | -1.316 / 0.00 | -0.002 / 0.00 |
| phi3 | -0.005 / 0.00 | -0.391 / 0.00 | — | +0.005 / 0.00 | -1.316 / 0.00 | -0.005 / 0.00 |
| smollm3 | +0.009 / 0.00 | +0.236 / 0.00 | — | +0.002 / 0.00 | -1.316 / 0.00 | +0.003 / 0.00 |
| granite | -0.004 / 0.00 | -0.391 / 0.00 | — | +0.002 / 0.00 | -1.316 / 0.00 | -0.003 / 0.00 |
| gemma2 | -0.004 / 0.00 | +0.236 / 0.00 | — | +0.002 / 0.00 | -1.316 / 0.00 | +0.002 / 0.00 |
| olmo2 | +0.005 / 0.00 | +0.236 / 0.00 | — | +0.002 / 0.00 | -1.316 / 0.00 | +0.003 / 0.00 |
| qwen3moe | -0.002 / 0.00 | -1.621 / 0.00 | — | -0.032 / 0.00 | — | +0.037 / 0.00 |
| olmoe | -0.089 / 0.00 | +0.236 / 0.00 | — | -0.059 / 0.00 | — | -0.037 / 0.00 |
| gpt-oss | -0.120 / 0.00 | +2.163 / 0.00 | — | +0.046 / 0.00 | — | +0.029 / 0.00 |
| lfm2 | -0.026 / 0.00 | -3.018 / 0.00 | -21.877 / 0.00 | +0.037 / 0.00 | -1.316 / 0.00 | -0.027 / 0.00 |
| lfm2moe | -0.012 / 0.00 | -3.018 / 0.00 | -21.877 / 0.00 | +0.047 / 0.00 | -1.316 / 0.00 | +0.013 / 0.00 |
| deepseek2 | +0.031 / 0.00 | -0.391 / 0.00 | — | +0.002 / 0.00 | -1.316 / 0.00 | +0.015 / 0.00 |
| deepseek2 (V3 routing) | -0.011 / 0.00 | -0.391 / 0.00 | — | -0.002 / 0.00 | -1.316 / 0.00 | -0.008 / 0.00 |
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sizewise.core.fit.llama_log import MeasuredBuffers
from sizewise.core.fit.memory_model import Backend, predict
from sizewise.core.gguf.header import read_header
from sizewise.core.sampling import LoadParams
from sizewise.engine.session import EngineSession
from tests.core.fit import test_memory_model_dense as dense
from tests.core.fit import test_memory_model_hybrid as hybrid
from tests.core.fit import test_memory_model_mla as mla
from tests.core.fit import test_memory_model_moe as moe
from tests.core.fit.buffer_check import WorstErrors
from tests.quant_models import quantize_all, write_model

pytestmark = pytest.mark.benchmarks

CONTEXTS = (512, 4096, 32768)
KV_SETTINGS = (("f16", False), ("q8_0", True))


def _moe_files(arch: str, tmp: Path) -> list[Path]:
    src = write_model(tmp / "src.gguf", moe.MODELS[arch], mxfp4_experts=arch in moe.MXFP4_SOURCE)
    quantize_all(src, tmp, ["Q4_K_M"])
    return [tmp / "Q4_K_M.gguf"]


def _measure(table: WorstErrors, arch: str, paths: list[Path], log: Path) -> None:
    with EngineSession(log_path=log) as session:
        backend = Backend.from_system_info(session.start()["system_info"], gpu_offload=False)
        for path in paths:
            header = read_header(path)
            for ctx in CONTEXTS:
                for kv, fa in KV_SETTINGS:
                    params = LoadParams(n_ctx=ctx, kv_type=kv, flash_attn=fa)
                    measured = MeasuredBuffers.from_lines(session.load(path, params)["buffers"])
                    pred = predict(header, params, backend)
                    assert pred.confidence == "measured", (arch, path.name, ctx, kv)
                    table.add_load(arch, pred, measured)


ARCHES = ("llama", "gemma3", *dense.DENSE, *moe.MODELS, *hybrid.HYBRID, *mla.FILES)


def _files(arch: str, tmp: Path, smollm2_path: Path, gemma_path: Path) -> list[Path]:
    """The files the accuracy test of ``arch`` loads (the real SmolLM2 and Gemma-3 for llama and gemma3)."""
    if arch in ("llama", "gemma3"):
        return [smollm2_path if arch == "llama" else gemma_path]
    if arch in dense.DENSE:
        return dense._models(dense.DENSE[arch], smollm2_path, tmp)
    if arch in moe.MODELS:
        return _moe_files(arch, tmp)
    if arch in hybrid.HYBRID:
        return hybrid._files(arch, smollm2_path, tmp)
    return mla._files(arch, smollm2_path, tmp)


def test_memory_model_worst_error_per_architecture(
    smollm2_path: Path, gemma_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Prints the table (``-s``) and fails on any figure outside the bound. ``SIZEWISE_BENCH_ARCHES=lfm2,deepseek2``
    measures only those rows."""
    wanted = [a for a in os.environ.get("SIZEWISE_BENCH_ARCHES", "").split(",") if a] or list(ARCHES)
    table = WorstErrors()
    for arch in wanted:
        tmp = tmp_path_factory.mktemp(arch)
        _measure(table, arch, _files(arch, tmp, smollm2_path, gemma_path), tmp / "engine.log")
    print("\n" + table.table())
    assert not table.failures(), "\n".join(table.failures())
