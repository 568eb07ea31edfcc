"""llama.cpp's quantization types, as ``llama-quantize`` offers them, with the facts the app needs to choose one.

Why a table of our own: the GUI and CLI must list the valid targets for a model, order them by precision to say
when a request would stack errors, and warn before a type llama.cpp refuses. The ftype numbers are llama.h's
``llama_ftype`` (tests/core/quant/test_types.py checks them against both llama_cpp and gguf's LlamaFileType).

The table is llama-quantize's list (tools/quantize/quantize.cpp) less COPY; NVFP4 is left out as llama-quantize
leaves it out. ``bits`` is llama-quantize's own nominal bits per weight (its help text), used to order types and for a
first size estimate; the exact size comes from llama.cpp's dry run (engine/quant/quantize_child.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QuantType:
    name: str
    ftype: int
    bits: float
    note: str = ""
    needs_imatrix: bool = False  # llama-quantize refuses it without an importance matrix
    only_for: str = ""  # "moe" or "ternary": meant for one kind of model only


QUANT_TYPES: tuple[QuantType, ...] = (
    QuantType("F32", 0, 32.0, "full precision: no loss, largest"),
    QuantType("F16", 1, 16.0, "half precision: the usual reference"),
    QuantType("BF16", 32, 16.0, "bfloat16: as most models are trained"),
    QuantType("Q8_0", 7, 8.5, "near lossless"),
    QuantType("Q6_K", 18, 6.56, "very small loss"),
    QuantType("Q5_K_M", 17, 5.67, "small loss"),
    QuantType("Q5_K_S", 16, 5.52, "small loss"),
    QuantType("Q5_1", 9, 5.65, "legacy 5-bit"),
    QuantType("Q5_0", 8, 5.21, "legacy 5-bit"),
    QuantType("Q4_K_M", 15, 4.89, "the usual balance of size and quality"),
    QuantType("Q4_K_S", 14, 4.58, "a little smaller than Q4_K_M"),
    QuantType("IQ4_NL", 25, 4.50, "4-bit, non-linear"),
    QuantType("IQ4_XS", 30, 4.25, "4-bit, non-linear, smaller"),
    QuantType("Q4_1", 3, 4.78, "legacy 4-bit"),
    QuantType("Q4_0", 2, 4.34, "legacy 4-bit"),
    QuantType("Q3_K_L", 13, 4.27, "3-bit, larger"),
    QuantType("Q3_K_M", 12, 3.91, "3-bit: noticeable loss"),
    QuantType("IQ3_M", 27, 3.66, "3-bit, non-linear"),
    QuantType("IQ3_S", 26, 3.44, "3-bit, non-linear"),
    QuantType("Q3_K_S", 11, 3.41, "3-bit, smallest k-quant"),
    QuantType("IQ3_XS", 22, 3.3, "3-bit, non-linear"),
    QuantType("IQ3_XXS", 23, 3.06, "3-bit, non-linear"),
    QuantType("Q2_K", 10, 2.96, "2-bit: large loss"),
    QuantType("Q2_K_S", 21, 2.96, "2-bit", needs_imatrix=True),
    QuantType("IQ2_M", 29, 2.7, "2-bit, non-linear", needs_imatrix=True),  # most tensors are IQ2_S
    QuantType("IQ2_S", 28, 2.5, "2-bit, non-linear", needs_imatrix=True),
    QuantType("IQ2_XS", 20, 2.31, "2-bit, non-linear", needs_imatrix=True),
    QuantType("IQ2_XXS", 19, 2.06, "2-bit, non-linear", needs_imatrix=True),
    QuantType("IQ1_M", 31, 1.75, "1-bit, non-linear", needs_imatrix=True),
    QuantType("IQ1_S", 24, 1.56, "1-bit, non-linear", needs_imatrix=True),
    QuantType("Q2_0", 41, 2.25, "2-bit, plain blocks of 64: very large loss"),
    QuantType("Q1_0", 40, 1.125, "1-bit, plain blocks: very large loss"),
    QuantType("TQ2_0", 37, 2.06, "ternary models only (BitNet)", only_for="ternary"),
    QuantType("TQ1_0", 36, 1.69, "ternary models only (BitNet)", only_for="ternary"),
    QuantType("MXFP4_MOE", 38, 4.25, "mixture-of-experts models (gpt-oss)", only_for="moe"),
)
BY_NAME: dict[str, QuantType] = {t.name: t for t in QUANT_TYPES}
_BY_FTYPE: dict[int, QuantType] = {t.ftype: t for t in QUANT_TYPES}

# Precision of a source file's own ftype when it is not in the table (llama.cpp's older or newer types).
_UNKNOWN_SOURCE_BITS = 16.0


def quant_type(name: str) -> QuantType:
    """The type named (case-insensitive), or ValueError naming the valid ones."""
    t = BY_NAME.get(name.strip().upper())
    if t is None:
        raise ValueError(f"Unknown quant type {name!r}; valid types: {', '.join(BY_NAME)}.")
    return t


def type_for_ftype(ftype: int | None) -> QuantType | None:
    return _BY_FTYPE.get(ftype) if ftype is not None else None


def source_bits(ftype: int | None, label: str = "") -> float:
    """The precision of a source file: its declared ftype, else its label (quantization_name), else 16."""
    t = type_for_ftype(ftype) or BY_NAME.get(label.upper())
    return t.bits if t is not None else _UNKNOWN_SOURCE_BITS


@dataclass(frozen=True)
class Availability:
    """Whether a type can be made from a given source, and what to say about it."""

    type: QuantType
    allowed: bool
    reason: str = ""  # why not allowed, or a warning when allowed


def availability(t: QuantType, *, src_bits: float, is_moe: bool, is_ternary: bool, has_imatrix: bool) -> Availability:
    """Apply llama-quantize's rules and the stacking warning to one target type."""
    if t.only_for == "moe" and not is_moe:
        return Availability(t, False, f"{t.name} is meant for mixture-of-experts models only.")
    if t.only_for == "ternary" and not is_ternary:
        return Availability(t, False, f"{t.name} is for ternary (BitNet) models only.")
    if t.needs_imatrix and not has_imatrix:
        return Availability(t, False, f"llama.cpp makes {t.name} only with an importance matrix.")
    if src_bits < 16.0 and t.bits >= src_bits - 0.05:
        return Availability(
            t,
            True,
            f"The source is already quantized (about {src_bits:g} bits per weight): {t.name} from it keeps the "
            "source's loss and cannot recover precision.",
        )
    if src_bits < 16.0:
        return Availability(
            t,
            True,
            "The source is already quantized: quantizing it again stacks the errors of both steps. "
            "A 16-bit source gives a better result.",
        )
    return Availability(t, True)


def targets_for(
    *, ftype: int | None, label: str, is_moe: bool = False, is_ternary: bool = False, has_imatrix: bool = False
) -> list[Availability]:
    """Every target type for a source, in table order (highest precision first), allowed or not."""
    bits = source_bits(ftype, label)
    return [
        availability(t, src_bits=bits, is_moe=is_moe, is_ternary=is_ternary, has_imatrix=has_imatrix)
        for t in QUANT_TYPES
    ]
