"""Help → About: the version, the llama.cpp build and its backends, and every bundled component's license.

The llama.cpp facts come from the engine's ``ready`` message (the GUI never imports llama_cpp), so
the dialog describes the build the engine really runs, GPU backends included. The license list is
read from package metadata (or the bundle's index, see core/report/licenses.py) off the GUI thread.
A bundle built with the starter model inside (``packaging/build.sh --with-starter``) says so, and the
starter's license text begins with the notice bundled beside it (where the model comes from).
"""

from __future__ import annotations

import platform
from dataclasses import replace
from typing import Any

import shiboken6
from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sizewise import APP_NAME, __version__
from sizewise.core.errors import UserError
from sizewise.core.hub.starter import (
    NOTICE_FILE,
    STARTER_LICENSE,
    STARTER_NAME,
    STARTER_REPO,
    bundled_starter,
)
from sizewise.core.report.build_info import describe_backends
from sizewise.core.report.licenses import Component, LicenseList, bundled_components
from sizewise.core.resources import resource_path
from sizewise.gui.adapters.background import run_in_background
from sizewise.gui.shell.app_icon import app_icon

APP_LICENSE = "Apache-2.0"


class AboutDialog(QDialog):
    """``AboutDialog(parent, ready_info)``: ``ready_info`` is EngineClient.ready_info ({} if not started)."""

    def __init__(self, parent: QWidget | None, ready_info: dict[str, Any] | None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"About {APP_NAME}")
        self.ready_info = dict(ready_info or {})
        self.licenses: LicenseList | None = None
        outer = QVBoxLayout(self)

        head = QHBoxLayout()
        icon = QLabel()
        icon.setPixmap(app_icon().pixmap(64, 64))
        head.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        title = QLabel(
            f"<h2>{APP_NAME} {__version__}</h2>"
            "Run small language models on your own machine and see what your hardware handles."
        )
        title.setWordWrap(True)
        head.addWidget(title, 1)
        outer.addLayout(head)

        form = QFormLayout()
        self.fields: dict[str, QLabel] = {}
        for key, label, value in self.build_rows():
            widget = QLabel(value)
            widget.setWordWrap(True)
            widget.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.fields[key] = widget
            form.addRow(label, widget)
        outer.addLayout(form)

        outer.addWidget(QLabel("<b>Licenses of the bundled components</b> (select one to read its text)"))
        splitter = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Component", "Version", "License", "Used for"])
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        for col, mode in enumerate(
            (
                QHeaderView.ResizeMode.ResizeToContents,
                QHeaderView.ResizeMode.ResizeToContents,
                QHeaderView.ResizeMode.Interactive,
                QHeaderView.ResizeMode.Stretch,
            )
        ):
            header.setSectionResizeMode(col, mode)
        header.resizeSection(2, 220)  # long SPDX expressions (numpy's) show in full in the tooltip
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.table.setAccessibleName("Bundled components and their licenses")
        splitter.addWidget(self.table)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setFont(QFont("monospace"))
        self.text.setPlaceholderText("Reading the installed components…")
        self.text.setAccessibleName("License text")
        splitter.addWidget(self.text)
        splitter.setSizes([220, 160])
        outer.addWidget(splitter, 1)
        self.status = QLabel("Reading the installed components…")
        outer.addWidget(self.status)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("Copy build info")
        self.copy_button.setToolTip("Copy the version and llama.cpp build to the clipboard, for a bug report")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.copy_button.clicked.connect(self.copy_build_info)
        outer.addWidget(buttons)
        self.table.currentCellChanged.connect(lambda row, *_: self._show_text(row))
        self.resize(720, 640)
        run_in_background(bundled_components, self._listed, self._list_failed)

    # -- content ----------------------------------------------------------------------------------
    def build_rows(self) -> list[tuple[str, str, str]]:
        """(key, label, value) rows: the app, the toolkit and the llama.cpp build the engine runs."""
        r = self.ready_info
        if r:
            llama = f"llama-cpp-python {r.get('llama_cpp_version', 'unknown')}"
            offload = "yes" if r.get("gpu_offload") else "no (CPU-only build)"
        else:
            llama = offload = "not known yet: the engine has not started"
        return [
            ("version", "Version", __version__),
            ("license", "License", APP_LICENSE),
            ("toolkit", "Toolkit", f"Qt {qVersion()}, PySide6 {pyside_version}, Python {platform.python_version()}"),
            ("llama", "llama.cpp", llama),
            ("gpu_offload", "GPU offload", offload),
            ("backends", "Backends", describe_backends(r)),
            ("starter", "Starter model", f"{STARTER_NAME} ({STARTER_REPO}): {STARTER_LICENSE}{_bundled_note()}"),
        ]

    def build_info_text(self) -> str:
        lines = [f"{label}: {self.fields[key].text()}" for key, label, _ in self.build_rows()]
        if self.ready_info.get("system_info"):
            lines.append(f"llama_print_system_info: {self.ready_info['system_info']}")
        lines.append(f"Platform: {platform.platform()}")
        return "\n".join(lines)

    def copy_build_info(self) -> None:
        QGuiApplication.clipboard().setText(self.build_info_text())
        self.status.setText("Build info copied to the clipboard.")

    def components(self) -> list[Component]:
        """Sizewise and the starter model first, then what the installation bundles."""
        own = _own_license_paths()
        bundled = bundled_starter()  # its notice (where the model comes from) comes before the license text
        notice = (str(bundled.with_name(NOTICE_FILE)),) if bundled is not None else ()
        role = "the starter model, bundled with this app" if notice else "the starter model (downloaded, not bundled)"
        head = [
            Component(APP_NAME, __version__, APP_LICENSE, "this application", own),
            Component(STARTER_NAME, "", STARTER_LICENSE, role, notice + own),
        ]
        rest = self.licenses.components if self.licenses else []
        # Qt's version is the one really loaded; the core list cannot ask Qt.
        rest = [replace(c, version=qVersion()) if c.name == "Qt 6" and not c.version else c for c in rest]
        return head + rest

    # -- background results -----------------------------------------------------------------------
    def _listed(self, result: object) -> None:
        if not shiboken6.isValid(self):  # closed before the list was read
            return
        assert isinstance(result, LicenseList)
        self.licenses = result
        comps = self.components()
        self.table.setRowCount(len(comps))
        for row, c in enumerate(comps):
            for col, text in enumerate((c.name, c.version, c.license, c.role)):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(row, col, item)
        self.status.setText(f"{len(comps)} components, from the {result.source}.")
        self.table.setCurrentCell(0, 0)

    def _list_failed(self, exc: BaseException) -> None:
        if not shiboken6.isValid(self):
            return
        self.status.setText(f"Reading the component list failed: {exc}")

    def _show_text(self, row: int) -> None:
        comps = self.components()
        if not 0 <= row < len(comps):
            return
        base = self.licenses.base if self.licenses else None
        self.text.setPlainText(comps[row].texts(base))


def _bundled_note() -> str:
    return ", bundled with this app" if bundled_starter() is not None else ""


def _own_license_paths() -> tuple[str, ...]:
    try:
        return (str(resource_path("licenses/Apache-2.0.txt")),)
    except UserError:  # an incomplete installation; the license pane then says no text was found
        return ()
