"""What the Chat page's Send, Stop, Regenerate, Continue and Edit do, kept out of the main window.

Each action reads the message box and the sampling panel and hands the turn to ChatController, but
only when a model is ready. Editing a sent message is a small mode of its own: the text goes back
into the message box, Send replaces the message and the replies after it, Stop cancels. Opening a
conversation brings its own system prompt into the panel. The window wires buttons, keys and menus
to these slots and shows the ``message`` signal in its banner.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QPoint, Signal, Slot
from PySide6.QtWidgets import QApplication, QMenu, QWidget

from sizewise.gui.chat.chat_controller import ChatController
from sizewise.gui.chat.chat_view import ChatView
from sizewise.gui.chat.conversation_sidebar import ConversationSidebar
from sizewise.gui.chat.input_box import InputBox
from sizewise.gui.widgets.presets_widget import PresetsWidget
from sizewise.gui.widgets.sampling_panel import SamplingPanel


class ChatActions(QObject):
    """The chat turns the user starts from the Chat page, given the model state from ``state()``.

    ``state`` answers the model loader's state (empty | checking | loading | ready | generating);
    nothing is sent unless a model is loaded ("ready", or "generating" while another page's request
    runs: the chat's turn then queues behind it) and the chat has no turn of its own under way. Stop
    stops the chat's own turn only.
    """

    message = Signal(str, str)  # sentence, level (error | warning | info)
    messageCleared = Signal()  # a new turn began: an old message no longer applies

    def __init__(
        self,
        controller: ChatController,
        *,
        input_box: InputBox,
        chat_view: ChatView,
        sampling_panel: SamplingPanel,
        presets: PresetsWidget,
        sidebar: ConversationSidebar,
        state: Callable[[], str],
        parent: QWidget,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.chat = controller.chat
        self.input = input_box
        self.chat_view = chat_view
        self.sampling_panel = sampling_panel
        self.presets = presets
        self.sidebar = sidebar
        self._state = state
        self._menu_parent = parent
        self._editing_row: int | None = None  # the sent message that Send will replace

    def _model_path(self) -> str:
        return str(self.controller.engine.model_path or "")

    def _model_ready(self) -> bool:
        """A model is loaded (another page may be using it: the chat's turn then waits for it)."""
        return self._state() in ("ready", "generating")

    @Slot()
    def send(self) -> None:
        text = self.input.toPlainText().strip()
        if self.controller.busy:
            return
        if not text:
            self.message.emit("Type a message first.", "info")
            return
        if not self._model_ready():
            self.message.emit("Load a model first: choose one above and press Load.", "info")
            return
        self.messageCleared.emit()
        preset = self.presets.current_preset()
        sampling, system = self.sampling_panel.sampling(), self.sampling_panel.system_text()
        if self._editing_row is not None:
            row, self._editing_row = self._editing_row, None
            if self.controller.edit_and_resend(row, text, sampling, system, self._model_path()):
                self.input.clear()
            return
        if self.controller.send(text, sampling, system, self._model_path(), preset.name if preset else ""):
            self.input.clear()

    @Slot()
    def regenerate(self) -> None:
        if self._model_ready():
            self.controller.regenerate(
                self.sampling_panel.sampling(), self.sampling_panel.system_text(), self._model_path()
            )

    @Slot()
    def continue_reply(self) -> None:
        if self._model_ready():
            self.controller.continue_last(
                self.sampling_panel.sampling(), self.sampling_panel.system_text(), self._model_path()
            )

    def edit_message(self, row: int) -> None:
        """Put a sent message back in the input box; sending it replaces it and everything after."""
        if not self._model_ready() or self.controller.busy or not 0 <= row < len(self.chat.messages):
            return
        self._editing_row = row
        self.input.setPlainText(self.chat.messages[row].text)
        self.input.setFocus()
        self.message.emit("Editing a sent message: Send replaces it and the replies after it; Esc cancels.", "info")

    @Slot()
    def stop(self) -> None:
        """Stop the chat's reply (another page's request goes on); with none, cancel editing a sent message."""
        if self.controller.busy:
            self.controller.stop()
        elif self._editing_row is not None:
            self._editing_row = None
            self.input.clear()
            self.messageCleared.emit()

    @Slot(int)
    def conversation_changed(self, conversation_id: int) -> None:
        """Another conversation is shown: select it in the list and show its own system prompt."""
        if conversation_id >= 0 and self.sidebar.current_id() != conversation_id:
            self.sidebar.refresh()
            self.sidebar.select_conversation(conversation_id)
        store = self.controller.store
        conv = store.get_conversation(conversation_id) if conversation_id >= 0 else None
        # Each conversation has its own system prompt: show it, so the next send does not overwrite it
        # with the previous conversation's. A fresh, empty conversation keeps what the user typed.
        fresh = conv is not None and not conv.system_prompt and not self.chat.messages
        if conv is not None and not fresh and conv.system_prompt != self.sampling_panel.system_text():
            self.sampling_panel.system_prompt.setPlainText(conv.system_prompt)
        self._editing_row = None

    @Slot(int)
    def conversation_deleted(self, conversation_id: int) -> None:
        """A deleted conversation that is open is closed."""
        if conversation_id == self.controller.conversation_id:
            self.controller.open_conversation(-1)

    @Slot(QPoint)
    def show_menu(self, pos: QPoint) -> None:
        """The chat's context menu: copy any message, edit a sent one, regenerate or continue the last reply."""
        index = self.chat_view.indexAt(pos)
        if not index.isValid():
            return
        row = index.row()
        msg = self.chat.messages[row]
        menu = QMenu(self._menu_parent)
        menu.addAction("Copy", lambda: QApplication.clipboard().setText(msg.text))
        ready = self._model_ready() and not self.controller.busy
        last = row == len(self.chat.messages) - 1
        if msg.role == "user":
            menu.addAction("Edit and resend", lambda: self.edit_message(row)).setEnabled(ready)
        elif last:
            menu.addAction("Regenerate", self.regenerate).setEnabled(ready)
            menu.addAction("Continue", self.continue_reply).setEnabled(ready)
        menu.popup(self.chat_view.viewport().mapToGlobal(pos))
