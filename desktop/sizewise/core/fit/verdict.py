"""Will it fit? Verdicts against this machine or a deployment target, with a safety margin people can see.

``check_fit`` turns a memory prediction and a budget into one of four verdicts:

* ``fits_gpu`` — every layer (and the output layer) offloaded, within VRAM and RAM;
* ``fits_partial`` — N of M layers offloaded (M = blocks + the output layer, llama.cpp's count);
* ``fits_cpu`` — nothing offloaded, within RAM;
* ``too_large`` — no placement fits.

The margin is held back on top of the prediction (5 %, at least 64 MiB), so "fits" means "fits with
room to spare", never "fits exactly". ``gpu_layers="auto"`` picks the most layers whose VRAM need fits
(the same rule llama.cpp users apply by hand); ``max_context`` finds the longest context that still
fits. Predictions are pure arithmetic on the header, so these searches run without touching the file.
``will_fit`` is ``check_fit(...).fits`` alone, for such searches: it skips the CPU compute buffer's allocator
simulations wherever bounds on RAM already decide.

``compare`` lines up llama.cpp's measured buffers with the prediction, per component, in percent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from sizewise.core.fit.llama_log import MeasuredBuffers
from sizewise.core.fit.memory_model import (
    Backend,
    MemoryPrediction,
    layer_count,
    predict,
    predict_ram_bound,
    predict_vram,
)
from sizewise.core.gguf.header import GGUFHeader
from sizewise.core.sampling import LoadParams

MiB = 1 << 20
GiB = 1 << 30
MARGIN_FRACTION = 0.05
MARGIN_MIN_BYTES = 64 * MiB
CTX_STEP = 256  # llama.cpp pads the KV cache to 256 cells, so finer steps change nothing

Verdict = Literal["fits_gpu", "fits_partial", "fits_cpu", "too_large"]
VERDICTS: tuple[Verdict, ...] = ("fits_gpu", "fits_partial", "fits_cpu", "too_large")


@dataclass(frozen=True)
class Budget:
    """Memory a model may use, and what the hardware can do with it."""

    ram_bytes: int
    vram_bytes: int
    source: str
    backend: Backend = field(default_factory=Backend)
    unified: bool = False  # GPU memory is part of RAM (Apple silicon): both needs come out of ram_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "ram_bytes": self.ram_bytes,
            "vram_bytes": self.vram_bytes,
            "source": self.source,
            "unified": self.unified,
            "gpu": self.backend.gpu,
        }


def margin_for(need: int) -> int:
    return 0 if need <= 0 else max(int(need * MARGIN_FRACTION), MARGIN_MIN_BYTES)


@dataclass(frozen=True)
class FitResult:
    verdict: Verdict
    gpu_layers: int  # layers offloaded in the chosen placement (0 … n_offloadable)
    n_offloadable: int  # blocks + output layer
    requested_gpu_layers: int | str
    prediction: MemoryPrediction
    budget: Budget
    ram_margin: int
    vram_margin: int
    max_ctx: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def ram_required(self) -> int:
        return self.prediction.ram_bytes + self.ram_margin

    @property
    def vram_required(self) -> int:
        return self.prediction.vram_bytes + self.vram_margin

    @property
    def fits(self) -> bool:
        return self.verdict != "too_large"

    def words(self) -> str:
        """The verdict as one sentence for a person."""
        p, b = self.prediction, self.budget
        ram = f"{_gib(p.ram_bytes)} of RAM (plus a {_mib(self.ram_margin)} safety margin) of {_gib(b.ram_bytes)}"
        if self.verdict == "fits_gpu":
            return (
                f"Fits on the GPU: all {self.n_offloadable} layers offloaded, {_gib(p.vram_bytes)} of VRAM and {ram}."
            )
        if self.verdict == "fits_partial":
            return (
                f"Fits partly on the GPU: {self.gpu_layers} of {self.n_offloadable} layers offloaded "
                f"({_gib(p.vram_bytes)} of VRAM), the rest on the CPU with {ram}."
            )
        if self.verdict == "fits_cpu":
            return f"Fits on the CPU: needs {ram}."
        if b.vram_bytes and self.vram_required > b.vram_bytes and self.gpu_layers:
            return f"Too large: needs {_gib(self.vram_required)} of VRAM but {_gib(b.vram_bytes)} are available."
        return (
            f"Too large: needs {_gib(self.ram_required)} of RAM (safety margin included) "
            f"but {_gib(b.ram_bytes)} are available."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "verdict_text": self.words(),
            "gpu_layers": self.gpu_layers,
            "n_offloadable_layers": self.n_offloadable,
            "max_ctx": self.max_ctx,
            "safety_margin": {"ram_bytes": self.ram_margin, "vram_bytes": self.vram_margin},
            "required": {"ram_bytes": self.ram_required, "vram_bytes": self.vram_required},
            "notes": list(self.notes),
        }


def _gib(n: int) -> str:
    return f"{n / GiB:.2f} GiB"


def _size(n: int) -> str:
    """GiB for sizes a person reads in GiB, MiB below a tenth of one (a small GPU's budget is not '0.00 GiB')."""
    return _gib(n) if n >= GiB // 10 else _mib(n)


def _mib(n: int) -> str:
    return f"{n / MiB:.0f} MiB"


def _fits(pred: MemoryPrediction, budget: Budget) -> tuple[bool, int, int]:
    ram_margin = margin_for(pred.ram_bytes)
    vram_margin = margin_for(pred.vram_bytes)
    ram_need = pred.ram_bytes + ram_margin
    vram_need = pred.vram_bytes + vram_margin
    if budget.unified:
        ok = ram_need + vram_need <= budget.ram_bytes and vram_need <= max(budget.vram_bytes, 0)
        ok = ok or (pred.vram_bytes == 0 and ram_need <= budget.ram_bytes)
    else:
        ok = ram_need <= budget.ram_bytes and (pred.vram_bytes == 0 or vram_need <= budget.vram_bytes)
    return ok, ram_margin, vram_margin


def _vram_ok(vram_bytes: int, budget: Budget) -> bool:
    if vram_bytes == 0:
        return True
    return vram_bytes + margin_for(vram_bytes) <= budget.vram_bytes


def check_fit(
    header: GGUFHeader,
    params: LoadParams,
    budget: Budget,
    gpu_layers: int | str = "auto",
    *,
    swa_full: bool = True,
    baseline_bytes: int | None = None,
    with_max_ctx: bool = True,
) -> FitResult:
    """The verdict for one model, settings and budget; ``gpu_layers`` is a number (-1 = all) or "auto"."""
    notes: list[str] = []
    n_off = layer_count(header) + 1
    ngl = _placement(header, params, budget, gpu_layers, swa_full, n_off, notes)
    pred = predict(
        header, replace(params, n_gpu_layers=ngl), budget.backend, swa_full=swa_full, baseline_bytes=baseline_bytes
    )
    ok, ram_margin, vram_margin = _fits(pred, budget)
    if not ngl and pred.vram_bytes and not _vram_ok(pred.vram_bytes, budget):
        # llama.cpp's op offload: a GPU build runs a prompt batch's matrix multiplications on the GPU even with
        # every layer on the CPU, so 0 layers is no way around a full GPU
        notes.append(
            f"even with no layer offloaded, llama.cpp runs prompt batches on the GPU (op offload), which needs "
            f"{_size(pred.vram_bytes + margin_for(pred.vram_bytes))} of GPU memory with margin"
        )
    verdict: Verdict
    if not ok:
        verdict = "too_large"
    elif ngl >= n_off:
        verdict = "fits_gpu"
    elif ngl > 0:
        verdict = "fits_partial"
    else:
        verdict = "fits_cpu"
    if pred.confidence != "measured":
        notes.append(f"prediction confidence: {pred.confidence} — {pred.confidence_reason}")
    result = FitResult(
        verdict=verdict,
        gpu_layers=ngl,
        n_offloadable=n_off,
        requested_gpu_layers=gpu_layers,
        prediction=pred,
        budget=budget,
        ram_margin=ram_margin,
        vram_margin=vram_margin,
        notes=tuple(notes + list(pred.notes)),
    )
    if with_max_ctx:
        result = replace(result, max_ctx=max_context(header, params, budget, gpu_layers, swa_full=swa_full))
    return result


def _placement(
    header: GGUFHeader,
    params: LoadParams,
    budget: Budget,
    gpu_layers: int | str,
    swa_full: bool,
    n_off: int,
    notes: list[str] | None,
    top: int | None = None,
) -> int:
    """The layers ``check_fit`` offloads: "auto"'s search, or the number asked for as llama.cpp applies it.

    ``notes``: where to say in words why no layer goes to the GPU (None: not wanted, which spares "auto" the
    prediction for one layer that its words quote). ``top``: ``_weights_and_kv_top``, when the caller has it.
    """
    if gpu_layers == "auto":
        if not budget.backend.gpu:
            return 0
        if top is None:
            top = _weights_and_kv_top(header, params, budget, swa_full, n_off)

        def vram_at(ngl: int, with_compute: bool = True) -> int:
            lp = replace(params, n_gpu_layers=ngl)
            return predict_vram(header, lp, budget.backend, swa_full=swa_full, with_compute=with_compute)

        ngl = _auto_layers(vram_at, top, budget)
        if ngl == 0 and notes is not None:  # said in words: a GPU that takes nothing is not a silent 0
            one = predict_vram(header, replace(params, n_gpu_layers=1), budget.backend, swa_full=swa_full)
            notes.append(
                f"the GPU memory budget ({_size(budget.vram_bytes)}) is too small for even one layer (one offloaded "
                f"layer needs {_size(one + margin_for(one))} with its compute buffer and margin), so every layer "
                "stays on the CPU"
            )
        return ngl
    ngl = int(gpu_layers)
    ngl = n_off if ngl < 0 else min(ngl, n_off)
    if ngl and not budget.backend.gpu:
        if notes is not None:
            notes.append("there is no GPU backend here, so llama.cpp keeps every layer on the CPU")
        ngl = 0
    return ngl


def will_fit(
    header: GGUFHeader,
    params: LoadParams,
    budget: Budget,
    gpu_layers: int | str = "auto",
    *,
    swa_full: bool = True,
    baseline_bytes: int | None = None,
) -> bool:
    """``check_fit(...).fits``, for the searches that need nothing else (the largest context, the ladder's).

    The same placement and prediction, but the CPU compute buffer is simulated only where it decides the
    answer (one simulation of llama.cpp's graph allocator costs more than all the rest of a prediction):

    * RAM without any compute buffer (``predict_ram_bound``) already over the budget, margin included: too
      large, whatever the buffer adds (the need only grows with it, and the margin with the need; a unified
      budget compares RAM and VRAM needs together, so there too);
    * with "auto" and VRAM of its own: RAM with the one-row graph (``predict_ram_bound(upper=True)``, never
      less than the need ``_fits`` compares) within the budget fits — the VRAM side of ``_fits`` is the very
      check (``_vram_ok`` of the same ``predict_vram``) the search made when it chose these layers; with no
      layer, the GPU still holds op offload's compute buffer on a GPU build, which is checked here;
    * otherwise the whole prediction, as ``check_fit`` makes it.
    """
    n_off = layer_count(header) + 1
    backend = budget.backend
    top = None
    if gpu_layers == "auto" and backend.gpu:
        # RAM over the budget even with as many layers offloaded as "auto" could choose: too large, and the
        # search's allocator simulations are not needed to say so (the largest-context searches ask this often).
        # Exact: "auto" offloads at most ``top`` layers, and RAM without the compute buffer only shrinks as
        # layers move to the GPU, so RAM at ``top`` is a lower bound of RAM at whatever "auto" chooses.
        top = _weights_and_kv_top(header, params, budget, swa_full, n_off)
        floor = predict_ram_bound(
            header, replace(params, n_gpu_layers=top), backend, swa_full=swa_full, baseline_bytes=baseline_bytes
        )
        if floor + margin_for(floor) > budget.ram_bytes:
            return False
    ngl = _placement(header, params, budget, gpu_layers, swa_full, n_off, None, top)
    lp = replace(params, n_gpu_layers=ngl)
    floor = predict_ram_bound(header, lp, backend, swa_full=swa_full, baseline_bytes=baseline_bytes)
    if floor + margin_for(floor) > budget.ram_bytes:
        return False
    vram_checked = ngl > 0 or not backend.gpu or _vram_ok(predict_vram(header, lp, backend, swa_full=swa_full), budget)
    if gpu_layers == "auto" and not budget.unified and vram_checked:
        upper = predict_ram_bound(header, lp, backend, swa_full=swa_full, baseline_bytes=baseline_bytes, upper=True)
        if upper + margin_for(upper) <= budget.ram_bytes:
            return True
    return _fits(predict(header, lp, backend, swa_full=swa_full, baseline_bytes=baseline_bytes), budget)[0]


def _weights_and_kv_top(header: GGUFHeader, params: LoadParams, budget: Budget, swa_full: bool, n_off: int) -> int:
    """Most layers whose weights and KV cache alone fit in VRAM: "auto" offloads no more, and it costs no
    allocator simulation to find (the compute buffer only adds, and the margin only grows with the need)."""

    def weights_and_kv_fit(ngl: int) -> bool:
        lp = replace(params, n_gpu_layers=ngl)
        return _vram_ok(predict_vram(header, lp, budget.backend, swa_full=swa_full, with_compute=False), budget)

    return _most_fitting(weights_and_kv_fit, 0, n_off + 1)


def _most_fitting(ok: Callable[[int], bool], lo: int, hi: int) -> int:
    """The largest n in [lo, hi) with ok(n), for ``ok`` true up to some n and false after it; lo if none (lo is
    taken as fitting). Halving, from the top end down."""
    if hi - 1 > lo and ok(hi - 1):
        return hi - 1
    hi -= 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


def _auto_layers(vram_at: Callable[..., int], top: int, budget: Budget) -> int:
    """Most layers, ``top`` at most, whose VRAM need fits (VRAM need grows with every offloaded layer).

    ``vram_at(ngl, with_compute=True)``: the VRAM need with that many layers offloaded; without the compute
    buffer it costs no allocator simulation, with it one of the GPU graph of those layers (each layer count its
    own graph). So the search asks for the compute buffer at as few layer counts as it can: at ``top``, then
    where the weights and KV cache plus ``top``'s compute buffer fit (the buffer changes little with the layer
    count, so this is the answer or next to it), then that count's neighbour, widening in doubling steps only
    when the guess was off. Halving from the middle asked six to eight layer counts where this asks two or three.
    """
    # lo is taken as fitting: with 0 layers only op offload's compute buffer is on the GPU, and check_fit says
    # so when even that does not fit
    if top <= 0:
        return 0
    at_top = vram_at(top)
    if _vram_ok(at_top, budget):
        return top
    compute_at_top = at_top - vram_at(top, with_compute=False)
    guess = _most_fitting(lambda n: _vram_ok(vram_at(n, with_compute=False) + compute_at_top, budget), 0, top)

    def ok(n: int) -> bool:
        return _vram_ok(vram_at(n), budget)

    lo, hi, step = 0, top, 1  # lo taken as fitting, hi known not to
    if guess > 0 and ok(guess):
        lo = guess
        while lo + step < hi:  # upward: the first count that does not fit
            if not ok(lo + step):
                hi = lo + step
                break
            lo += step
            step *= 2
    elif guess > 0:
        hi = guess
        while hi - step > 0:  # downward: the first count that fits
            if ok(hi - step):
                lo = hi - step
                break
            hi -= step
            step *= 2
    return _most_fitting(ok, lo, hi)


def max_context(
    header: GGUFHeader,
    params: LoadParams,
    budget: Budget,
    gpu_layers: int | str = "auto",
    *,
    swa_full: bool = True,
    limit: int | None = None,
) -> int:
    """The longest context (a multiple of 256, up to the trained length) that still fits; 0 if none does."""
    trained = int(header.arch_key("context_length", 0) or 0)
    top = limit or trained or 131072
    top = max(CTX_STEP, top // CTX_STEP * CTX_STEP)

    def fits(ctx: int) -> bool:
        return will_fit(header, replace(params, n_ctx=ctx), budget, gpu_layers, swa_full=swa_full)

    if fits(top):
        return top
    if not fits(CTX_STEP):
        return 0
    lo, hi = 1, top // CTX_STEP  # in steps: lo fits, hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid * CTX_STEP):
            lo = mid
        else:
            hi = mid
    return lo * CTX_STEP


# -- measured vs predicted -------------------------------------------------------------------------


@dataclass(frozen=True)
class ComponentDiff:
    component: str
    predicted: int
    measured: int

    @property
    def diff_pct(self) -> float | None:
        """(predicted − measured) / measured in percent; None when nothing was measured."""
        return None if self.measured == 0 else 100.0 * (self.predicted - self.measured) / self.measured

    def to_dict(self) -> dict[str, Any]:
        pct = self.diff_pct
        return {
            "component": self.component,
            "predicted_bytes": self.predicted,
            "measured_bytes": self.measured,
            "diff_pct": None if pct is None else round(pct, 2),
        }


def compare(pred: MemoryPrediction, measured: MeasuredBuffers) -> list[ComponentDiff]:
    """Per component and per device, llama.cpp's logged buffers against the prediction."""
    m = measured.by_component()
    return [
        ComponentDiff("weights", pred.weights_bytes, m["weights"]),
        ComponentDiff("kv", pred.kv_bytes, m["kv"]),
        ComponentDiff("compute", pred.compute_bytes, m["compute"]),
        ComponentDiff("output", pred.output_bytes, m["output"]),
        ComponentDiff("total", pred.total_bytes, measured.total()),
        # llama.cpp logs what it allocates, so the RAM row compares the reservation, not the need
        ComponentDiff("ram", pred.ram_reserved_bytes - pred.overhead_bytes, measured.total(gpu=False)),
        ComponentDiff("vram", pred.vram_bytes, measured.total(gpu=True)),
    ]
