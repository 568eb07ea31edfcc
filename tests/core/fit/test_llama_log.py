from sizewise.core.fit.llama_log import MeasuredBuffers, parse_buffer_line

LOG = """\
load_tensors:   CPU_Mapped model buffer size =    92.10 MiB
load_tensors:   CPU_REPACK model buffer size =    12.66 MiB
llama_context:        CPU  output buffer size =     0.19 MiB
llama_kv_cache:        CPU KV buffer size =    45.00 MiB
llama_context:      CUDA0 compute buffer size =    99.38 MiB
llama_context: n_ctx = 2048
"""


def test_parses_each_component_and_device() -> None:
    m = MeasuredBuffers()
    m.add_log_text(LOG)
    comp = m.by_component()
    assert comp["weights"] == round(92.10 * 2**20) + round(12.66 * 2**20)
    assert comp["kv"] == 45 * 2**20
    assert comp["output"] == round(0.19 * 2**20)
    assert comp["compute"] == round(99.38 * 2**20)
    assert m.total(gpu=True) == round(99.38 * 2**20)
    assert set(m.by_device()) == {"CPU_Mapped", "CPU_REPACK", "CPU", "CUDA0"}


def test_ignores_other_lines() -> None:
    assert parse_buffer_line("llama_context: n_ctx = 2048") is None
    assert parse_buffer_line("") is None


# What a Vulkan build of the pinned llama.cpp logged with 16 of SmolLM2's 30 layers on Mesa's lavapipe (issue 14).
VULKAN_LOG = """\
load_tensors:   CPU_Mapped model buffer size =    92.10 MiB
load_tensors:      Vulkan0 model buffer size =    60.40 MiB
llama_kv_cache:    Vulkan0 KV buffer size =     5.62 MiB
llama_kv_cache:        CPU KV buffer size =     5.62 MiB
llama_context:    Vulkan0 compute buffer size =   101.51 MiB
llama_context: Vulkan_Host compute buffer size =     4.01 MiB
"""


def test_host_buffers_of_a_gpu_backend_are_ram() -> None:
    m = MeasuredBuffers()
    m.add_log_text(VULKAN_LOG)
    mib = lambda x: round(x * 2**20)  # noqa: E731
    assert m.total(gpu=True) == mib(60.40) + mib(5.62) + mib(101.51)
    assert m.total(gpu=False) == mib(92.10) + mib(5.62) + mib(4.01)  # Vulkan_Host is pinned host memory
    assert not parse_buffer_line("llama_context:  CUDA_Host compute buffer size = 4.00 MiB").on_gpu  # type: ignore[union-attr]


def test_a_hybrids_recurrent_state_counts_with_the_kv_cache_and_stays_apart() -> None:
    """LFM2 logs its conv states as an "RS buffer" beside the attention layers' KV buffer (llama_memory_recurrent)."""
    m = MeasuredBuffers()
    m.add_log_text(
        "llama_kv_cache:        CPU KV buffer size =     4.00 MiB\n"
        "llama_memory_recurrent:        CPU RS buffer size =     0.16 MiB\n"
    )
    assert m.by_component()["kv"] == 4 * 2**20 + round(0.16 * 2**20)
    assert m.recurrent() == round(0.16 * 2**20)
    assert MeasuredBuffers.from_lines([{"device": "CPU", "component": "kv", "bytes": 5, "kind": "RS"}]).recurrent() == 5


# What llama-server (llama.cpp b11434) logged for SmolLM2 split 3:1 over two rpc-servers on loopback (issue 17):
# every server's buffer type is "RPC0[endpoint]", so only the endpoint tells the two apart.
RPC_LOG = """\
load_tensors:   CPU_Mapped model buffer size =    28.69 MiB
load_tensors: RPC0[127.0.0.1:50611] model buffer size =    50.73 MiB
load_tensors: RPC0[127.0.0.1:50612] model buffer size =    41.37 MiB
llama_kv_cache: RPC0[127.0.0.1:50611] KV buffer size =    36.00 MiB
llama_kv_cache: RPC0[127.0.0.1:50612] KV buffer size =     9.00 MiB
sched_reserve: RPC0[127.0.0.1:50611] compute buffer size =    35.05 MiB
sched_reserve: RPC0[127.0.0.1:50612] compute buffer size =    24.91 MiB
sched_reserve:        CPU compute buffer size =    19.32 MiB
"""


def test_rpc_buffers_keep_their_server() -> None:
    m = MeasuredBuffers()
    m.add_log_text(RPC_LOG)
    devices = m.by_device()
    assert set(devices) == {"CPU_Mapped", "CPU", "RPC0[127.0.0.1:50611]", "RPC0[127.0.0.1:50612]"}
    assert devices["RPC0[127.0.0.1:50612]"] == {
        "weights": round(41.37 * 2**20),
        "kv": 9 * 2**20,
        "compute": round(24.91 * 2**20),
    }
    endpoints = {b.rpc_endpoint for b in m.lines}
    assert endpoints == {None, "127.0.0.1:50611", "127.0.0.1:50612"}
