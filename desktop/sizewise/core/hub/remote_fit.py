"""Fit verdicts for files on the Hub, before anything is downloaded.

Why here and not in core/hub/browse.py: browsing must work without the memory model (and without reading any
header), so ``HubBrowser`` takes a plain ``FitCheck`` callable; this module builds the real one. It reads
each file's header by HTTP ranges (core/hub/remote_header.py — a few MB, never the weights), predicts memory
with core/fit/verdict.py for a budget (this machine or a named target) and turns the result into the short
verdict the Discover view and ``sizewise pull --list`` show. Split models are judged on all their parts:
the first part holds the metadata, every part holds some tensors, so the tensor tables are joined.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING

from sizewise.core.hub.browse import FitCheck, FitVerdict, ModelFile, RepoListing

if TYPE_CHECKING:
    from sizewise.core.fit.verdict import Budget, FitResult
    from sizewise.core.gguf.header import GGUFHeader
    from sizewise.core.sampling import LoadParams

TIGHT_FRACTION = 0.8  # "tight": fits, but the prediction plus margin takes more than this share of the budget


def verdict_from(result: FitResult) -> FitVerdict:
    """core/fit/verdict.py's four verdicts in the browser's words; the sentence comes from FitResult.words()."""
    b = result.budget
    need = result.ram_required if not b.unified else result.ram_required + result.vram_required
    if not result.fits:
        if b.vram_bytes and result.gpu_layers and result.vram_required > b.vram_bytes:
            return FitVerdict("too big", result.words(), result.vram_required, b.vram_bytes)
        return FitVerdict("too big", result.words(), result.ram_required, b.ram_bytes)
    tight = b.ram_bytes > 0 and need > TIGHT_FRACTION * b.ram_bytes
    return FitVerdict("tight" if tight else "fits", result.words(), need, b.ram_bytes)


def merged_header(headers: list[GGUFHeader]) -> GGUFHeader:
    """One header for a split model: the first part's metadata with every part's tensors."""
    first = headers[0]
    if len(headers) == 1:
        return first
    return replace(
        first,
        tensors=[t for h in headers for t in h.tensors],
        file_size=sum(h.file_size for h in headers),
    )


def remote_fit_check(budget: Budget, params: LoadParams | None = None) -> FitCheck:
    """A FitCheck for HubBrowser: header-only reads, predictions for ``params`` (default settings)."""
    from sizewise.core.fit.verdict import check_fit
    from sizewise.core.hub.remote_header import read_remote_header
    from sizewise.core.sampling import LoadParams

    load = params or LoadParams()
    headers: dict[tuple[str, str, str], GGUFHeader] = {}
    lock = threading.Lock()

    def header_of(repo_id: str, revision: str, path: str) -> GGUFHeader:
        key = (repo_id, revision, path)
        with lock:
            hit = headers.get(key)
        if hit is None:
            hit = read_remote_header(repo_id, path, revision).header
            with lock:
                headers[key] = hit
        return hit

    def check(listing: RepoListing, model: ModelFile) -> FitVerdict | None:
        revision = listing.commit or listing.revision
        parts = [header_of(listing.repo_id, revision, p.path) for p in model.parts]
        return verdict_from(check_fit(merged_header(parts), load, budget, "auto", with_max_ctx=False))

    return check


def machine_fit_check(params: LoadParams | None = None) -> FitCheck:
    """Against this machine: RAM available now and the first GPU's free memory (core/fit/hardware.py)."""
    from sizewise.core.fit.hardware import machine_budget, probe_hardware

    return remote_fit_check(machine_budget(probe_hardware()), params)


def target_fit_check(target: str, params: LoadParams | None = None) -> FitCheck:
    """Against a named deployment target from resources/targets.json."""
    from sizewise.core.fit.targets import find_target

    return remote_fit_check(find_target(target).budget(), params)
