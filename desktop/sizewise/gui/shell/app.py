"""QApplication set-up: a usable display first, crash visibility next, then the main window."""

from __future__ import annotations

import ctypes
import faulthandler
import os
import re
import subprocess
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import Qt, qInstallMessageHandler
from PySide6.QtWidgets import QApplication, QMessageBox

from sizewise import APP_ID, APP_NAME, __version__
from sizewise.core.errors import UserError
from sizewise.core.paths import AppPaths
from sizewise.gui.shell.app_icon import app_icon
from sizewise.gui.shell.qt_messages import qt_message_handler

# --- Can Qt open a window here? ---------------------------------------------------------------------------
# Qt aborts the interpreter ("Fatal Python error: Aborted") when its platform plugin cannot start, after a
# message that names the wrong package. On Linux with X11 (Qt's xcb plugin) the usual causes are system
# libraries a minimal Debian/Ubuntu lacks, no display at all, or a DISPLAY nobody answers on: each is
# checked before the QApplication exists and said in one sentence.

# The Debian/Ubuntu package of each library Qt's xcb plugin (libqxcb.so, libQt6XcbQpa) loads.
XCB_LIBRARY_PACKAGES = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
}
_NOT_FOUND = re.compile(r"^\s*(\S+) => not found", re.MULTILINE)


def qt_platform(env: Mapping[str, str]) -> str | None:
    """The platform plugin Qt will try first on Linux: QT_QPA_PLATFORM's first entry, else wayland in a
    Wayland session, else xcb; None when there is no display to guess from."""
    chosen = env.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        return chosen.split(";")[0].split(":")[0].strip().lower()
    if env.get("WAYLAND_DISPLAY"):
        return "wayland"
    return "xcb" if env.get("DISPLAY") else None


def missing_xcb_libraries(ldd: str = "ldd") -> list[str] | None:
    """The shared libraries Qt's xcb plugin needs that the dynamic loader cannot find (``ldd`` on the
    plugin, so the plugin's own search path counts); None when that cannot be told (no ldd, no plugin)."""
    from PySide6.QtCore import QLibraryInfo

    plugin = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms" / "libqxcb.so"
    if not plugin.is_file():
        return None
    try:
        out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return sorted(set(_NOT_FOUND.findall(out.stdout + out.stderr)))


def x_display_opens(display: str) -> bool | None:
    """Whether an X server accepts a connection on ``display`` (through libxcb, as Qt connects); None when
    libxcb itself cannot be loaded (the missing-library check names it)."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return None
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    conn = xcb.xcb_connect(display.encode(), None)
    try:
        return bool(conn) and xcb.xcb_connection_has_error(conn) == 0
    finally:
        if conn:
            xcb.xcb_disconnect(conn)


def display_problem(
    env: Mapping[str, str] | None = None,
    *,
    platform: str = sys.platform,
    missing: Callable[[], list[str] | None] = missing_xcb_libraries,
    opens: Callable[[str], bool | None] = x_display_opens,
) -> str | None:
    """One sentence on why Qt could not open a window here, or None when nothing stands in its way (or this
    cannot be told: then Qt tries). Only Linux with the xcb plugin is checked; ``missing``/``opens``
    replace the library and display checks for tests."""
    env = os.environ if env is None else env
    if not platform.startswith("linux"):
        return None
    chosen = qt_platform(env)
    if chosen is None:
        return (
            "There is no display to open the window on (DISPLAY and WAYLAND_DISPLAY are not set): start "
            "Sizewise from a desktop session, or use its commands, which need no window (sizewise --help)."
        )
    if chosen != "xcb":
        return None
    libs = missing()
    if libs:
        packages = sorted({XCB_LIBRARY_PACKAGES.get(lib, lib) for lib in libs})
        return (
            f"Qt cannot open a window because system libraries its X11 (xcb) plugin needs are missing "
            f"({', '.join(libs)}); on Debian or Ubuntu install them with 'sudo apt-get install {' '.join(packages)}'."
        )
    display = env.get("DISPLAY", "")
    if not display:
        return (
            "QT_QPA_PLATFORM asks for X11 (xcb) but DISPLAY is not set: run Sizewise in an X session, "
            "or unset QT_QPA_PLATFORM."
        )
    if opens(display) is False:
        return (
            f"No X server answers on the display {display!r} (DISPLAY): start Sizewise from the desktop session "
            "it belongs to, or set DISPLAY to one that is running."
        )
    return None


def install_excepthook() -> None:
    """Exceptions in slots become a visible message, not a line on a terminal nobody reads."""

    def hook(etype: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        text = "".join(traceback.format_exception(etype, value, tb))
        if sys.__stderr__ is not None:
            sys.__stderr__.write(text)
        app = QApplication.instance()
        if app is not None and not app.property("sizewise_headless"):
            box = QMessageBox(QMessageBox.Icon.Critical, APP_NAME, f"Something went wrong: {value}")
            box.setDetailedText(text)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.show()

    sys.excepthook = hook


def make_app(argv: list[str] | None = None) -> QApplication:
    qInstallMessageHandler(qt_message_handler)
    app = QApplication.instance() or QApplication(argv or [sys.argv[0]])
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(APP_ID)
    app.setOrganizationName(APP_NAME)
    app.setWindowIcon(app_icon())
    return app


def run_app(paths: AppPaths, smoke_test: bool = False) -> int:
    problem = display_problem()
    if problem is not None:
        raise UserError(problem)
    if faulthandler.is_enabled() is False and sys.stderr is not None:
        faulthandler.enable()
    install_excepthook()
    app = make_app()
    from sizewise.gui.shell.main_window import MainWindow

    if smoke_test:
        from sizewise.gui.shell.smoke import run_smoke_test

        return run_smoke_test(app, paths)
    window = MainWindow(paths)
    window.show()
    status = app.exec()
    after_event_loop()
    return status


def after_event_loop() -> None:
    """What must finish before Python exits once the window has closed: background jobs still reading
    files, and compare engines still shutting their workers down (multiprocessing's exit handler would
    otherwise race their threads and print a traceback)."""
    from sizewise.gui.adapters.background import wait_for_background

    wait_for_background(10_000)
    compare = sys.modules.get("sizewise.gui.compare.engine_pool")  # imported only if the Compare tab was opened
    if compare is not None:
        compare.wait_for_engine_shutdowns()
