"""The chat list: Markdown replies, code blocks with a working Copy link, plain user text."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from sizewise.gui.chat.chat_model import ChatMessage, ChatModel
from sizewise.gui.chat.chat_view import ChatView, MessageDelegate

REPLY = "Here is **bold** text.\n\n```python\nprint('hello')\n```\n\nDone."


def make_view(qtbot: QtBot) -> tuple[ChatView, ChatModel]:
    model = ChatModel()
    view = ChatView()
    view.setModel(model)
    qtbot.addWidget(view)
    view.resize(600, 400)
    view.show()
    model.append(ChatMessage("user", "Show me **code**"))
    model.append(ChatMessage("assistant", REPLY))
    qtbot.waitExposed(view)
    return view, model


def find_copy_link(view: ChatView, row: int) -> QPoint:
    delegate = view.itemDelegate()
    assert isinstance(delegate, MessageDelegate)
    rect = view.visualRect(view.model().index(row, 0))
    from PySide6.QtWidgets import QStyleOptionViewItem

    option = QStyleOptionViewItem()
    view.initViewItemOption(option)
    option.rect = rect
    for y in range(rect.top(), rect.bottom(), 2):
        for x in range(rect.left(), rect.right(), 3):
            if delegate.anchor_at(option, view.model().index(row, 0), QPoint(x, y)).startswith("copy-code:"):
                return QPoint(x, y)
    raise AssertionError("no Copy link drawn in the reply")


def test_copy_link_puts_the_code_on_the_clipboard(qtbot: QtBot) -> None:
    view, _ = make_view(qtbot)
    QGuiApplication.clipboard().setText("")
    point = find_copy_link(view, 1)
    delegate = view.itemDelegate()
    with qtbot.waitSignal(delegate.codeCopied, timeout=2000):
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert QGuiApplication.clipboard().text() == "print('hello')"


def test_user_text_is_not_rendered_as_markdown(qtbot: QtBot) -> None:
    view, _ = make_view(qtbot)
    delegate = view.itemDelegate()
    assert isinstance(delegate, MessageDelegate)
    rendered = delegate.rendered(REPLY)
    assert "<b>bold</b>" in rendered.html or "<strong>bold</strong>" in rendered.html
    assert rendered.code_blocks == ["print('hello')"]
    user_rect = view.visualRect(view.model().index(0, 0))
    reply_rect = view.visualRect(view.model().index(1, 0))
    assert reply_rect.height() > user_rect.height()  # the code block takes room
