"""Random-weight GGUF models of any shape, written by the app itself for speed calibration.

Why random weights are honest here: llama.cpp's speed and memory depend only on tensor shapes and types,
never on the values (BRIEF §9), so a synthetic model measures what a real one of the same shape would,
without downloading it. The tokenizer is copied from the starter model's GGUF so llama.cpp loads the file
like any other (vocab 49152). Widths need not be multiples of 256 (SmolLM2-135M's 576, Qwen2.5-0.5B's 896):
llama.cpp then stores those rows in a fallback type instead of the k-quant asked for (``kquant_widths``
tells), which the speed model reads from the file; calibration measures one such shape on purpose.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# A small spread keeps activations finite through every layer; the values are otherwise meaningless.
WEIGHT_STD = 0.02
# Values drawn once and repeated from a random offset in each tensor: drawing every weight took 4.1 of the 4.2 s
# that writing calibration's 86M-parameter model took, and a weight's value changes
# neither the time to multiply it nor the time to quantize its block. 4 Mi values: a repeat spans far more than a
# quantization block or a row.
POOL_VALUES = 1 << 22
SYNTHETIC_NAME = "sizewise-synthetic"


@dataclass(frozen=True)
class SyntheticShape:
    """A llama-architecture model shape; head size is n_embd / n_head."""

    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    n_vocab: int = 49152

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Numpy shapes (rows = outputs, columns = inputs) of every tensor, in llama.cpp's names."""
        e, kv = self.n_embd, self.n_head_kv * self.head_dim
        shapes: dict[str, tuple[int, ...]] = {"token_embd.weight": (self.n_vocab, e), "output_norm.weight": (e,)}
        for i in range(self.n_layer):
            b = f"blk.{i}."
            shapes |= {
                b + "attn_norm.weight": (e,),
                b + "attn_q.weight": (e, e),
                b + "attn_k.weight": (kv, e),
                b + "attn_v.weight": (kv, e),
                b + "attn_output.weight": (e, e),
                b + "ffn_norm.weight": (e,),
                b + "ffn_gate.weight": (self.n_ff, e),
                b + "ffn_up.weight": (self.n_ff, e),
                b + "ffn_down.weight": (e, self.n_ff),
            }
        return shapes

    @property
    def parameters(self) -> int:
        return sum(int(np.prod(s)) for s in self.tensor_shapes().values())

    def problem(self) -> str | None:
        """Why llama.cpp (or its k-quants) would not take this shape, or None."""
        if min(self.n_layer, self.n_embd, self.n_ff, self.n_head, self.n_head_kv) < 1:
            return "every dimension must be at least 1"
        if self.n_embd % self.n_head or self.n_head % self.n_head_kv:
            return "n_embd must divide by n_head, and n_head by n_head_kv"
        if self.n_embd % 32 or self.n_ff % 32:
            return "widths must be multiples of 32, the quantization block"
        return None

    @property
    def kquant_widths(self) -> bool:
        """Whether every tensor can take a k-quant type (rows of whole 256-weight blocks), as calibration needs."""
        return self.n_embd % 256 == 0 and self.n_ff % 256 == 0


def read_tokenizer(template: Path) -> list[tuple[str, Any, Any, Any]]:
    """(key, value, type, sub_type) of every ``tokenizer.*`` field of a GGUF, ready for GGUFWriter."""
    import gguf

    logging.getLogger("gguf").setLevel(logging.WARNING)
    reader = gguf.GGUFReader(str(template), "r")
    out: list[tuple[str, Any, Any, Any]] = []
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        sub = field.types[1] if vtype == gguf.GGUFValueType.ARRAY else None
        if sub == gguf.GGUFValueType.STRING:  # 49k strings: contents() takes seconds, raw parts do not
            value: Any = [bytes(field.parts[i]).decode("utf-8") for i in field.data]
        else:
            value = field.contents()
        out.append((key, value, vtype, sub))
    return out


def write_synthetic(
    path: Path, shape: SyntheticShape, tokenizer: list[tuple[str, Any, Any, Any]], *, seed: int = 0
) -> Path:
    """Write an F16 (norms F32) llama-architecture GGUF of ``shape`` with random weights; returns ``path``."""
    import gguf

    problem = shape.problem()
    if problem:
        raise ValueError(f"synthetic shape {shape}: {problem}")
    rng = np.random.default_rng(seed)
    pool = (rng.standard_normal(POOL_VALUES, dtype=np.float32) * WEIGHT_STD).astype(np.float16)
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_name(SYNTHETIC_NAME)
    writer.add_context_length(4096)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layer)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head_kv)
    writer.add_rope_dimension_count(shape.head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(shape.n_vocab)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    for key, value, vtype, sub in tokenizer:
        writer.add_key_value(key, value, vtype, sub)
    shapes = shape.tensor_shapes()
    # Tiled once to the largest tensor past any offset: tiling per tensor took 1.9 of the 3.4 s that writing the
    # 128M-parameter calibration model took.
    largest = max(math.prod(dims) for dims in shapes.values())
    repeated = np.tile(pool, -(-(POOL_VALUES + largest) // POOL_VALUES))
    for name, dims in shapes.items():
        if len(dims) == 1:
            writer.add_tensor(name, np.ones(dims, dtype=np.float32))
        else:
            n, start = math.prod(dims), int(rng.integers(POOL_VALUES))
            writer.add_tensor(name, repeated[start : start + n].reshape(dims))
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    return path
