"""The icon, the .desktop entry and the AppStream metainfo: present, consistent with APP_ID, valid,
and shipped by a plain ``pip install .`` where sizewise.core.resources finds them."""

from __future__ import annotations

import configparser
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from sizewise import APP_ID, APP_NAME, __version__
from sizewise.core.resources import resource_path
from sizewise.gui.shell.app_icon import ICON_SIZES

ROOT = Path(__file__).resolve().parents[2]
DESKTOP = ROOT / "resources" / f"{APP_ID}.desktop"
METAINFO = ROOT / "resources" / f"{APP_ID}.metainfo.xml"


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_icons_exist_in_every_size_and_match_their_names() -> None:
    assert resource_path("icons/sizewise.svg").read_text().lstrip().startswith("<?xml")
    ET.parse(resource_path("icons/sizewise.svg"))  # well-formed
    for size in ICON_SIZES:
        assert _png_size(resource_path(f"icons/sizewise-{size}.png")) == (size, size)


def test_window_icon_has_all_sizes(qapp: object) -> None:
    from PySide6.QtWidgets import QApplication

    from sizewise.gui.shell.app import make_app

    app = make_app()
    assert isinstance(app, QApplication)
    assert sorted(s.width() for s in app.windowIcon().availableSizes()) == sorted(ICON_SIZES)


def test_desktop_entry() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    entry.read(DESKTOP, encoding="utf-8")
    d = entry["Desktop Entry"]
    assert d["Type"] == "Application"
    assert d["Name"] == APP_NAME
    assert d["Exec"].split()[0] == "sizewise"  # the [project.scripts] name and the bundle's executable
    assert d["Icon"] == APP_ID
    assert d["Terminal"] == "false"
    assert d["Categories"].endswith(";")
    # Qt's X11 WM_CLASS class is the application name (make_app sets APP_NAME): how docks match windows.
    assert d["StartupWMClass"] == APP_NAME
    validator = shutil.which("desktop-file-validate")
    if validator:  # Debian's desktop-file-utils; the checks above run without it
        result = subprocess.run([validator, str(DESKTOP)], capture_output=True, text=True)
        assert result.returncode == 0 and "error" not in result.stdout, result.stdout


def test_metainfo() -> None:
    root = ET.parse(METAINFO).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    assert root.findtext("name") == APP_NAME
    assert root.findtext("metadata_license") == "CC0-1.0"
    assert root.findtext("project_license") == "Apache-2.0"
    assert root.findtext("summary") and len(root.findtext("summary") or "") < 80
    assert root.find("description/p") is not None
    launchable = root.find("launchable")
    assert launchable is not None and launchable.get("type") == "desktop-id"
    assert launchable.text == DESKTOP.name
    assert root.findtext("provides/binary") == "sizewise"
    releases = [r.get("version") for r in root.findall("releases/release")]
    assert releases and releases[0] == __version__  # the newest release is the version being shipped
    appstreamcli = shutil.which("appstreamcli")
    if appstreamcli:  # Debian's appstream; the structural checks above run without it
        result = subprocess.run([appstreamcli, "validate", "--no-net", str(METAINFO)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_pip_install_ships_the_resources(tmp_path: Path) -> None:
    """A wheel built from the checkout carries resources/ as sizewise/resources/, which is where an
    installed sizewise looks first."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("sizewise-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ROOT.joinpath("resources").rglob("*"):
        if f.is_file():
            assert f"sizewise/resources/{f.relative_to(ROOT / 'resources').as_posix()}" in names, f
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = "from sizewise.core.resources import resource_path; print(resource_path('presets.json'))"
    found = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert Path(found) == site / "sizewise" / "resources" / "presets.json"
