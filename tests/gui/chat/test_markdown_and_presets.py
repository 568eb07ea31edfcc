"""Markdown replies (code blocks with Copy, no injected markup) and the preset picker."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from sizewise.core.chat.presets import PresetLibrary
from sizewise.core.sampling import SamplingParams
from sizewise.gui.chat.markdown_render import MarkdownView, render_markdown
from sizewise.gui.widgets.presets_widget import CUSTOM, PresetsWidget

REPLY = """Here is **one** way:

```python
print("<b>hi</b>")
```

Raw <script>alert(1)</script> stays text, and [bad](javascript:alert(1)) is no link.

| a | b |
|---|---|
| 1 | 2 |
"""


def test_markdown_renders_code_with_copy_and_escapes_markup() -> None:
    out = render_markdown(REPLY)
    assert out.code_blocks == ['print("<b>hi</b>")']
    assert '<a href="copy-code:0">Copy</a>' in out.html and "font-family:monospace" in out.html
    assert "<strong>one</strong>" in out.html and "<td>1</td>" in out.html
    assert "<script>" not in out.html and "&lt;script&gt;" in out.html
    assert 'href="javascript' not in out.html  # unsafe link schemes are not turned into links


def test_copy_link_puts_the_code_on_the_clipboard(qtbot: QtBot) -> None:
    view = MarkdownView()
    qtbot.addWidget(view)
    view.set_markdown(REPLY)
    assert 'print("<b>hi</b>")' in view.toPlainText()  # shown as text, not as bold markup
    with qtbot.waitSignal(view.codeCopied) as copied:
        view.anchorClicked.emit(QUrl("copy-code:0"))
    assert copied.args == [0] and QGuiApplication.clipboard().text() == 'print("<b>hi</b>")'
    with qtbot.waitSignal(view.linkActivated) as link:
        view.anchorClicked.emit(QUrl("https://example.org"))
    assert link.args[0].toString() == "https://example.org"


def test_preset_picker_explains_and_saves(qtbot: QtBot, tmp_path: Path) -> None:
    w = PresetsWidget(PresetLibrary(tmp_path))
    qtbot.addWidget(w)
    assert w.combo.currentText() == "Balanced"
    assert "Everyday" in w.explanation.text() and "0.7" in w.explanation.text()
    with qtbot.waitSignal(w.presetChosen) as chosen:
        w.combo.activated.emit(w.combo.findText("Precise"))
    preset = chosen.args[0]
    assert preset.name == "Precise" and "facts" in w.explanation.text()
    applied = preset.apply(SamplingParams(max_tokens=99, seed=4))
    assert (applied.temperature, applied.max_tokens, applied.seed) == (0.2, 99, 4)
    w.show_sampling(SamplingParams(temperature=1.7))
    assert w.combo.currentText() == CUSTOM and "1.7" in w.explanation.text()
    w.name_edit.setText("Wild")
    w.note_edit.setText("Very loose.")
    with qtbot.waitSignal(w.presetSaved):
        w.save_button.click()
    assert w.combo.currentText() == "Wild" and PresetLibrary(tmp_path).get("Wild") is not None
    with qtbot.waitSignal(w.failed):
        assert not w.save_current("Creative", "")
    assert "built-in" in w.message.text()
