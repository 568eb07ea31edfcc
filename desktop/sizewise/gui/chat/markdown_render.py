"""Chat replies as Markdown: headings, lists, tables, and code blocks in monospace with a Copy link.

Rendering goes through markdown-it-py (CommonMark) rather than Qt's built-in ``setMarkdown`` for
two reasons: each code block needs a Copy affordance, which means controlling the HTML of a fence;
and model output must never inject markup, so raw HTML in a reply is escaped (``html=False``) and
links with unsafe schemes are dropped by markdown-it's link validation. The HTML sticks to the
subset Qt's rich-text engine understands (tables for the code-block frame, inline styles).

:class:`MarkdownView` shows the result in a QTextBrowser:

* ``codeCopied(int)`` — the Copy link of code block *n* was clicked; its text is on the clipboard.
* ``linkActivated(QUrl)`` — any other link was clicked. Nothing is opened automatically (the app
  is offline and private); the window decides, e.g. with QDesktopServices.
* ``set_markdown(text)`` — show (or re-show while streaming) a reply; cheap enough (~1 ms for a
  few KB) to call on every coalesced stream update.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt
from PySide6.QtCore import QUrl, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QTextBrowser, QWidget

COPY_SCHEME = "copy-code"
CODE_BACKGROUND = "#f3f4f6"
CODE_LABEL_COLOUR = "#5f6368"


@dataclass
class RenderedMarkdown:
    html: str
    code_blocks: list[str] = field(default_factory=list)


def _fence(self: Any, tokens: Any, idx: int, options: Any, env: dict[str, Any]) -> str:
    """A code block: a tinted frame, the language, a Copy link naming the block by its index."""
    token = tokens[idx]
    code = str(token.content).removesuffix("\n")
    blocks: list[str] = env.setdefault("code_blocks", [])
    n = len(blocks)
    blocks.append(code)
    language = html.escape(str(token.info).strip().split(" ")[0]) if token.info else ""
    label = f'<span style="color:{CODE_LABEL_COLOUR};">{language}</span>&nbsp;&nbsp;' if language else ""
    return (
        f'<table width="100%" cellspacing="0" cellpadding="6" style="background-color:{CODE_BACKGROUND};">'
        f'<tr><td>{label}<a href="{COPY_SCHEME}:{n}">Copy</a></td></tr>'
        f'<tr><td><pre style="font-family:monospace; margin:0;">{html.escape(code)}</pre></td></tr>'
        "</table>\n"
    )


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.add_render_rule("fence", _fence)
    md.add_render_rule("code_block", _fence)
    return md


_MD = _parser()


def render_markdown(text: str) -> RenderedMarkdown:
    """HTML for Qt's rich text plus the raw text of each code block (for Copy)."""
    env: dict[str, Any] = {}
    body = _MD.render(text, env)
    return RenderedMarkdown(html=body, code_blocks=list(env.get("code_blocks", [])))


class MarkdownView(QTextBrowser):
    codeCopied = Signal(int)
    linkActivated = Signal(QUrl)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setAccessibleName("Reply")
        self.rendered = RenderedMarkdown("")
        self.markdown = ""
        self.anchorClicked.connect(self._on_anchor)

    def set_markdown(self, text: str) -> None:
        self.markdown = text
        self.rendered = render_markdown(text)
        bar = self.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 4
        self.setHtml(self.rendered.html)
        if at_end:
            bar.setValue(bar.maximum())

    def copy_code(self, n: int) -> None:
        QGuiApplication.clipboard().setText(self.rendered.code_blocks[n])
        self.codeCopied.emit(n)

    @Slot(QUrl)
    def _on_anchor(self, url: QUrl) -> None:
        if url.scheme() == COPY_SCHEME:
            try:
                n = int(url.path())
            except ValueError:
                return
            if 0 <= n < len(self.rendered.code_blocks):
                self.copy_code(n)
            return
        self.linkActivated.emit(url)
