"""The hyper-parameters memory and speed depend on, named as llama.cpp names them, and their checks.

A shape is what a model's published ``config.json`` says (``hidden_size`` is ``n_embd``, ``intermediate_size``
is ``n_ff``, ``num_experts`` is ``n_expert``, ``sliding_window`` is ``swa_window`` …), so a model can be placed
on the memory and speed ladder before any of its files is downloaded. ``shape_from_entry`` checks a JSON object
field by field and says what is wrong in one sentence that starts with the caller's label (which names the
entry), the way the model catalogue reports a bad entry.

Conventions, so that one number means one thing everywhere:

* ``arch`` is llama.cpp's architecture name (``general.architecture`` in a GGUF), not the transformers class:
  Mistral 7B and Mistral Small are ``llama``; gpt-oss is ``gpt-oss``.
* ``n_ff`` is the config's ``intermediate_size`` (GGUF ``feed_forward_length``). In a mixture of experts whose
  every layer is routed (all three MoE architectures here) no tensor has that width; the experts' width is
  ``n_ff_exp`` (``moe_intermediate_size``, or ``intermediate_size`` for OLMoE and gpt-oss, whose configs have no
  separate field).
* Absent MoE and sliding-window fields are 0: a dense model, or every layer attending to the whole context.
* ``swa_pattern`` N follows llama.cpp's ``set_swa_pattern(N)``: in each run of N layers the first N-1 attend
  within ``swa_window`` tokens and the last attends to everything (Gemma 3: 6, five local then one global;
  gpt-oss: 2, alternating, sliding first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sizewise.core.errors import UserError

DENSE_ARCHES = frozenset({"llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"})
MOE_ARCHES = frozenset({"qwen3moe", "olmoe", "gpt-oss"})
ARCHES = DENSE_ARCHES | MOE_ARCHES
SWA_ARCHES = frozenset({"gemma2", "gemma3", "gpt-oss"})  # llama.cpp gives these per-layer sliding windows

SHAPE_INT_FIELDS = ("n_layer", "n_embd", "n_ff", "n_head", "n_head_kv", "head_dim", "n_vocab", "context_length")
MOE_FIELDS = ("n_expert", "n_expert_used", "n_ff_exp")
SWA_FIELDS = ("swa_window", "swa_pattern")
SHAPE_FIELDS = frozenset(("arch", "tied_embeddings", *SHAPE_INT_FIELDS, *MOE_FIELDS, "n_ff_shexp", *SWA_FIELDS))


@dataclass(frozen=True, kw_only=True)
class ModelShape:
    """One model's hyper-parameters (see the module docstring for what each means)."""

    arch: str
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_vocab: int
    context_length: int
    tied_embeddings: bool  # the output matrix is the token-embedding matrix (one copy in the file)
    n_expert: int = 0
    n_expert_used: int = 0
    n_ff_exp: int = 0
    n_ff_shexp: int = 0  # a shared expert every token goes through; 0: none
    swa_window: int = 0
    swa_pattern: int = 0

    @property
    def is_moe(self) -> bool:
        return self.n_expert > 0

    @property
    def n_swa_layers(self) -> int:
        """Layers that attend within ``swa_window``: all but the last of each run of ``swa_pattern``."""
        return self.n_layer - self.n_layer // self.swa_pattern if self.swa_window else 0


def whole_number(value: Any) -> bool:
    """A JSON integer above 0 (true/false are ints in Python, and not whole numbers here)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _present(entry: Mapping[str, Any], key: str) -> bool:
    """Optional fields may be left out or null."""
    return entry.get(key) is not None


def _int(entry: Mapping[str, Any], key: str, label: str) -> int:
    if key not in entry:
        raise UserError(f"{label} has no {key}.")
    value = entry[key]
    if not whole_number(value):
        raise UserError(f"{label} has an invalid {key} ({value!r}): it must be a whole number above 0.")
    return int(value)


def _arch(entry: Mapping[str, Any], label: str) -> str:
    if "arch" not in entry:
        raise UserError(f"{label} has no arch (llama.cpp's architecture name, such as llama or qwen2).")
    arch = entry["arch"]
    if arch not in ARCHES:
        raise UserError(f"{label} has an unknown arch ({arch!r}): it must be one of {', '.join(sorted(ARCHES))}.")
    return str(arch)


def _moe(entry: Mapping[str, Any], arch: str, label: str) -> dict[str, int]:
    """The expert fields: all three for a mixture-of-experts arch, none for a dense one."""
    if arch not in MOE_ARCHES:
        extra = next((k for k in (*MOE_FIELDS, "n_ff_shexp") if _present(entry, k)), None)
        if extra:
            raise UserError(f"{label} has {extra}, but arch {arch} is not a mixture of experts.")
        return {}
    for key in MOE_FIELDS:
        if not _present(entry, key):
            raise UserError(f"{label} has no {key} (arch {arch} is a mixture of experts).")
    moe = {key: _int(entry, key, label) for key in MOE_FIELDS}
    if _present(entry, "n_ff_shexp"):
        moe["n_ff_shexp"] = _int(entry, "n_ff_shexp", label)
    if moe["n_expert_used"] > moe["n_expert"]:
        raise UserError(f"{label} has n_expert_used {moe['n_expert_used']}, more than its n_expert {moe['n_expert']}.")
    return moe


def _swa(entry: Mapping[str, Any], arch: str, label: str) -> dict[str, int]:
    """Both sliding-window fields or neither, and only for an arch whose layers llama.cpp can window."""
    given = [key for key in SWA_FIELDS if _present(entry, key)]
    if not given:
        return {}
    if arch not in SWA_ARCHES:
        raise UserError(f"{label} has {given[0]}, but arch {arch} has no sliding-window layers in llama.cpp.")
    if len(given) == 1:
        other = next(key for key in SWA_FIELDS if key not in given)
        raise UserError(f"{label} has {given[0]} but no {other} (give both or neither).")
    window, pattern = _int(entry, "swa_window", label), _int(entry, "swa_pattern", label)
    if pattern < 2:
        raise UserError(
            f"{label} has an invalid swa_pattern ({pattern}): it must be 2 or more (each run of that many "
            "layers ends with one full-attention layer)."
        )
    return {"swa_window": window, "swa_pattern": pattern}


def shape_from_entry(entry: Mapping[str, Any], label: str) -> ModelShape:
    """The shape fields of ``entry``, each checked; UserError starts with ``label`` and names the field."""
    ints = {key: _int(entry, key, label) for key in SHAPE_INT_FIELDS}
    if ints["n_head"] % ints["n_head_kv"]:
        raise UserError(
            f"{label} has n_head {ints['n_head']}, which is not a multiple of n_head_kv {ints['n_head_kv']}."
        )
    arch = _arch(entry, label)
    if "tied_embeddings" not in entry:
        raise UserError(f"{label} has no tied_embeddings (true when the output matrix is the token embeddings).")
    tied = entry["tied_embeddings"]
    if not isinstance(tied, bool):
        raise UserError(f"{label} has an invalid tied_embeddings ({tied!r}): it must be true or false.")
    return ModelShape(arch=arch, tied_embeddings=tied, **ints, **_moe(entry, arch, label), **_swa(entry, arch, label))
