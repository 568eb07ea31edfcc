"""Several models at once: needs add up, the margin is held back once, VRAM and unified memory too."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sizewise.core.fit.memory_model import Backend, predict
from sizewise.core.fit.together import TogetherFit, fit_together
from sizewise.core.fit.verdict import Budget, check_fit, margin_for
from sizewise.core.gguf.header import read_header
from sizewise.core.sampling import LoadParams

MiB, GiB = 1 << 20, 1 << 30
CPU = Backend(repack=True, cpu_features=frozenset({"avx2"}))
GPU = Backend(gpu=True, repack=False, cpu_features=frozenset({"avx2"}))
LOAD = LoadParams(n_ctx=512)


def test_ram_needs_add_up_with_one_margin(smollm2_path: Path, gemma_path: Path) -> None:
    hs = [read_header(smollm2_path), read_header(gemma_path)]
    needs = [predict(h, LOAD, CPU).ram_bytes for h in hs]
    total = sum(needs)
    exact = total + margin_for(total)
    # N separate margins would ask for more: the 64 MiB floor alone is paid twice
    assert exact < sum(n + margin_for(n) for n in needs)

    def together(ram: int) -> TogetherFit:
        budget = Budget(ram_bytes=ram, vram_bytes=0, source="test", backend=CPU)
        return fit_together([check_fit(h, LOAD, budget, 0, with_max_ctx=False) for h in hs])

    ok = together(exact)
    assert ok.fits and ok.n == 2
    assert ok.ram_need == total and ok.ram_margin == margin_for(total) and ok.ram_required == exact
    assert ok.words().startswith("All 2 fit in memory at once (")
    assert ok.words().endswith("with margin): loading them together.")
    short = together(exact - 1)
    assert not short.fits and not short.alone_too_large
    assert short.words().startswith("Together they need ") and "one after another" in short.words()
    # too small for the larger one alone: said as such
    alone = together(max(needs) + margin_for(max(needs)) - 1)
    assert not alone.fits and alone.alone_too_large == (1,)
    assert "Run 2 does not fit even on its own" in alone.words()
    d = ok.to_dict()
    assert d["fits"] and d["required"]["ram_bytes"] == exact and d["budget"]["ram_bytes"] == exact


def test_vram_adds_up_when_layers_are_offloaded(smollm2_path: Path, gemma_path: Path) -> None:
    hs = [read_header(smollm2_path), read_header(gemma_path)]

    def fits(budget: Budget) -> TogetherFit:
        return fit_together([check_fit(h, LOAD, budget, -1, with_max_ctx=False) for h in hs])

    roomy = Budget(ram_bytes=64 * GiB, vram_bytes=64 * GiB, source="test", backend=GPU)
    preds = [check_fit(h, LOAD, roomy, -1, with_max_ctx=False).prediction for h in hs]
    vram = sum(p.vram_bytes for p in preds)
    ram = sum(p.ram_bytes for p in preds)
    assert all(p.vram_bytes > 0 for p in preds)
    vram_req, ram_req = vram + margin_for(vram), ram + margin_for(ram)

    ok = fits(replace(roomy, vram_bytes=vram_req))
    assert ok.fits and ok.vram_need == vram and ok.vram_required == vram_req
    assert "GiB VRAM" in ok.words()
    short = fits(replace(roomy, vram_bytes=vram_req - 1))
    assert not short.fits and short.ram_ok and not short.vram_ok
    assert "of VRAM" in short.words()

    # unified memory: the GPU's share comes out of the same RAM
    unified = Budget(ram_bytes=ram_req + vram_req, vram_bytes=vram_req, source="test", backend=GPU, unified=True)
    assert fits(unified).fits
    assert not fits(replace(unified, ram_bytes=ram_req + vram_req - 1)).fits


def test_one_entry_and_bad_input(smollm2_path: Path) -> None:
    h = read_header(smollm2_path)
    budget = Budget(ram_bytes=8 * GiB, vram_bytes=0, source="test", backend=CPU)
    one = fit_together([check_fit(h, LOAD, budget, 0, with_max_ctx=False)])
    assert one.fits and one.words().startswith("Fits in memory (") and "one load" in one.words()
    with pytest.raises(ValueError):
        fit_together([])
    other = replace(budget, ram_bytes=4 * GiB)
    with pytest.raises(ValueError, match="same budget"):
        fit_together([check_fit(h, LOAD, budget, 0, with_max_ctx=False), check_fit(h, LOAD, other, 0)])
