"""One ladder cell judged again on the real file's header, read from the Hub by HTTP ranges.

Why: a cell is worked out on a virtual header (the catalogue's hyper-parameters and llama.cpp's type rules),
whose metadata size is an estimate and whose repository may hold a file quantized another way (an importance
matrix, a newer llama.cpp's rules, extra tensors). Before a download a person can check the one cell they are
interested in against the file itself: its repository listing picks the file of that quant type (all parts
of a split model), core/hub/remote_header.py reads only the headers (a few MB, never the weights), and the
cell is judged on that header exactly as ``fit`` would judge the downloaded file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sizewise.core.fit.verdict import Budget
from sizewise.core.hub.browse import HubBrowser
from sizewise.core.hub.remote_fit import merged_header
from sizewise.core.hub.remote_header import read_remote_header
from sizewise.core.ladder.cells import READING_FLOOR_TPS, LadderCell, LadderModel, cell_from_header
from sizewise.core.sampling import LoadParams
from sizewise.core.speed.predicted import Devices


@dataclass(frozen=True)
class RefreshedCell:
    cell: LadderCell
    file: str  # the repository path (the first part's, for a split model)
    revision: str  # the commit the header was read at, or the branch when the Hub did not say
    bytes_fetched: int  # header bytes read over HTTP, all parts together
    file_bytes: int  # the whole file, all parts together

    @property
    def fetched_share(self) -> float:
        return self.bytes_fetched / self.file_bytes if self.file_bytes else 0.0


def refresh_cell(
    model: LadderModel,
    quant: str,
    budget: Budget,
    devices: Devices,
    params: LoadParams,
    floor_tps: float = READING_FLOOR_TPS,
    *,
    browser: HubBrowser | None = None,
) -> RefreshedCell:
    """The cell for ``model`` at ``quant`` from the Hub file's header. Raises UserError with one sentence when the
    Hub cannot be reached, the repository has no file of that type (or several), or the header is unreadable."""
    listing = (browser or HubBrowser()).repo_files(model.repo_id, with_fit=False)
    file = listing.find(quant=quant)
    revision = listing.commit or listing.revision
    remotes = [read_remote_header(model.repo_id, part.path, revision) for part in file.parts]
    header = merged_header([r.header for r in remotes])
    params = replace(params, n_gpu_layers=0)  # as build_ladder: the split is check_fit's "auto" choice
    cell = cell_from_header(model, quant, header, budget, devices, params, floor_tps, from_file=file.name)
    return RefreshedCell(
        cell=cell,
        file=file.name,
        revision=revision,
        bytes_fetched=sum(r.bytes_fetched for r in remotes),
        file_bytes=sum(r.file_bytes for r in remotes),
    )
