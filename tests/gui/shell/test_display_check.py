"""Before Qt can abort ("Fatal Python error: Aborted"), the app checks that it can open a window here and
otherwise says why in one sentence: which Debian/Ubuntu packages the X11 (xcb) plugin lacks, that there is
no display, or that no X server answers on DISPLAY.

The subprocess tests put a stand-in ``ldd`` first on PATH, so they do not depend on what this machine has
installed: one that reports two libraries missing (what a minimal Debian 12 reports), one that finds all.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sizewise.gui.shell.app import display_problem, missing_xcb_libraries, qt_platform, x_display_opens
from tests.hub_fixtures import DESKTOP

MINIMAL_DEBIAN_LDD = """\
\tlinux-vdso.so.1 (0x00007ffd4b5f2000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f7f0fd32000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f7f0e9d6000)
\tlibxcb-icccm.so.4 => not found
"""


def fake_ldd(tmp_path: Path, output: str) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "out.txt").write_text(output)
    ldd = bindir / "ldd"
    ldd.write_text(f'#!/bin/sh\ncat "{bindir / "out.txt"}"\n')
    ldd.chmod(0o755)
    return ldd


def free_display() -> str:
    """An X display number with no server (no socket in /tmp/.X11-unix)."""
    n = next(n for n in range(4242, 4300) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    return f":{n}"


def libxcb_loads() -> bool:
    try:
        ctypes.CDLL("libxcb.so.1")
    except OSError:
        return False
    return True


# --- The decision, with the checks replaced ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "platform"),
    [
        ({}, None),
        ({"DISPLAY": ":0"}, "xcb"),
        ({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, "wayland"),
        ({"QT_QPA_PLATFORM": "offscreen"}, "offscreen"),
        ({"QT_QPA_PLATFORM": "xcb:nograb", "DISPLAY": ":0"}, "xcb"),
        ({"QT_QPA_PLATFORM": "wayland;xcb"}, "wayland"),
    ],
)
def test_which_platform_qt_tries_first(env: dict[str, str], platform: str | None) -> None:
    assert qt_platform(env) == platform


def test_missing_libraries_are_named_with_their_packages() -> None:
    problem = display_problem(
        {"DISPLAY": ":0"}, platform="linux", missing=lambda: ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    )
    assert problem == (
        "Qt cannot open a window because system libraries its X11 (xcb) plugin needs are missing "
        "(libxcb-icccm.so.4, libxcb-keysyms.so.1); on Debian or Ubuntu install them with "
        "'sudo apt-get install libxcb-icccm4 libxcb-keysyms1'."
    )
    unknown = display_problem({"DISPLAY": ":0"}, platform="linux", missing=lambda: ["libxcb-new.so.9"])
    assert unknown is not None and "install libxcb-new.so.9" in unknown  # no package known: the library's name


def test_no_display_and_a_silent_display_are_sentences() -> None:
    none = display_problem({}, platform="linux", missing=lambda: [])
    assert none is not None and none.startswith("There is no display to open the window on")
    silent = display_problem({"DISPLAY": ":7"}, platform="linux", missing=lambda: [], opens=lambda d: False)
    assert silent is not None and silent.startswith("No X server answers on the display ':7'")
    forced = display_problem({"QT_QPA_PLATFORM": "xcb"}, platform="linux", missing=lambda: [])
    assert forced is not None and "DISPLAY is not set" in forced


def test_nothing_in_the_way_or_nothing_to_tell() -> None:
    def never(*_a: object) -> None:
        raise AssertionError("not checked")

    fine = {"missing": lambda: [], "opens": lambda d: True}
    assert display_problem({"DISPLAY": ":0"}, platform="linux", **fine) is None  # type: ignore[arg-type]
    unknown = {"missing": lambda: None, "opens": lambda d: None}  # no ldd, no libxcb: Qt decides
    assert display_problem({"DISPLAY": ":0"}, platform="linux", **unknown) is None  # type: ignore[arg-type]
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, platform="linux", missing=never) is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, platform="linux", missing=never) is None
    assert display_problem({}, platform="darwin", missing=never) is None
    assert display_problem({}, platform="win32", missing=never) is None


# --- The real checks -------------------------------------------------------------------------------------------


def test_missing_libraries_are_read_from_ldd(tmp_path: Path) -> None:
    assert missing_xcb_libraries(str(fake_ldd(tmp_path, MINIMAL_DEBIAN_LDD))) == [
        "libxcb-icccm.so.4",
        "libxcb-keysyms.so.1",
    ]
    assert missing_xcb_libraries(str(tmp_path / "no-ldd-here")) is None
    real = missing_xcb_libraries()  # this machine, whatever it has: a list (or None without ldd)
    assert real is None or all(".so" in lib for lib in real)


@pytest.mark.skipif(not libxcb_loads(), reason="libxcb.so.1 is not installed: no X connection can be tried")
def test_a_display_without_a_server_does_not_open() -> None:
    assert x_display_opens(free_display()) is False


# --- The app, run as a user runs it ------------------------------------------------------------------------------


def _start_app(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base_env = {
        "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PYTHONPATH": str(DESKTOP),
    }
    return subprocess.run(
        [sys.executable, "-m", "sizewise", "--temp-basedir"],
        env={**base_env, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_sentence(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stderr}"
    assert "Fatal Python error" not in r.stderr and "Aborted" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_the_app_names_the_packages_instead_of_aborting(tmp_path: Path) -> None:
    fake_ldd(tmp_path, MINIMAL_DEBIAN_LDD)
    line = _one_sentence(_start_app(tmp_path, {"DISPLAY": free_display()}))
    assert line.startswith("sizewise: Qt cannot open a window because system libraries")
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in line


def test_the_app_says_there_is_no_display(tmp_path: Path) -> None:
    line = _one_sentence(_start_app(tmp_path, {}))
    assert line.startswith("sizewise: There is no display to open the window on")


@pytest.mark.skipif(not libxcb_loads(), reason="libxcb.so.1 is not installed: no X connection can be tried")
def test_the_app_says_no_x_server_answers(tmp_path: Path) -> None:
    fake_ldd(tmp_path, "\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f7f0e9d6000)\n")
    display = free_display()
    line = _one_sentence(_start_app(tmp_path, {"DISPLAY": display}))
    assert line.startswith(f"sizewise: No X server answers on the display '{display}'")
