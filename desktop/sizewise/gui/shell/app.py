"""QApplication set-up: crash visibility first, then the main window."""

from __future__ import annotations

import faulthandler
import sys
import traceback
from types import TracebackType

from PySide6.QtCore import Qt, qInstallMessageHandler
from PySide6.QtWidgets import QApplication, QMessageBox

from sizewise import APP_ID, APP_NAME, __version__
from sizewise.core.paths import AppPaths
from sizewise.gui.shell.app_icon import app_icon
from sizewise.gui.shell.qt_messages import qt_message_handler


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
