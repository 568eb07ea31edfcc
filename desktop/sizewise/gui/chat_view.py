"""A list view of chat messages with a delegate that wraps text and shows who spoke and how fast."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QTextDocument, QTextOption
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from sizewise.gui.chat_model import Roles

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
    return f"{toks} tokens · {tg:.1f} tokens/s · first token {ttft:.0f} ms"


class MessageDelegate(QStyledItemDelegate):
    def _doc(self, text: str, width: int, font: QFont) -> QTextDocument:
        doc = QTextDocument()
        doc.setDefaultFont(font)
        opt = QTextOption()
        opt.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        doc.setDefaultTextOption(opt)
        doc.setPlainText(text)
        doc.setTextWidth(max(50, width))
        return doc

    def _footer(self, index: QModelIndex | QPersistentModelIndex) -> str:
        parts = []
        status = index.data(Roles.Status)
        if status in STATUS_NOTES:
            parts.append(STATUS_NOTES[status])
        note = index.data(Roles.Note)
        if note:
            parts.append(str(note))
        line = stats_line(index.data(Roles.Stats) or {})
        if line:
            parts.append(line)
        return " · ".join(parts)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        width = option.rect.width() if option.rect.width() > 0 else 600
        fm = QFontMetrics(option.font)
        doc = self._doc(index.data() or " ", width - 2 * PAD, option.font)
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
        doc = self._doc(index.data() or "", r.width(), option.font)
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
