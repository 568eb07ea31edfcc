"""The list of saved conversations: new, rename, delete with undo, search, switch — keyboard first.

Standalone widget over a :class:`~sizewise.core.chat.store.ConversationStore`; the main window
owns the store and the chat, and listens to the signals below.

Signals
-------
``conversationSelected(int)``  the user switched to a conversation (its id); -1 when none is left.
``conversationCreated(int)``   a new conversation was made (selected too, so conversationSelected follows).
``conversationRenamed(int, str)``
``conversationDeleted(int)``   hidden at once; purged for good when the undo bar closes (``UNDO_MS``).
``deletionUndone(int)``
``storeFailed(str)``           a store operation failed; one sentence, also shown in the sidebar.

Slots and methods
-----------------
``refresh()``, ``select_conversation(id)``, ``new_conversation()``, ``rename_current()`` (inline
editor), ``rename_conversation(id, title)``, ``delete_current()``, ``undo_delete()``, ``focus_search()``,
``select_next()`` / ``select_previous()``, ``set_new_conversation_defaults(preset, system_prompt)``
(a new conversation starts from the chosen preset), ``current_id()``.

Actions with shortcuts, for the window's menus (shortcuts also shown in tooltips)
------------------------------------------------------------------------------
``new_action`` Ctrl+N, ``search_action`` Ctrl+F, ``next_action`` Ctrl+PgDown, ``previous_action``
Ctrl+PgUp (window-wide); ``rename_action`` F2, ``delete_action`` Delete, ``undo_action`` Ctrl+Z
(only while the list has focus, so they never fight the chat input's own editing keys).

The store is SQLite on the GUI thread: each call is one short transaction (well under a
millisecond for these operations), so nothing here needs a background job.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from sizewise.core.chat.records import DEFAULT_TITLE, Conversation
from sizewise.core.chat.store import ConversationStore
from sizewise.core.errors import UserError

UNDO_MS = 8000
SEARCH_DELAY_MS = 150
ID_ROLE = Qt.ItemDataRole.UserRole + 1


def shortcut_text(action: QAction) -> str:
    return action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)


def with_shortcut(text: str, action: QAction) -> str:
    keys = shortcut_text(action)
    return f"{text} ({keys})" if keys else text


class ConversationSidebar(QWidget):
    conversationSelected = Signal(int)
    conversationCreated = Signal(int)
    conversationRenamed = Signal(int, str)
    conversationDeleted = Signal(int)
    deletionUndone = Signal(int)
    storeFailed = Signal(str)

    def __init__(self, store: ConversationStore, parent: QWidget | None = None, *, undo_ms: int = UNDO_MS) -> None:
        super().__init__(parent)
        self.store = store
        self._preset = ""
        self._system_prompt = ""
        self._pending_delete: tuple[int, str] | None = None
        self._build_actions()
        self._build()
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.refresh)
        self._undo_timer = QTimer(self)
        self._undo_timer.setSingleShot(True)
        self._undo_timer.setInterval(undo_ms)
        self._undo_timer.timeout.connect(self._finish_delete)
        if store.problem is not None:
            self._show_problem(store.problem.message)
        self.refresh()

    # -- construction -----------------------------------------------------------------------------
    def _action(self, text: str, keys: QKeySequence, window_wide: bool) -> QAction:
        action = QAction(text, self)
        action.setShortcut(keys)
        action.setShortcutContext(
            Qt.ShortcutContext.WindowShortcut if window_wide else Qt.ShortcutContext.WidgetWithChildrenShortcut
        )
        action.setToolTip(with_shortcut(text, action))
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        self.new_action = self._action("New conversation", QKeySequence("Ctrl+N"), True)
        self.search_action = self._action("Search conversations", QKeySequence("Ctrl+F"), True)
        self.next_action = self._action("Next conversation", QKeySequence("Ctrl+PgDown"), True)
        self.previous_action = self._action("Previous conversation", QKeySequence("Ctrl+PgUp"), True)
        self.rename_action = self._action("Rename conversation", QKeySequence("F2"), False)
        self.delete_action = self._action("Delete conversation", QKeySequence(Qt.Key.Key_Delete), False)
        self.undo_action = self._action("Undo delete", QKeySequence("Ctrl+Z"), False)
        self.undo_action.setEnabled(False)
        self.new_action.triggered.connect(self.new_conversation)
        self.search_action.triggered.connect(self.focus_search)
        self.next_action.triggered.connect(self.select_next)
        self.previous_action.triggered.connect(self.select_previous)
        self.rename_action.triggered.connect(self.rename_current)
        self.delete_action.triggered.connect(self.delete_current)
        self.undo_action.triggered.connect(self.undo_delete)

    def _button(self, text: str, action: QAction) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(action.toolTip())
        button.clicked.connect(action.trigger)
        return button

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        self.problem_label.setAccessibleName("Conversation storage problem")
        self.problem_label.setStyleSheet("background:#fff4e0; color:#7a4b00; padding:6px; border-radius:4px;")
        self.problem_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem_label.hide()
        layout.addWidget(self.problem_label)

        top = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText(with_shortcut("Search", self.search_action))
        self.search.setToolTip("Search titles and messages " + f"({shortcut_text(self.search_action)})")
        self.search.setAccessibleName("Search conversations")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda _text: self._search_timer.start())
        top.addWidget(self.search, 1)
        self.new_button = self._button("New", self.new_action)
        top.addWidget(self.new_button)
        layout.addLayout(top)

        self.list = QListWidget()
        self.list.setAccessibleName("Conversations")
        self.list.setToolTip(
            f"{with_shortcut('Switch', self.next_action)}, "
            f"{with_shortcut('rename', self.rename_action)}, {with_shortcut('delete', self.delete_action)}"
        )
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.currentItemChanged.connect(self._on_current_changed)
        self.list.itemChanged.connect(self._on_item_edited)
        layout.addWidget(self.list, 1)

        self.empty_label = QLabel()
        self.empty_label.setWordWrap(True)
        self.empty_label.setStyleSheet("color: palette(placeholder-text);")
        layout.addWidget(self.empty_label)

        bottom = QHBoxLayout()
        self.rename_button = self._button("Rename", self.rename_action)
        self.delete_button = self._button("Delete", self.delete_action)
        bottom.addWidget(self.rename_button)
        bottom.addWidget(self.delete_button)
        bottom.addStretch(1)
        layout.addLayout(bottom)

        self.undo_bar = QWidget()
        undo_row = QHBoxLayout(self.undo_bar)
        undo_row.setContentsMargins(0, 0, 0, 0)
        self.undo_label = QLabel()
        self.undo_label.setWordWrap(True)
        undo_row.addWidget(self.undo_label, 1)
        self.undo_button = self._button("Undo", self.undo_action)
        undo_row.addWidget(self.undo_button)
        self.undo_bar.hide()
        layout.addWidget(self.undo_bar)

    # -- helpers ----------------------------------------------------------------------------------
    def _show_problem(self, text: str) -> None:
        self.problem_label.setText(text)
        self.problem_label.show()

    def _fail(self, exc: UserError) -> None:
        self._show_problem(str(exc))
        self.storeFailed.emit(str(exc))

    def current_id(self) -> int:
        item = self.list.currentItem()
        return int(item.data(ID_ROLE)) if item is not None else -1

    def _item_for(self, conversation_id: int) -> QListWidgetItem | None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if int(item.data(ID_ROLE)) == conversation_id:
                return item
        return None

    def _make_item(self, conv: Conversation, snippet: str = "") -> QListWidgetItem:
        searching = bool(self.search.text().strip())
        item = QListWidgetItem(f"{conv.title}\n{snippet}" if searching and snippet else conv.title)
        item.setData(ID_ROLE, conv.id)
        when = datetime.fromtimestamp(conv.updated_at).strftime("%Y-%m-%d %H:%M")
        details = f"{conv.message_count} messages · updated {when}"
        if conv.preset:
            details += f" · preset {conv.preset}"
        item.setToolTip(f"{conv.title}\n{details}" + (f"\n…{snippet}" if snippet else ""))
        if not searching:  # a result line with its snippet is not a title to edit in place
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
        return item

    # -- slots ------------------------------------------------------------------------------------
    @Slot()
    def refresh(self) -> None:
        """Reload the list (or the search results) from the store, keeping the selection."""
        keep = self.current_id()
        query = self.search.text().strip()
        try:
            if query:
                entries = [(h.conversation, h.snippet) for h in self.store.search(query)]
            else:
                entries = [(c, "") for c in self.store.list_conversations()]
        except UserError as exc:
            self._fail(exc)
            return
        with QSignalBlocker(self.list):
            self.list.clear()
            for conv, snippet in entries:
                self.list.addItem(self._make_item(conv, snippet))
            item = self._item_for(keep)
            if item is not None:
                self.list.setCurrentItem(item)
        if query:
            n = len(entries)
            self.empty_label.setText(f"{n} conversation{'s' if n != 1 else ''} match “{query}”.")
        else:
            self.empty_label.setText(
                "" if entries else f"No conversations yet. {with_shortcut('New conversation', self.new_action)}."
            )
        has = self.current_id() >= 0
        self.rename_action.setEnabled(has)
        self.delete_action.setEnabled(has)
        self.rename_button.setEnabled(has)
        self.delete_button.setEnabled(has)

    def set_new_conversation_defaults(self, preset: str, system_prompt: str = "") -> None:
        self._preset, self._system_prompt = preset, system_prompt

    @Slot()
    def new_conversation(self) -> int:
        try:
            conv = self.store.create_conversation(DEFAULT_TITLE, system_prompt=self._system_prompt, preset=self._preset)
        except UserError as exc:
            self._fail(exc)
            return -1
        if self.search.text():
            self.search.clear()  # a search would hide the new conversation
            self._search_timer.stop()
        self.refresh()
        self.conversationCreated.emit(conv.id)
        self.select_conversation(conv.id)
        return conv.id

    @Slot(int)
    def select_conversation(self, conversation_id: int) -> None:
        item = self._item_for(conversation_id)
        if item is not None:
            self.list.setCurrentItem(item)  # emits conversationSelected through currentItemChanged

    @Slot()
    def select_next(self) -> None:
        self._step(1)

    @Slot()
    def select_previous(self) -> None:
        self._step(-1)

    def _step(self, delta: int) -> None:
        if self.list.count() == 0:
            return
        row = self.list.currentRow()
        row = 0 if row < 0 else (row + delta) % self.list.count()
        self.list.setCurrentRow(row)

    @Slot()
    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    @Slot()
    def rename_current(self) -> None:
        """Open the inline editor on the current title (Enter saves, Esc cancels)."""
        conversation_id = self.current_id()
        if conversation_id < 0:
            return
        if self.search.text():
            self.search.clear()
            self._search_timer.stop()  # a refresh would close the editor opened below
            self.refresh()
        item = self._item_for(conversation_id)
        if item is None:
            return
        self.list.setFocus()
        self.list.editItem(item)

    def rename_conversation(self, conversation_id: int, title: str) -> bool:
        try:
            conv = self.store.rename(conversation_id, title)
        except UserError as exc:
            self._fail(exc)
            self.refresh()
            return False
        self.refresh()
        self.conversationRenamed.emit(conv.id, conv.title)
        return True

    @Slot()
    def delete_current(self) -> None:
        conversation_id = self.current_id()
        if conversation_id < 0:
            return
        item = self.list.currentItem()
        title = item.text().split("\n", 1)[0] if item is not None else ""
        if self._pending_delete is not None:
            self._finish_delete()  # one undo at a time: the earlier deletion becomes final
        row = self.list.currentRow()
        try:
            self.store.delete(conversation_id)
        except UserError as exc:
            self._fail(exc)
            return
        self._pending_delete = (conversation_id, title)
        self.refresh()  # the deleted one is gone from the list, so nothing is selected now
        self.undo_label.setText(f"Deleted “{title}”.")
        self.undo_action.setEnabled(True)
        self.undo_bar.show()
        self._undo_timer.start()
        self.conversationDeleted.emit(conversation_id)
        if self.list.count():
            self.list.setCurrentRow(min(row, self.list.count() - 1))
        else:
            self.conversationSelected.emit(-1)

    @Slot()
    def undo_delete(self) -> None:
        if self._pending_delete is None:
            return
        conversation_id, _title = self._pending_delete
        self._pending_delete = None
        self._undo_timer.stop()
        self.undo_bar.hide()
        self.undo_action.setEnabled(False)
        try:
            self.store.undo_delete(conversation_id)
        except UserError as exc:
            self._fail(exc)
            return
        self.refresh()
        self.deletionUndone.emit(conversation_id)
        self.select_conversation(conversation_id)

    @Slot()
    def _finish_delete(self) -> None:
        """The undo window is over: remove the deleted conversation for good."""
        self._undo_timer.stop()
        self.undo_bar.hide()
        self.undo_action.setEnabled(False)
        if self._pending_delete is None:
            return
        self._pending_delete = None
        try:
            self.store.purge_deleted()
        except UserError as exc:
            self._fail(exc)

    # -- list events ------------------------------------------------------------------------------
    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_current_changed(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        has = current is not None
        self.rename_action.setEnabled(has)
        self.delete_action.setEnabled(has)
        self.rename_button.setEnabled(has)
        self.delete_button.setEnabled(has)
        if current is not None:
            self.conversationSelected.emit(int(current.data(ID_ROLE)))

    @Slot(QListWidgetItem)
    def _on_item_edited(self, item: QListWidgetItem) -> None:
        conversation_id = int(item.data(ID_ROLE))
        conv = self.store.get_conversation(conversation_id)
        if conv is None or item.text() == conv.title:
            return
        title = item.text()
        # Rebuilding the list inside the editor's commit would delete the item under it: defer.
        QTimer.singleShot(0, self, lambda: self.rename_conversation(conversation_id, title))
