"""The hardware probe: real figures from this machine, each with its source; cgroup limits; engine facts."""

from __future__ import annotations

from pathlib import Path

import psutil

from sizewise.core.fit.hardware import (
    NONE_DETECTED,
    Figure,
    GpuInfo,
    HardwareReport,
    cgroup_memory_limit,
    describe,
    engine_info,
    machine_budget,
    probe_cpu,
    probe_hardware,
    probe_nvidia,
)
from sizewise.core.fit.memory_model import Backend
from sizewise.engine.session import EngineSession


def test_every_figure_has_a_source() -> None:
    report = probe_hardware()
    d = report.to_dict()
    for key in ("os", "cpu_model", "physical_cores", "logical_cores", "simd", "ram_total", "ram_available"):
        assert d[key]["source"], key
    assert d["ram_total"]["value"] == psutil.virtual_memory().total
    assert 0 < d["ram_available"]["value"] <= d["ram_total"]["value"]
    assert d["logical_cores"]["value"] == psutil.cpu_count(logical=True)
    assert d["engine"] is None


def test_cpu_model_and_simd_from_proc_cpuinfo() -> None:
    model, physical, logical, simd = probe_cpu()
    assert physical.source.startswith("psutil") and logical.value == psutil.cpu_count(logical=True)
    cpuinfo = Path("/proc/cpuinfo").read_text()
    assert model.source == "/proc/cpuinfo" and model.value and model.value in cpuinfo
    flags = next(line for line in cpuinfo.splitlines() if line.startswith(("flags", "Features"))).split(":")[1].split()
    for f in simd.value:
        assert f in flags or (f == "avx512" and "avx512f" in flags) or f in ("neon", "dotprod", "i8mm", "fp16")


def test_no_gpu_is_said_plainly() -> None:
    gpus, note = probe_nvidia()
    report = probe_hardware()
    if not gpus:
        assert report.gpu_note.startswith(NONE_DETECTED)
        assert note in report.gpu_note
        assert report.vram_budget.value == 0
        assert ("GPU", report.gpu_note, "NVML / platform") in describe(report)
    else:  # pragma: no cover - only on machines with an NVIDIA GPU
        assert report.gpus[0].total_bytes > 0 and report.gpus[0].source.startswith("NVML")


def test_engine_facts_come_from_the_ready_message(tmp_path: Path) -> None:
    with EngineSession(log_path=tmp_path / "engine.log") as session:
        ready = session.start()
    report = probe_hardware(ready)
    assert report.engine is not None
    assert report.engine.llama_cpp_version == ready["llama_cpp_version"]
    assert report.engine.gpu_offload == ready["gpu_offload"]
    assert "CPU" in report.engine.system_info
    backend = report.backend()
    assert backend == Backend.from_system_info(ready["system_info"], gpu_offload=bool(report.gpus))
    labels = [row[0] for row in describe(report)]
    assert "GPU offload" in labels and "CPU backend" in labels


def test_system_info_parsing() -> None:
    b = Backend.from_system_info("CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 0 | NEON = 0 | REPACK = 1 |")
    assert b.cpu_features == frozenset({"avx2"}) and b.repack and not b.gpu
    arm = Backend.from_system_info("CPU : NEON = 1 | ARM_FMA = 1 | DOTPROD = 1 | MATMUL_INT8 = 1 | REPACK = 0 |")
    assert arm.cpu_features == frozenset({"neon", "dotprod", "i8mm"}) and not arm.repack


def test_cgroup_v1_and_v2_limits(tmp_path: Path) -> None:
    v1_root = tmp_path / "v1"
    (v1_root / "memory" / "box").mkdir(parents=True)
    (v1_root / "memory" / "box" / "memory.limit_in_bytes").write_text(str(2 << 30))
    proc = tmp_path / "cgroup-v1"
    proc.write_text("5:cpu:/x\n4:memory:/box\n0::/\n")
    limit = cgroup_memory_limit(proc, v1_root)
    assert limit.value == 2 << 30 and "memory.limit_in_bytes" in limit.source
    # v1's "unlimited" is a huge number, not a limit
    (v1_root / "memory" / "box" / "memory.limit_in_bytes").write_text("9223372036854771712")
    assert cgroup_memory_limit(proc, v1_root).value is None
    v2_root = tmp_path / "v2"
    (v2_root / "slice").mkdir(parents=True)
    (v2_root / "slice" / "memory.max").write_text("1073741824\n")
    proc2 = tmp_path / "cgroup-v2"
    proc2.write_text("0::/slice\n")
    assert cgroup_memory_limit(proc2, v2_root).value == 1 << 30
    (v2_root / "slice" / "memory.max").write_text("max\n")
    assert cgroup_memory_limit(proc2, v2_root).value is None
    assert cgroup_memory_limit(tmp_path / "missing", v2_root).value is None


def test_budget_takes_the_smaller_of_available_and_cgroup_limit() -> None:
    base = probe_hardware()
    capped = HardwareReport(
        os=base.os,
        cpu_model=base.cpu_model,
        physical_cores=base.physical_cores,
        logical_cores=base.logical_cores,
        simd=base.simd,
        ram_total=base.ram_total,
        ram_available=Figure(8 << 30, "psutil.virtual_memory().available"),
        memory_limit=Figure(1 << 30, "/sys/fs/cgroup/x/memory.max"),
        gpu_note=NONE_DETECTED,
    )
    assert capped.ram_budget.value == 1 << 30 and "memory.max" in capped.ram_budget.source
    budget = machine_budget(capped)
    assert budget.ram_bytes == 1 << 30 and budget.vram_bytes == 0 and not budget.backend.gpu


def test_gpu_budget_uses_free_memory_and_needs_an_offload_build() -> None:
    base = probe_hardware()
    gpu = GpuInfo("Test GPU", "nvidia", total_bytes=12 << 30, free_bytes=10 << 30, source="NVML (device 0)")
    with_gpu = HardwareReport(**{**base.__dict__, "gpus": [gpu], "engine": engine_info(None)})
    assert with_gpu.vram_budget.value == 10 << 30
    no_offload = HardwareReport(
        **{
            **base.__dict__,
            "gpus": [gpu],
            "engine": engine_info({"llama_cpp_version": "x", "gpu_offload": False, "system_info": "CPU : AVX2 = 1 |"}),
        }
    )
    assert no_offload.vram_budget.value == 0 and "no GPU backend" in no_offload.vram_budget.source
    assert not machine_budget(no_offload).backend.gpu
