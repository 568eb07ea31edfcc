"""Resolving what the user typed as MODEL into a checked local file."""

from __future__ import annotations

from pathlib import Path

from sizewise.core.errors import UserError
from sizewise.core.gguf.header import GGUFError, GGUFHeader, ModelInfo, model_info, read_header
from sizewise.core.hub.starter import HOW_TO_GET, find_starter


def resolve_model_path(spec: str, extra_dirs: list[Path] | None = None) -> Path:
    if spec == "starter":
        found = find_starter(extra_dirs)
        if found is None:
            raise UserError(HOW_TO_GET)
        return found.path
    path = Path(spec).expanduser()
    if not path.exists():
        raise UserError(f"The model file {path} does not exist.")
    return path


def check_model(path: Path) -> ModelInfo:
    """Read and check the header before any engine sees the file: bad files fail fast and clearly."""
    return inspect_model(path)[1]


def inspect_model(path: Path) -> tuple[GGUFHeader, ModelInfo]:
    """The header (for the memory model) and the checked summary (for people), from one read."""
    try:
        header = read_header(path)
        return header, model_info(path, header)
    except GGUFError as exc:
        raise UserError(str(exc)) from exc


def context_warning(info: ModelInfo, n_ctx: int) -> str | None:
    if info.context_length and n_ctx > info.context_length:
        return (
            f"Context length {n_ctx} is beyond the {info.context_length} tokens {info.name} was trained for; "
            "replies may degrade past that point."
        )
    return None
