"""Speed estimates for deployment targets (published figures × stated efficiency) and for layer splits."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from sizewise.core.errors import UserError
from sizewise.core.fit.targets import load_targets, parse_targets
from sizewise.core.speed.model import ModelCost, pp_seconds, tg_seconds
from sizewise.core.speed.predicted import Devices, predict_for_split, predict_reply
from sizewise.core.speed.profile import SpeedProfile
from sizewise.core.speed.targets import target_speed

# Llama-2-7B at Q4_0, from its published shapes: 32 layers, 6.74B parameters, 4.5 bits a weight; the
# untied token-embedding table (32000 × 4096) is read one row a token, so it is left out.
LLAMA2_7B_Q4_0 = ModelCost(
    n_layer=32,
    weight_bytes=int((6.74e9 - 32000 * 4096) * 4.5 / 8),
    bytes_by_type={"Q4_0": int((6.74e9 - 32000 * 4096) * 4.5 / 8)},
    matmul_params=int(6.74e9 - 32000 * 4096),
    quant="Q4_0",
    kv_full_bytes_per_token=32 * 2 * 4096 * 2,
    kv_swa_bytes_per_token=0,
    n_swa=0,
    attn_flops_per_cached_token=32 * 4 * 4096,
)


def test_every_shipped_target_has_speed_figures_and_they_are_labelled_estimates() -> None:
    for target in load_targets():
        ts = target_speed(target)
        assert ts.cpu is not None and ts.cpu.source == "estimate", target.id
        assert target.speed_source, target.id
        assert (ts.gpu is not None) == (target.gpu != "none"), target.id
        assert f"'{target.id}'" in ts.cpu.note


def test_more_bandwidth_means_faster_generation_in_proportion_to_the_weight_reads() -> None:
    by_id = {t.id: t for t in load_targets()}
    slow = target_speed(by_id["laptop-8gb-cpu"]).cpu
    fast = target_speed(by_id["laptop-16gb"]).cpu
    assert slow is not None and fast is not None
    # 25.6 vs 51.2 GB/s: twice the bandwidth, so the weight-reading part of a token takes half the time
    t_slow, t_fast = tg_seconds(LLAMA2_7B_Q4_0, slow), tg_seconds(LLAMA2_7B_Q4_0, fast)
    assert t_slow - slow.t_fixed == pytest.approx(2 * (t_fast - fast.t_fixed), rel=1e-9)
    # Apple M2 (100 GB/s): llama.cpp's Apple-silicon table (discussion #4167) lists ~21 t/s for 7B Q4_0
    # generation on an M2; the labelled estimate must land in the same range, not at the ceiling.
    m2 = target_speed(by_id["apple-m-16gb"]).gpu
    assert m2 is not None
    assert 14 < 1 / tg_seconds(LLAMA2_7B_Q4_0, m2) < 28


def test_a_target_without_figures_gets_a_reason_and_bad_figures_name_the_target() -> None:
    entry = {"id": "box", "ram_gib": 8, "gpu": "none"}
    (target,) = parse_targets({"targets": [entry]})
    ts = target_speed(target)
    assert ts.cpu is None and ts.gpu is None and "box" in ts.reason
    with pytest.raises(UserError, match=r"'box'.*ram_bandwidth_gbs"):
        parse_targets({"targets": [{**entry, "ram_bandwidth_gbs": "fast"}]})
    with pytest.raises(UserError, match=r"'box'.*gpu_tflops"):
        parse_targets({"targets": [{**entry, "gpu_tflops": -1}]})


def _profile(bw: float, flops: float, source: str = "measured") -> SpeedProfile:
    return SpeedProfile(bw_effective=bw, t_fixed=0.001, flops_by_family={"legacy": flops}, source=source)


def test_a_layer_split_costs_between_all_cpu_and_all_gpu() -> None:
    devices = Devices(_profile(20e9, 200e9), _profile(300e9, 10e12, source="estimate"))
    n_off = LLAMA2_7B_Q4_0.n_layer + 1
    cpu = predict_for_split(LLAMA2_7B_Q4_0, devices, 0, n_off, 4096)
    gpu = predict_for_split(LLAMA2_7B_Q4_0, devices, n_off, n_off, 4096)
    half = predict_for_split(LLAMA2_7B_Q4_0, devices, n_off // 2, n_off, 4096)
    assert cpu.device == "cpu" and gpu.device == "gpu" and half.device == "cpu+gpu"
    assert cpu.tg_tps < half.tg_tps < gpu.tg_tps
    assert cpu.pp_tps < half.pp_tps <= gpu.pp_tps
    assert cpu.confidence == "measured" and gpu.confidence == half.confidence == "estimate"
    assert cpu.tg_tps_full_ctx < cpu.tg_tps  # a full KV cache is read on every token
    # the CPU-only figure is the profile's own prediction, unchanged by the split machinery
    assert 1 / cpu.tg_tps == pytest.approx(tg_seconds(LLAMA2_7B_Q4_0, devices.cpu))


def test_offloaded_layers_without_a_gpu_profile_are_not_guessed() -> None:
    devices = Devices(_profile(20e9, 200e9))
    n_off = LLAMA2_7B_Q4_0.n_layer + 1
    split = predict_for_split(LLAMA2_7B_Q4_0, devices, 10, n_off, 512)
    assert split.device == "cpu" and "no speed profile for the GPU" in split.note
    assert split.tg_tps == predict_for_split(LLAMA2_7B_Q4_0, devices, 0, n_off, 512).tg_tps


def test_shipped_targets_file_round_trips_its_speed_figures() -> None:
    data = json.loads(Path(__file__).resolve().parents[3].joinpath("resources", "targets.json").read_text())
    first = data["targets"][0]
    (target,) = parse_targets({"targets": [first]})
    assert target.ram_bandwidth == pytest.approx(first["ram_bandwidth_gbs"] * 1e9)
    assert target.to_dict()["ram_bandwidth_gbs"] == pytest.approx(first["ram_bandwidth_gbs"])
    assert replace(target, cpu_flops=0.0).to_dict()["cpu_gflops"] == 0.0


def test_a_reply_is_predicted_at_its_own_depth_and_prompt_size() -> None:
    """A real reply (GenerationStats): 200 prompt tokens after a reused 1,000-token prefix, then 100 generated,
    so generation ran at depth 1,200-1,300 and the prediction is taken at 1,250; the prompt at 200 tokens after
    1,000. With the layers split, the same split machinery as the fit's prediction applies."""
    devices = Devices(_profile(20e9, 200e9), _profile(300e9, 10e12, source="estimate"))
    stats = {"tokens": 100, "prompt_tokens": 200, "context_tokens": 1300, "tg_tps": 5.0, "pp_tps": 40.0}
    reply = predict_reply(LLAMA2_7B_Q4_0, devices, 0, LLAMA2_7B_Q4_0.n_layer + 1, stats)
    assert reply is not None and reply.depth == 1250 and reply.prompt_tokens == 200
    assert 1 / reply.predicted_tg_tps == pytest.approx(tg_seconds(LLAMA2_7B_Q4_0, devices.cpu, 1250))
    assert 1 / reply.predicted_pp_tps == pytest.approx(pp_seconds(LLAMA2_7B_Q4_0, devices.cpu, 1000, 200))
    assert reply.ratio("tg") == pytest.approx(5.0 * tg_seconds(LLAMA2_7B_Q4_0, devices.cpu, 1250))
    assert reply.confidence == "measured"
    # all layers on the GPU, a 512-token prompt into an empty cache: what the fit's prediction says
    n_off = LLAMA2_7B_Q4_0.n_layer + 1
    gpu = predict_reply(LLAMA2_7B_Q4_0, devices, n_off, n_off, stats | {"prompt_tokens": 512, "context_tokens": 612})
    fit = predict_for_split(LLAMA2_7B_Q4_0, devices, n_off, n_off, 4096)
    assert gpu is not None and gpu.predicted_pp_tps == pytest.approx(fit.pp_tps) and gpu.confidence == "estimate"
    # too short to time, or an older engine without context_tokens (depth from the reply alone)
    assert predict_reply(LLAMA2_7B_Q4_0, devices, 0, n_off, stats | {"tokens": 3}) is None
    old = predict_reply(LLAMA2_7B_Q4_0, devices, 0, n_off, {k: v for k, v in stats.items() if k != "context_tokens"})
    assert old is not None and old.depth == 250
