"""The speed model, its fit and the profile store, on made-up figures (no llama.cpp)."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from pathlib import Path

import pytest

from sizewise.core.gguf.header import GGUFHeader, TensorInfo, read_header
from sizewise.core.quant.shapes import HyperParams
from sizewise.core.speed.fit import (
    APART_LIMIT,
    FitError,
    NoisyFit,
    PpFit,
    PpPoint,
    TgFit,
    TgPoint,
    fit_line,
    fit_pp,
    fit_pp_in_family,
    fit_tg,
    fit_tg_in_family,
    less_rereads,
)
from sizewise.core.speed.model import ModelCost, attended_cells, model_cost, pp_seconds, predict_speed, tg_seconds
from sizewise.core.speed.predicted import Devices, predict_for_split
from sizewise.core.speed.profile import (
    ATTN,
    CELLS,
    KV,
    SCHEMA,
    ProfileStore,
    SpeedProfile,
    estimate_profile,
    type_family,
)
from tests.quant_models import write_model

F16, Q8_0, Q4_K = 1, 8, 12  # ggml type ids


def _header(tensors: list[tuple[str, tuple[int, ...], int]], **arch: int) -> GGUFHeader:
    meta = {"general.architecture": "llama", "llama.block_count": 2, "llama.embedding_length": 256}
    meta |= {"llama.attention.head_count": 4, "llama.attention.head_count_kv": 2}
    meta |= {f"llama.{k}": v for k, v in arch.items()}
    infos = [TensorInfo(name, shape, t, 0) for name, shape, t in tensors]
    return GGUFHeader(version=3, metadata=meta, tensors=infos, data_offset=0, file_size=0)


def test_line_fit_recovers_fixed_time_and_bandwidth_through_noise() -> None:
    rng = random.Random(1)
    t_fixed, bw = 0.0008, 18e9
    points = [(b, (t_fixed + b / bw) * rng.uniform(0.98, 1.02)) for b in (20e6, 50e6, 90e6, 120e6, 200e6)]
    got_fixed, got_bw = fit_line(points)
    assert got_bw == pytest.approx(bw, rel=0.05)
    assert got_fixed == pytest.approx(t_fixed, abs=2e-4)


def test_per_type_fit_recovers_each_bandwidth_and_the_per_layer_cost() -> None:
    bws = {"Q8_0": 20e9, "Q2_K": 12e9, KV: 8e9}
    points = []
    for w, layers in ((20e6, 4), (30e6, 24), (120e6, 12)):
        for type_name in ("Q8_0", "Q2_K"):
            for kv in (0.1e6, 4e6):
                by = {type_name: int(w), KV: int(kv)}
                seconds = 0.0005 + layers * 2e-5 + sum(n / bws[k] for k, n in by.items())
                points.append(TgPoint(by, seconds, layers))
    fit = fit_tg(points)
    assert fit.t_fixed == pytest.approx(0.0005, rel=1e-3) and fit.t_layer == pytest.approx(2e-5, rel=1e-3)
    assert fit.bw_by_key == pytest.approx(bws, rel=1e-3)
    assert fit_tg(points[:3]).bw_by_key == {}  # too few points for per-type figures: the single line only


def test_a_device_where_the_type_decides_more_than_the_bytes_still_fits_per_type() -> None:
    """Software Vulkan took twice as long on a Q4_K_M as on the Q8_0 of the same shape; where a type is read ten
    times slower per byte, the larger Q8_0 files are the faster ones and no line through total bytes exists. The
    per-type fit explains the points, and the single figure is theirs."""
    bws = {"Q8_0": 300e6, "Q4_K": 30e6, KV: 100e6}
    points = []
    for w, layers in ((30e6, 2), (16e6, 6), (24e6, 10)):
        for by_type in ({"Q8_0": w}, {"Q4_K": 0.75 * w}):
            for kv in (0.01e6, 0.2e6):
                by = {k: int(n) for k, n in by_type.items()} | {KV: int(kv)}
                points.append(TgPoint(by, 0.01 + layers * 0.004 + sum(n / bws[k] for k, n in by.items()), layers))
    with pytest.raises(NoisyFit):
        fit_line([(float(p.bytes_read), p.seconds) for p in points])
    fit = fit_tg(points)
    assert fit.bw_by_key == pytest.approx(bws, rel=1e-3) and fit.t_layer == pytest.approx(0.004, rel=1e-3)
    assert fit.worst_error < 1e-6 and 30e6 < fit.bw < 300e6
    with pytest.raises(NoisyFit):  # too few points to tell the types apart: refused, not guessed
        fit_tg(points[:5])


def test_types_always_in_step_are_drawn_to_their_familys_figure_instead_of_apart() -> None:
    rng = random.Random(2)
    points = []
    for w, layers in ((20e6, 4), (30e6, 24), (120e6, 12)):
        for kv in (0.1e6, 4e6):
            by = {"Q6_K": int(w * 0.7), "Q4_K": int(w * 0.3), KV: int(kv)}  # Q4_K always 30 % beside Q6_K
            seconds = (0.0005 + layers * 2e-5 + w / 15e9 + kv / 8e9) * rng.uniform(0.9, 1.1)
            points.append(TgPoint(by, seconds, layers))
    points += [TgPoint({"Q8_0": int(w), KV: 0}, 0.0005 + n * 2e-5 + w / 20e9, n) for w, n in ((20e6, 4), (90e6, 12))]
    free = fit_tg(points)
    drawn = fit_tg(points, lambda t: {"Q6_K": 1 / 15e9, "Q4_K": 1 / 15e9}.get(t))
    spread = lambda f: max(f.bw_by_key["Q6_K"], f.bw_by_key["Q4_K"]) / min(f.bw_by_key["Q6_K"], f.bw_by_key["Q4_K"])  # noqa: E731
    assert "Q4_K" in drawn.bw_by_key and spread(drawn) < 1.3
    assert spread(drawn) <= spread(free) or "Q4_K" not in free.bw_by_key


def test_fits_refuse_points_that_cannot_separate_the_unknowns() -> None:
    with pytest.raises(FitError):
        fit_line([(1e6, 0.001), (1e6, 0.0011)])
    with pytest.raises(FitError):
        fit_pp([PpPoint("kquant", 1e8, 0.001)])


def test_prompt_fit_recovers_flops_per_family() -> None:
    flops = {"legacy": 200e9, "kquant": 300e9}
    shapes = ((4e7, 4), (1e8, 24), (2.5e8, 12))
    points = [PpPoint(f, x, 2e-5 + n * 1e-6 + x / flops[f], n) for f in flops for x, n in shapes]
    fit = fit_pp(points)
    assert fit.c0 == pytest.approx(2e-5, rel=1e-3) and fit.c_layer == pytest.approx(1e-6, rel=1e-3)
    assert fit.flops_by_key == pytest.approx(flops, rel=1e-3)


def test_prompt_fit_tells_attention_apart_when_the_points_vary_it() -> None:
    flops, attn_rate = {"legacy": 200e9, "kquant": 300e9}, 80e9
    shapes = ((4e7, 4, 2e6), (1e8, 24, 12e6), (2.5e8, 12, 6e6))  # weight FLOPs, layers, attention FLOPs per cell
    points = [
        PpPoint(f, x, 2e-5 + n * 1e-6 + x / flops[f] + a * cells / attn_rate, n, a * cells)
        for f in flops
        for x, n, a in shapes
        for cells in (64, 576)  # depth 0 and 512 with a 128-token prompt
    ]
    fit = fit_pp(points)
    assert fit.flops_by_key == pytest.approx(flops, rel=1e-3) and fit.attn_flops == pytest.approx(attn_rate, rel=1e-3)
    assert fit_pp([PpPoint(p.key, p.flops, p.seconds, p.n_layer) for p in points]).attn_flops == 0.0  # not apart


def test_prompt_counts_the_output_matrix_once_and_attention_over_every_cell_a_micro_batch_sees() -> None:
    tensors = [("token_embd.weight", (256, 1000), Q8_0), ("blk.0.attn_q.weight", (256, 256), Q8_0)]
    tied = model_cost(_header(tensors))
    assert tied.output_params == 256 * 1000  # tied: the embedding table is the output matrix
    untied = model_cost(_header([*tensors, ("output.weight", (256, 1000), Q8_0)]))
    assert untied.output_params == 256 * 1000 and untied.matmul_params == tied.matmul_params
    assert tied.pp_flops(512) == pytest.approx(2 * 256 * 256 + 2 * 256 * 1000 / 512)
    assert tied.pp_flops(1) == pytest.approx(2 * tied.matmul_params)  # one token: logits for it (generation)
    per_cell = tied.attn_flops_per_cached_token
    assert per_cell == 2 * 4 * 4 * 64  # 2 layers × 4 heads × 4 FLOPs × head size 64
    assert tied.pp_attn_flops(0, 512) == pytest.approx(per_cell * 512)  # masked cells are multiplied too
    assert tied.pp_attn_flops(3584, 512) == pytest.approx(per_cell * 4096)
    assert tied.pp_attn_flops(0, 1024) == pytest.approx(per_cell * (512 + 1024) / 2)  # two micro-batches
    profile = SpeedProfile(bw_effective=10e9, t_fixed=0.0, flops_by_family={"legacy": 1e11}, attn_flops=2e10)
    deeper = pp_seconds(tied, profile, 3584) - pp_seconds(tied, profile, 0)
    assert deeper == pytest.approx(per_cell * 3584 / 2e10)  # at attention's own rate
    no_attn_rate = SpeedProfile(bw_effective=10e9, t_fixed=0.0, flops_by_family={"legacy": 1e11})
    assert pp_seconds(tied, no_attn_rate, 3584) - pp_seconds(tied, no_attn_rate, 0) == pytest.approx(
        per_cell * 3584 / 1e11
    )


def test_each_tensor_type_is_read_and_multiplied_at_its_own_rate() -> None:
    tensors = [("token_embd.weight", (256, 1000), Q8_0), ("blk.0.attn_q.weight", (256, 256), Q4_K)]
    cost = model_cost(_header(tensors))
    assert cost.params_by_type == {"Q8_0": 256 * 1000, "Q4_K": 256 * 256} and cost.output_type == "Q8_0"
    assert cost.pp_flops_by_type(512) == pytest.approx({"Q8_0": 2 * 256 * 1000 / 512, "Q4_K": 2 * 256 * 256})
    profile = SpeedProfile(bw_effective=10e9, t_fixed=0.0, bw_by_quant={"Q4_K": 5e9}, bw_by_family={"legacy": 20e9},
                           flops_by_quant={"Q4_K": 1e11}, flops_by_family={"legacy": 2e11},
                           attn_flops=1e10)  # fmt: skip
    q4k, q8 = 256 * 256 * 144 // 256, 256 * 1000 * 34 // 32
    cache = cost.kv_full_bytes_per_token * 256 / 10e9  # the first 256 cells, attended from the first token on
    assert predict_speed(cost, profile).ms_per_token == pytest.approx((q4k / 5e9 + q8 / 20e9 + cache) * 1e3)
    attention = 2 * 4 * 4 * 64 * 512 / 1e10  # layers × heads × 4 × head size, over 512 cells
    assert pp_seconds(cost, profile) == pytest.approx(2 * 256 * 256 / 1e11 + 2 * 256 * 1000 / 512 / 2e11 + attention)


def test_cost_counts_active_experts_only_and_the_embedding_only_when_tied() -> None:
    dense = [("token_embd.weight", (256, 1000), F16), ("blk.0.attn_q.weight", (256, 256), Q8_0)]
    tied = model_cost(_header(dense))
    untied = model_cost(_header([*dense, ("output.weight", (256, 1000), Q4_K)]))
    assert tied.bytes_by_type == {"F16": 256 * 1000 * 2, "Q8_0": 256 * 256 * 34 // 32} and tied.quant == "F16"
    assert tied.bytes_by_family() == {"float": 256 * 1000 * 2, "legacy": 256 * 256 * 34 // 32}
    assert untied.bytes_by_type["Q4_K"] == 256 * 1000 * 144 // 256 and "F16" not in untied.bytes_by_type
    experts = [*dense, ("blk.0.ffn_up_exps.weight", (256, 512, 8), Q8_0)]
    moe = model_cost(_header(experts, expert_count=8, expert_used_count=2))
    exp_bytes = 256 * 512 * 8 * 34 // 32
    assert moe.bytes_by_type["Q8_0"] == tied.bytes_by_type["Q8_0"] + exp_bytes // 4
    assert moe.matmul_params == tied.matmul_params + 256 * 512 * 2


def test_prediction_slows_with_depth_and_is_labelled_by_its_profile() -> None:
    cost = model_cost(_header([("token_embd.weight", (256, 1000), F16)]))
    assert cost.kv_full_bytes_per_token == 2 * 2 * (2 * 64 * 2)  # layers × (K + V) × kv heads × head × f16
    measured = SpeedProfile(bw_effective=10e9, t_fixed=0.001, t_layer=1e-4, flops_by_family={"float": 1e11},
                            bw_by_family={"float": 5e9}, source="measured")  # fmt: skip
    shallow, deep = predict_speed(cost, measured, 0), predict_speed(cost, measured, 4096)
    assert deep.tg_tps < shallow.tg_tps and shallow.confidence == "measured"
    # F16: its family's figure; the cache's first 256 cells (attended from the first token) at the overall one
    assert shallow.ms_per_token == pytest.approx(1.0 + 2 * 0.1 + 512000 / 5e9 * 1e3 + 256 * 1024 / 10e9 * 1e3)
    # 4096 cached and the new token's cell: 4352 cells attended
    assert deep.ms_per_token - shallow.ms_per_token == pytest.approx((4352 - 256) * 1024 / 10e9 * 1e3)
    guess = predict_speed(cost, estimate_profile("some CPU"))
    assert guess.confidence == "estimate" and "bandwidth" in guess.note


def _attention_shape(n_layer: int, n_head: int, n_head_kv: int, head_dim: int, weights: int) -> ModelCost:
    kv_per_token = n_layer * 2 * n_head_kv * head_dim * 2  # (K + V) × kv heads × head × f16
    return ModelCost(n_layer, weights, {"Q8_0": weights}, 0, "Q8_0", kv_per_token, 0, 0, 0,
                     scores_full_per_token=n_layer * n_head, attn_flops_per_score=4 * head_dim)  # fmt: skip


def test_attention_is_timed_by_its_work_and_cells_where_they_decide() -> None:
    """On one CPU thread a generated token's attention costs ~0.9 µs per cached cell plus its FLOPs at ~20 GFLOP/s,
    however many query heads share a KV head: the KV bytes alone timed Qwen2.5-0.5B (14 query heads on 2 KV heads)
    1.2-1.56× too fast at depth 4096 from calibration's 2:1-5:1 shapes. A device like that, calibrated on those
    shapes, now predicts a 7:1 model and one with heads twice as wide (Qwen2.5-1.5B's 128)."""
    per_cell, attn_rate, bw = 0.9e-6, 20e9, 15e9
    shapes = [_attention_shape(4, 16, 4, 64, 90_000_000), _attention_shape(24, 4, 2, 64, 33_000_000),
              _attention_shape(10, 15, 3, 64, 136_000_000)]  # fmt: skip
    # each shape in two weight types, as calibration quantizes it:
    shapes += [
        replace(c, weight_bytes=c.weight_bytes // 2, bytes_by_type={"Q4_K": c.weight_bytes // 2}) for c in shapes
    ]

    def truth(c: ModelCost, depth: int) -> float:
        weights = sum(n / (bw if t == "Q8_0" else 0.6 * bw) for t, n in c.bytes_by_type.items())
        return 1e-4 + c.n_layer * 3e-5 + weights + c.cells_at(depth) * per_cell + c.attn_flops_at(depth) / attn_rate

    def point(c: ModelCost, d: int, keys: tuple[str, ...] = (KV, ATTN, CELLS)) -> TgPoint:
        attention = {KV: c.kv_bytes_at(d), ATTN: c.attn_flops_at(d), CELLS: round(c.cells_at(d))}
        return TgPoint(c.bytes_by_type | {k: attention[k] for k in keys}, truth(c, d), c.n_layer)

    fit = fit_tg([point(c, d) for c in shapes for d in (8, 1032)])
    assert fit.bw_by_key[ATTN] == pytest.approx(attn_rate, rel=1e-3)
    assert fit.bw_by_key[CELLS] == pytest.approx(1 / per_cell, rel=1e-3)
    assert fit.bw_by_key.get(KV, math.inf) > 1e6 * bw  # the KV bytes' own cost comes out nil
    profile = SpeedProfile(bw_effective=fit.bw, t_fixed=fit.t_fixed, t_layer=fit.t_layer, bw_by_quant=fit.bw_by_key,
                           source="measured")  # fmt: skip
    qwen05, qwen15 = _attention_shape(24, 14, 2, 64, 530_000_000), _attention_shape(28, 12, 2, 128, 1_600_000_000)
    for model in (qwen05, qwen15):
        assert tg_seconds(model, profile, 4096) == pytest.approx(truth(model, 4096), rel=0.01)
    # Fitted through the KV bytes alone, the same device predicts what the grouped model's cache costs far too low:
    bytes_only = fit_tg([point(c, d, (KV,)) for c in shapes for d in (8, 1032)])
    old = SpeedProfile(bw_effective=bytes_only.bw, t_fixed=bytes_only.t_fixed, t_layer=bytes_only.t_layer,
                       bw_by_quant=bytes_only.bw_by_key, source="measured")  # fmt: skip
    deep_truth = truth(qwen05, 4096) - truth(qwen05, 0)
    assert deep_truth / (tg_seconds(qwen05, old, 4096) - tg_seconds(qwen05, old, 0)) > 1.3
    # A profile without attention's figures (an estimate, an older calibration) times the KV bytes, as before:
    assert tg_seconds(qwen05, old, 4096) - tg_seconds(qwen05, old, 0) == pytest.approx(
        (qwen05.kv_bytes_at(4096) - qwen05.kv_bytes_at(0)) / bytes_only.bw_by_key[KV]
    )
    # Too few points to tell the three apart (as in the GPU suite's short calibration): the per-type figures stay,
    # with the KV bytes standing for attention.
    few = fit_tg([point(c, d) for c in (shapes[0], shapes[1], shapes[3]) for d in (8, 1032)])
    assert set(few.bw_by_key) == {"Q8_0", "Q4_K", KV}
    # One device of a split pays its share of the cells (the mask is built once per token):
    half = replace(qwen05, cell_share=0.5)
    assert half.cells_at(4096) == 4352 / 2


def test_scores_count_query_heads_on_the_layers_that_keep_a_cache(gemma_path: Path, tmp_path: Path) -> None:
    llama = model_cost(_header([("token_embd.weight", (256, 1000), F16)]))
    assert llama.scores_at(300) == 2 * 4 * 512  # layers × query heads × the cells attended (below)
    assert llama.attn_flops_at(300) == 2 * 4 * 512 * 4 * 64 and llama.cells_at(300) == 512  # one full-attention mask
    hybrid = HyperParams("lfm2", 4, 256, 256, 4, 2, 100, attn_layers=(1, 3), conv_l_cache=3)
    lfm2 = model_cost(read_header(write_model(tmp_path / "lfm2.gguf", hybrid, zeros=True)))
    assert lfm2.scores_at(300) == 2 * 4 * 512  # the two attention layers; the convolution layers keep no cache
    gemma = model_cost(read_header(gemma_path))  # 18 layers of 4 query heads: 15 sliding (window 512), 3 full
    assert (gemma.scores_full_per_token, gemma.scores_swa_per_token) == (3 * 4, 15 * 4)
    # The sliding-window cache holds the window and a micro-batch (1024 cells), all of it multiplied once full:
    assert gemma.scores_at(4096) == 12 * 4352 + 60 * 1024
    assert gemma.cells_at(4096) == 4352 + 1024  # a mask per cache kind
    assert gemma.scores_at(100) == 12 * 256 + 60 * 256  # below the window both span the first step


def test_attention_spans_the_cache_in_whole_steps_of_256_cells() -> None:
    """llama.cpp's decode attends over the cache in steps of 256 cells, at least one, never past the cache
    (llama_kv_cache::get_n_kv), multiplying the masked cells too: a token at depth 8 costs what one at 255 does.
    Counting the depth itself left calibration's shallow point 248 cells short."""
    assert [attended_cells(n) for n in (1, 9, 256, 257, 513, 4097)] == [256, 256, 256, 512, 768, 4352]
    assert attended_cells(4097, size=4352) == 4352 and attended_cells(5000, size=4352) == 4352
    cost = _attention_shape(24, 14, 2, 64, 530_000_000)
    assert cost.kv_bytes_at(8) == cost.kv_bytes_at(255) == cost.kv_bytes_at(0) == 256 * cost.kv_full_bytes_per_token
    assert cost.kv_bytes_at(256) == 512 * cost.kv_full_bytes_per_token  # its own cell is the 257th
    assert cost.cells_at(520) == 768 and cost.scores_at(4104) == 4352 * 24 * 14
    # A prompt's micro-batch spans the cells up to its last token, in the same steps:
    # A full cache of 4096 cells: its last token attends all 4096, not the step past it
    profile = SpeedProfile(bw_effective=10e9, t_fixed=0.0, pp_fixed=1e-3, bw_by_quant={"Q8_0": 10e9, CELLS: 1e6},
                           source="measured")  # fmt: skip
    full = predict_for_split(cost, Devices(profile), 0, 25, 4096)
    assert 1 / full.tg_tps_full_ctx == pytest.approx(530_000_000 / 10e9 + 4096 / 1e6)
    prompt = replace(cost, attn_flops_per_cached_token=1000)
    assert prompt.pp_attn_flops(0, 100) == pytest.approx(1000 * 256)
    assert prompt.pp_attn_flops(300, 100) == pytest.approx(1000 * 512)


def test_profiles_round_trip_and_only_measured_ones_are_stored(tmp_path) -> None:
    p = SpeedProfile(5e9, 0.001, 1e-5, 2e-5, 1e-6, {"Q8_0": 6e9}, {"legacy": 6e9}, {"Q8_0": 2e11}, {"legacy": 2e11},
                     "measured", fingerprint="abc", points=9, l2_bytes=2 << 20)  # fmt: skip
    assert p.bandwidth("Q8_0") == 6e9 and p.bandwidth("Q4_0") == 6e9 and p.bandwidth("Q4_K") == 5e9
    assert p.flops("Q4_1") == 2e11
    assert SpeedProfile.from_dict(p.to_dict()) == p
    store = ProfileStore(tmp_path / "profiles.json")
    assert store.get("abc") is None
    store.put(p)
    assert store.get("abc") == p and store.get("other") is None
    assert store.get_many(["other", None, "abc"]) == [None, None, p]  # a machine without a GPU asks for None
    with pytest.raises(ValueError):
        store.put(estimate_profile())
    # A profile of an older schema was fitted to other attention counts (cells by depth, no scores): set aside, so
    # the app offers calibration again instead of predicting with figures of another model.
    older = json.loads((tmp_path / "profiles.json").read_text(encoding="utf-8"))
    older["abc"]["schema"] = SCHEMA - 1
    (tmp_path / "profiles.json").write_text(json.dumps(older), encoding="utf-8")
    assert store.get("abc") is None


def test_type_families() -> None:
    assert [type_family(t) for t in ("F16", "Q8_0", "Q4_1", "Q4_K", "Q4_K_M", "IQ2_XS", "BF16", KV, ATTN, CELLS)] == [
        "float", "legacy", "legacy", "kquant", "kquant", "iquant", "float", KV, ATTN, CELLS,
    ]  # fmt: skip


def test_a_point_slowed_by_other_programs_shows_as_a_large_fit_error() -> None:
    points = [
        TgPoint({k: int(w), KV: 1000}, 0.0005 + layers * 2e-5 + w / 20e9, layers)
        for w, layers in ((20e6, 4), (30e6, 24), (120e6, 12))
        for k in ("Q8_0", "Q2_K")
    ]
    assert fit_tg(points).worst_error < 0.01
    busy = [*points[:-1], TgPoint(points[-1].bytes_by_key, points[-1].seconds * 2.5, points[-1].n_layer)]
    assert fit_tg(busy).worst_error > 0.3


def test_a_cpu_prompt_reads_again_what_of_each_large_matrix_its_l2_does_not_hold() -> None:
    ffn = 1536 * 8960  # Qwen2.5-1.5B's ffn matrices: 7.7 MB in Q4_K, 14.6 MB in Q8_0
    tensors = [("token_embd.weight", (1536, 1000), Q8_0), ("blk.0.ffn_up.weight", (1536, 8960), Q4_K),
               ("blk.0.ffn_down.weight", (8960, 1536), Q8_0), ("blk.0.attn_q.weight", (1536, 1536), Q4_K)]  # fmt: skip
    cost = model_cost(_header(tensors))
    q4k_ffn, q4k_attn = ffn * 144 // 256, 1536 * 1536 * 144 // 256
    assert sorted(cost.matrices) == [("Q4_K", q4k_attn, 1.0), ("Q4_K", q4k_ffn, 1.0), ("Q8_0", ffn * 34 // 32, 1.0)]
    l2 = 2 << 20
    # Only Q4_K's 7.7 MB matrix: Q8_0 is tinyBLAS's (read once a matmul), the 1.3 MB attention matrix fits the L2
    assert cost.reread_bytes(l2) == {"Q4_K": pytest.approx((q4k_ffn - l2) / 16)}
    assert cost.reread_bytes(0) == {}  # L2 unknown: nothing assumed
    flat = dict(bw_effective=10e9, t_fixed=0.0, bw_by_quant={"Q4_K": 8e9}, flops_by_family={"kquant": 2e11,
                "legacy": 1e11}, attn_flops=1e10)  # fmt: skip
    without, with_l2 = SpeedProfile(**flat), SpeedProfile(**flat, l2_bytes=l2)  # type: ignore[arg-type]
    # moved at the overall bandwidth (Q4_K's own 8 GB/s is its decoding too, which the FLOP rate holds)
    assert pp_seconds(cost, with_l2) - pp_seconds(cost, without) == pytest.approx((q4k_ffn - l2) / 16 / 10e9)
    assert predict_speed(cost, with_l2).tg_tps == predict_speed(cost, without).tg_tps  # generation reads it once
    gpu = SpeedProfile(bw_effective=500e9, t_fixed=0.0, flops_by_family={"kquant": 1e13}, backend="vulkan")
    reread = (q4k_ffn - l2) / 16 / 10e9

    def extra(gpu_layers: int) -> float:  # what the L2 adds to a prompt token with this split
        pp = [predict_for_split(cost, Devices(cpu, gpu), gpu_layers, 2, 4096).pp_tps for cpu in (with_l2, without)]
        return 1.0 / pp[0] - 1.0 / pp[1]

    assert extra(0) == pytest.approx(reread) and extra(1) == pytest.approx(reread / 2)  # the CPU's half reads again
    assert extra(2) == pytest.approx(0.0, abs=1e-12)  # all on the GPU: none


def test_experts_count_their_matrices_at_the_used_share() -> None:
    experts = [("token_embd.weight", (256, 1000), F16), ("blk.0.ffn_up_exps.weight", (1024, 4096, 8), Q4_K)]
    moe = model_cost(_header(experts, expert_count=8, expert_used_count=2))
    one = 1024 * 4096 * 144 // 256
    assert moe.matrices == (("Q4_K", one, 2.0),)  # 8 experts, 2 of them multiplied per token
    assert moe.reread_bytes(1 << 20) == {"Q4_K": pytest.approx(2 * (one - (1 << 20)) / 16)}


def test_calibration_points_leave_out_their_rereads_before_the_flop_rates_are_fitted() -> None:
    flops = {"Q8_0": 1e11, "Q4_K": 2e11}
    bandwidth = 8e9
    points = []
    for x, n, reread in ((4e7, 4, 0.0), (1e8, 24, 0.0), (2.5e8, 12, 3e5), (5e8, 28, 9e5)):
        for t in flops:
            extra = {t: reread} if t == "Q4_K" and reread else None
            seconds = 1e-6 * n + x / flops[t] + (reread / bandwidth if extra else 0.0)
            points.append(PpPoint(t, x, seconds, n, reread_by_type=extra))
    assert fit_pp(less_rereads(points, bandwidth)).flops_by_key == pytest.approx(flops, rel=1e-6)
    assert less_rereads(points, 0.0) == points  # no bandwidth measured: nothing to take out
    assert fit_pp(points).flops_by_key["Q4_K"] < 0.99 * flops["Q4_K"]  # left in, they read as slower FLOPs


def test_a_type_held_only_in_step_with_another_takes_its_familys_rate() -> None:
    # As calibration's Q2_K files hold Q3_K: 35-37 % of their FLOPs in the two small shapes, 24 % in the third,
    # timed as the fit of a recorded run split them (Q2_K 140 GFLOP/s, Q3_K 1500), beside pure Q4_K and Q8_0 files
    rates = {"Q2_K": 1.4e11, "Q3_K": 1.5e12, "Q4_K": 2e11, "Q8_0": 1e11}
    points = []
    for x, n, q3 in ((4e7, 4, 0.35), (1e8, 24, 0.37), (2.5e8, 12, 0.24)):
        for split in ({"Q2_K": x * (1 - q3), "Q3_K": x * q3}, {"Q4_K": x}, {"Q8_0": x}):
            seconds = n * 1e-6 + sum(f / rates[t] for t, f in split.items())
            points.append(PpPoint(max(split, key=split.__getitem__), x, seconds, n, flops_by_key=split))
    family = PpFit(0.0, 1e-6, {"kquant": 2e11, "legacy": 1e11})
    assert fit_pp(points).flops_by_key["Q3_K"] == pytest.approx(1.5e12, rel=0.01)  # apart, as the points say
    held = fit_pp_in_family(points, family)
    assert "Q3_K" not in held.flops_by_key  # the family's figure applies (SpeedProfile.flops)
    # Q2_K keeps the time Q3_K's share at the family's rate leaves (174-208 GFLOP/s by the three points' shares),
    # not the compensating 140
    assert 1.6e11 < held.flops_by_key["Q2_K"] < 2.2e11
    # the others barely move (the shared per-layer cost takes some of Q2_K's residuals)
    assert held.flops_by_key["Q4_K"] == pytest.approx(2e11, rel=0.03)
    assert held.flops_by_key["Q8_0"] == pytest.approx(1e11, rel=0.03)
    # a fit whose types all stand within APART_LIMIT of their family is left as it was
    plain = [p for p in points if "Q3_K" not in p.split()]
    assert fit_pp_in_family(plain, family) == fit_pp(plain)


def test_generation_holds_a_type_far_from_its_family_and_keeps_the_overall_bandwidth() -> None:
    # Q3_K beside Q2_K at 10-18 % of a file's bytes, timed as a recorded run's fit split them (Q2_K 17 GB/s,
    # Q3_K 2.5), beside pure Q8_0 files
    rates = {"Q2_K": 17e9, "Q3_K": 2.5e9, "Q8_0": 8e9, KV: 8e9}
    points = []
    for w, layers, q3 in ((20e6, 4, 0.10), (30e6, 24, 0.18), (120e6, 12, 0.09)):
        for kv in (0.1e6, 4e6):
            by = {"Q2_K": int(w * (1 - q3)), "Q3_K": int(w * q3), KV: int(kv)}
            points.append(TgPoint(by, 0.0005 + layers * 2e-5 + sum(n / rates[k] for k, n in by.items()), layers))
    points += [TgPoint({"Q8_0": int(w), KV: 0}, 0.0005 + n * 2e-5 + w / 8e9, n) for w, n in ((20e6, 4), (90e6, 12))]
    family = TgFit(0.0005, 7.8e9, 2e-5, {"kquant": 7.5e9, "legacy": 8e9, KV: 8e9})
    free = fit_tg(points)
    assert free.bw_by_key["Q3_K"] == pytest.approx(2.5e9, rel=0.01)  # apart, as the points say
    held = fit_tg_in_family(points, family)
    assert "Q3_K" not in held.bw_by_key  # the family's 7.5 GB/s applies (SpeedProfile.bandwidth)
    assert 7.5e9 / APART_LIMIT <= held.bw_by_key["Q2_K"] <= 7.5e9 * APART_LIMIT
    assert held.bw_by_key["Q8_0"] == pytest.approx(8e9, rel=0.06)  # moved a little by the shared fixed costs
    assert held.bw == free.bw and held.errors == free.errors  # the headline and the fit's judgement unchanged
