"""A ladder cell checked against its Hub file's header (core/ladder/hub_refresh.py), through huggingface_hub
against the local Hub stand-in (tests/hub_server.py): the real Gemma-3-270M Q4_K_M file is served there under
the catalogue's repository id, unsloth/gemma-3-270m-it-GGUF."""

from __future__ import annotations

from pathlib import Path

import pytest

from sizewise.core.errors import UserError
from sizewise.core.fit.memory_model import Backend
from sizewise.core.fit.verdict import Budget, check_fit
from sizewise.core.gguf.header import read_header
from sizewise.core.ladder.catalogue_rows import ladder_rows
from sizewise.core.ladder.cells import LadderModel, ladder_cell
from sizewise.core.ladder.hub_refresh import refresh_cell
from sizewise.core.sampling import LoadParams
from sizewise.core.speed.predicted import Devices
from sizewise.core.speed.profile import SpeedProfile
from tests.hub_fixtures import closed_port
from tests.hub_server import HubServer

GiB = 1 << 30
BUDGET = Budget(6 * GiB, 0, "a 6 GiB test budget", Backend(repack=False))
DEVICES = Devices(SpeedProfile(bw_effective=20e9, t_fixed=0.002, source="measured", device="test CPU"))
PARAMS = LoadParams(n_ctx=4096)
MAX_SHARE = 0.02  # issue 13: "remote read ≤ 2%"


def _model(name: str) -> LadderModel:
    return next(m for m in ladder_rows().models if m.name == name)


def test_a_cell_is_judged_on_the_hub_files_header_reading_at_most_two_percent(
    hub_server: HubServer, gemma_path: Path
) -> None:
    model = _model("Gemma 3 270M Instruct")
    found = refresh_cell(model, "Q4_K_M", BUDGET, DEVICES, PARAMS)
    served = sum(r.body_bytes for r in hub_server.requests if r.method == "GET" and "/lfs/" in r.path)
    print(f"\nread {found.bytes_fetched} of {found.file_bytes} bytes ({found.fetched_share:.2%}); server sent {served}")
    assert found.file == "gemma-3-270m-it-Q4_K_M.gguf" and found.cell.from_file == found.file
    assert found.file_bytes == found.cell.file_bytes == gemma_path.stat().st_size
    assert 0 < found.bytes_fetched <= MAX_SHARE * found.file_bytes
    assert 0 < served <= MAX_SHARE * found.file_bytes  # what crossed the wire, counted by the server
    # The same judgement as `fit` on the downloaded file: same verdict, same memory.
    local = check_fit(read_header(gemma_path), PARAMS, BUDGET, "auto", with_max_ctx=False)
    assert (found.cell.verdict, found.cell.ram_bytes) == (local.verdict, local.prediction.ram_bytes)
    # The virtual cell was close; the refreshed one is the file itself (its metadata, its tensors).
    virtual = ladder_cell(model, "Q4_K_M", BUDGET, DEVICES, PARAMS)
    assert virtual.from_file == "" and abs(virtual.file_bytes - found.cell.file_bytes) < 0.02 * found.file_bytes
    assert found.cell.to_dict()["from_file"] == found.file


def test_a_repository_the_hub_does_not_have_and_an_unreachable_hub_are_one_sentence_each(
    hub_server: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    smol = _model("SmolLM2 135M Instruct")  # bartowski/… is not on the stand-in
    with pytest.raises(UserError) as missing:
        refresh_cell(smol, "Q4_K_M", BUDGET, DEVICES, PARAMS)
    assert smol.repo_id in str(missing.value) and "\n" not in str(missing.value)
    gemma = _model("Gemma 3 270M Instruct")
    with pytest.raises(UserError) as no_quant:
        refresh_cell(gemma, "Q2_K", BUDGET, DEVICES, PARAMS)
    assert "no Q2_K file" in str(no_quant.value) and "Q4_K_M" in str(no_quant.value)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(UserError) as offline:
        refresh_cell(gemma, "Q4_K_M", BUDGET, DEVICES, PARAMS)
    assert "\n" not in str(offline.value)
    print("\n" + "\n".join(str(e.value) for e in (missing, no_quant, offline)))
