"""Small GGUF files made on the fly for bad-input tests (never model weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter


def write_unknown_arch(path: Path, arch: str = "sizewise-nonexistent-arch") -> Path:
    """A well-formed GGUF whose architecture no llama.cpp build knows."""
    w = GGUFWriter(str(path), arch)
    w.add_context_length(4096)
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def write_truncated_copy(src: Path, dst: Path, keep_bytes: int) -> Path:
    with src.open("rb") as fin, dst.open("wb") as fout:
        fout.write(fin.read(keep_bytes))
    return dst


def write_template_copy(src: Path, dst: Path, chat_template: str) -> Path:
    """A copy of a real model with another ``tokenizer.chat_template`` (weights copied unchanged)."""
    import logging

    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    logging.getLogger("gguf").setLevel(logging.WARNING)
    reader = gguf.GGUFReader(str(src), "r")
    arch = str(bytes(reader.fields[gguf.Keys.General.ARCHITECTURE].parts[-1]), "utf-8")
    writer = gguf.GGUFWriter(str(dst), arch=arch, endianess=reader.endianess)
    new = {gguf.Keys.Tokenizer.CHAT_TEMPLATE: MetadataDetails(gguf.GGUFValueType.STRING, chat_template)}
    copy_with_new_metadata(reader, writer, new, [])
    return dst
