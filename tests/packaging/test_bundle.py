"""The frozen PyInstaller bundle (packaging/build.sh → dist/sizewise) runs its smoke test.

Skipped, saying so, when no bundle has been built. The test starts the bundle with a clean
environment and a fresh base dir: the engine worker must start through the frozen executable
(multiprocessing spawn), llama.cpp's libraries must load from the bundle, and nothing may be
loaded from the Python installation or venv the bundle was built from.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from sizewise import __version__
from tests.smoke_helpers import basedir_with_starter, check_report, run_smoke

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "dist" / "sizewise"
EXE = BUNDLE / "sizewise"

pytestmark = [
    pytest.mark.bundle,
    pytest.mark.skipif(not EXE.is_file(), reason=f"no bundle at {EXE}: build one with packaging/build.sh"),
]


def _bundle_size() -> int:
    return sum(p.stat().st_size for p in BUNDLE.rglob("*") if p.is_file() and not p.is_symlink())


def test_frozen_smoke_test(smollm2_path: Path, tmp_path: Path) -> None:
    built = time.strftime("%Y-%m-%d %H:%M", time.localtime(EXE.stat().st_mtime))
    base = basedir_with_starter(tmp_path / "base", smollm2_path)
    result = run_smoke([str(EXE), "--basedir", str(base)], home=tmp_path)
    report = check_report(result)
    assert report["frozen"] is True, f"{EXE} (built {built}) is not a frozen app"
    assert report["version"] == __version__, f"the bundle (built {built}) is {report['version']}: rebuild it"
    assert report["model_source"] == "app data folder"
    assert report["outside_bundle"] == [], "the bundle loaded files from outside itself"
    print(f"bundle: {_bundle_size() / 1e6:.1f} MB (built {built})")


def test_frozen_smoke_test_says_why_it_fails(tmp_path: Path) -> None:
    """No starter model anywhere the bundle looks: exit 1 and the reason, not a traceback."""
    result = run_smoke([str(EXE), "--temp-basedir"], home=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("smoke test failed: The starter model is not installed."), result.stderr
    assert "Traceback" not in result.stderr


def test_bundle_layout() -> None:
    internal = BUNDLE / "_internal"
    libs = {p.name for p in (internal / "llama_cpp" / "lib").iterdir()}
    assert {"libllama.so", "libggml.so", "libggml-base.so", "libggml-cpu.so"} <= libs  # where llama_cpp loads them
    resources = internal / "sizewise" / "resources"  # the first folder core.resources looks in
    for name in (
        "presets.json",
        "targets.json",
        "writing_actions.json",
        "icons/sizewise-256.png",
        "io.github.sizewise.Sizewise.desktop",
        "licenses/index.json",
    ):
        assert (resources / name).is_file(), name
    # No second Qt binding, no QML/WebEngine.
    for unwanted in (
        "PyQt5",
        "PyQt6",
        "PySide2",
        "PySide6/Qt/qml",
        "PySide6/QtWebEngineCore.abi3.so",
        "PySide6/QtQml.abi3.so",
        "PySide6/QtQuick.abi3.so",
    ):
        assert not (internal / unwanted).exists(), unwanted
    assert _bundle_size() < 250e6, f"bundle is {_bundle_size() / 1e6:.1f} MB; the goal is under 250 MB"


def test_version() -> None:
    started = time.monotonic()
    out = subprocess.run(
        [str(EXE), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")},
    )
    took = time.monotonic() - started
    assert out.returncode == 0 and out.stdout.strip() == f"sizewise {__version__}", out
    print(f"\nbundle --version: {took:.2f} s")
