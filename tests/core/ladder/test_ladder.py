"""The model ladder: catalogue models at every common quant, judged on virtual headers (no file, no network)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from sizewise.core.fit.memory_model import Backend, predict
from sizewise.core.fit.targets import find_target
from sizewise.core.fit.verdict import Budget, check_fit
from sizewise.core.gguf.ggml_types import GGMLType
from sizewise.core.gguf.header import read_header
from sizewise.core.hub.catalogue import load_catalogue
from sizewise.core.ladder.catalogue_rows import ladder_model, ladder_rows
from sizewise.core.ladder.cells import LADDER_QUANTS, build_ladder, ladder_cell, ladder_max_ctx
from sizewise.core.ladder.virtual_header import virtual_header
from sizewise.core.sampling import LoadParams
from sizewise.core.speed.model import model_cost
from sizewise.core.speed.predicted import Devices
from sizewise.core.speed.profile import SpeedProfile

GiB = 1 << 30
CELL_KEYS = {"model", "params", "active_params", "quant", "file_bytes", "verdict", "ram_bytes", "vram_bytes",
             "gpu_layers", "max_ctx", "tg_tps", "pp_tps", "confidence"}
PROFILE = SpeedProfile(bw_effective=20e9, t_fixed=0.002, flops_by_family={"kquant": 100e9}, source="measured")


def _family(name: str):  # type: ignore[no-untyped-def]
    return next(f for f in load_catalogue() if f.name.startswith(name))


@pytest.mark.parametrize("real", ["smollm2_path", "gemma_path"])
def test_a_virtual_header_predicts_what_the_real_file_does(real: str, request: pytest.FixtureRequest) -> None:
    """The starter (Q4_1) and Gemma-3-270M (Q4_K_M) from their catalogue entries alone: the same tensor bytes,
    the same memory prediction (weights, KV, compute) and the same speed-model cost as their real headers."""
    path: Path = request.getfixturevalue(real)
    header = read_header(path)
    family = _family("SmolLM2 135M" if real == "smollm2_path" else "Gemma 3 270M")
    quant = "Q4_1" if real == "smollm2_path" else "Q4_K_M"
    virtual = virtual_header(ladder_model(family).shape, quant)
    assert sorted((t.name, t.shape, t.ggml_type) for t in virtual.tensors) == sorted(
        (t.name, t.shape, t.ggml_type) for t in header.tensors
    )
    assert virtual.data_bytes == header.data_bytes
    assert abs(virtual.file_size - header.file_size) / header.file_size < 0.01  # metadata is estimated
    backend = Backend(repack=True, cpu_features=frozenset({"avx2"}))
    for ctx in (512, 4096):
        a, b = predict(virtual, LoadParams(n_ctx=ctx), backend), predict(header, LoadParams(n_ctx=ctx), backend)
        assert (a.weights_bytes, a.kv_bytes, a.compute_bytes) == (b.weights_bytes, b.kv_bytes, b.compute_bytes)
    assert model_cost(virtual).weight_bytes == model_cost(header).weight_bytes


def test_sizes_and_speeds_are_ordered_down_each_row() -> None:
    budget = Budget(64 * GiB, 0, "big", Backend(repack=False))
    rows = [ladder_model(_family(n)) for n in ("Qwen2.5 0.5B", "Llama 3.2 1B", "Qwen3 4B")]
    cells = build_ladder(rows, budget, Devices(PROFILE), LoadParams(n_ctx=2048))
    assert len(cells) == len(rows) * len(LADDER_QUANTS)
    for i in range(len(rows)):
        row = cells[i * len(LADDER_QUANTS) : (i + 1) * len(LADDER_QUANTS)]
        sizes = [c.file_bytes for c in row]
        assert sizes == sorted(sizes), [(c.quant, c.file_bytes) for c in row]  # Q2_K … F16 grow
        speeds = [c.tg_tps for c in row]
        assert speeds == sorted(speeds, reverse=True)  # more bytes a token, slower
        assert all(c.verdict == "fits_cpu" and c.max_ctx > 0 and c.confidence == "measured" for c in row)
        assert set(row[0].to_dict()) >= CELL_KEYS


def test_a_cell_agrees_with_fit_on_the_same_header_and_the_floor_marks_slow_cells() -> None:
    model = ladder_model(_family("Llama 3.1 8B"))
    budget = find_target("laptop-16gb").budget()
    params = LoadParams(n_ctx=4096)
    cell = ladder_cell(model, "Q4_K_M", budget, Devices(PROFILE), params, floor_tps=1.0)
    fit = check_fit(virtual_header(model.shape, "Q4_K_M"), params, budget, "auto")
    assert cell.verdict == fit.verdict and cell.ram_bytes == fit.prediction.ram_bytes
    assert fit.max_ctx is not None and cell.max_ctx <= fit.max_ctx  # the ladder's coarser steps never say more
    assert cell.usable
    slow = ladder_cell(model, "Q4_K_M", budget, Devices(PROFILE), params, floor_tps=cell.tg_tps + 1)
    assert slow.fits and not slow.usable


def test_too_large_and_gpu_cells_on_targets() -> None:
    model = ladder_model(_family("Llama 3.3 70B"))
    small = ladder_cell(model, "Q4_K_M", find_target("laptop-8gb-cpu").budget(), Devices(PROFILE), LoadParams())
    assert small.verdict == "too_large" and small.max_ctx == 0
    qwen = ladder_model(_family("Qwen2.5 7B"))
    gpu = Devices(PROFILE, SpeedProfile(bw_effective=600e9, t_fixed=0.001, source="estimate"))
    on_gpu = ladder_cell(qwen, "Q4_K_M", find_target("nvidia-24gb").budget(), gpu, LoadParams())
    assert on_gpu.verdict == "fits_gpu" and on_gpu.vram_bytes > 0 and on_gpu.confidence == "estimate"


BOUNDARY_CELLS = {  # target: (model, quant) whose largest context is at, just below, above or far from 4096
    "laptop-8gb-cpu": [("Phi-3.5 mini", "Q3_K_M"), ("Phi-3.5 mini", "Q4_K_M"), ("SmolLM2 135M", "Q8_0"),
                       ("Llama 3.3 70B", "Q2_K")],
    "nvidia-12gb-32gb": [("OLMoE 1B-7B", "Q4_K_M"), ("Qwen2.5 72B", "Q3_K_M"), ("Qwen2.5 7B", "Q8_0")],
}
# The largest contexts the boundary cells must still include. Since GPU splits are sized by ggml's scheduler (op
# offload included), no catalogue cell on the GPU target stops just below 4096 (Qwen2.5 72B at Q3_K_M did, at 2048).
BOUNDARY_FOUND = {"laptop-8gb-cpu": (4096, 2048), "nvidia-12gb-32gb": (4096,)}


@pytest.mark.parametrize("target", sorted(BOUNDARY_CELLS))
def test_the_largest_context_search_started_from_the_cells_own_verdict_finds_the_same_context(target: str) -> None:
    """The cell passes its own verdict at 4096 to skip one check; the answer must be the unseeded search's,
    on cells whose largest context is exactly 4096, just below it, far above it and none."""
    budget, params = find_target(target).budget(), LoadParams(n_ctx=4096)
    found = []
    for name, quant in BOUNDARY_CELLS[target]:
        model = ladder_model(_family(name))
        header = virtual_header(model.shape, quant)
        trained = model.shape.context_length
        fits = check_fit(header, params, budget, "auto", with_max_ctx=False).fits
        seeded = ladder_max_ctx(header, params, budget, trained, known_fit=fits)
        assert seeded == ladder_max_ctx(header, params, budget, trained), (name, quant)
        found.append(seeded)
    assert set(BOUNDARY_FOUND[target]) <= set(found) and max(found) > 4096  # still boundary cases


@pytest.mark.parametrize("target", sorted(BOUNDARY_CELLS))
def test_a_guessed_largest_context_changes_which_contexts_are_checked_never_the_answer(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ladder passes each quant's largest context as the guess for the next quant's (``near``). Any guess,
    right, wrong, 0 or off the steps, must give the unguided search's answer; the right one settles it in two
    checks at most, where the unguided search needed more on these cells."""
    from sizewise.core.ladder import cells

    budget, params = find_target(target).budget(), LoadParams(n_ctx=4096)
    checks = [0]
    real_will_fit = cells.will_fit

    def counted(*args: object, **kwargs: object) -> bool:
        checks[0] += 1
        return real_will_fit(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cells, "will_fit", counted)
    unguided_checks = guided_checks = 0
    for name, quant in BOUNDARY_CELLS[target]:
        model = ladder_model(_family(name))
        header = virtual_header(model.shape, quant)
        trained = model.shape.context_length
        fits = check_fit(header, params, budget, "auto", with_max_ctx=False).fits
        checks[0] = 0
        answer = ladder_max_ctx(header, params, budget, trained, known_fit=fits)
        unguided_checks += checks[0]
        steps = [c for c in (2**k for k in range(9, 18)) if c < trained] + [trained]
        for near in [0, 3000, *steps]:
            for known in (None, fits):
                got = ladder_max_ctx(header, params, budget, trained, known_fit=known, near=near)
                assert got == answer, (name, quant, near, known)
        checks[0] = 0
        assert ladder_max_ctx(header, params, budget, trained, known_fit=fits, near=answer) == answer
        assert checks[0] <= 2, (name, quant)
        guided_checks += checks[0]
    assert guided_checks < unguided_checks


def test_the_whole_catalogue_is_laid_out_and_uncovered_architectures_are_named() -> None:
    rows = ladder_rows()
    names = {m.name for m in rows.models}
    assert len(rows.models) == len(load_catalogue()) and rows.skipped == [] and rows.note() == ""
    assert {"Qwen3 30B-A3B", "OLMoE 1B-7B Instruct", "gpt-oss 20B"} <= names  # mixtures of experts
    params = [m.params for m in rows.models]
    assert params == sorted(params)
    uncovered = replace(_family("OLMoE"), arch="mamba", name="Some Mamba")
    other = ladder_rows([_family("Qwen3 4B"), uncovered])
    assert [m.name for m in other.models] == ["Qwen3 4B"] and other.skipped == ["Some Mamba (mamba)"]
    assert "Some Mamba (mamba)" in other.note()


def test_the_moe_rows_sizes_are_their_published_files() -> None:
    """OLMoE at llama.cpp's own rules; gpt-oss as every published file has it, experts in MXFP4 at each type
    (unsloth's gpt-oss-20b-GGUF lists 11.6 GB at Q4_K_M, 12.1 GB at Q8_0, 13.8 GB at F16: figures recalled from
    its file list, not checked offline here; ggml-org's MXFP4 file is 12.1 GB)."""
    olmoe, oss = ladder_model(_family("OLMoE")), ladder_model(_family("gpt-oss"))
    assert (olmoe.params, olmoe.active_params) == (6_919_161_856, 1_282_017_280)
    assert (oss.params, oss.active_params) == (20_914_757_184, 4_187_440_704)
    gb = {q: round(virtual_header(oss.shape, q).file_size / 1e9, 1) for q in ("Q4_K_M", "Q8_0", "F16")}
    assert gb == {"Q4_K_M": 11.6, "Q8_0": 12.1, "F16": 13.8}
    experts = {t.ggml_type for t in virtual_header(oss.shape, "Q2_K").tensors if "_exps.weight" in t.name}
    assert experts == {GGMLType.MXFP4}
    q4 = virtual_header(olmoe.shape, "Q4_K_M")
    assert q4.data_bytes == 4_211_730_432
    assert {t.ggml_type for t in q4.tensors if "exps" in t.name} == {GGMLType.Q4_K, GGMLType.Q6_K}
    budget = Budget(64 * GiB, 0, "big", Backend(repack=False))
    cells = build_ladder([olmoe, oss], budget, Devices(PROFILE), LoadParams(n_ctx=2048), quants=("Q4_K_M",))
    assert all(c.verdict == "fits_cpu" and c.max_ctx > 0 and c.tg_tps > 0 for c in cells)


def test_the_ladder_for_a_cpu_target_is_computed_in_seconds() -> None:
    """Timing is noisy here; the bound is loose on purpose (the issue's goal of 1 s is not met yet)."""
    t0 = time.perf_counter()
    cells = build_ladder(ladder_rows().models, find_target("laptop-16gb").budget(), Devices(PROFILE))
    elapsed = time.perf_counter() - t0
    assert len(cells) >= 30 * len(LADDER_QUANTS) - 2 * len(LADDER_QUANTS)
    assert elapsed < 60, elapsed


def test_a_vulkan_build_ladder_estimates_the_split_and_fit_replays_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a Vulkan build, fit replays llama.cpp's scheduler node by node (exact there, 'measured'); the ladder's
    catalogue cells take the per-device estimate instead, labelled so (the replay made the whole ladder take 28 s on
    lavapipe). Counted, not timed: no scheduler replay while the ladder is built."""
    from sizewise.core.fit.offload import scheduler
    from sizewise.core.fit.targets import custom_budget
    from sizewise.core.ladder.cells import quick_split

    vulkan = Backend(gpu=True, repack=True, gpu_backend="vulkan", gpu_max_tensor_bytes=1 << 27)
    budget = replace(custom_budget(16, 2), backend=vulkan)
    model = ladder_model(_family("Qwen2.5 0.5B"))
    header, params = virtual_header(model.shape, "Q4_K_M"), LoadParams(n_ctx=4096, n_gpu_layers=10)
    exact = predict(header, params, vulkan)
    quick = predict(header, params, quick_split(budget).backend)
    assert exact.confidence == "measured" and quick.confidence == "estimate"
    assert "quick per-device estimate" in quick.confidence_reason
    assert quick.weights_gpu == exact.weights_gpu and quick.kv_gpu == exact.kv_gpu  # only the compute buffers differ
    replays = []
    real = scheduler.split_compute_bytes
    monkeypatch.setattr(scheduler, "split_compute_bytes", lambda *a: replays.append(1) or real(*a))
    cells = build_ladder([model, ladder_model(_family("Qwen3 30B-A3B"))], budget, Devices(PROFILE))
    assert not replays and {c.verdict for c in cells} >= {"fits_gpu", "fits_partial"}
    check_fit(header, params, budget, "auto")
    assert replays  # a single file's check still replays it
    assert quick_split(find_target("laptop-16gb").budget()) == find_target("laptop-16gb").budget()  # no GPU: as is


def test_will_fit_answers_as_check_fit_does() -> None:
    """``will_fit`` (the largest-context searches' question) skips simulating the CPU compute buffer where it cannot
    change the answer; it must still be ``check_fit(...).fits`` on every kind of budget and placement, and each of
    its shortcuts (RAM without the buffer too much, RAM with the one-row graph enough) must be taken here."""
    from sizewise.core.fit.memory_model import predict_ram_bound
    from sizewise.core.fit.targets import custom_budget
    from sizewise.core.fit.verdict import margin_for, will_fit

    budgets = [custom_budget(32, 8), find_target("apple-m-16gb").budget(), find_target("laptop-8gb-cpu").budget()]
    names = ("SmolLM2 360M", "Gemma 3 4B", "Qwen3 30B-A3B", "Qwen2.5 14B")
    answers, floor_too_much, upper_enough = set(), 0, 0
    for name in names:
        model = ladder_model(_family(name))
        for quant in ("Q4_K_M", "F16"):
            header = virtual_header(model.shape, quant)
            for ctx in (4096, 32768, 131072):
                params = LoadParams(n_ctx=ctx)
                for budget in budgets:
                    for layers in ("auto", 12, -1):
                        got = will_fit(header, params, budget, layers)
                        assert got == check_fit(header, params, budget, layers, with_max_ctx=False).fits, (
                            name, quant, ctx, budget.source, layers
                        )
                        answers.add(got)
                    if budget.backend.gpu and not budget.unified:
                        ngl = check_fit(header, params, budget, "auto", with_max_ctx=False).gpu_layers
                        lp = replace(params, n_gpu_layers=ngl)
                        floor = predict_ram_bound(header, lp, budget.backend)
                        upper = predict_ram_bound(header, lp, budget.backend, upper=True)
                        floor_too_much += floor + margin_for(floor) > budget.ram_bytes
                        upper_enough += upper + margin_for(upper) <= budget.ram_bytes
    assert answers == {True, False} and floor_too_much and upper_enough
