"""``sizewise screenshots``: every page as a new user first sees it, and again with a model loaded."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QImage

from tests.cli_helpers import run_cli


def test_screenshots_render_every_page_empty_and_filled(tmp_path: Path) -> None:
    out = tmp_path / "shots"
    r = run_cli("--temp-basedir", "screenshots", str(out), env={"QT_QPA_PLATFORM": "offscreen"})
    assert r.returncode == 0, r.stderr
    names = {p.name for p in out.glob("*.png")}
    filled = {n for n in names if not n.startswith("empty-")}
    assert "main-window.png" in filled and "view-fit.png" in filled and len(filled) >= 6, names
    assert {f"empty-{n}" for n in filled} == names - filled  # each page in both states
    for name in names:
        image = QImage(str(out / name))
        assert image.width() >= 1000 and image.height() >= 600, name
    # the empty chat differs from the chat with a conversation in it
    assert QImage(str(out / "empty-main-window.png")) != QImage(str(out / "main-window.png"))
