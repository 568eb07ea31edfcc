"""The frozen PyInstaller bundle (packaging/build.sh → dist/sizewise) runs its smoke test.

Skipped, saying so, when no bundle has been built. The test starts the bundle with a clean
environment and a fresh base dir: the engine worker must start through the frozen executable
(multiprocessing spawn), llama.cpp's libraries must load from the bundle, and nothing may be
loaded from the Python installation or venv the bundle was built from.

A bundle built with ``--with-starter`` (as ``scripts/setup.sh test`` builds it) must also start offline
with no base dir prepared and generate with the starter model inside it; one built without it must say
why the smoke test cannot run when no starter is anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from sizewise import __version__
from sizewise.core.hub.starter import (
    BUNDLE_DIR,
    FROM_APP_DATA,
    FROM_BUNDLE,
    NOTICE_FILE,
    STARTER_BYTES,
    STARTER_FILE,
    STARTER_NAME,
)
from tests.hub_fixtures import closed_port
from tests.smoke_helpers import basedir_with_starter, check_report, run_smoke

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "dist" / "sizewise"
EXE = BUNDLE / "sizewise"
BUNDLED_STARTER = BUNDLE / "_internal" / BUNDLE_DIR / STARTER_FILE
WITH_STARTER = BUNDLED_STARTER.is_file()  # built with packaging/build.sh --with-starter
MiB = 2**20
# Bytes, not counting links twice: 250 MB without a model, 320 MiB with the 94 MiB starter model.
SIZE_GOAL = 320 * MiB if WITH_STARTER else 250e6

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
    # A bundled starter wins over the link in the base dir: the bundle uses what it carries.
    assert report["model_source"] == (FROM_BUNDLE if WITH_STARTER else FROM_APP_DATA)
    assert report["outside_bundle"] == [], "the bundle loaded files from outside itself"
    print(f"bundle: {_bundle_size() / 1e6:.1f} MB (built {built}, {'with' if WITH_STARTER else 'without'} the starter)")


def _offline_env() -> dict[str, str]:
    """No network: huggingface_hub's offline switch, and any proxy-aware connection refused at once."""
    nowhere = f"http://127.0.0.1:{closed_port()}"
    proxies = {k: nowhere for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")}
    return {"HF_HUB_OFFLINE": "1", **proxies}


@pytest.mark.skipif(not WITH_STARTER, reason="the bundle has no starter model: build it with build.sh --with-starter")
def test_bundled_starter_starts_offline_with_no_basedir_prepared(tmp_path: Path) -> None:
    """What an offline user gets from the bundle with the starter inside: a first start in a base dir that does not
    exist yet, no network, no Python package anywhere it may look (a clean environment, and a frozen app never asks
    one), and a generated reply from the starter model inside the bundle; the Library's list names it too."""
    base = tmp_path / "fresh-base"
    env = _offline_env()
    result = run_smoke([str(EXE), "--basedir", str(base)], home=tmp_path, env_extra=env)
    report = check_report(result)
    assert report["frozen"] is True and report["model_source"] == FROM_BUNDLE
    assert Path(report["model"]) == BUNDLED_STARTER
    assert report["outside_bundle"] == [], "the bundle loaded files from outside itself"
    assert not (base / "data" / "models").exists()  # nothing was put there for it
    listed = subprocess.run(
        [str(EXE), "--basedir", str(base), "models", "--json", "--no-other-apps"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env},
    )
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert entry["path"] == str(BUNDLED_STARTER) and entry["source"] == "starter" and entry["name"] == STARTER_NAME
    assert entry["status"] == "ok" and entry["can_remove"] is False
    assert "part of this copy of Sizewise" in entry["kept_because"]


@pytest.mark.skipif(WITH_STARTER, reason="the bundle carries the starter model (--with-starter): it always finds one")
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
    if WITH_STARTER:
        assert BUNDLED_STARTER.stat().st_size == STARTER_BYTES
        assert (BUNDLED_STARTER.parent / NOTICE_FILE).is_file()  # the About dialog shows it before the license
    assert _bundle_size() < SIZE_GOAL, (
        f"bundle is {_bundle_size() / MiB:.1f} MiB; the goal is under {SIZE_GOAL / MiB:.0f} MiB "
        f"({'with' if WITH_STARTER else 'without'} the starter model)"
    )


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
