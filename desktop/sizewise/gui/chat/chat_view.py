"""A list view of chat messages with a delegate that wraps text and shows who spoke and how fast."""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import (
    QAbstractItemModel,
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QPointF,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QMouseEvent,
    QPainter,
    QPalette,
    QTextDocument,
)
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from sizewise.gui.chat.chat_model import Roles
from sizewise.gui.chat.markdown_render import COPY_SCHEME, RenderedMarkdown, render_markdown

PAD = 10
ROLE_LABELS = {"user": "You", "assistant": "Assistant", "system": "System", "completion": "Model (completion)"}
STATUS_NOTES = {
    "streaming": "writing…",
    "stopped": "stopped",
    "interrupted": "interrupted — the engine stopped",
    "error": "failed",
}


def stats_line(stats: dict[str, object]) -> str:
    if not stats:
        return ""
    tg = float(stats.get("tg_tps", 0) or 0)  # type: ignore[arg-type]
    ttft = float(stats.get("ttft_ms", 0) or 0)  # type: ignore[arg-type]
    toks = stats.get("tokens", 0)
    if stats.get("remote"):  # a server's reply: the speed as it arrived here, network included
        return f"{toks} tokens · {tg:.1f} tokens/s received (remote) · first token {ttft:.0f} ms"
    return f"{toks} tokens · {tg:.1f} tokens/s · first token {ttft:.0f} ms"


class MessageDelegate(QStyledItemDelegate):
    """Replies are rendered as Markdown (code in monospace with a Copy link); user text stays plain.

    Rendering is cached by text, so a repaint of unchanged rows costs no Markdown parsing; while a
    reply streams only its own row is re-rendered, at the chat model's coalesced update rate.
    """

    codeCopied = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rendered: OrderedDict[str, RenderedMarkdown] = OrderedDict()

    def rendered(self, text: str) -> RenderedMarkdown:
        hit = self._rendered.get(text)
        if hit is None:
            hit = render_markdown(text)
            self._rendered[text] = hit
            if len(self._rendered) > 256:
                self._rendered.popitem(last=False)
        else:
            self._rendered.move_to_end(text)
        return hit

    def _doc_for(self, index: QModelIndex | QPersistentModelIndex, width: int, font: QFont) -> QTextDocument:
        doc = QTextDocument()
        doc.setDefaultFont(font)
        # Default word wrapping. (QTextOption.setWrapMode is avoided: in PySide6 6.12 each call drops
        # a reference to None, and enough calls abort the interpreter — found by tests/gui/chat/test_chat_view.py.)
        text = index.data() or ""
        if index.data(Roles.Role) == "assistant":
            doc.setDocumentMargin(0)
            doc.setHtml(self.rendered(text).html)
        else:
            doc.setPlainText(text)
        doc.setTextWidth(max(50, width))
        return doc

    def _text_origin(self, option: QStyleOptionViewItem) -> tuple[QRect, int]:
        fm = QFontMetrics(option.font)
        r = option.rect.adjusted(PAD, PAD, -PAD, -PAD)
        return r, r.top() + fm.height() + 4

    def anchor_at(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex, pos: QPoint) -> str:
        r, top = self._text_origin(option)
        doc = self._doc_for(index, r.width(), option.font)
        return doc.documentLayout().anchorAt(QPointF(pos.x() - r.left(), pos.y() - top))

    def editorEvent(
        self,
        event: QEvent,
        model: QAbstractItemModel,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> bool:
        if event.type() == QEvent.Type.MouseButtonRelease and isinstance(event, QMouseEvent):
            anchor = self.anchor_at(option, index, event.position().toPoint())
            if anchor.startswith(COPY_SCHEME + ":"):
                blocks = self.rendered(index.data() or "").code_blocks
                n = int(anchor.split(":", 1)[1])
                if 0 <= n < len(blocks):
                    QGuiApplication.clipboard().setText(blocks[n])
                    self.codeCopied.emit(n)
                return True
        return super().editorEvent(event, model, option, index)

    def _footer(self, index: QModelIndex | QPersistentModelIndex) -> str:
        parts = []
        status = index.data(Roles.Status)
        note = index.data(Roles.Note)
        if status == "interrupted" and note:  # a server that went away: its sentence says why, not the engine
            parts.append("interrupted")
        elif status in STATUS_NOTES:
            parts.append(STATUS_NOTES[status])
        if note:
            parts.append(str(note))
        line = stats_line(index.data(Roles.Stats) or {})
        if line:
            parts.append(line)
        return " · ".join(parts)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        width = option.rect.width() if option.rect.width() > 0 else 600
        fm = QFontMetrics(option.font)
        doc = self._doc_for(index, width - 2 * PAD, option.font)
        height = PAD + fm.height() + 4 + int(doc.size().height()) + PAD
        if self._footer(index):
            height += fm.height()
        return QSize(width, height)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        painter.save()
        role = index.data(Roles.Role) or "assistant"
        pal = option.palette
        bg = pal.color(QPalette.ColorRole.AlternateBase if role == "user" else QPalette.ColorRole.Base)
        if option.state & QStyle.StateFlag.State_Selected:
            bg = pal.color(QPalette.ColorRole.Highlight).lighter(170)
        painter.fillRect(option.rect, bg)
        fm = QFontMetrics(option.font)
        r = option.rect.adjusted(PAD, PAD, -PAD, -PAD)
        bold = QFont(option.font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(pal.color(QPalette.ColorRole.Text))
        painter.drawText(
            QRect(r.left(), r.top(), r.width(), fm.height()), Qt.AlignmentFlag.AlignLeft, ROLE_LABELS.get(role, role)
        )
        doc = self._doc_for(index, r.width(), option.font)
        painter.translate(r.left(), r.top() + fm.height() + 4)
        doc.drawContents(painter)
        painter.translate(-r.left(), -(r.top() + fm.height() + 4))
        footer = self._footer(index)
        if footer:
            painter.setFont(option.font)
            status = index.data(Roles.Status)
            painter.setPen(
                QColor("#b00020")
                if status in ("interrupted", "error")
                else pal.color(QPalette.ColorRole.PlaceholderText)
            )
            painter.drawText(
                QRect(r.left(), r.bottom() - fm.height() + 1, r.width(), fm.height()),
                Qt.AlignmentFlag.AlignLeft,
                footer,
            )
        painter.restore()


class ChatView(QListView):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setItemDelegate(MessageDelegate(self))
        self.setWordWrap(True)
        self.setUniformItemSizes(False)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAccessibleName("Conversation")

    def rowsInserted(self, parent: QModelIndex | QPersistentModelIndex, start: int, end: int) -> None:
        super().rowsInserted(parent, start, end)
        self.scrollToBottom()

    def dataChanged(self, topLeft, bottomRight, roles=()):  # type: ignore[no-untyped-def]
        super().dataChanged(topLeft, bottomRight, roles)
        # Row height changes as text streams in: relayout only that row, then follow the tail.
        self.scheduleDelayedItemsLayout()
        if self.verticalScrollBar().value() >= self.verticalScrollBar().maximum() - 40:
            self.scrollToBottom()
