"""QApplication set-up: crash visibility first, then the main window."""

from __future__ import annotations

import faulthandler
import sys
import traceback
from types import TracebackType

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from sizewise import APP_ID, APP_NAME, __version__
from sizewise.commands import CliContext


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
    app = QApplication.instance() or QApplication(argv or [sys.argv[0]])
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(APP_ID)
    app.setOrganizationName(APP_NAME)
    return app


def run_app(ctx: CliContext, smoke_test: bool = False) -> int:
    if faulthandler.is_enabled() is False and sys.stderr is not None:
        faulthandler.enable()
    install_excepthook()
    app = make_app()
    from sizewise.gui.main_window import MainWindow

    if smoke_test:
        from sizewise.gui.smoke import run_smoke_test

        return run_smoke_test(app, ctx)
    window = MainWindow(ctx.paths)
    window.show()
    return app.exec()
