"""About dialog: version, the real engine's llama.cpp build, licenses from the installed packages."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from sizewise import __version__
from sizewise.core.hub.starter import STARTER_LICENSE, STARTER_NAME
from sizewise.core.report.build_info import parse_system_info
from sizewise.engine.session import EngineSession
from sizewise.gui.shell.about_dialog import AboutDialog


@pytest.fixture(scope="module")
def ready_info() -> dict[str, Any]:
    """The ready message of a real engine worker (llama-cpp-python as installed here); the worker is
    stopped at once, so no test in the module leaves it running."""
    with EngineSession() as session:
        return dict(session.start())


def _open(qtbot: QtBot, ready: dict[str, Any] | None) -> AboutDialog:
    dialog = AboutDialog(None, ready)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.table.rowCount() > 0, timeout=10_000)
    return dialog


def _rows(dialog: AboutDialog) -> dict[str, tuple[str, str, str]]:
    out = {}
    for r in range(dialog.table.rowCount()):
        name, version, lic, _role = (dialog.table.item(r, c).text() for c in range(4))
        out[name] = (version, lic, _role)
    return out


def test_shows_the_engine_build(qtbot: QtBot, ready_info: dict[str, Any]) -> None:
    dialog = _open(qtbot, ready_info)
    assert dialog.fields["version"].text() == __version__
    assert dialog.fields["llama"].text() == f"llama-cpp-python {metadata.version('llama-cpp-python')}"
    assert ("yes" if ready_info["gpu_offload"] else "no") in dialog.fields["gpu_offload"].text()
    cpu = next(b for b in parse_system_info(ready_info["system_info"]) if b.name == "CPU")
    backends = dialog.fields["backends"].text()
    assert backends.startswith("CPU (") or "+ CPU (" in backends
    for feature in cpu.enabled:  # every compiled CPU feature the engine reported is named
        assert feature in backends
    info = dialog.build_info_text()
    assert ready_info["system_info"] in info
    dialog.copy_build_info()
    assert QGuiApplication.clipboard().text() == info


def test_before_the_engine_started_it_says_so(qtbot: QtBot) -> None:
    dialog = _open(qtbot, {})
    assert "not started" in dialog.fields["llama"].text()
    assert "not started" in dialog.fields["backends"].text()


def test_licenses_match_the_installed_metadata(qtbot: QtBot, ready_info: dict[str, Any]) -> None:
    dialog = _open(qtbot, ready_info)
    rows = _rows(dialog)
    assert rows["Sizewise"][1] == "Apache-2.0"
    assert rows[STARTER_NAME][1] == STARTER_LICENSE == "Apache-2.0"
    for dist in ("llama_cpp_python", "huggingface_hub", "psutil", "platformdirs", "PySide6_Essentials"):
        meta = metadata.metadata(dist)
        assert rows[meta["Name"]][0] == meta["Version"]
        declared = meta.get("License-Expression") or meta.get("License")
        assert rows[meta["Name"]][1] == declared
    assert rows["gguf"][1] == "MIT License"  # gguf declares it only as a classifier
    assert rows["llama.cpp / ggml"][1] == "MIT"
    assert rows["Qt 6"][1] == "LGPL-3.0-only"


def test_selecting_a_component_shows_its_license_text(qtbot: QtBot) -> None:
    dialog = _open(qtbot, {})
    names = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    checks = {
        "Sizewise": "Apache License",
        "llama.cpp / ggml": "Copyright (c) 2023-2026 The ggml authors",
        "Qt 6": "GNU LESSER GENERAL PUBLIC LICENSE",
        "nvidia-ml-py": "NVIDIA Corporation",
        "pyqtgraph": "Permission is hereby granted",
    }
    for name, needle in checks.items():
        dialog.table.setCurrentCell(names.index(name), 0)
        assert needle in dialog.text.toPlainText(), name
    for r, name in enumerate(names):  # every component has a text, none falls back to "not found"
        dialog.table.setCurrentCell(r, 0)
        assert "No license text was found" not in dialog.text.toPlainText(), name


def test_a_bundle_with_the_starter_shows_its_notice_and_license(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frozen bundle built with --with-starter (its layout made in tmp_path: sys._MEIPASS/sizewise/models) lists
    the starter as bundled, Apache-2.0, with the notice saying where it comes from before the license text."""
    import sys

    from sizewise.core.hub.starter import BUNDLE_DIR, NOTICE_FILE, STARTER_FILE, starter_notice

    models = tmp_path / "_internal" / BUNDLE_DIR
    models.mkdir(parents=True)
    (models / STARTER_FILE).write_bytes(b"GGUF")
    (models / NOTICE_FILE).write_text(starter_notice(), encoding="utf-8")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "_internal"), raising=False)
    dialog = _open(qtbot, {})
    assert dialog.fields["starter"].text().endswith("Apache-2.0, bundled with this app")
    _version, lic, role = _rows(dialog)[STARTER_NAME]
    assert lic == "Apache-2.0" and role == "the starter model, bundled with this app"
    names = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    dialog.table.setCurrentCell(names.index(STARTER_NAME), 0)
    text = dialog.text.toPlainText()
    assert text.startswith(starter_notice().strip()) and "HuggingFaceTB/SmolLM2-135M-Instruct" in text
    assert "Apache License" in text and "Version 2.0" in text


def test_not_bundled_the_starter_says_so(qtbot: QtBot) -> None:
    dialog = _open(qtbot, {})
    assert _rows(dialog)[STARTER_NAME][2] == "the starter model (downloaded, not bundled)"
    assert "bundled" not in dialog.fields["starter"].text()


def test_screenshot(qtbot: QtBot, ready_info: dict[str, Any], tmp_path: Path) -> None:
    dialog = _open(qtbot, ready_info)
    target = tmp_path / "about.png"
    if out := os.environ.get("SIZEWISE_SCREENSHOT_DIR"):  # set it to look at the dialog
        target = Path(out) / "about-dialog.png"
    assert dialog.grab().save(str(target))
    assert target.stat().st_size > 10_000
