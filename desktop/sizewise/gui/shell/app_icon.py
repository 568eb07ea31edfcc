"""The application icon, built from the PNGs in resources/icons (rendered by packaging/render_icons.py).

PNGs rather than the SVG: the bundle then needs neither QtSvg nor Qt's SVG image plugin.
"""

from __future__ import annotations

from PySide6.QtGui import QIcon

from sizewise.core.errors import UserError
from sizewise.core.resources import resource_path

ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)


def app_icon() -> QIcon:
    """Every size the installation has; an empty icon (Qt's default) if the files are missing."""
    icon = QIcon()
    for size in ICON_SIZES:
        try:
            icon.addFile(str(resource_path(f"icons/sizewise-{size}.png")))
        except UserError:
            continue  # a cosmetic loss only; the bundle test checks the icons are there
    return icon
