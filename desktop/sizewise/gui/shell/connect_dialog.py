""" "Connect to a server…": a URL and an optional API key, checked against the server before the dialog closes.

Why the check happens inside the dialog: a wrong address, a port that is not a server or a refused key is
one sentence shown under the fields, and what was typed stays there to be corrected — nothing is lost. The
address is checked here at once (no network); asking the server which models it serves runs in the
background (``run_in_background``), never on the GUI thread, with the fields locked until it answers.

The key is never stored: it goes into an ``ApiKey`` (which does not print itself) held by the model loader
for this session, and the next session asks for it again.
"""

from __future__ import annotations

from pathlib import Path

import shiboken6
from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from sizewise.engine.remote.client import Listing, list_server
from sizewise.engine.remote.http import CONNECT_TIMEOUT_S, ApiKey, RemoteError, ServerAddress
from sizewise.gui.adapters.background import run_in_background

KEY_NOTE = "The key is kept in memory for this session only: never saved or logged; Sizewise asks again next time."


class ConnectDialog(QDialog):
    """``connected(listing, api_key)`` once the server listed its models; the dialog then closes."""

    connected = Signal(object, object)  # Listing, ApiKey | None

    def __init__(
        self, log_path: Path | None = None, parent: QWidget | None = None, timeout: float = CONNECT_TIMEOUT_S
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Connect to a server")
        self.log_path = log_path
        self.timeout = timeout
        self.checking = False
        layout = QVBoxLayout(self)
        intro = QLabel(
            "A llama.cpp llama-server, or another OpenAI-compatible server (Ollama, LM Studio, vLLM). "
            "Its models join the model list; chat and writing help then run on the server."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.url_edit = QLineEdit()
        self.url_edit.setAccessibleName("Server address")
        self.url_edit.setPlaceholderText("http://127.0.0.1:8080")
        form.addRow("Server address", self.url_edit)
        self.key_edit = QLineEdit()
        self.key_edit.setAccessibleName("API key")
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("optional")
        form.addRow("API key", self.key_edit)
        layout.addLayout(form)
        note = QLabel(KEY_NOTE)
        note.setWordWrap(True)
        note.setStyleSheet("color: #555;")
        layout.addWidget(note)
        self.status = QLabel("")
        self.status.setAccessibleName("Connection status")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.connect_button = self.buttons.addButton("Connect", QDialogButtonBox.ButtonRole.AcceptRole)
        self.connect_button.setDefault(True)
        self.buttons.accepted.connect(self.try_connect)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.resize(520, self.sizeHint().height())

    def _show(self, text: str, error: bool) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #b00020;" if error else "")

    def _lock(self, locked: bool) -> None:
        self.checking = locked
        for w in (self.url_edit, self.key_edit, self.connect_button):
            w.setEnabled(not locked)

    @Slot()
    def try_connect(self) -> None:
        """Check the address here, then ask the server in the background; the dialog stays open until it answers."""
        if self.checking:
            return
        url = self.url_edit.text().strip()
        if not url:
            self._show("Give the server's address, like http://127.0.0.1:8080.", True)
            return
        try:
            address = ServerAddress.parse(url)
        except RemoteError as exc:
            self._show(str(exc).replace("--api-key-env or --api-key-file", "the API key field"), True)
            return
        key_text = self.key_edit.text().strip()
        key = ApiKey(key_text) if key_text else None
        self._lock(True)
        self._show(f"Connecting to {address.url}…", False)
        log, timeout = self.log_path, self.timeout
        run_in_background(
            lambda: list_server(url, key, log, timeout), lambda found: self._found(found, key), self._failed
        )

    def _found(self, listing: Listing, key: ApiKey | None) -> None:
        if not shiboken6.isValid(self):
            return
        self._lock(False)
        self._show(f"{listing.url} serves {len(listing.models)} model(s).", False)
        self.connected.emit(listing, key)
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        if not shiboken6.isValid(self):
            return
        self._lock(False)
        text = str(exc) if isinstance(exc, RemoteError) else f"Connecting failed: {type(exc).__name__}: {exc}"
        self._show(text.replace("give --api-key-env or --api-key-file", "enter it in the API key field"), True)
