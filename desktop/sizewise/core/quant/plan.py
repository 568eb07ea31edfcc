"""What a quantization will do, decided before any work starts: the target type, where the file goes, how big
it will be, and whether the disk has room.

Why before: a person should hear "IQ2_XS needs an importance matrix" or "only 80 MB free, 105 MB needed" in a
second, not after a minute of work or with a half-written file. The rules:

* The output is never an existing file: Sizewise does not overwrite a model, ever (``--out`` included).
* It is written under a hidden temporary name in the same folder and renamed only when complete
  (engine/quant/quantize.py), so neither the Library nor a file browser ever shows a partial model.
* The size estimate here is nominal (parameters × the type's bits); the engine replaces it with llama.cpp's
  own dry run before writing, and checks free space again against that.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from sizewise.core.atomic import pid_alive
from sizewise.core.errors import UserError
from sizewise.core.gguf.header import GGUFError, header_int, model_info, read_header
from sizewise.core.quant.types import Availability, QuantType, quant_type, targets_for

# Where quants go unless the person chooses a file: a folder of Sizewise's own, under its data folder.
MADE_HERE_SUBFOLDER = "models"
# Free space to leave beyond the file itself: the file system needs some, and other programs too.
DISK_MARGIN_BYTES = 64 << 20
PARTIAL_PREFIX = ".sizewise-partial-"
IMATRIX_UNSUPPORTED = (
    "Importance matrices are not supported: llama-cpp-python's llama_model_quantize takes the matrix as an "
    "in-memory C++ map, which Python cannot build, and the binding has no call that reads an imatrix file. "
    "Types that need one (IQ1_*, IQ2_XXS/XS/S/M, Q2_K_S) are therefore not offered."
)

_QUANT_SUFFIX = re.compile(
    r"[-._](?:f32|f16|bf16|q\d(?:_[0-9a-z]+)*|iq\d(?:_[0-9a-z]+)*|tq\d_0|mxfp4(?:_moe)?)$", re.IGNORECASE
)


@dataclass(frozen=True)
class SourceFacts:
    path: Path
    name: str
    architecture: str
    parameters: int
    quantization: str
    ftype: int | None
    file_bytes: int
    tensor_bytes: int
    is_moe: bool


def read_source(path: str | Path) -> SourceFacts:
    p = Path(path).expanduser()
    try:
        header = read_header(p)
        info = model_info(p, header)
    except GGUFError as exc:
        raise UserError(str(exc)) from exc
    if info.split_count > 1:
        raise UserError(f"{p.name} is split into {info.split_count} files; quantizing split models is not supported.")
    ft = header.get("general.file_type")
    return SourceFacts(
        path=p.resolve(),
        name=info.name,
        architecture=info.architecture,
        parameters=info.parameters,
        quantization=info.quantization,
        ftype=ft if isinstance(ft, int) and not isinstance(ft, bool) else None,
        file_bytes=info.file_bytes,
        tensor_bytes=header.data_bytes,
        is_moe=header_int(header.arch_key("expert_count")) > 1,
    )


def choices_for(source: SourceFacts) -> list[Availability]:
    """The target types to offer for this source, allowed or with the reason they are not."""
    return targets_for(ftype=source.ftype, label=source.quantization, is_moe=source.is_moe)


def made_here_folder(data_dir: Path) -> Path:
    """The default folder for new quants (the CLI's and the Library's): ``<data dir>/models``."""
    return data_dir / MADE_HERE_SUBFOLDER


def output_stem(source: Path) -> str:
    """The file name without a trailing quant label: ``SmolLM2-135M-Instruct.Q4_1`` → ``SmolLM2-135M-Instruct``."""
    return _QUANT_SUFFIX.sub("", source.stem)


def default_output(source: Path, target: QuantType, folder: Path) -> Path:
    return folder / f"{output_stem(source)}-{target.name}.gguf"


def partial_path(out: Path, token: str) -> Path:
    """Where the quantizer writes before the rename: hidden, same folder (so the rename is atomic)."""
    return out.with_name(f"{PARTIAL_PREFIX}{token}-{out.name}")


@dataclass(frozen=True)
class QuantizePlan:
    source: SourceFacts
    target: QuantType
    out: Path
    estimated_bytes: int
    warning: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "source": str(self.source.path),
            "source_quantization": self.source.quantization,
            "type": self.target.name,
            "out": str(self.out),
            "estimated_bytes": self.estimated_bytes,
            "warning": self.warning,
        }


def estimate_bytes(source: SourceFacts, target: QuantType) -> int:
    """Nominal size: the source's metadata plus every weight at the type's bits (refined by the dry run)."""
    metadata = max(0, source.file_bytes - source.tensor_bytes)
    return metadata + int(source.parameters * target.bits / 8)


def check_free_space(folder: Path, need_bytes: int) -> None:
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < need_bytes + DISK_MARGIN_BYTES:
        raise UserError(
            f"Not enough free disk space in {folder}: the new file needs about {need_bytes / 2**20:,.0f} MiB "
            f"and {free / 2**20:,.0f} MiB is free. Free some space or choose another folder."
        )


def plan_quantize(
    source_path: str | Path,
    type_name: str,
    *,
    out: str | Path | None,
    default_folder: Path,
    imatrix: str | Path | None = None,
) -> QuantizePlan:
    """Check everything that can be checked before work starts; UserError says what is wrong and what to do."""
    if imatrix is not None:
        raise UserError(IMATRIX_UNSUPPORTED)
    try:
        target = quant_type(type_name)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    source = read_source(source_path)
    avail = next(a for a in choices_for(source) if a.type == target)
    if not avail.allowed:
        raise UserError(avail.reason)
    dest = Path(out).expanduser() if out is not None else default_output(source.path, target, default_folder)
    if dest.suffix.lower() != ".gguf":
        raise UserError(f"The output file must end in .gguf: {dest}")
    dest = dest.resolve()
    if dest == source.path:
        raise UserError("The output file cannot be the source file.")
    if dest.exists():
        raise UserError(f"{dest} already exists; Sizewise never overwrites a model. Choose another file name.")
    if dest.parent.exists() and not dest.parent.is_dir():
        raise UserError(f"{dest.parent} is not a folder.")
    estimate = estimate_bytes(source, target)
    check_free_space(dest.parent, estimate)
    return QuantizePlan(source=source, target=target, out=dest, estimated_bytes=estimate, warning=avail.reason)


def clean_stale_partials(folder: Path) -> list[Path]:
    """Delete partial files whose writer is gone (an app that crashed or was killed mid-quantize)."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for f in folder.glob(f"{PARTIAL_PREFIX}*"):
        pid_text = f.name[len(PARTIAL_PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit() and pid_alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            f.unlink()
            removed.append(f)
    return removed
