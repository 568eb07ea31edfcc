"""The curated catalogue of popular GGUF families (``resources/catalogue.json``), and a memory estimate for
each that needs neither the file nor the network.

Discover shows the catalogue before a search, so a first-time user sees models worth trying instead of an
empty table, and sees it offline too; the model ladder (sizes from 0.1B to 72B, and mixtures of experts)
reads the same rows. Each family names one GGUF repository on the Hub, the URL of the config its figures
were copied from, and the figures: the architecture's hyper-parameters (core/arch/shape.py), the parameter
count (and for a mixture of experts the count a token uses), and where known the Q4_K_M file's size. The real
verdict comes from the file's header (core/hub/remote_fit.py) once the repository is opened; this one is
labelled an estimate wherever it is shown.

The file is checked when it is loaded — at start-up in the app — and a missing or invalid field is one
sentence naming the entry, never a crash later when the figure is used. The stored parameter counts are
checked against the ones the hyper-parameters give (core/arch/params.py): a mistyped width or layer count
cannot slip through as a plausible-looking row.

The estimate follows core/fit/memory_model.py's components with catalogue figures in place of a header:

* weights ≈ the Q4_K_M file's size, or where the catalogue has no size for it a rough one from the parameter
  count (``rough_q4_k_m_bytes``) until the per-quant size predictor replaces it;
* KV cache = n_layer × n_head_kv × head_dim × 2 (K and V) × 2 bytes (f16) × the context, padded to 256 cells
  as llama.cpp does (sliding-window layers are counted full size, llama-cpp-python's default);
* compute: the attention scores of one micro-batch (f32, one matrix per head plus the masks) and the layer
  activations, plus one row of logits;
* overhead: the engine process, its share of a load and the tokenizer tables, the same constants the memory
  model uses, and the matmul work area with the feed-forward width taken as 6 × n_embd, or n_ff where that
  is wider (Mistral Small's is 6.4 × n_embd).

For the two test models (SmolLM2-135M, Gemma-3-270M) the estimate, given the real file's size, comes within
5 % of the header-based prediction from 512 to 8,192 tokens of context, always above it
(tests/core/hub/test_catalogue.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sizewise.core.arch.params import count_params
from sizewise.core.arch.shape import SHAPE_FIELDS, ModelShape, shape_from_entry, whole_number
from sizewise.core.errors import UserError
from sizewise.core.fit.memory_model import (
    ENGINE_BASELINE_BYTES,
    ENGINE_LOAD_BYTES,
    KV_CELL_PAD,
    VOCAB_BYTES_PER_TOKEN,
)
from sizewise.core.fit.verdict import Budget, margin_for
from sizewise.core.hub.browse import FitVerdict
from sizewise.core.hub.remote_fit import TIGHT_FRACTION
from sizewise.core.resources import resource_path
from sizewise.core.sampling import LoadParams

CATALOGUE_FILE = "catalogue.json"
MiB = 1 << 20
GiB = 1 << 30
TEXT_FIELDS = ("name", "repo_id", "license", "source")
KNOWN_FIELDS = frozenset((*TEXT_FIELDS, *SHAPE_FIELDS, "params", "active_params", "q4_k_m", "note"))
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
PARAMS_TOLERANCE = 0.005  # stored counts agree with the hyper-parameters' to 0.5 % (they are exact today)
# Q4_K_M by llama.cpp's rules keeps the output matrix (the token embeddings when tied) in Q6_K and the rest
# averages about 4.85 bits a weight (Q4_K, with Q6_K for half of attn_v and ffn_down). Within 1.5 % of the
# real file for Llama-3.1-8B, Qwen2.5-7B and Qwen3-0.6B; a stop-gap until the per-quant size predictor.
Q6_K_BITS = 6.5625
Q4_K_M_REST_BITS = 4.85
FFN_PER_EMBD = 6  # the work area's feed-forward width at least 6 × n_embd: the figure before n_ff was stored
ACTIVATION_ROWS = 8  # activations per micro-batch token in the compute buffer, in n_embd-wide f32 rows


@dataclass(frozen=True, kw_only=True)
class Family(ModelShape):
    """One popular model family, with the one GGUF repository Discover opens for it (and its shape's fields)."""

    name: str
    repo_id: str
    license: str
    source: str  # where the hyper-parameters were copied from (the model's config.json)
    params: int
    active_params: int | None = None  # a mixture of experts: the parameters a token uses (core/arch/params.py)
    file_bytes: int  # the Q4_K_M file
    file_approx: bool  # the size is rounded from the repository's file list, or estimated
    file_estimated: bool = False  # the catalogue has no size for the file: rough_q4_k_m_bytes made one up
    note: str = ""

    @property
    def params_label(self) -> str:
        p = self.params
        return f"{p / 1e9:.1f}B" if p >= 0.95e9 else f"{p / 1e6:.0f}M"  # Gemma 3 1B has 999.9M: "1.0B"


@dataclass(frozen=True)
class Estimate:
    """Bytes a family needs at a context length, from catalogue figures (no header was read)."""

    weights_bytes: int
    kv_bytes: int
    compute_bytes: int
    overhead_bytes: int
    n_ctx: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.compute_bytes + self.overhead_bytes

    @property
    def gpu_bytes(self) -> int:
        """What would sit in VRAM with every layer offloaded (the engine's own overhead stays in RAM)."""
        return self.weights_bytes + self.kv_bytes + self.compute_bytes

    def breakdown(self) -> str:
        return (
            f"weights {size_label(self.weights_bytes)} (the Q4_K_M file) + KV cache {size_label(self.kv_bytes)} at "
            f"{self.n_ctx:,} tokens + compute {size_label(self.compute_bytes)} + engine "
            f"{size_label(self.overhead_bytes)}"
        )


def size_label(n: int) -> str:
    """MiB up to 999, then GiB: never "1011 MiB"."""
    return f"{n / GiB:.2f} GiB" if n >= 1000 * MiB else f"{n / MiB:.0f} MiB"


def rough_q4_k_m_bytes(shape: ModelShape, params: int) -> int:
    """A Q4_K_M file's size from the parameter count alone (see Q4_K_M_REST_BITS): for families whose file the
    catalogue has no size for."""
    output = shape.n_vocab * shape.n_embd
    return round((output * Q6_K_BITS + (params - output) * Q4_K_M_REST_BITS) / 8)


# -- loading and checking ---------------------------------------------------------------------------------


def _text(entry: dict[str, Any], label: str) -> None:
    for key in TEXT_FIELDS:
        value = entry.get(key)
        if key not in entry:
            raise UserError(f"{label} has no {key}.")
        if not isinstance(value, str) or not value.strip():
            raise UserError(f"{label} has an invalid {key} ({value!r}): it must be non-empty text.")
    if not _REPO_ID.match(entry["repo_id"]):
        raise UserError(f"{label} has an invalid repo_id ({entry['repo_id']!r}): it must look like owner/name.")
    if not entry["source"].startswith("https://"):
        raise UserError(
            f"{label} has an invalid source ({entry['source']!r}): it must be the https:// address of the "
            "config the figures come from."
        )


def _counts(entry: dict[str, Any], shape: ModelShape, label: str) -> tuple[int, int | None]:
    """params (and active_params for a mixture of experts), each within PARAMS_TOLERANCE of the shape's."""
    expected = count_params(shape)
    pairs = [("params", expected.total)] + ([("active_params", expected.active)] if shape.is_moe else [])
    if not shape.is_moe and entry.get("active_params") is not None:
        raise UserError(f"{label} has active_params, but arch {shape.arch} is not a mixture of experts.")
    found: list[int] = []
    for key, want in pairs:
        if entry.get(key) is None:
            raise UserError(f"{label} has no {key}.")
        value = entry[key]
        if not whole_number(value):
            raise UserError(f"{label} has an invalid {key} ({value!r}): it must be a whole number above 0.")
        if abs(value - want) > PARAMS_TOLERANCE * want:
            raise UserError(
                f"{label} has {key} {value:,}, but its hyper-parameters give {want:,}: one of the figures "
                "differs from the model's config."
            )
        found.append(value)
    return found[0], (found[1] if shape.is_moe else None)


def _file(entry: dict[str, Any], shape: ModelShape, params: int, label: str) -> tuple[int, bool, bool]:
    """The Q4_K_M file's (bytes, approx, estimated): from q4_k_m, or a rough size when there is none."""
    file = entry.get("q4_k_m")
    if file is None:
        return rough_q4_k_m_bytes(shape, params), True, True
    if (
        not isinstance(file, dict)
        or set(file) - {"bytes", "approx"}
        or not whole_number(file.get("bytes"))
        or not isinstance(file.get("approx", False), bool)
    ):
        raise UserError(
            f'{label} has an invalid q4_k_m ({file!r}): it must be {{"bytes": a whole number above 0, '
            '"approx": true or false}.'
        )
    return file["bytes"], bool(file.get("approx", False)), False


def _family(entry: dict[str, Any], where: str) -> Family:
    """One entry, checked field by field; UserError names the entry and the field."""
    name = entry.get("name")
    label = f"The model catalogue entry “{name}” in {where}"
    unknown = sorted(set(entry) - KNOWN_FIELDS)
    if unknown:
        raise UserError(f"{label} has an unknown field {unknown[0]!r} (known: {', '.join(sorted(KNOWN_FIELDS))}).")
    _text(entry, label)
    shape = shape_from_entry(entry, label)
    params, active = _counts(entry, shape, label)
    file_bytes, approx, estimated = _file(entry, shape, params, label)
    note = entry.get("note", "")
    if not isinstance(note, str):
        raise UserError(f"{label} has an invalid note ({note!r}): it must be text.")
    return Family(
        **vars(shape),
        name=entry["name"].strip(),
        repo_id=entry["repo_id"],
        license=entry["license"].strip(),
        source=entry["source"].strip(),
        params=params,
        active_params=active,
        file_bytes=file_bytes,
        file_approx=approx,
        file_estimated=estimated,
        note=note,
    )


def parse_catalogue(data: Any, where: str = CATALOGUE_FILE) -> list[Family]:
    """Every family in ``data`` (the parsed JSON), in file order; UserError at the first problem."""
    if not isinstance(data, dict) or not isinstance(data.get("families"), list):
        raise UserError(f"The model catalogue {where} must hold an object with a 'families' list.")
    out: list[Family] = []
    seen: set[tuple[str, str]] = set()
    for i, entry in enumerate(data["families"], start=1):
        if not isinstance(entry, dict):
            raise UserError(f"Entry {i} of the model catalogue {where} is not an object.")
        if not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise UserError(f"Entry {i} of the model catalogue {where} has no name.")
        family = _family(entry, where)
        for field, value in (("name", family.name), ("repo_id", family.repo_id)):
            if (field, value.lower()) in seen:
                raise UserError(
                    f"The model catalogue entry “{family.name}” in {where} repeats the {field} {value} "
                    "of an earlier entry."
                )
            seen.add((field, value.lower()))
        out.append(family)
    return out


def load_catalogue(path: Path | None = None) -> list[Family]:
    """The families from ``resources/catalogue.json`` (or ``path``), every field checked."""
    file = path or resource_path(CATALOGUE_FILE)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"The model catalogue {file} could not be read ({exc}).") from exc
    return parse_catalogue(data, file.name)


# -- the estimate ---------------------------------------------------------------------------------------------


def estimate_memory(family: Family, params: LoadParams | None = None, *, file_bytes: int | None = None) -> Estimate:
    """What loading the family's Q4_K_M file would take, from catalogue figures (see the module docstring)."""
    load = params or LoadParams()
    n_ctx = max(1, load.n_ctx)
    cells = -(-n_ctx // KV_CELL_PAD) * KV_CELL_PAD
    n_tokens = min(n_ctx, load.n_batch, load.n_ubatch)
    kv = family.n_layer * family.n_head_kv * family.head_dim * 2 * 2 * cells
    scores = 4 * n_tokens * cells * (family.n_head + 2)  # KQ per head, plus the causal and sliding-window masks
    activations = 4 * n_tokens * ACTIVATION_ROWS * family.n_embd
    compute = scores + activations + 4 * family.n_vocab  # and one row of logits
    work = max(FFN_PER_EMBD * family.n_embd, family.n_ff) * n_tokens * 2
    overhead = ENGINE_BASELINE_BYTES + ENGINE_LOAD_BYTES + VOCAB_BYTES_PER_TOKEN * family.n_vocab + work
    weights = family.file_bytes if file_bytes is None else file_bytes
    return Estimate(weights, kv, compute, overhead, n_ctx)


def estimate_fit(family: Family, budget: Budget, params: LoadParams | None = None) -> FitVerdict:
    """The family's estimated verdict against a budget, in Discover's words (fits / tight / too big).

    With a GPU (not unified memory) whose free memory holds every layer, the verdict is the GPU's; otherwise
    the whole estimate has to fit in RAM (a partial offload may still fit; the header-based verdict says).
    The safety margin is core/fit/verdict.py's.
    """
    est = estimate_memory(family, params)
    prefix = f"Estimate from the catalogue at {est.n_ctx:,} tokens of context ({est.breakdown()})"
    if budget.backend.gpu and not budget.unified and budget.vram_bytes > 0:
        gpu_need = est.gpu_bytes + margin_for(est.gpu_bytes)
        ram_need = est.overhead_bytes + margin_for(est.overhead_bytes)
        if gpu_need <= budget.vram_bytes and ram_need <= budget.ram_bytes:
            tight = gpu_need > TIGHT_FRACTION * budget.vram_bytes
            reason = (
                f"{prefix}: fits on the GPU with about {size_label(gpu_need)} of the "
                f"{size_label(budget.vram_bytes)} of VRAM free (safety margin included)."
            )
            return FitVerdict("tight" if tight else "fits", reason, gpu_need, budget.vram_bytes)
    need = est.total_bytes + margin_for(est.total_bytes)
    if need > budget.ram_bytes:
        reason = (
            f"{prefix}: needs about {size_label(need)} of RAM (safety margin included) "
            f"but {size_label(budget.ram_bytes)} are available."
        )
        return FitVerdict("too big", reason, need, budget.ram_bytes)
    tight = need > TIGHT_FRACTION * budget.ram_bytes
    reason = (
        f"{prefix}: needs about {size_label(need)} of the {size_label(budget.ram_bytes)} of RAM available "
        "(safety margin included)."
    )
    return FitVerdict("tight" if tight else "fits", reason, need, budget.ram_bytes)
