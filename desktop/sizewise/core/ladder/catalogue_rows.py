"""The ladder's rows: the catalogue's families (resources/catalogue.json) as shapes a virtual header is built from.

A family whose architecture core/quant/shapes.py cannot lay out tensor by tensor (none in the catalogue now;
a shared expert, n_ff_shexp, is not laid out either) is left out rather than approximated, and ``skipped``
says which and why, so the page and the CLI can say so.
"""

from __future__ import annotations

from dataclasses import dataclass

from sizewise.core.hub.catalogue import Family, load_catalogue
from sizewise.core.ladder.cells import LadderModel
from sizewise.core.ladder.virtual_header import CatalogueShape
from sizewise.core.quant.shapes import ARCHES, HyperParams

# Gemma 3's config pads its vocabulary to 262,208 rows; llama.cpp's converter drops the 64 padding rows, so its
# GGUFs hold 262,144 tokens (the catalogue keeps the config's number, with a note).
GEMMA3_GGUF_VOCAB = 262_144


@dataclass(frozen=True)
class Rows:
    models: list[LadderModel]
    skipped: list[str]  # "Some MoE (arch)" …: families the ladder leaves out

    def note(self) -> str:
        if not self.skipped:
            return ""
        return (
            f"not in the ladder yet: {', '.join(self.skipped)} — their architectures' tensor lists are not "
            "reproduced, so their sizes per quant would be guesses"
        )


def ladder_model(f: Family) -> LadderModel:
    vocab = GEMMA3_GGUF_VOCAB if f.arch == "gemma3" and f.n_vocab > GEMMA3_GGUF_VOCAB else f.n_vocab
    hyper = HyperParams.from_shape(f, n_vocab=vocab)
    shape = CatalogueShape(hyper, f.context_length, sliding_window=f.swa_window, swa_pattern=f.swa_pattern)
    return LadderModel(f.name, f.repo_id, f.params, f.active_params or f.params, shape)


def ladder_rows(families: list[Family] | None = None) -> Rows:
    models, skipped = [], []
    for f in families if families is not None else load_catalogue():
        if f.arch in ARCHES and not f.n_ff_shexp:
            models.append(ladder_model(f))
        else:
            skipped.append(f"{f.name} ({f.arch})")
    models.sort(key=lambda m: m.params)
    return Rows(models, skipped)


def ladder_models() -> list[LadderModel]:
    return ladder_rows().models
