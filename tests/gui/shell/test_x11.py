"""The app under a real X server (Xvfb) with Qt's xcb plugin — what a desktop user gets, not the offscreen
plugin every other GUI test uses. It catches what offscreen cannot: missing xcb libraries, a window that
Qt cannot map, X-only warnings. ``scripts/setup.sh test`` installs Xvfb and the xcb libraries when it runs
as root where apt-get exists (CI, Debian 12); elsewhere the test is skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.smoke_helpers import basedir_with_starter, check_report

XVFB = shutil.which("Xvfb")
pytestmark = pytest.mark.skipif(
    XVFB is None,
    reason="Xvfb is not on PATH: 'sudo apt-get install xvfb' (scripts/setup.sh test does it when run as root)",
)


@pytest.fixture
def x_display(tmp_path: Path) -> Iterator[str]:
    """A fresh Xvfb; it writes the display number it chose to a pipe (-displayfd), so none is guessed."""
    assert XVFB is not None
    read_fd, write_fd = os.pipe()
    with (tmp_path / "xvfb.log").open("w") as log:
        server = subprocess.Popen(
            [XVFB, "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            pass_fds=(write_fd,),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        assert number.isdigit(), f"Xvfb did not start: {(tmp_path / 'xvfb.log').read_text()}"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_app_starts_under_a_real_x_server(x_display: str, smollm2_path: Path, tmp_path: Path) -> None:
    base = basedir_with_starter(tmp_path / "base", smollm2_path)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "DISPLAY": x_display,
        "QT_QPA_PLATFORM": "xcb",
        "XDG_RUNTIME_DIR": str(tmp_path),  # Qt warns without one, and the smoke test fails on any warning
    }
    result = subprocess.run(
        [sys.executable, "-m", "sizewise", "--basedir", str(base), "--smoke-test"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    report = check_report(result)  # exit 0, nothing on stderr: no Qt warning, no missing library, no abort
    assert report["platform"] == "xcb"
