"""Writing help: paste text, pick an action, and the result streams in beside the original.

The prompts come from ``resources/writing_actions.json`` (core/chat/writing.py); this widget only
wires them to an engine. When the result is complete a word diff shows what changed; Copy puts
the result on the clipboard and Accept replaces the original with it (undoable with Ctrl+Z in the
original's editor).

The engine is passed in: an EngineAdapter-like QObject with the signals ``token(int, str)``,
``finished(int, dict)`` and ``failed(int, str)``, the methods ``generate(sampling, messages=…|
prompt=…) -> int`` and ``stop(gen_id)``, and ``loaded_info`` (a dict with ``chat_mode`` once a model
is loaded). Only events for this widget's own generation id are used, so it can share the engine
with the chat; Stop stops this widget's request only. Where the engine has them, ``waiting(gen_id)``
and ``replyStarted(int)`` let the status say that the request is queued behind another reply, and
``stopForced(int)`` and ``engineStopped(str)`` end a request the engine could not finish.

Signals: ``started(int)`` (generation id), ``resultReady(str)``, ``accepted(str)``, ``failed(str)``
(one sentence), ``busyChanged(bool)``.
Slots: ``run()`` (Ctrl+Return), ``stop()`` (Esc), ``copy_result()``, ``accept_result()``,
``set_text(str)``, ``set_base_sampling(SamplingParams)`` (seed and samplers to use; the action
sets temperature and length), ``set_sampling_source(callable)`` (the same, read at each run: the
window passes its sampling panel's settings).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QGuiApplication, QKeyEvent, QKeySequence, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from sizewise.core.chat.writing import DiffSpan, WritingCatalog, load_catalog, summarize_diff, word_diff
from sizewise.core.errors import UserError
from sizewise.core.sampling import SamplingParams

FLUSH_MS = 40
DIFF_STYLE = {
    "insert": "background-color:#d7f5dd; color:#0b5d1e;",
    "delete": "background-color:#fbdada; color:#8a1c1c; text-decoration:line-through;",
}


def diff_html(spans: list[DiffSpan]) -> str:
    """The word diff as Qt rich text: insertions green, deletions red and struck through."""
    parts = []
    for span in spans:
        text = html.escape(span.text).replace("\n", "<br>")
        style = DIFF_STYLE.get(span.kind)
        parts.append(f'<span style="{style}">{text}</span>' if style else text)
    return '<div style="white-space:pre-wrap;">' + "".join(parts) + "</div>"


class _OriginalEdit(QPlainTextEdit):
    """The text editor claims Ctrl+Return (ShortcutOverride) before the Run shortcut sees it;
    turn that key into ``submit`` so Ctrl+Return runs the action while typing."""

    submit = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and (
            event.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            event.accept()
            self.submit.emit()
            return
        super().keyPressEvent(event)


class WritingView(QWidget):
    started = Signal(int)
    resultReady = Signal(str)
    accepted = Signal(str)
    failed = Signal(str)
    busyChanged = Signal(bool)

    def __init__(self, engine: Any, catalog: WritingCatalog | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = engine  # EngineAdapter-like: see the module docstring
        self.catalog = catalog or load_catalog()
        self.base_sampling = SamplingParams()
        self._sampling_source: Callable[[], SamplingParams] | None = None
        self.gen_id: int | None = None
        self._label = ""  # the running action's name, for the status line
        self.result = ""
        self.last_stats: dict[str, Any] = {}
        self._pending = ""
        self._flush = QTimer(self)
        self._flush.setSingleShot(True)
        self._flush.setInterval(FLUSH_MS)
        self._flush.timeout.connect(self._show_pending)
        self._build()
        self.engine.token.connect(self._on_token)
        self.engine.finished.connect(self._on_finished)
        self.engine.failed.connect(self._on_failed)
        for name, slot in (
            ("replyStarted", self._on_started),
            ("stopForced", self._on_stop_forced),
            ("engineStopped", self._on_engine_stopped),
        ):
            signal = getattr(self.engine, name, None)
            if signal is not None:
                signal.connect(slot)
        self._set_busy(False)

    @property
    def busy(self) -> bool:
        """A request of this view is queued or running."""
        return self.gen_id is not None

    # -- construction -----------------------------------------------------------------------------
    def _build(self) -> None:
        self.run_action = QAction("Run writing action", self)
        self.run_action.setShortcut(QKeySequence("Ctrl+Return"))
        self.run_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.run_action.triggered.connect(self.run)
        self.stop_action = QAction("Stop", self)
        self.stop_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.stop_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.stop_action.triggered.connect(self.stop)
        self.addAction(self.run_action)
        self.addAction(self.stop_action)

        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Action"))
        self.action_combo = QComboBox()
        self.action_combo.setAccessibleName("Writing action")
        for i, action in enumerate(self.catalog.actions):
            self.action_combo.addItem(action.label, action.id)
            self.action_combo.setItemData(i, action.description, Qt.ItemDataRole.ToolTipRole)
        self.action_combo.currentIndexChanged.connect(self._on_action_changed)
        bar.addWidget(self.action_combo)
        self.language_label = QLabel("into")
        bar.addWidget(self.language_label)
        self.language_combo = QComboBox()
        self.language_combo.setAccessibleName("Language")
        self.language_combo.setEditable(True)  # any language the model knows, not only the listed ones
        self.language_combo.addItems(list(self.catalog.languages))
        bar.addWidget(self.language_combo)
        self.description = QLabel()
        self.description.setStyleSheet("color: palette(placeholder-text);")
        bar.addWidget(self.description, 1)
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("Run the action on the text (Ctrl+Return)")
        self.run_button.clicked.connect(self.run)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop writing (Esc)")
        self.stop_button.clicked.connect(self.stop)
        bar.addWidget(self.run_button)
        bar.addWidget(self.stop_button)
        layout.addLayout(bar)

        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(QLabel("Original"))
        self.original = _OriginalEdit()
        self.original.submit.connect(self.run_action.trigger)
        self.original.setAccessibleName("Original text")
        self.original.setPlaceholderText("Paste or type the text to work on, then press Ctrl+Return.")
        left_layout.addWidget(self.original)
        split.addWidget(left)

        self.tabs = QTabWidget()
        self.result_edit = QPlainTextEdit()
        self.result_edit.setReadOnly(True)
        self.result_edit.setAccessibleName("Result")
        self.diff_view = QTextBrowser()
        self.diff_view.setAccessibleName("Changes")
        self.tabs.addTab(self.result_edit, "Result")
        self.tabs.addTab(self.diff_view, "Changes")
        self.tabs.setTabToolTip(1, "Word by word: added in green, removed in red")
        split.addWidget(self.tabs)
        layout.addWidget(split, 1)

        bottom = QHBoxLayout()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Writing status")
        bottom.addWidget(self.status, 1)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the result to the clipboard")
        self.copy_button.clicked.connect(self.copy_result)
        self.accept_button = QPushButton("Accept")
        self.accept_button.setToolTip("Replace the original with the result (Ctrl+Z in the original undoes it)")
        self.accept_button.clicked.connect(self.accept_result)
        bottom.addWidget(self.copy_button)
        bottom.addWidget(self.accept_button)
        layout.addLayout(bottom)
        self._on_action_changed()

    # -- public slots -----------------------------------------------------------------------------
    def set_text(self, text: str) -> None:
        self.original.setPlainText(text)

    def set_base_sampling(self, sampling: SamplingParams) -> None:
        self.base_sampling = sampling
        self._sampling_source = None

    def set_sampling_source(self, source: Callable[[], SamplingParams]) -> None:
        """Seed and samplers from ``source()``, read at each run (the sampling panel shown beside the page)."""
        self._sampling_source = source

    def select_action(self, action_id: str) -> None:
        index = self.action_combo.findData(action_id)
        if index >= 0:
            self.action_combo.setCurrentIndex(index)

    @Slot()
    def run(self) -> None:
        if self.gen_id is not None:
            return
        if not getattr(self.engine, "loaded_info", None):
            self._fail("Load a model first; writing help runs on the loaded model.")
            return
        chat = self.engine.loaded_info.get("chat_mode") == "chat"
        try:
            request = self.catalog.request(
                str(self.action_combo.currentData()),
                self.original.toPlainText(),
                language=self.language_combo.currentText() if self.language_combo.isEnabled() else None,
                chat=chat,
                base=self._sampling_source() if self._sampling_source is not None else self.base_sampling,
            )
        except UserError as exc:
            self._fail(str(exc))
            return
        self.result = ""
        self._pending = ""
        self.last_stats = {}
        self.result_edit.clear()
        self.diff_view.clear()
        self.tabs.setCurrentIndex(0)
        try:
            if request.messages is not None:
                self.gen_id = int(self.engine.generate(request.sampling, messages=request.messages))
            else:
                self.gen_id = int(self.engine.generate(request.sampling, prompt=request.prompt))
        except RuntimeError as exc:  # the engine process is not running
            self._fail(f"The engine is not running: {exc}")
            return
        self._label = request.action.label
        waiting = getattr(self.engine, "waiting", None)
        if waiting is not None and waiting(self.gen_id):
            self.status.setText(f"{self._label}: queued behind the reply in progress; it starts when that one ends.")
        else:
            self.status.setText(f"{self._label}…")
        self._set_busy(True)
        self.started.emit(self.gen_id)

    @Slot()
    def stop(self) -> None:
        """Stop this view's request (running or still queued); other users of the engine go on."""
        if self.gen_id is not None:
            self.engine.stop(self.gen_id)

    @Slot()
    def copy_result(self) -> None:
        if self.result:
            QGuiApplication.clipboard().setText(self.result)
            self.status.setText("Result copied.")

    @Slot()
    def accept_result(self) -> None:
        if not self.result or self.gen_id is not None:
            return
        cursor = self.original.textCursor()
        cursor.beginEditBlock()
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.insertText(self.result)  # one undo step in the editor, unlike setPlainText
        cursor.endEditBlock()
        self.status.setText("The original was replaced by the result (Ctrl+Z in it undoes this).")
        self.accepted.emit(self.result)

    # -- engine events ----------------------------------------------------------------------------
    @Slot(int)
    def _on_started(self, gen_id: int) -> None:
        if gen_id == self.gen_id:
            self.status.setText(f"{self._label}…")

    @Slot(int)
    def _on_stop_forced(self, gen_id: int) -> None:
        """Stopped by restarting the engine: what came so far is the result."""
        if gen_id == self.gen_id:
            self._on_finished(gen_id, {"finish_reason": "cancelled"})

    @Slot(str)
    def _on_engine_stopped(self, sentence: str) -> None:
        if self.gen_id is not None:
            self._on_failed(self.gen_id, sentence)

    @Slot(int, str)
    def _on_token(self, gen_id: int, text: str) -> None:
        if gen_id != self.gen_id:
            return
        self._pending += text
        if not self._flush.isActive():
            self._flush.start()

    @Slot()
    def _show_pending(self) -> None:
        self._flush.stop()
        if not self._pending:
            return
        self.result += self._pending
        self._pending = ""
        cursor = self.result_edit.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(self.result[len(self.result_edit.toPlainText()) :])

    @Slot(int, dict)
    def _on_finished(self, gen_id: int, stats: dict[str, Any]) -> None:
        if gen_id != self.gen_id:
            return
        self._show_pending()
        self.gen_id = None
        self.last_stats = stats
        self.result = self.result.strip()
        self.result_edit.setPlainText(self.result)
        spans = word_diff(self.original.toPlainText().strip(), self.result)
        self.diff_view.setHtml(diff_html(spans))
        speed = f" · {float(stats.get('tg_tps', 0)):.0f} tokens/s" if stats.get("tg_tps") else ""
        note = " (stopped)" if stats.get("finish_reason") == "cancelled" else ""
        self.status.setText(f"{summarize_diff(spans).sentence}{speed}{note}.")
        self._set_busy(False)
        self.resultReady.emit(self.result)

    @Slot(int, str)
    def _on_failed(self, gen_id: int, message: str) -> None:
        if gen_id != self.gen_id:
            return
        self._show_pending()
        self.gen_id = None
        self._set_busy(False)
        self._fail(message)

    # -- helpers ----------------------------------------------------------------------------------
    def _fail(self, message: str) -> None:
        self.status.setText(message)
        self.failed.emit(message)

    def _set_busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.run_action.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.stop_action.setEnabled(busy)
        has_result = bool(self.result) and not busy
        self.copy_button.setEnabled(has_result)
        self.accept_button.setEnabled(has_result)
        self.action_combo.setEnabled(not busy)
        self.original.setReadOnly(busy)
        self.busyChanged.emit(busy)

    @Slot()
    def _on_action_changed(self) -> None:
        action = self.catalog.get(str(self.action_combo.currentData()))
        self.description.setText(action.description)
        self.language_combo.setEnabled(action.needs_language)
        self.language_combo.setVisible(action.needs_language)
        self.language_label.setVisible(action.needs_language)
