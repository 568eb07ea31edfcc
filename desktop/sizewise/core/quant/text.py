"""The text a quality run scores: the bundled public-domain excerpt (resources/quality/README.md) or the user's.

Why bounded: the whole text is tokenized in the job process and its logits are scored chunk by chunk; a
text of hundreds of MB would only be cut to ``--chunks`` anyway, so a file over ``MAX_TEXT_BYTES`` is
refused with a sentence instead of filling memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sizewise.core.errors import UserError
from sizewise.core.resources import resource_path

DEFAULT_TEXT = "quality/alice-chapters-1-2.txt"
DEFAULT_TEXT_NAME = "Alice's Adventures in Wonderland, ch. 1–2 (public domain)"
MAX_TEXT_BYTES = 32 << 20


@dataclass(frozen=True)
class QualityText:
    text: str
    name: str
    path: Path


def load_text(path: str | Path | None = None) -> QualityText:
    if path is None:
        p = resource_path(DEFAULT_TEXT)
        return QualityText(p.read_text(encoding="utf-8"), DEFAULT_TEXT_NAME, p)
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"The text file {p} does not exist.")
    size = p.stat().st_size
    if size > MAX_TEXT_BYTES:
        limit = MAX_TEXT_BYTES >> 20
        raise UserError(f"{p.name} is {size / 2**20:,.0f} MiB; quality runs take texts up to {limit} MiB.")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{p.name} is not UTF-8 text.") from exc
    except OSError as exc:
        raise UserError(f"{p} could not be read: {exc.strerror or exc}.") from exc
    if not text.strip():
        raise UserError(f"{p.name} is empty.")
    return QualityText(text, p.name, p.resolve())
