"""The memory model's per-slot weight table, read through a tensor plan shared by every quant of a model.

memory_model._WeightTable reads the names and shapes of a header's tensors once per tensor list (_tensor_plan)
and only bytes, offsets and types per header; here it must say what a plain tensor-by-tensor reading says.
"""

from __future__ import annotations

from typing import Any

import pytest

from sizewise.core.fit import memory_model
from sizewise.core.fit.memory_model import (
    BIG_TENSOR,
    _header_facts,
    _layer_of,
    _repack_candidate,
    _row_padding_bytes,
    _tensor_plan,
)
from sizewise.core.fit.offload.scheduler import graph_weight_bytes
from sizewise.core.gguf.header import GGUFHeader, read_header
from sizewise.core.hub.catalogue import load_catalogue
from sizewise.core.ladder.catalogue_rows import ladder_model
from sizewise.core.ladder.cells import LADDER_QUANTS
from sizewise.core.ladder.virtual_header import virtual_header


def _slots_read_one_by_one(header: GGUFHeader, n_layer: int) -> list[tuple[int, tuple[Any, ...]]]:
    slots: dict[int, dict[str, Any]] = {}
    for t in header.tensors:
        slot = _layer_of(t.name, n_layer)
        s = slots.setdefault(
            slot, {"bytes": 0, "offsets": [], "ends": [], "repack": [], "fixed": [], "pad": 0, "big": []}
        )
        s["bytes"] += t.n_bytes
        s["offsets"].append(t.offset)
        s["ends"].append(t.offset + t.n_bytes)
        s["pad"] += _row_padding_bytes(t)
        if t.n_bytes >= BIG_TENSOR:
            s["big"].append((t.n_bytes, t.offset, t.offset + t.n_bytes))
        if slot >= 0 and _repack_candidate(t.name, len(t.shape)):
            s["repack"].append((t.type_name, t.shape[1], t.n_bytes, t.offset))
        else:
            s["fixed"].append((t.offset, t.offset + t.n_bytes))
    out = []
    for slot, s in sorted(slots.items()):
        fixed_lo = min((lo for lo, _ in s["fixed"]), default=memory_model._NO_OFFSET)
        fixed_hi = max((hi for _, hi in s["fixed"]), default=0)
        facts = (s["bytes"], min(s["offsets"]), max(s["ends"]), tuple(s["repack"]), fixed_lo, fixed_hi, s["pad"])
        out.append((slot, (*facts, tuple(s["big"]))))
    return out


def _family(name: str):  # type: ignore[no-untyped-def]
    return next(f for f in load_catalogue() if f.name.startswith(name))


@pytest.mark.parametrize(
    "which",
    ["smollm2", "gemma", "gpt-oss 20B:Q4_K_M", "Gemma 3 4B:Q2_K", "Qwen3 30B-A3B:Q8_0", "Llama 3.3 70B:F16"],
)
def test_the_weight_table_reads_as_the_tensors_one_by_one(which: str, request: pytest.FixtureRequest) -> None:
    """Real files (SmolLM2's 576-wide rows get CUDA's padding; Gemma-3-270M's tied output) and virtual headers
    (MXFP4 experts with biases, a 70B model's F16 tensors over 64 MiB)."""
    if ":" in which:
        name, quant = which.split(":")
        header = virtual_header(ladder_model(_family(name)).shape, quant)
    else:
        header = read_header(request.getfixturevalue(f"{which}_path"))
    shape, table = _header_facts(header)
    got = [
        (slot, (f.gpu_bytes, f.lo, f.hi, f.repack, f.fixed_lo, f.fixed_hi, f.gpu_pad, f.big)) for slot, f in table.slots
    ]
    assert got == _slots_read_one_by_one(header, shape.n_layer)
    assert table.graph_weights == graph_weight_bytes([(t.name, t.n_bytes) for t in header.tensors], shape.n_layer)
    emb = next((t for t in header.tensors if t.name == "token_embd.weight"), None)
    assert table.emb is emb
    assert table.output is next((t for t in header.tensors if t.name == "output.weight"), emb)
    if which == "smollm2":
        assert any(f.gpu_pad for _, f in table.slots)  # the padding was read, not only its absence
    if which.endswith("F16"):
        assert any(f.big for slot, f in table.slots if 0 <= slot < shape.n_layer)  # block tensors over 64 MiB too


def test_every_quant_of_a_model_shares_one_tensor_plan() -> None:
    """What the ladder saves: seven headers of a model, their names and shapes read once (one plan made)."""
    shape = ladder_model(_family("Qwen2.5 7B")).shape
    _tensor_plan.cache_clear()
    for quant in LADDER_QUANTS:
        _header_facts(virtual_header(shape, quant))
    info = _tensor_plan.cache_info()
    assert (info.misses, info.hits) == (1, len(LADDER_QUANTS) - 1)
