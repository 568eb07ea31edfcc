"""ggml's tensor types: their ids in GGUF files and the bytes a row of each takes.

Why a table of our own rather than the gguf package's GGML_QUANT_SIZES: gguf 0.19 predates Q2_0, which the
vendored llama.cpp (b11312) makes (and it gives Q8_1 an older layout's 40 bytes, not 36), and the size rules
must cover every type llama.cpp may choose. The numbers are ggml.h's ``ggml_type`` and ggml.c's type_traits
(tests/core/quant/test_type_rules_llama.py reads both from the vendored library).
"""

from __future__ import annotations

from enum import IntEnum


class GGMLType(IntEnum):
    """ggml.h's ``ggml_type`` ids (the numbers stored in GGUF tensor infos)."""

    F32 = 0
    F16 = 1
    Q4_0 = 2
    Q4_1 = 3
    Q5_0 = 6
    Q5_1 = 7
    Q8_0 = 8
    Q8_1 = 9
    Q2_K = 10
    Q3_K = 11
    Q4_K = 12
    Q5_K = 13
    Q6_K = 14
    Q8_K = 15
    IQ2_XXS = 16
    IQ2_XS = 17
    IQ3_XXS = 18
    IQ1_S = 19
    IQ4_NL = 20
    IQ3_S = 21
    IQ2_S = 22
    IQ4_XS = 23
    I8 = 24
    I16 = 25
    I32 = 26
    I64 = 27
    F64 = 28
    IQ1_M = 29
    BF16 = 30
    TQ1_0 = 34
    TQ2_0 = 35
    MXFP4 = 39
    NVFP4 = 40
    Q1_0 = 41
    Q2_0 = 42


T = GGMLType

# (elements per block, bytes per block): ggml.c's type_traits blck_size and type_size.
BLOCKS: dict[GGMLType, tuple[int, int]] = {
    T.F32: (1, 4), T.F16: (1, 2), T.BF16: (1, 2), T.F64: (1, 8),
    T.I8: (1, 1), T.I16: (1, 2), T.I32: (1, 4), T.I64: (1, 8),
    T.Q4_0: (32, 18), T.Q4_1: (32, 20), T.Q5_0: (32, 22), T.Q5_1: (32, 24), T.Q8_0: (32, 34), T.Q8_1: (32, 36),
    T.Q2_K: (256, 84), T.Q3_K: (256, 110), T.Q4_K: (256, 144), T.Q5_K: (256, 176), T.Q6_K: (256, 210),
    T.Q8_K: (256, 292),
    T.IQ2_XXS: (256, 66), T.IQ2_XS: (256, 74), T.IQ3_XXS: (256, 98), T.IQ1_S: (256, 50), T.IQ4_NL: (32, 18),
    T.IQ3_S: (256, 110), T.IQ2_S: (256, 82), T.IQ4_XS: (256, 136), T.IQ1_M: (256, 56),
    T.TQ1_0: (256, 54), T.TQ2_0: (256, 66), T.MXFP4: (32, 17), T.NVFP4: (64, 36), T.Q1_0: (128, 18),
    T.Q2_0: (64, 18),
}  # fmt: skip
_BLOCKS_BY_ID: dict[int, tuple[int, int]] = {int(k): v for k, v in BLOCKS.items()}
NOT_QUANTIZED = frozenset({T.F32, T.F16, T.BF16, T.F64, T.I8, T.I16, T.I32, T.I64})


def type_name(t: int) -> str:
    """ggml's name in capitals (Q4_K), or ``type<id>`` for an id this table does not know."""
    try:
        return GGMLType(t).name
    except ValueError:
        return f"type{t}"


def row_bytes(t: int, ne0: int) -> int:
    """Bytes of one row of ``ne0`` elements (ggml_row_size); ValueError when the row does not divide into blocks."""
    # Looked up by plain id first, without constructing the enum member (the ladder's virtual headers ask ~90k
    # times); an id the table lacks still goes through GGMLType() for the same ValueError as before.
    got = _BLOCKS_BY_ID.get(t)
    block, size = got if got is not None else BLOCKS[GGMLType(t)]
    if ne0 % block:
        raise ValueError(f"a row of {ne0} elements does not divide into {type_name(t)} blocks of {block}")
    return ne0 // block * size


def tensor_bytes(t: int, shape: tuple[int, ...]) -> int:
    """ggml_nbytes of a tensor of this type and shape (ggml order)."""
    rows = 1
    for d in shape[1:]:
        rows *= d
    return rows * row_bytes(t, shape[0] if shape else 1)


def n_dims(shape: tuple[int, ...]) -> int:
    """ggml_n_dims: trailing 1s do not count (a [576, 1] tensor is 1-D to llama.cpp)."""
    n = len(shape)
    while n > 1 and shape[n - 1] == 1:
        n -= 1
    return max(n, 1)
