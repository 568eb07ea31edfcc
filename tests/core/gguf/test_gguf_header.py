from pathlib import Path

import pytest

from sizewise.core.gguf.header import GGUFError, TensorInfo, model_info, read_header, tensor_with_bytes
from tests.ggufs import write_truncated_copy, write_unknown_arch


def test_reads_smollm2(smollm2_path: Path) -> None:
    info = model_info(smollm2_path)
    assert info.architecture == "llama"
    assert info.quantization == "Q4_1"
    assert 130e6 < info.parameters < 140e6
    assert info.context_length == 8192
    assert info.n_layers == 30
    assert info.vocab_size == 49152
    assert info.has_chat_template


def test_reads_gemma3(gemma_path: Path) -> None:
    info = model_info(gemma_path)
    assert info.architecture == "gemma3"
    assert info.quantization == "Q4_K_M"
    assert info.n_layers == 18
    assert info.vocab_size == 262144
    assert not info.has_chat_template
    h = read_header(gemma_path)
    assert h.arch_key("attention.sliding_window") == 512


def test_not_gguf(tmp_path: Path) -> None:
    p = tmp_path / "notes.gguf"
    p.write_text("hello, this is not a model at all" * 10)
    with pytest.raises(GGUFError, match="not a GGUF model file"):
        model_info(p)


def test_missing(tmp_path: Path) -> None:
    with pytest.raises(GGUFError, match="does not exist"):
        model_info(tmp_path / "nope.gguf")


@pytest.mark.parametrize("keep", [10, 1000, 2_000_000, 50_000_000])
def test_truncated(smollm2_path: Path, tmp_path: Path, keep: int) -> None:
    p = write_truncated_copy(smollm2_path, tmp_path / "cut.gguf", keep)
    with pytest.raises(GGUFError, match=r"truncated|too small|incomplete|ended early"):
        model_info(p)


def test_unknown_arch_header_is_readable(tmp_path: Path) -> None:
    info = model_info(write_unknown_arch(tmp_path / "odd.gguf"))
    assert info.architecture == "sizewise-nonexistent-arch"


def test_the_tables_read_without_gguf_agree_with_gguf() -> None:
    """header.py names and sizes known types and file types from its own tables (no gguf/numpy import on the
    ladder's path); each entry must be what the gguf-based tables say, which they replace only as a fast path."""
    from sizewise.core.gguf import header

    assert header._KNOWN_FILE_TYPES.items() <= header._file_type_names().items()
    assert header._KNOWN_SIZES.items() <= header._type_sizes().items()
    assert header._KNOWN_NAMES.items() <= header._type_names().items()


def test_a_tensor_made_with_its_bytes_is_the_dataclass_s_and_reads_are_kept() -> None:
    """tensor_with_bytes skips the frozen dataclass's __init__: it must still make an equal TensorInfo, whose
    n_bytes, n_elements and type_name read as the dataclass's own (worked out once, then kept)."""
    made = TensorInfo("blk.0.ffn_down.weight", (11008, 4096), 12, 64)  # Q4_K: 256 values in 144 bytes
    fast = tensor_with_bytes(
        "blk.0.ffn_down.weight", (11008, 4096), 12, 64, 11008 // 256 * 144 * 4096, 11008 * 4096, "Q4_K"
    )
    assert vars(fast).keys() >= {"n_bytes", "n_elements", "type_name"}  # kept before any read
    assert fast == made and hash(fast) == hash(made) and type(fast) is TensorInfo
    assert (fast.n_bytes, fast.n_elements, fast.type_name) == (made.n_bytes, made.n_elements, made.type_name)
    assert vars(fast) == vars(made)  # the same fields, and the same values kept after the first reads
    unknown = TensorInfo("x.weight", (32, 2), 999, 0)
    for _ in range(2):  # an unknown type keeps nothing: it raises on every read
        with pytest.raises(GGUFError):
            unknown.n_bytes  # noqa: B018
