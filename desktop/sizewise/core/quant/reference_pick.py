"""Which file to compare a quant against: the highest-precision version of the same model on this machine.

"The same model" means the same architecture and the same number of parameters (quantizing changes how
weights are stored, never how many there are) — read from the headers, not guessed from file names.
Ties go to the larger file. The model itself counts: when it is the most precise one there is, there is no
reference and a quality run gives perplexity only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sizewise.core.quant.types import source_bits


@dataclass(frozen=True)
class Candidate:
    path: str
    architecture: str
    parameters: int
    quantization: str
    size_bytes: int

    @property
    def bits(self) -> float:
        return source_bits(None, self.quantization)


def pick_reference(model: Candidate, others: Iterable[Candidate]) -> Candidate | None:
    same = [
        c
        for c in others
        if c.architecture == model.architecture and c.parameters == model.parameters and c.parameters > 0
    ]
    best = max([model, *same], key=lambda c: (c.bits, c.size_bytes, c.path == model.path))
    if best.path == model.path or best.bits <= model.bits:
        return None
    return best
