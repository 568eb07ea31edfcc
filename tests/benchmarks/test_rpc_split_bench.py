"""Fit across machines, benchmark goal (issue 17): the RPC-split prediction within 3 % of llama-server's logged
buffers per host, printed as a table host × component × predicted × logged × error.

Six real splits over ggml-rpc-servers on 127.0.0.1 (tests/rpc_split.py). Every layer offloaded (pipeline
parallelism): SmolLM2 5:3 with flash attention at context 2048, SmolLM2 over three servers 2:1:1 without flash
attention at context 1024 (f32 masks, V set row by row), Gemma-3-270M 3:1 with its sliding-window cache kept full
(two masks per copy). Some layers left on the CPU: SmolLM2 with 20, 25 and 10 of 31 layers offloaded. Each ~2 s.
The goal is per host (its total); component errors are printed beside it.

Run: pytest -m benchmarks tests/benchmarks/test_rpc_split_bench.py -s

Last run (2026-12-03, llama.cpp b11434): every host's total within 0.1 % with every layer offloaded (every
component within 0.15 % except the 0.19 MiB output buffer, -1.3 %: the log prints it rounded to 0.01 MiB); with
layers left on the CPU every host within 1.5 %, the one component outside 3 % being the compute buffer of a
device that holds a single block and the output layer (3.69 predicted, 4.25 MiB logged: -13 %).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sizewise.core.fit.rpc.split import predict_rpc_split
from sizewise.core.gguf.header import read_header
from sizewise.core.sampling import LoadParams
from tests.rpc_split import compare, hosts_for, run_rpc_split, table

pytestmark = [pytest.mark.benchmarks, pytest.mark.native]

GOAL_PCT = 3.0
# model, shares, context, flash attention, micro-batch, layers offloaded (99: all), extra llama-server flags
CASES = {
    "smollm2-5:3-fa": ("smollm2", (5, 3), 2048, True, 512, 99, ()),
    "smollm2-2:1:1-no-fa": ("smollm2", (2, 1, 1), 1024, False, 512, 99, ()),
    "gemma3-3:1-swa-full": ("gemma", (3, 1), 2048, True, 512, 99, ("--swa-full",)),
    "smollm2-ngl20-1:1-fa": ("smollm2", (1, 1), 2048, True, 512, 20, ()),
    "smollm2-ngl25-1:2-no-fa": ("smollm2", (1, 2), 2048, False, 512, 25, ()),
    "smollm2-ngl10-3:1-ub256": ("smollm2", (3, 1), 4096, True, 256, 10, ()),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rpc_split_error_per_host(
    case: str, native_bin: Path, smollm2_path: Path, gemma_path: Path, tmp_path: Path
) -> None:
    model_name, shares, n_ctx, fa, ubatch, ngl, extra = CASES[case]
    model = smollm2_path if model_name == "smollm2" else gemma_path
    flags = ("-c", str(n_ctx), "-fa", "on" if fa else "off", "-ub", str(ubatch), *extra)
    endpoints, log = run_rpc_split(native_bin, model, tmp_path, shares, extra=flags, gpu_layers=ngl)
    params = LoadParams(n_ctx=n_ctx, n_gpu_layers=ngl, n_batch=2048, n_ubatch=ubatch, flash_attn=fa)
    rows = compare(predict_rpc_split(read_header(model), params, hosts_for(endpoints, shares)), log)
    worst_total = max(abs(r.error_pct) for r in rows if r.component == "total")
    worst = max(abs(r.error_pct) for r in rows if r.logged)
    print(f"\n[{case}] worst host total {worst_total:.2f} % (goal ≤ {GOAL_PCT} %), worst component {worst:.2f} %")
    print(table(rows))
    assert worst_total <= GOAL_PCT, table(rows)
