"""A GGUF header for a file that does not exist: a catalogue model at a quant type, built from its hyper-parameters.

Why a header rather than a parallel set of formulas: the memory model, the verdicts, the largest context and
the speed model all read headers (core/fit, core/speed), and reading the same structure for a catalogue
cell as for a downloaded file keeps one set of rules — a cell and the real file can only differ where the
inputs differ. The tensors and their types come from core/quant/shapes.py and type_rules.py (llama.cpp's
own per-tensor rules, checked against ``llama_model_quantize``, with what every published file of the
architecture overrides: gpt-oss keeps its experts in MXFP4, shapes.PUBLISHED_OVERRIDES), so the tensor bytes
are exact; the key/value metadata (mostly the tokenizer's vocabulary) is estimated from the vocabulary's size
and kind, a few MB at most.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sizewise.core.gguf.ggml_types import row_bytes
from sizewise.core.gguf.header import ArraySummary, GGUFHeader, TensorInfo, tensor_with_bytes
from sizewise.core.quant.shapes import HyperParams, estimate_metadata_bytes, published_types
from sizewise.core.quant.types import quant_type

GGUF_ALIGNMENT = 32
GGUF_STRING = 8  # gguf value type of the token list's items
# The tokenizer kind decides the metadata's size (core/quant/shapes.estimate_metadata_bytes): SentencePiece
# vocabularies carry a score per token and no merges (Gemma; Llama 2, Mistral and Phi-3's 32k vocabularies),
# byte-level BPE ones a merge per token (Llama 3, Qwen, SmolLM2, with 49k-152k tokens).
SENTENCEPIECE_ARCHES = ("gemma2", "gemma3")
SENTENCEPIECE_MAX_VOCAB = 32_768


@dataclass(frozen=True)
class CatalogueShape:
    """What a virtual header needs besides the tensor shapes: the context and sliding-window facts."""

    hyper: HyperParams
    context_length: int
    sliding_window: int = 0
    swa_pattern: int = 0  # every n-th layer attends to the whole context (gemma3: 6); 0 = the arch's default


@functools.lru_cache(maxsize=512)
def virtual_header(shape: CatalogueShape, quant: str) -> GGUFHeader:
    """The header llama.cpp's quantizer would write for this model at ``quant`` (ValueError if not covered).

    Cached (the whole catalogue at every ladder quant is ~210 headers): the ladder is built again for each
    target and budget, and the memory model memoizes per header object what it reads from one
    (core/fit/memory_model._header_facts), so the same object must come back. Callers must not edit it.
    """
    hp = shape.hyper
    layout, types = published_types(hp, quant)  # predict_published's types, without its records
    tensors: list[TensorInfo] = []
    offset = 0
    type_names = {kind: kind.name for kind in set(types)}
    for name, tensor_shape, rows, kind in zip(layout.names, layout.shapes, layout.rows, types, strict=True):
        # what TensorInfo's n_bytes, n_elements and type_name say: ggml_nbytes (rows × one row's), the values
        row = row_bytes(kind, tensor_shape[0] if tensor_shape else 1)
        n_elements = rows * tensor_shape[0] if tensor_shape else 1
        tensors.append(tensor_with_bytes(name, tensor_shape, kind, offset, rows * row, n_elements, type_names[kind]))
        offset += -(-(rows * row) // GGUF_ALIGNMENT) * GGUF_ALIGNMENT
    arch = hp.arch
    meta: dict[str, object] = {
        "general.architecture": arch,
        "general.file_type": quant_type(quant).ftype,
        f"{arch}.block_count": hp.n_layer,
        f"{arch}.context_length": shape.context_length,
        f"{arch}.embedding_length": hp.n_embd,
        f"{arch}.feed_forward_length": hp.n_ff,
        f"{arch}.attention.head_count": hp.n_head,
        f"{arch}.attention.head_count_kv": hp.n_head_kv,
        f"{arch}.attention.key_length": hp.n_embd_head,
        f"{arch}.attention.value_length": hp.n_embd_head,
        "tokenizer.ggml.tokens": ArraySummary(GGUF_STRING, hp.n_vocab),
    }
    if hp.n_expert:
        meta[f"{arch}.expert_count"] = hp.n_expert
        meta[f"{arch}.expert_used_count"] = hp.n_expert_used
    if shape.sliding_window:
        meta[f"{arch}.attention.sliding_window"] = shape.sliding_window
        if shape.swa_pattern:
            meta[f"{arch}.attention.sliding_window_pattern"] = shape.swa_pattern
    data_offset = _metadata_bytes(hp) + layout.info_bytes
    data_offset = -(-data_offset // GGUF_ALIGNMENT) * GGUF_ALIGNMENT
    return GGUFHeader(
        version=3, metadata=meta, tensors=tensors, data_offset=data_offset, file_size=data_offset + offset
    )


def _metadata_bytes(hp: HyperParams) -> int:
    if hp.arch in SENTENCEPIECE_ARCHES or hp.n_vocab <= SENTENCEPIECE_MAX_VOCAB:
        return estimate_metadata_bytes(hp.n_vocab, scores=True)
    return estimate_metadata_bytes(hp.n_vocab, n_merges=hp.n_vocab)
