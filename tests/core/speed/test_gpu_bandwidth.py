"""Where calibration's small models cannot measure a GPU's bandwidth, the weights are read at the device's
published peak (fit.weights_share, calibrate.MIN_WEIGHTS_SHARE).

The figures are an NVIDIA H200's, measured through llama.cpp's Vulkan backend: calibration's models took
0.43-1.65 ms a token, ~58 µs a layer whatever their bytes, and Qwen2.5-1.5B-shaped models 2.1-2.3 ms (Q8_0, 1.47 GB):
about 3 TB/s for the weights. A per-type fit of such points is noise (Q4_K came out at 248 GB/s, Q6_K at 1955)."""

from __future__ import annotations

import random

import pytest

from sizewise.core.speed.fit import fit_tg, weights_share
from sizewise.core.speed.model import ModelCost, tg_seconds
from sizewise.core.speed.steady import RoundFigures
from sizewise.engine.speed.calibrate import MIN_WEIGHTS_SHARE, _prior, _profile
from sizewise.engine.speed.measure import CalibrationFailed, Measured, points

# calibration's three shapes (layers, query heads, KV heads, head size) and their weights per quantization, as
# llama.cpp's quantizer stores them
SHAPES = {"86M": (4, 8, 2, 128), "31M": (24, 4, 2, 64), "128M": (10, 15, 3, 64)}
WEIGHTS = {
    "86M": {"Q8_0": {"Q8_0": 91357184}, "Q4_K_M": {"Q6_K": 45158400, "Q4_K": 17399808},
            "Q2_K": {"Q6_K": 41287680, "Q2_K": 7225344, "Q3_K": 5406720, "Q4_K": 589824}},
    "31M": {"Q8_0": {"Q8_0": 33423360}, "Q4_K_M": {"Q6_K": 12579840, "Q4_K": 9068544},
            "Q2_K": {"Q6_K": 10321920, "Q2_K": 3870720, "Q3_K": 3041280}},
    "128M": {"Q8_0": {"Q8_0": 136304640},
             "Q4_K_M": {"Q8_0": 51114240, "Q5_0": 41606400, "Q6_K": 8064000, "Q4_K": 5529600},
             "Q2_K": {"Q8_0": 50135040, "Q4_0": 33523200, "Q5_0": 1267200, "Q3_K": 8448000}},
}  # fmt: skip
PEAK = 4.9e12  # NVML: 6144-bit bus × 3201 MHz × 2


def _cost(n_layer: int, n_head: int, n_head_kv: int, head: int, by_type: dict[str, int]) -> ModelCost:
    weights = sum(by_type.values())
    return ModelCost(n_layer, weights, by_type, weights, "Q8_0", n_layer * 2 * n_head_kv * head * 2, 0, 0,
                     n_layer * n_head * 4 * head, scores_full_per_token=n_layer * n_head,
                     attn_flops_per_score=4 * head)  # fmt: skip


def _truth(cost: ModelCost, depth: int, fixed: float, per_layer: float, bw: float, per_cell: float = 0.0) -> float:
    attention = cost.cells_at(depth) * per_cell if per_cell else cost.scores_at(depth) * 2e-10
    return fixed + cost.n_layer * per_layer + cost.weight_bytes / bw + attention


def _prompt(cost: ModelCost, fixed: float, per_layer: float, flops: float) -> float:
    return fixed + cost.n_layer * per_layer + cost.pp_flops() / flops


def _measured(
    fixed: float, per_layer: float, bandwidth: float, noise: float, pp: tuple[float, ...], per_cell: float = 0.0
) -> list[Measured]:
    rng = random.Random(13)
    out = []
    for name, (layers, heads, kv_heads, head) in SHAPES.items():
        for quant, by_type in WEIGHTS[name].items():
            cost = _cost(layers, heads, kv_heads, head, by_type)
            rounds = []
            for _ in range(3):
                tg, deep = (_truth(cost, d, fixed, per_layer, bandwidth, per_cell) * (1 + rng.uniform(-noise, noise))
                            for d in (8, 1032))  # fmt: skip
                prompt = _prompt(cost, *pp) * (1 + rng.uniform(-noise, noise))
                rounds.append(RoundFigures(tg, deep, prompt, 1.0, prompt * 1.3))
            out.append(points(f"{name} {quant}", cost, rounds))
    return out


def test_a_gpu_whose_tokens_are_kernel_launches_reads_its_weights_at_the_published_peak() -> None:
    gpu = _measured(82e-6, 58e-6, 3.4e12, noise=0.08, pp=(1e-6, 1.1e-6, 25e12))
    tg_points = [p for m in gpu for p in m.tg_by_quant]
    family = fit_tg([p for m in gpu for p in m.tg_by_family])
    free = fit_tg(tg_points, _prior(family.bw_by_key))
    assert weights_share(free, tg_points) < MIN_WEIGHTS_SHARE  # reading weights: under 30 % of any point's time
    profile = _profile(gpu, peak_bandwidth=PEAK, backend="vulkan", device="NVIDIA H200")
    assert profile.bw_effective == pytest.approx(PEAK * 0.7) and "NVML's peak" in profile.note
    assert not {"Q4_K", "Q6_K", "Q8_0"} & set(profile.bw_by_quant)  # no per-type figure: every type at the peak
    assert profile.t_layer == pytest.approx(58e-6, rel=0.15)
    # A Qwen2.5-1.5B-shaped Q4_K_M (28 layers, 0.85 GB) at depth 512, all on this GPU:
    qwen = _cost(28, 12, 2, 128, {"Q6_K": 225_000_000, "Q4_K": 626_000_000})
    truth = _truth(qwen, 520, 82e-6, 58e-6, 3.4e12)
    assert tg_seconds(qwen, profile, 520) == pytest.approx(truth, rel=0.15)
    # Prompts keep their fit (calibration's matmuls take most of their time, fit.weights_share's reason is not theirs)
    assert "FLOP" not in profile.note and profile.flops_by_quant
    # Without a published peak (another vendor's GPU) the fit stays its own, and its note says how little it saw:
    assert "is uncertain" in _profile(gpu, backend="vulkan", device="some GPU").note


def test_a_device_that_spends_its_time_reading_weights_keeps_its_measured_bandwidth() -> None:
    cpu = _measured(1e-4, 5e-6, 8e9, noise=0.03, pp=(0.0, 2e-6, 100e9))  # an AVX-512 core: 8 GB/s, 100 GFLOP/s
    tg_points = [p for m in cpu for p in m.tg_by_quant]
    free = fit_tg(tg_points)
    assert weights_share(free, tg_points) > 0.8
    profile = _profile(cpu, peak_bandwidth=PEAK, backend="cpu", device="a CPU")
    assert profile.note == "" and profile.bw_by_quant["Q8_0"] == pytest.approx(8e9, rel=0.1)


def test_points_whose_time_does_not_grow_with_bytes_at_all_fall_back_or_say_why() -> None:
    """On an H200 once every byte column came out without a cost (the family fit divided by zero there, and the
    calibrate command crashed): with a published peak the weights are read at it; without one the GPU's profile is
    refused with the reason, not stored with an infinite bandwidth."""
    launches = _measured(82e-6, 58e-6, 1e30, noise=0.0, pp=(1e-6, 1.1e-6, 25e12), per_cell=1e-8)
    family = fit_tg([p for m in launches for p in m.tg_by_family])
    assert family.bw == 0.0 and not {"kquant", "legacy"} & set(family.bw_by_key)
    profile = _profile(launches, peak_bandwidth=PEAK, backend="vulkan", device="NVIDIA H200")
    assert profile.bw_effective == pytest.approx(PEAK * 0.7) and profile.t_layer == pytest.approx(58e-6, rel=0.02)
    with pytest.raises(CalibrationFailed, match="too little to measure its memory bandwidth"):
        _profile(launches, backend="vulkan", device="some GPU")


def test_too_few_points_for_the_fit_around_the_peak_refuse_the_profile_with_the_reason() -> None:
    """Two models' four points cannot fit the fixed, per-layer and three attention figures around the peak: the
    profile is refused as a CalibrationFailed (calibrate() then keeps the CPU's profile), not a FitError that ended
    the whole calibration."""
    two = _measured(82e-6, 58e-6, 3.4e12, noise=0.0, pp=(1e-6, 1.1e-6, 25e12))[:2]
    with pytest.raises(CalibrationFailed, match="too few"):
        _profile(two, peak_bandwidth=PEAK, backend="vulkan", device="NVIDIA H200")
