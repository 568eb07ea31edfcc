"""The "auto" GPU offload: the most layers whose VRAM need fits, found while asking for few allocator simulations.

The search (verdict._auto_layers) starts where the weights and KV cache plus the compute buffer at the most layers
that could fit say the answer is, instead of halving from the middle; it must still find what a layer-by-layer
scan finds, and the ladder's searches lean on that for their speed (tests/benchmarks/test_ladder_speed.py).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from sizewise.core.fit import verdict
from sizewise.core.fit.memory_model import Backend, layer_count, predict_ram_bound, predict_vram
from sizewise.core.fit.targets import custom_budget, find_target
from sizewise.core.fit.verdict import Budget, _vram_ok, check_fit, margin_for, will_fit
from sizewise.core.hub.catalogue import load_catalogue
from sizewise.core.ladder.catalogue_rows import ladder_model
from sizewise.core.ladder.cells import quick_split
from sizewise.core.ladder.virtual_header import virtual_header
from sizewise.core.sampling import LoadParams

# a sliding-window pattern of six (Gemma 3: every layer count its own graph phase), dense GQA, a mixture of experts
# with MXFP4 experts and biases, a 64-layer dense model
MODELS = ("Gemma 3 12B", "Qwen2.5 14B", "gpt-oss 20B", "Qwen3 32B")
VULKAN = Backend(gpu=True, repack=True, gpu_backend="vulkan", gpu_max_tensor_bytes=1 << 27)


def _budgets() -> list[Budget]:
    return [
        quick_split(find_target("nvidia-12gb-32gb").budget()),
        quick_split(find_target("apple-m-16gb").budget()),  # unified memory
        custom_budget(32, 8),
        replace(custom_budget(16, 2), backend=replace(VULKAN, exact_gpu_split=False)),  # lavapipe's tensor limit
    ]


def _family(name: str):  # type: ignore[no-untyped-def]
    return next(f for f in load_catalogue() if f.name.startswith(name))


def _count_compute_asks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A one-item list counting the VRAM predictions the verdict asks for with their compute buffer."""
    asked = [0]
    real_predict_vram = verdict.predict_vram

    def counted(*args: object, **kwargs: object) -> int:
        asked[0] += bool(kwargs.get("with_compute", True))
        return real_predict_vram(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(verdict, "predict_vram", counted)
    return asked


def _halving_asks(ok: list[bool], cheap_ok: list[bool]) -> int:
    """How many layer counts the search before this one (halving over 0 … n_off) asked with a compute buffer."""
    n_off = len(ok) - 1
    asks = 0

    def ask(n: int) -> bool:
        nonlocal asks
        if not cheap_ok[n]:
            return False
        asks += 1
        return ok[n]

    if ask(n_off):
        return asks
    lo, hi = 0, n_off
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ask(mid):
            lo = mid
        else:
            hi = mid
    return asks


def test_auto_offload_is_the_most_layers_a_scan_finds_and_asks_fewer_layer_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = _count_compute_asks(monkeypatch)
    new_asks = old_asks = cases = partial = 0
    for name in MODELS:
        model = ladder_model(_family(name))
        for quant in ("Q4_K_M", "Q8_0"):
            header = virtual_header(model.shape, quant)
            n_off = layer_count(header) + 1
            for ctx in (4096, 32768):
                for budget in _budgets():
                    params = LoadParams(n_ctx=ctx)
                    needs = [
                        predict_vram(header, replace(params, n_gpu_layers=n), budget.backend) for n in range(n_off + 1)
                    ]
                    cheap = [
                        predict_vram(header, replace(params, n_gpu_layers=n), budget.backend, with_compute=False)
                        for n in range(n_off + 1)
                    ]
                    ok = [_vram_ok(need, budget) for need in needs]
                    expected = max((n for n in range(1, n_off + 1) if ok[n]), default=0)
                    # what the search assumes: the need grows with every layer, so what fits is 0 … expected
                    assert ok[: expected + 1] == [True] * (expected + 1) or expected == 0, (name, quant, ctx)
                    assert not any(ok[expected + 1 :]), (name, quant, ctx, budget.source)
                    asked[0] = 0
                    got = check_fit(header, params, budget, "auto", with_max_ctx=False).gpu_layers
                    assert got == expected, (name, quant, ctx, budget.source)
                    new_asks += asked[0] - 1  # less check_fit's own prediction at the chosen count
                    old_asks += _halving_asks(ok, [_vram_ok(c, budget) for c in cheap])
                    cases += 1
                    partial += 0 < expected < n_off
    print(f"\n{cases} searches ({partial} partial offloads): {new_asks} layer counts asked, halving asked {old_asks}")
    assert partial >= cases // 4  # the searches that matter: neither every layer nor none
    assert new_asks <= 0.6 * old_asks


def test_a_context_too_large_for_ram_at_any_split_is_refused_without_searching(monkeypatch: pytest.MonkeyPatch) -> None:
    """``will_fit`` refuses a context whose RAM is too much even at the most layers "auto" could offload before it
    searches: no layer count is asked with its compute buffer, and the answer is check_fit's."""
    budget = custom_budget(16, 4)
    header = virtual_header(ladder_model(_family("Qwen2.5 14B")).shape, "Q4_K_M")
    params = LoadParams(n_ctx=131072)
    assert not check_fit(header, params, budget, "auto", with_max_ctx=False).fits
    most = verdict._weights_and_kv_top(header, params, budget, True, layer_count(header) + 1)
    floor = predict_ram_bound(header, replace(params, n_gpu_layers=most), budget.backend)
    assert floor + margin_for(floor) > budget.ram_bytes
    asked = _count_compute_asks(monkeypatch)
    assert not will_fit(header, params, budget, "auto")
    assert asked[0] == 0
    assert will_fit(header, LoadParams(n_ctx=4096), budget, "auto") and asked[0] > 0  # a context that fits: searched
