"""Checking a shape's fields (core/arch/shape.py) outside the catalogue: the label the caller passes starts every
sentence, optional fields may be null, and sliding-window layers follow llama.cpp's set_swa_pattern. The sentence
for each bad field, with a catalogue entry's name: tests/core/hub/test_catalogue.py."""

from __future__ import annotations

from typing import Any

import pytest

from sizewise.core.arch.shape import ModelShape, shape_from_entry, whole_number
from sizewise.core.errors import UserError

ENTRY: dict[str, Any] = {
    "arch": "gemma3",
    "n_layer": 26,
    "n_embd": 1152,
    "n_ff": 6912,
    "n_head": 4,
    "n_head_kv": 1,
    "head_dim": 256,
    "n_vocab": 262144,
    "context_length": 32768,
    "tied_embeddings": True,
    "swa_window": 512,
    "swa_pattern": 6,
}


def test_a_good_entry_becomes_a_shape_and_ignores_other_fields() -> None:
    shape = shape_from_entry(dict(ENTRY, name="not a shape field"), "Model X")
    assert shape == ModelShape(**ENTRY)
    assert not shape.is_moe and shape.n_expert == shape.n_ff_shexp == 0


@pytest.mark.parametrize(
    ("n_layer", "pattern", "windowed"),
    [(26, 6, 22), (18, 6, 15), (62, 6, 52), (24, 2, 12), (5, 6, 5), (6, 6, 5)],
)
def test_windowed_layers_are_all_but_the_last_of_each_run(n_layer: int, pattern: int, windowed: int) -> None:
    """llama.cpp: layer il uses the window when il % pattern < pattern - 1."""
    shape = shape_from_entry(dict(ENTRY, n_layer=n_layer, swa_pattern=pattern), "Model X")
    assert shape.n_swa_layers == windowed == sum(il % pattern < pattern - 1 for il in range(n_layer))
    assert shape_from_entry(dict(ENTRY, swa_window=None, swa_pattern=None), "Model X").n_swa_layers == 0


def test_sentences_start_with_the_callers_label() -> None:
    with pytest.raises(UserError, match=r"^Model X has an unknown arch \('gemma'\): it must be one of gemma2, gemma3,"):
        shape_from_entry(dict(ENTRY, arch="gemma"), "Model X")
    with pytest.raises(UserError, match=r"^Model X has swa_window but no swa_pattern \(give both or neither\)\.$"):
        shape_from_entry(dict(ENTRY, swa_pattern=None), "Model X")


@pytest.mark.parametrize(
    ("value", "whole"), [(1, True), (0, False), (-3, False), (True, False), (2.0, False), ("2", False)]
)
def test_whole_numbers_are_json_integers_above_zero(value: Any, whole: bool) -> None:
    assert whole_number(value) is whole
