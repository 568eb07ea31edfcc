"""Child script for the type-rule tests: llama.cpp's own ``llama_model_quantize`` on one source file, for each file
type named, as a dry run (per-tensor types from its log, written for every type, imatrix ones included) and
as a real run into ``<out_dir>/<TYPE>.gguf``. Prints one JSON object.

Run as ``python tests/quantize_all.py SOURCE OUT_DIR [--tensor-type=PATTERN=GGML_TYPE_NUMBER ...] TYPE ...
[--dry-only TYPE ...]``: in a subprocess, since a pytest process must never import llama_cpp
(tests/gui/shell/test_process_isolation.py). Types after ``--dry-only`` get the dry run only (the real run of a
big model costs seconds a type); each ``--tensor-type`` is one of llama-quantize's ``--tensor-type`` overrides
(``tt_overrides``), the type by its ggml number.
"""

from __future__ import annotations

import ctypes
import json
import re
import sys
import time
from typing import Any

import llama_cpp

_LINE = re.compile(r"^\[\s*\d+/\s*\d+\]\s+(\S+)\s+- \[[^\]]*\], type =\s*(\S+),(.*)$")
_TARGET = re.compile(r"\((\w+)\)\s*$")
_FALLBACK = re.compile(r"(\d+) of (\d+) tensor\(s\) required fallback")

_chunks: list[str] = []


def _on_log(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
    _chunks.append(text.decode("utf-8", errors="replace"))


_CALLBACK = llama_cpp.llama_log_callback(_on_log)  # kept referenced: llama.cpp calls it until exit


_OVERRIDE = "--tensor-type="
_overrides: ctypes.Array[llama_cpp.llama_model_tensor_override] | None = None  # kept referenced while quantizing


def _set_overrides(specs: list[str]) -> None:
    global _overrides
    pairs = [spec.removeprefix(_OVERRIDE).rsplit("=", 1) for spec in specs]
    _overrides = (llama_cpp.llama_model_tensor_override * (len(pairs) + 1))()
    for i, (pattern, kind) in enumerate(pairs):
        _overrides[i].pattern = pattern.encode()
        _overrides[i].type = int(kind)
    _overrides[len(pairs)].pattern = None  # the list ends with a null pattern


def _run(src: str, dst: str, ftype: int, dry: bool) -> tuple[int, list[str]]:
    _chunks.clear()
    p = llama_cpp.llama_model_quantize_default_params()
    if _overrides is not None:
        p.tt_overrides = ctypes.cast(_overrides, ctypes.POINTER(llama_cpp.llama_model_tensor_override))
    p.ftype = ftype
    p.allow_requantize = True
    p.nthread = 2
    p.dry_run = dry
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    return int(rc), "".join(_chunks).split("\n")


def _ftype(name: str) -> int:
    prefix = "LLAMA_FTYPE_ALL_" if name == "F32" else "LLAMA_FTYPE_MOSTLY_"
    return int(getattr(llama_cpp, prefix + name))


def _error(lines: list[str]) -> str:
    return next((s.strip() for s in reversed(lines) if "failed to quantize" in s or "ERROR" in s), "")


def main(argv: list[str]) -> dict[str, Any]:
    src, out_dir, *rest = argv
    specs = [a for a in rest if a.startswith(_OVERRIDE)]
    rest = [a for a in rest if not a.startswith(_OVERRIDE)]
    if specs:
        _set_overrides(specs)
    dry_only = set(rest[rest.index("--dry-only") + 1 :]) if "--dry-only" in rest else set()
    names = [n for n in rest if n != "--dry-only"]
    llama_cpp.llama_log_set(_CALLBACK, ctypes.c_void_p(0))
    results: dict[str, Any] = {}
    for name in names:
        ftype = _ftype(name)
        rc, lines = _run(src, f"{out_dir}/{name}.dry", ftype, dry=True)
        types: dict[str, str] = {}
        for line in lines:
            m = _LINE.match(line)
            if m:
                target = _TARGET.search(m[3])
                types[m[1]] = (target[1] if target else m[2]).upper()
        fallback = next((int(m[1]) for m in map(_FALLBACK.search, lines) if m), 0)
        entry: dict[str, Any] = {
            "dry_rc": rc,
            "dry_types": types,
            "dry_fallback": fallback,
            "dry_needs_imatrix": any("will require an imatrix" in line for line in lines),
            "dry_error": _error(lines),
        }
        if name not in dry_only:
            t0 = time.perf_counter()
            rc, lines = _run(src, f"{out_dir}/{name}.gguf", ftype, dry=False)
            entry |= {"rc": rc, "error": _error(lines), "seconds": round(time.perf_counter() - t0, 3)}
        results[name] = entry
    return results


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
