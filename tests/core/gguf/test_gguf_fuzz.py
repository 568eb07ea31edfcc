"""Hostile and broken GGUF headers: a clear GGUFError, never a crash, a hang or a huge allocation.

* Hypothesis builds well-formed headers (random metadata of every value type, nested arrays, tensor
  tables, alignments), then damages most of them — flipped bytes, a count or length overwritten with
  a huge value, a cut — at least 1000 of them. Every one must parse or raise GGUFError, and whatever
  parses must also survive model_info() and the memory model (fit on a damaged file must be a
  sentence, not a traceback).
* The two real models are cut at many offsets, inside the header and in the data.
* Headers claiming 2^60 tensors or a 2^40-byte string are rejected before anything big is allocated
  (checked with tracemalloc).
"""

from __future__ import annotations

import contextlib
import io
import random
import struct
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sizewise.core.fit.memory_model import predict
from sizewise.core.gguf.header import FileSource, GGUFError, GGUFHeader, model_info, parse_header
from sizewise.core.sampling import LoadParams

# -- a small GGUF writer (independent of the parser under test) ---------------------------------------

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def _s(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


def _value(vtype: int, value: object) -> bytes:
    if vtype in _SCALARS:
        return struct.pack(_SCALARS[vtype], value)
    if vtype == 8:
        assert isinstance(value, bytes)
        return _s(value)
    assert isinstance(value, tuple)
    item_type, items = value
    return struct.pack("<IQ", item_type, len(items)) + b"".join(_value(item_type, v) for v in items)


def _gguf(
    version: int, kvs: list[tuple[bytes, int, object]], tensors: list[tuple[bytes, tuple[int, ...], int, int]]
) -> bytes:
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, vtype, value in kvs:
        out += _s(key) + struct.pack("<I", vtype) + _value(vtype, value)
    for name, shape, ggml_type, offset in tensors:
        out += _s(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
        out += struct.pack("<IQ", ggml_type, offset)
    return out


_SCALAR_VALUES = {
    0: st.integers(0, 255),
    1: st.integers(-128, 127),
    2: st.integers(0, 65535),
    3: st.integers(-32768, 32767),
    4: st.integers(0, 2**32 - 1),
    5: st.integers(-(2**31), 2**31 - 1),
    6: st.floats(width=32, allow_nan=True),
    7: st.booleans(),
    10: st.integers(0, 2**64 - 1),
    11: st.integers(-(2**63), 2**63 - 1),
    12: st.floats(allow_nan=True),
}
_KEYS = st.sampled_from(
    [
        b"general.architecture",
        b"general.alignment",
        b"general.file_type",
        b"llama.block_count",
        b"llama.embedding_length",
        b"llama.attention.head_count",
        b"llama.attention.head_count_kv",
        b"llama.feed_forward_length",
        b"llama.context_length",
        b"llama.attention.sliding_window",
        b"tokenizer.ggml.tokens",
        b"tokenizer.chat_template",
        b"split.count",
    ]
) | st.binary(max_size=24)


@st.composite
def kv_entry(draw: st.DrawFn) -> tuple[bytes, int, object]:
    key = draw(_KEYS)
    vtype = draw(st.sampled_from([*_SCALARS, 8, 9]))
    if vtype in _SCALARS:
        return key, vtype, draw(_SCALAR_VALUES[vtype])
    if vtype == 8:
        return key, vtype, draw(st.sampled_from([b"llama", b"gemma3", b"qwen2"]) | st.binary(max_size=40))
    item_type = draw(st.sampled_from([*_SCALARS, 8, 9]))
    n = draw(st.integers(0, 12))
    if item_type in _SCALARS:
        items = tuple(draw(_SCALAR_VALUES[item_type]) for _ in range(n))
    elif item_type == 8:
        items = tuple(draw(st.binary(max_size=8)) for _ in range(n))
    else:
        items = tuple((4, tuple(draw(st.integers(0, 9)) for _ in range(draw(st.integers(0, 3))))) for _ in range(n))
    return key, vtype, (item_type, items)


@st.composite
def tensor_entry(draw: st.DrawFn) -> tuple[bytes, tuple[int, ...], int, int]:
    name = draw(
        st.sampled_from(
            [b"token_embd.weight", b"output.weight", b"blk.0.attn_q.weight", b"blk.1.ffn_up.weight", b"two\nlines"]
        )
        | st.binary(max_size=16)
    )
    shape = tuple(draw(st.lists(st.integers(1, 4096), min_size=1, max_size=4)))
    return name, shape, draw(st.sampled_from([0, 1, 2, 8, 12, 14, 99])), draw(st.integers(0, 2**20))


@st.composite
def damaged_gguf(draw: st.DrawFn) -> bytes:
    data = _gguf(
        draw(st.sampled_from([3] * 8 + [2, 1, 4])),
        draw(st.lists(kv_entry(), max_size=8)),
        draw(st.lists(tensor_entry(), max_size=6)),
    )
    damage = draw(st.sampled_from(["none", "flip", "huge", "cut", "cut", "huge"]))
    if damage == "flip" and data:
        buf = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            buf[draw(st.integers(0, len(buf) - 1))] ^= draw(st.integers(1, 255))
        data = bytes(buf)
    elif damage == "huge" and len(data) >= 16:
        at = draw(st.integers(8, len(data) - 8))
        data = data[:at] + struct.pack("<Q", draw(st.sampled_from([2**40, 2**60, 2**63, 2**64 - 1]))) + data[at + 8 :]
    elif damage == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    return data + draw(st.binary(max_size=64))


def _parse(data: bytes, size: int | None = None) -> GGUFHeader:
    return parse_header(FileSource(io.BytesIO(data), len(data) if size is None else size))  # type: ignore[arg-type]


@settings(
    max_examples=1200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(damaged_gguf())
# Found by this test in CI: no tensors, so no layers, and a one-element head_count array (IndexError).
@example(
    data=b"GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x14\x00\x00"
    b"\x00\x00\x00\x00\x00general.architecture\x08\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00llama\x1a\x00\x00"
    b"\x00\x00\x00\x00\x00llama.attention.head_count\t\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    b"\x00\x00"
)
def test_fuzzed_headers_parse_or_fail_cleanly(data: bytes) -> None:
    t0 = time.perf_counter()
    try:
        header = _parse(data)
    except GGUFError as exc:
        assert str(exc).endswith(".") and "\n" not in str(exc)
        return
    # what parses must also be describable and sizable without crashing
    with contextlib.suppress(GGUFError):
        model_info("fuzz.gguf", header)
    with contextlib.suppress(ValueError):  # "no real model has …" for absurd shapes
        predict(header, LoadParams(n_ctx=512))
    assert time.perf_counter() - t0 < 10


def _header_prefix(path: Path) -> tuple[bytes, GGUFHeader]:
    with path.open("rb") as fh:
        data = fh.read(8 << 20)
    return data, _parse(data, path.stat().st_size)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["smollm2_path", "gemma_path"])
def test_real_files_cut_at_many_offsets(model: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(model)
    data, full = _header_prefix(path)
    end = full.header_bytes_read
    rng = random.Random(20241128)
    offsets = sorted(
        {0, 1, 4, 8, 16, 23, 24, 25, end - 8, end - 1}
        | {rng.randrange(24, 65536) for _ in range(40)}  # the metadata's structure: keys, types, counts
        | {rng.randrange(65536, end) for _ in range(12)}  # inside the tokenizer arrays and the tensor table
    )
    for cut in offsets:
        with pytest.raises(GGUFError, match=r"truncated|too small|ended early|damaged|not a GGUF"):
            _parse(data[:cut])
    # cut after the header (in the alignment padding or the tensor data): the header parses, and the
    # file is reported incomplete
    for cut in (end, full.data_offset, full.data_offset + 4096, path.stat().st_size - 1):
        header = _parse(data[: full.data_offset], size=cut)
        assert header.tensors == full.tensors
        with pytest.raises(GGUFError, match="incomplete"):
            model_info(path, header)


def _peak_alloc(data: bytes) -> tuple[str, int]:
    tracemalloc.start()
    try:
        _parse(data, size=1 << 62)  # claims a huge file, so only the limits can stop it
    except GGUFError as exc:
        message = str(exc)
    else:  # pragma: no cover - would be a parser bug
        message = ""
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return message, peak


def test_huge_counts_and_strings_are_rejected_before_allocating() -> None:
    head = b"GGUF" + struct.pack("<I", 3)
    msg, peak = _peak_alloc(head + struct.pack("<QQ", 2**60, 0))
    assert "claims" in msg and "tensors" in msg and peak < 1 << 20
    msg, peak = _peak_alloc(head + struct.pack("<QQ", 0, 2**60))
    assert "metadata entries" in msg and peak < 1 << 20
    key = _s(b"general.name") + struct.pack("<I", 8)
    msg, peak = _peak_alloc(head + struct.pack("<QQ", 0, 1) + key + struct.pack("<Q", 2**40))
    assert "string" in msg and peak < 1 << 20
    arr = _s(b"tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2**40)
    msg, peak = _peak_alloc(head + struct.pack("<QQ", 0, 1) + arr)
    assert "array" in msg and peak < 1 << 20
    # a tensor name of 2^40 bytes, and a tensor with 2^40 dimensions
    msg, peak = _peak_alloc(head + struct.pack("<QQ", 1, 0) + struct.pack("<Q", 2**40))
    assert "string" in msg and peak < 1 << 20
    msg, peak = _peak_alloc(head + struct.pack("<QQ", 1, 0) + _s(b"t") + struct.pack("<I", 2**31))
    assert "dimensions" in msg and peak < 1 << 20


def test_implausible_model_shape_is_refused_by_the_memory_model() -> None:
    kvs = [
        (b"general.architecture", 8, b"llama"),
        (b"llama.block_count", 10, 2**40),
        (b"llama.embedding_length", 4, 64),
    ]
    header = _parse(_gguf(3, kvs, []))
    with pytest.raises(ValueError, match="no real model"):
        predict(header, LoadParams(n_ctx=512))
