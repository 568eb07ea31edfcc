"""GGUF header reading: metadata and the tensor table, from a local file or any byte source.

The parser streams the header through a small ``ByteSource`` interface so the same code reads a
local file and (through HTTP Range reads) a file on the Hub. It never trusts a declared length:
every count and string size is checked against hard limits and against the bytes that remain
before anything is allocated, so a hostile header cannot make it allocate 2^40 bytes or loop
over 2^60 tensors. Type sizes come from the ``gguf`` package so new quant types are picked up
with it.
"""

from __future__ import annotations

import contextlib
import mmap
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO, Generic, Protocol, TypeVar, overload

from sizewise.core.gguf.ggml_types import BLOCKS, GGMLType

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)

# Hard limits: far above any real model, far below what would hurt to allocate.
MAX_TENSORS = 1 << 20
MAX_KV = 1 << 16
MAX_STRING_BYTES = 16 << 20
MAX_ARRAY_ITEMS = 1 << 24
MAX_DIMS = 8
KEPT_ARRAY_ITEMS = 4096  # longer arrays (tokenizer vocabularies) are skipped, only their length kept

_SCALAR_FORMATS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
_U64 = struct.Struct("<Q")


# The types ggml_types knows, which win over gguf's tables anyway (_type_sizes, _type_names): looked up first,
# so that the sizes and names of every type Sizewise writes or the catalogue uses cost no import of gguf (and
# numpy with it, ~0.15 s of a cold `sizewise ladder`) and no enum lookup per tensor.
_KNOWN_SIZES: dict[int, tuple[int, int]] = {int(t): bn for t, bn in BLOCKS.items()}
_KNOWN_NAMES: dict[int, str] = {int(t): t.name for t in GGMLType}


@cache
def _type_sizes() -> dict[int, tuple[int, int]]:
    """ggml type id → (block size, bytes per block), from the gguf package.

    Imported on first use: gguf pulls in numpy (~0.3 s), which the app's start-up does not need.
    """
    from gguf import GGML_QUANT_SIZES

    # ggml_types' table wins: it follows the vendored ggml (tested against it), and gguf 0.19 predates Q2_0,
    # so a Q2_0 file (one Sizewise can make) was "unknown type (42)". gguf's keeps the ids ggml retired.
    sizes = {int(t): (int(b), int(n)) for t, (b, n) in GGML_QUANT_SIZES.items()}
    sizes.update({int(t): bn for t, bn in BLOCKS.items()})
    return sizes


@cache
def _type_names() -> dict[int, str]:
    from gguf import GGMLQuantizationType

    names = {int(t): t.name for t in GGMLQuantizationType}
    names.update({int(t): t.name for t in GGMLType})
    return names


class GGUFError(ValueError):
    """The file is not a readable GGUF model; the message is one sentence for a person."""


class ByteSource(Protocol):
    """Sequential reads from the start of a GGUF file."""

    def read(self, n: int) -> bytes: ...

    @property
    def size(self) -> int: ...


class FileSource:
    def __init__(self, fh: BinaryIO, size: int, mapped: mmap.mmap | None = None) -> None:
        self._fh = fh
        self._size = size
        # The whole file mapped read-only, when the OS allows: lets the string-array walk below read lengths
        # in place instead of one read call per string (a 262k-token vocabulary: ~0.3 s → a few tens of ms).
        self.mapped = mapped

    def read(self, n: int) -> bytes:
        return self._fh.read(n)

    def skip(self, n: int) -> None:
        """Move past ``n`` bytes without reading them (large arrays whose content is not kept)."""
        self._fh.seek(n, 1)

    @property
    def size(self) -> int:
        return self._size


_V = TypeVar("_V")


class _kept(Generic[_V]):
    """A property worked out on first read and kept in the instance's ``__dict__``, where later reads find it.

    Why: the memory and speed models read a tensor's ``n_bytes``, ``n_elements`` and ``type_name`` several times
    each (the ladder's ~90k virtual tensors, several times per verdict for the output matrix), and as plain
    properties they were worked out anew each time. Exact because a TensorInfo is frozen and its fields (a str,
    a tuple of ints, two ints) cannot change under it. A non-data descriptor, so the kept value shadows it; a read
    that raises (an unknown type's ``n_bytes``) keeps nothing and raises again next time. Unlike
    functools.cached_property it takes no lock (Python 3.11's does, on every first read).
    """

    def __init__(self, fn: Callable[[Any], _V]) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _kept[_V]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _V: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> _V | _kept[_V]:
        if obj is None:
            return self
        value = self.fn(obj)
        obj.__dict__[self.name] = value
        return value


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int  # relative to the start of the data section

    @_kept
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @_kept
    def type_name(self) -> str:
        name = _KNOWN_NAMES.get(self.ggml_type)
        if name is not None:
            return name
        try:
            return _type_names()[self.ggml_type]
        except KeyError:
            return f"type{self.ggml_type}"

    @_kept
    def n_bytes(self) -> int:
        known = _KNOWN_SIZES.get(self.ggml_type)
        if known is None:
            try:
                known = _type_sizes()[self.ggml_type]
            except (ValueError, KeyError) as exc:
                raise GGUFError(f"Tensor {self.name!r} has an unknown type ({self.ggml_type}).") from exc
        block, size = known
        return self.n_elements // block * size


def tensor_with_bytes(
    name: str, shape: tuple[int, ...], ggml_type: int, offset: int, n_bytes: int, n_elements: int, type_name: str
) -> TensorInfo:
    """``TensorInfo(name, shape, ggml_type, offset)`` for a caller that has its ``n_bytes``, ``n_elements`` and
    ``type_name`` already (the ladder's virtual headers: ~90k tensors, core/ladder/virtual_header.py), made in
    about half the time and read without working them out.

    The same object the dataclass makes (its fields in ``__dict__``), less the four ``object.__setattr__`` calls
    of a frozen dataclass's ``__init__``, with the three kept as ``_kept`` would keep them on first read: the
    caller vouches that they are what those reads would say. tests/core/gguf/test_gguf_header.py holds it equal.
    """
    info = _new_object(TensorInfo)
    info.__dict__.update(
        name=name,
        shape=shape,
        ggml_type=ggml_type,
        offset=offset,
        n_bytes=n_bytes,
        n_elements=n_elements,
        type_name=type_name,
    )
    return info


_new_object = object.__new__


@dataclass(frozen=True)
class ArraySummary:
    """An array too long to keep (e.g. the token list): its element type and length only."""

    item_type: int
    length: int


@dataclass
class GGUFHeader:
    version: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo]
    data_offset: int  # absolute offset where tensor data begins
    file_size: int
    header_bytes_read: int = 0
    warnings: list[str] = field(default_factory=list)

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    @property
    def architecture(self) -> str:
        return str(self.get("general.architecture", "unknown"))

    def arch_key(self, suffix: str, default: Any = None) -> Any:
        return self.get(f"{self.architecture}.{suffix}", default)

    @property
    def data_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors)

    @property
    def expected_min_size(self) -> int:
        """Bytes a complete file must have: the end of the last tensor's data."""
        if not self.tensors:
            return self.data_offset
        return self.data_offset + max(t.offset + t.n_bytes for t in self.tensors)


class _Reader:
    def __init__(self, src: ByteSource) -> None:
        self.src = src
        self.pos = 0

    def remaining(self) -> int:
        return self.src.size - self.pos

    def read(self, n: int) -> bytes:
        if n > self.remaining():
            raise GGUFError(
                f"The file is truncated or damaged: the header needs {n} more bytes at offset {self.pos}, "
                f"but only {self.remaining()} remain."
            )
        data = self.src.read(n)
        if len(data) != n:
            raise GGUFError(f"The file ended early at offset {self.pos + len(data)} (truncated download?).")
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        """Advance ``n`` bytes: sources that can seek (a file, HTTP ranges) do not fetch what is skipped."""
        if n > self.remaining():
            raise GGUFError(
                f"The file is truncated or damaged: the header needs {n} more bytes at offset {self.pos}, "
                f"but only {self.remaining()} remain."
            )
        skip = getattr(self.src, "skip", None)
        if callable(skip):
            skip(n)
            self.pos += n
            return
        while n > 0:  # bounded reads: never one allocation of the whole skipped span
            step = min(n, 1 << 20)
            self.read(step)
            n -= step

    def scalar(self, vtype: int) -> Any:
        fmt = _SCALAR_FORMATS[vtype]
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def u32(self) -> int:
        return int(self.scalar(4))

    def u64(self) -> int:
        return int(self.scalar(10))

    def string(self) -> str:
        n = self.u64()
        if n > MAX_STRING_BYTES:
            raise GGUFError(f"The header declares a {n}-byte string at offset {self.pos}; the file is damaged.")
        return self.read(n).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        mapped = getattr(self.src, "mapped", None)
        if mapped is not None:
            self._skip_strings_mapped(mapped, count)
            return
        for _ in range(count):
            n = self.u64()
            if n > MAX_STRING_BYTES:
                raise GGUFError(f"The header declares a {n}-byte string at offset {self.pos}; the file is damaged.")
            self.skip(n)

    def _skip_strings_mapped(self, mapped: mmap.mmap, count: int) -> None:
        pos, end = self.pos, self.src.size
        unpack = _U64.unpack_from
        for _ in range(count):
            if pos + 8 > end:
                raise GGUFError("The file is truncated or damaged: an array runs past the end of the file.")
            (n,) = unpack(mapped, pos)
            if n > MAX_STRING_BYTES:
                raise GGUFError(f"The header declares a {n}-byte string at offset {pos + 8}; the file is damaged.")
            pos += 8 + n
        self.skip(pos - self.pos)  # checks the end and moves the file position with ours

    def value(self, vtype: int, depth: int = 0) -> Any:
        if vtype in _SCALAR_FORMATS:
            return self.scalar(vtype)
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            if depth > 2:
                raise GGUFError("The header nests arrays too deeply; the file is damaged.")
            item_type = self.u32()
            count = self.u64()
            if count > MAX_ARRAY_ITEMS:
                raise GGUFError(f"The header declares an array of {count} items; the file is damaged.")
            if item_type in _SCALAR_FORMATS:
                width = struct.calcsize(_SCALAR_FORMATS[item_type])
                if count * width > self.remaining():
                    raise GGUFError("The file is truncated or damaged: an array runs past the end of the file.")
                if count > KEPT_ARRAY_ITEMS:
                    self.skip(count * width)
                    return ArraySummary(item_type, count)
                raw = self.read(count * width)
                return list(struct.unpack(f"<{count}{_SCALAR_FORMATS[item_type][1]}", raw))
            if item_type == _STRING:
                if count * 8 > self.remaining():
                    raise GGUFError("The file is truncated or damaged: an array runs past the end of the file.")
                if count > KEPT_ARRAY_ITEMS:
                    self.skip_strings(count)
                    return ArraySummary(item_type, count)
                return [self.string() for _ in range(count)]
            if item_type == _ARRAY:
                # every item is read (the next key starts after the last one); only the first are kept
                if count * 12 > self.remaining():
                    raise GGUFError("The file is truncated or damaged: an array runs past the end of the file.")
                items = [self.value(_ARRAY, depth + 1) for _ in range(count)]
                return items[:KEPT_ARRAY_ITEMS] if count <= KEPT_ARRAY_ITEMS else ArraySummary(item_type, count)
            raise GGUFError(f"The header has an array of unknown type {item_type}; the file is damaged.")
        raise GGUFError(f"The header has a value of unknown type {vtype} at offset {self.pos}; the file is damaged.")


def parse_header(src: ByteSource) -> GGUFHeader:
    r = _Reader(src)
    if src.size < 24:
        raise GGUFError("The file is too small to be a GGUF model.")
    magic = r.read(4)
    if magic != GGUF_MAGIC:
        raise GGUFError("This is not a GGUF model file (it does not start with the GGUF signature).")
    version = r.u32()
    if version not in SUPPORTED_VERSIONS:
        raise GGUFError(f"GGUF version {version} is not supported (expected 2 or 3).")
    n_tensors = r.u64()
    n_kv = r.u64()
    if n_tensors > MAX_TENSORS:
        raise GGUFError(f"The header claims {n_tensors} tensors; the file is damaged.")
    if n_kv > MAX_KV:
        raise GGUFError(f"The header claims {n_kv} metadata entries; the file is damaged.")
    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = r.string()
        vtype = r.u32()
        metadata[key] = r.value(vtype)
    tensors: list[TensorInfo] = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.u32()
        if n_dims > MAX_DIMS:
            raise GGUFError(f"Tensor {name!r} claims {n_dims} dimensions; the file is damaged.")
        shape = tuple(r.u64() for _ in range(n_dims))
        ggml_type = r.u32()
        offset = r.u64()
        info = TensorInfo(name, shape, ggml_type, offset)
        if any(d > 1 << 40 for d in shape) or info.n_elements > 1 << 48:
            raise GGUFError(f"Tensor {name!r} claims an impossible shape {shape}; the file is damaged.")
        info.n_bytes  # noqa: B018 - raises GGUFError for an unknown type
        tensors.append(info)
    alignment = metadata.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise GGUFError(f"The header declares an invalid alignment ({alignment!r}).")
    data_offset = (r.pos + alignment - 1) // alignment * alignment
    return GGUFHeader(
        version=version,
        metadata=metadata,
        tensors=tensors,
        data_offset=data_offset,
        file_size=src.size,
        header_bytes_read=r.pos,
    )


def read_header(path: str | Path) -> GGUFHeader:
    """Read a local file's header; raises GGUFError with a sentence a person can act on."""
    p = Path(path)
    if not p.exists():
        raise GGUFError(f"The model file {p} does not exist.")
    if p.is_dir():
        raise GGUFError(f"{p} is a folder, not a model file.")
    try:
        size = p.stat().st_size
        with p.open("rb", buffering=1 << 20) as fh:
            mapped = None
            if size > 0:
                with contextlib.suppress(OSError, ValueError):  # some file systems cannot map; read instead
                    mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            try:
                return parse_header(FileSource(fh, size, mapped))
            finally:
                if mapped is not None:
                    mapped.close()
    except PermissionError as exc:
        raise GGUFError(f"Sizewise may not read {p} (permission denied).") from exc
    except OSError as exc:
        raise GGUFError(f"{p} could not be read: {exc.strerror or exc}.") from exc


# --- Derived, user-facing facts -------------------------------------------------------------------

@cache
def _file_type_names() -> dict[int, str]:
    from gguf import LlamaFileType

    names = {
        t.value: t.name.removeprefix("MOSTLY_").removeprefix("ALL_")
        for t in LlamaFileType
        if t != LlamaFileType.GUESSED
    }
    names.update(_NEWER_FILE_TYPES)
    return names


# File types of the vendored llama.cpp that the gguf package (0.19) does not name yet.
_NEWER_FILE_TYPES = {41: "Q2_0"}
# _file_type_names() as gguf 0.19 gives it, looked up first so that naming a header's quant (the speed model
# does it for every ladder cell) does not import gguf and numpy (~0.15 s of a cold `sizewise ladder`); an id
# not here still goes to gguf. tests/core/gguf/test_gguf_header.py holds it equal to gguf's table.
_KNOWN_FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
    37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0", 41: "Q2_0",
}  # fmt: skip


def quantization_name(header: GGUFHeader) -> str:
    """The quant label people know (Q4_K_M …): the declared file type, else the dominant tensor type."""
    ft = header.get("general.file_type")
    if isinstance(ft, int):
        known = _KNOWN_FILE_TYPES.get(ft)
        if known is not None:
            return known
        if ft in _file_type_names():
            return _file_type_names()[ft]
    counts: dict[str, int] = {}
    for t in header.tensors:
        if len(t.shape) >= 2:
            counts[t.type_name] = counts.get(t.type_name, 0) + t.n_bytes
    return max(counts, key=lambda k: counts[k]) if counts else "unknown"


def header_int(value: Any, default: int = 0) -> int:
    """An integer metadata value, or ``default`` when a damaged header stores something else there."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    if isinstance(value, float) and not value.is_integer():
        return default
    return int(value)


def parameter_count(header: GGUFHeader) -> int:
    return sum(t.n_elements for t in header.tensors)


def vocab_size(header: GGUFHeader) -> int:
    tokens = header.get("tokenizer.ggml.tokens")
    if isinstance(tokens, ArraySummary):
        return tokens.length
    if isinstance(tokens, list):
        return len(tokens)
    return header_int(header.arch_key("vocab_size"))


@dataclass(frozen=True)
class ModelInfo:
    """What the app shows about a model file before loading it."""

    path: str
    file_bytes: int
    name: str
    architecture: str
    parameters: int
    quantization: str
    context_length: int
    n_layers: int
    vocab_size: int
    has_chat_template: bool
    chat_template: str | None
    split_count: int

    @property
    def parameters_label(self) -> str:
        p = self.parameters
        return f"{p / 1e9:.2f}B" if p >= 1e9 else f"{p / 1e6:.0f}M"


def model_info(path: str | Path, header: GGUFHeader | None = None) -> ModelInfo:
    """Read a model's header and check that the file is complete (a truncated download fails here)."""
    h = header or read_header(path)
    if h.file_size < h.expected_min_size:
        raise GGUFError(
            f"The model file is incomplete: it has {h.file_size:,} bytes but its header needs "
            f"{h.expected_min_size:,} (an interrupted download?)."
        )
    template = h.get("tokenizer.chat_template")
    split_count = h.get("split.count", 1)
    return ModelInfo(
        path=str(path),
        file_bytes=h.file_size,
        name=str(h.get("general.name") or Path(path).stem),
        architecture=h.architecture,
        parameters=parameter_count(h),
        quantization=quantization_name(h),
        context_length=header_int(h.arch_key("context_length")),
        n_layers=header_int(h.arch_key("block_count")),
        vocab_size=vocab_size(h),
        has_chat_template=isinstance(template, str) and bool(template.strip()),
        chat_template=template if isinstance(template, str) else None,
        split_count=int(split_count) if isinstance(split_count, int) else 1,
    )
