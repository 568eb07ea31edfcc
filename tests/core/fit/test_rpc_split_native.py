"""Fit across machines against a real split: SmolLM2 loaded by llama-server over two real ggml-rpc-servers on
127.0.0.1, split 5:3, and the prediction held to llama-server's own buffer lines within 3 % per host and component
(issue 17). The benchmark with the table is tests/benchmarks/test_rpc_split_bench.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from sizewise.core.fit.rpc.split import predict_rpc_split
from sizewise.core.gguf.header import read_header
from sizewise.core.sampling import LoadParams
from tests.rpc_split import compare, hosts_for, run_rpc_split, table

pytestmark = pytest.mark.native


def test_prediction_matches_a_real_two_server_split(native_bin: Path, smollm2_path: Path, tmp_path: Path) -> None:
    shares = (5, 3)  # a=5 GiB, b=3 GiB: blocks 0-19 on the first, 20-29 and the output layer on the second
    endpoints, log = run_rpc_split(native_bin, smollm2_path, tmp_path, shares, extra=("-fa", "on", "-ub", "512"))
    params = LoadParams(n_ctx=2048, n_gpu_layers=-1, n_batch=2048, n_ubatch=512, flash_attn=True)
    split = predict_rpc_split(read_header(smollm2_path), params, hosts_for(endpoints, shares))
    rows = compare(split, log)
    assert {r.host for r in rows if r.logged} == {"local", *endpoints}, log[-3000:]
    assert "pipeline parallelism enabled" in log
    print("\n" + table(rows))
    for r in rows:
        if r.logged or r.predicted:
            assert abs(r.predicted - r.logged) <= 0.03 * r.logged, table(rows)
    # the layers are where llama.cpp put them: 20 of 30 layers' KV (1.5 MiB each) on the first server
    assert [h.last_layer - h.first_layer for h in split.hosts] == [0, 20, 10]


def test_partial_offload_keeps_the_first_layers_on_the_local_host(
    native_bin: Path, smollm2_path: Path, tmp_path: Path
) -> None:
    """20 of 31 layers offloaded, 1:1: blocks 0-10 and their KV stay with llama-server, no pipeline parallelism."""
    endpoints, log = run_rpc_split(
        native_bin, smollm2_path, tmp_path, (1, 1), extra=("-fa", "on", "-ub", "512"), gpu_layers=20
    )
    params = LoadParams(n_ctx=2048, n_gpu_layers=20, n_batch=2048, n_ubatch=512, flash_attn=True)
    split = predict_rpc_split(read_header(smollm2_path), params, hosts_for(endpoints, (1, 1)))
    rows = compare(split, log)
    assert "pipeline parallelism enabled" not in log and not split.pipeline_parallel
    assert [(h.first_layer, h.last_layer) for h in split.hosts] == [(0, 11), (11, 21), (21, 30)]
    for r in rows:
        if r.component == "total":
            assert abs(r.predicted - r.logged) <= 0.03 * r.logged, table(rows)
