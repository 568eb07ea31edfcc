"""The --rpc-hosts parser and the RPC split prediction (issue 17), without starting any server.

The real-split check against llama-server's log is tests/core/fit/test_rpc_split_native.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from sizewise.core.fit.llama_log import MeasuredBuffers
from sizewise.core.fit.memory_model import Backend, predict
from sizewise.core.fit.rpc.hosts import RpcHost, parse_rpc_hosts
from sizewise.core.fit.rpc.split import assign_slots, predict_rpc_split
from sizewise.core.gguf.header import read_header
from sizewise.core.sampling import LoadParams
from tests.core.fit.test_llama_log import RPC_LOG

GiB, MiB = 1 << 30, 1 << 20


def test_parses_names_sizes_and_order() -> None:
    hosts = parse_rpc_hosts("a=24GiB, b = 16 GB,10.0.0.5:50052=512MiB,c=1.5T")
    assert hosts == [
        RpcHost("a", 24 * GiB),
        RpcHost("b", 16 * 1000**3),
        RpcHost("10.0.0.5:50052", 512 * MiB),
        RpcHost("c", int(1.5 * (1 << 40))),
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a=lots", "'lots' is not a memory size (host a)"),
        ("a=24", "'24' is not a memory size"),
        ("a", "'a' gives no memory size"),
        ("=24GiB", "gives no memory size"),
        ("a=0GiB", "host a has no memory"),
        ("a=1GiB,a=2GiB", "host a is listed twice"),
        ("a=1GiB,,b=2GiB", "has an empty entry"),
        ("", "has an empty entry"),
        ("a b=1GiB", "'a b' is not a host name"),
    ],
)
def test_bad_input_gets_one_sentence(text: str, says: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_rpc_hosts(text)
    message = str(err.value)
    assert says in message
    assert message.endswith(".") and message.count(". ") == 0


def test_layers_follow_llama_cpps_split_points() -> None:
    # SmolLM2: 30 blocks + the output layer. 3:1 → split points 0.75, 1.0: slot il goes to the first device whose
    # point is above il/31, so blocks 0-23 (23/31 = 0.742) to the first and 24-29 and the output to the second
    # (what llama-server logged: 36 of 45 MiB of KV, 1.5 MiB per layer, on the first).
    slots = assign_slots([3, 1], 30, 31)
    assert slots.count(0) == 24 and slots[24:] == [1] * 7
    assert assign_slots([1, 1], 30, 31).count(0) == 16
    # partial offload: the first 21 blocks stay on the CPU, the 10 offloaded slots (9 blocks + output) are split 1:1
    partial = assign_slots([1, 1], 30, 10)
    assert partial[:21] == [-1] * 21 and partial[21:] == [0] * 5 + [1] * 5
    assert assign_slots([1, 1], 30, 0) == [-1] * 31


def test_split_adds_up_to_the_one_device_prediction(smollm2_path: Path) -> None:
    header = read_header(smollm2_path)
    params = LoadParams(n_ctx=2048, n_gpu_layers=-1, flash_attn=True)
    split = predict_rpc_split(header, params, parse_rpc_hosts("a=24GiB,b=8GiB,c=8GiB"))
    one = predict(header, params, Backend(gpu=True, repack=False, gpu_backend="rpc"))
    assert [h.name for h in split.hosts] == ["local", "a", "b", "c"]
    assert sum(h.weights_bytes for h in split.hosts) == one.weights_bytes
    assert sum(h.kv_bytes for h in split.hosts) == one.kv_bytes
    # split points 0.6, 0.8, 1.0 over 31 slots: il/31 < 0.6 up to block 18, < 0.8 up to 24
    assert [h.last_layer - h.first_layer for h in split.hosts] == [0, 19, 6, 5]
    assert split.hosts[-1].output_layer and split.pipeline_parallel


def test_recorded_real_split_within_3_percent(smollm2_path: Path) -> None:
    """llama-server's buffer lines for SmolLM2 split 3:1 (test_llama_log.RPC_LOG: -c 2048, flash attention auto →
    on, -ub 512), host by host and component by component."""
    split = predict_rpc_split(
        read_header(smollm2_path),
        LoadParams(n_ctx=2048, n_gpu_layers=-1, n_batch=2048, n_ubatch=512, flash_attn=True),
        [RpcHost("127.0.0.1:50611", 3 * GiB), RpcHost("127.0.0.1:50612", 1 * GiB)],
    )
    logged = MeasuredBuffers()
    logged.add_log_text(RPC_LOG)
    devices = logged.by_device()
    local = {c: devices["CPU_Mapped"].get(c, 0) + devices["CPU"].get(c, 0) for c in ("weights", "compute")}
    expected = {"local": local} | {h: devices[f"RPC0[{h}]"] for h in ("127.0.0.1:50611", "127.0.0.1:50612")}
    for host in split.hosts:
        got = {"weights": host.weights_bytes, "kv": host.kv_bytes, "compute": host.compute_bytes}
        for component, want in expected[host.name].items():
            assert abs(got[component] - want) <= 0.03 * want, (host.name, component, got[component], want)


def test_verdict_names_the_host_that_runs_out(smollm2_path: Path) -> None:
    header = read_header(smollm2_path)
    params = LoadParams(n_ctx=2048, n_gpu_layers=-1)
    roomy = predict_rpc_split(header, params, parse_rpc_hosts("a=8GiB,b=8GiB"), local_budget_bytes=8 * GiB)
    assert roomy.verdict == "fits" and "Fits the group" in roomy.words()
    # a 100 MiB host beside an 8 GiB one gets none of the 31 slots (its split point is 0.012); the local host, with
    # the embeddings and the pipeline copies (~48 MiB), is the one over its 30 MiB
    small = predict_rpc_split(header, params, parse_rpc_hosts("big=8GiB,small=100MiB"), local_budget_bytes=30 * MiB)
    assert small.verdict == "too large"
    assert small.words() == "Too large for the group: local would run out of memory."
    no_budget = predict_rpc_split(header, params, parse_rpc_hosts("a=8GiB"))
    assert no_budget.hosts[0].verdict == "unknown" and no_budget.verdict == "fits"
    assert no_budget.tensor_split == "8192"
