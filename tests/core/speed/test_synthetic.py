"""Synthetic models: the shape rules and the written file's header (loading them is tested in tests/engine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sizewise.core.gguf.header import model_info, read_header
from sizewise.core.speed.model import model_cost
from sizewise.core.speed.synthetic import SyntheticShape, read_tokenizer, write_synthetic


def test_shapes_llama_cpp_cannot_quantize_are_refused_and_k_quant_widths_are_told() -> None:
    assert SyntheticShape(2, 256, 768, 4, 2).problem() is None
    assert SyntheticShape(2, 576, 1536, 9, 3).problem() is None  # SmolLM2-135M's widths: k-quants fall back
    assert not SyntheticShape(2, 576, 1536, 9, 3).kquant_widths and SyntheticShape(2, 256, 768, 4, 2).kquant_widths
    assert "32" in (SyntheticShape(2, 560, 1536, 8, 2).problem() or "")
    assert SyntheticShape(2, 256, 768, 3, 1).problem() is not None  # 256 does not divide by 3 heads


def test_written_model_has_the_requested_shape_and_parameter_count(tmp_path: Path, smollm2_path: Path) -> None:
    shape = SyntheticShape(n_layer=2, n_embd=256, n_ff=512, n_head=4, n_head_kv=2)
    path = write_synthetic(tmp_path / "s.gguf", shape, read_tokenizer(smollm2_path))
    header = read_header(path)
    assert model_info(path, header).parameters == shape.parameters
    assert header.arch_key("block_count") == 2 and header.arch_key("attention.head_count_kv") == 2
    assert header.get("tokenizer.ggml.model") == "gpt2"
    assert model_cost(header).bytes_by_type == {"F16": 2 * (shape.parameters - 256 * 5)}  # all F16 but norms
    # Weights repeat a drawn pool from a random offset per tensor: the spread asked for, and no two tensors alike.
    import gguf
    import numpy as np

    weights = [np.asarray(t.data, dtype=np.float32).ravel() for t in gguf.GGUFReader(path).tensors if t.data.ndim > 1]
    assert all(0.018 < float(w.std()) < 0.022 for w in weights)
    firsts = {tuple(w[:64]) for w in weights}
    assert len(firsts) == len(weights)
    with pytest.raises(ValueError):
        write_synthetic(tmp_path / "bad.gguf", SyntheticShape(2, 560, 512, 8, 2), [])
