"""The chat list: Markdown replies, code blocks with a working Copy link, plain user text."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QFont, QGuiApplication, QTextDocument
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


def _bold_runs(doc: QTextDocument) -> list[str]:
    """The text of every bold fragment of a laid-out message."""
    runs = []
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.isValid() and fragment.charFormat().fontWeight() >= QFont.Weight.Bold:
                runs.append(fragment.text())
            it += 1
        block = block.next()
    return runs


def test_user_text_is_not_rendered_as_markdown(qtbot: QtBot) -> None:
    view, _ = make_view(qtbot)
    delegate = view.itemDelegate()
    assert isinstance(delegate, MessageDelegate)
    font = view.font()
    user = delegate._doc_for(view.model().index(0, 0), 500, font)
    reply = delegate._doc_for(view.model().index(1, 0), 500, font)
    # the user's text is drawn as typed: the asterisks stay, nothing turns bold, nothing is a link
    assert user.toPlainText() == "Show me **code**"
    assert _bold_runs(user) == []
    assert "copy-code" not in user.toHtml()
    # the same kind of Markdown in a reply is rendered
    assert "bold" in _bold_runs(reply) and "**" not in reply.toPlainText()
    rendered = delegate.rendered(REPLY)
    assert rendered.code_blocks == ["print('hello')"]
    user_rect = view.visualRect(view.model().index(0, 0))
    reply_rect = view.visualRect(view.model().index(1, 0))
    assert reply_rect.height() > user_rect.height()  # the code block takes room
