"""Which speed profiles a command's budget stands for: this machine's calibrated one, or a target's estimate.

Shared by ``fit``, ``bench``, the Fit view and the ladder so they say the same speed for the same model and budget;
here in engine because the profile's key includes the llama.cpp build the engine reports.
"""

from __future__ import annotations

from sizewise.core.fit.devices import BackendDevice
from sizewise.core.fit.hardware import GpuInfo, HardwareReport
from sizewise.core.fit.targets import find_target
from sizewise.core.paths import AppPaths
from sizewise.core.speed.predicted import Devices
from sizewise.core.speed.profile import ProfileStore, SpeedProfile, estimate_profile, fingerprint
from sizewise.core.speed.targets import peak_profile, target_speed


def device_fingerprint(hardware: HardwareReport) -> str:
    """The key a calibrated profile is stored under: CPU, cores, RAM and the llama.cpp build (here, not in
    calibrate.py, so that reading a profile does not import the fitting code and numpy: ~0.12 s of every
    `fit`/`ladder` command)."""
    engine = hardware.engine
    return fingerprint(
        str(hardware.cpu_model.value or ""),
        int(hardware.logical_cores.value or 0),
        int(hardware.ram_total.value or 0),
        engine.llama_cpp_version if engine else "",
        engine.system_info if engine else "",
    )


def gpu_fingerprint(hardware: HardwareReport, device: BackendDevice) -> str:
    """The key a GPU's calibrated profile is stored under: the machine's key, the backend and the device (a
    card swapped, or a driver that names it differently, means calibrating again)."""
    return fingerprint(device_fingerprint(hardware), 0, device.total_bytes, device.backend, device.description)


def target_devices(name: str) -> Devices:
    ts = target_speed(find_target(name))
    return Devices(ts.cpu or estimate_profile(reason=ts.reason), ts.gpu)


def _nvml_gpu(report: HardwareReport | None) -> GpuInfo | None:
    """The first GPU where it is an NVIDIA card, whose figures NVML gives."""
    if report is None or not report.gpus or report.gpus[0].kind != "nvidia":
        return None
    return report.gpus[0]


def nvml_peak_bandwidth(report: HardwareReport | None) -> float | None:
    """The first GPU's peak memory bandwidth in bytes/s from NVML (NVIDIA only); None where NVML gives none."""
    gpu = _nvml_gpu(report)
    value = gpu.nvml_value("peak_bandwidth_bytes_s") if gpu is not None else None
    return float(value) if value else None


def nvml_gpu_estimate(report: HardwareReport | None) -> SpeedProfile | None:
    """The first GPU's speed from NVML's peak bandwidth and FLOP/s (NVIDIA only), labelled ``estimate``; None
    where NVML gives no such figures (another vendor's GPU, a driver that does not report them)."""
    gpu = _nvml_gpu(report)
    if gpu is None or report is None:
        return None
    bandwidth, flops = gpu.nvml_value("peak_bandwidth_bytes_s"), gpu.nvml_value("peak_fp32_flops")
    if not bandwidth or not flops:
        return None
    backend = report.backend().gpu_backend or "cuda"  # the build's (a Vulkan build drives the card through Vulkan)
    return peak_profile(gpu.name, backend, bandwidth, flops, f"NVML's peak figures for {gpu.name}", "not calibrated")


def machine_devices(paths: AppPaths, report: HardwareReport | None) -> Devices:
    """This machine's calibrated CPU profile, else the labelled conservative estimate (calibrate to replace it);
    and its GPU's calibrated profile, else its estimate from NVML's peak figures where there is one."""
    if report is None:
        return Devices(estimate_profile(), None)
    gpu = report.offload_device()
    gpu_key = gpu_fingerprint(report, gpu) if gpu is not None else None
    stored, stored_gpu = ProfileStore.for_app(paths).get_many([device_fingerprint(report), gpu_key])
    cpu = stored or estimate_profile(device=str(report.cpu_model.value or ""))
    return Devices(cpu, stored_gpu or nvml_gpu_estimate(report), gpu_software=gpu is not None and gpu.software)
