"""A preset picker that says what each preset is for, and saves the user's own.

Picking a preset shows its one-line explanation and its temperature, so the choice teaches what
temperature does. The current settings are shown as "Custom" when they match no preset.

Signals
-------
``presetChosen(object)``  the user picked a preset: a ``core.presets.Preset``; apply it with
                          ``preset.apply(current_sampling)`` (keeps max tokens and seed).
``presetSaved(str)``      a user preset was saved under this name.
``failed(str)``           one sentence (e.g. a built-in name was reused); also shown in the widget.

Methods
-------
``show_sampling(SamplingParams)``  tell the widget the settings now in use (selects the matching
preset or "Custom"; Save stores these). ``save_current(name, explanation)``. ``current_preset()``.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal, Slot
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from sizewise.core.chat.presets import Preset, PresetLibrary
from sizewise.core.errors import UserError
from sizewise.core.sampling import SamplingParams

CUSTOM = "Custom"


class PresetsWidget(QWidget):
    presetChosen = Signal(object)
    presetSaved = Signal(str)
    failed = Signal(str)

    def __init__(self, library: PresetLibrary, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.sampling = SamplingParams()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Preset"))
        self.combo = QComboBox()
        self.combo.setAccessibleName("Preset")
        self.combo.activated.connect(self._on_activated)
        row.addWidget(self.combo, 1)
        layout.addLayout(row)
        self.explanation = QLabel()
        self.explanation.setWordWrap(True)
        self.explanation.setAccessibleName("Preset explanation")
        layout.addWidget(self.explanation)

        save_row = QHBoxLayout()
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Name for these settings")
        self.name_edit.setAccessibleName("New preset name")
        self.note_edit = QLineEdit()
        self.note_edit.setPlaceholderText("What they are good for (optional)")
        self.note_edit.setAccessibleName("New preset explanation")
        self.save_button = QPushButton("Save preset")
        self.save_button.setToolTip("Save the current sampling settings as your own preset")
        self.save_button.clicked.connect(lambda: self.save_current(self.name_edit.text(), self.note_edit.text()))
        self.name_edit.returnPressed.connect(self.save_button.click)
        save_row.addWidget(self.name_edit, 1)
        save_row.addWidget(self.note_edit, 2)
        save_row.addWidget(self.save_button)
        layout.addLayout(save_row)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.hide()
        layout.addWidget(self.message)
        if library.problem:
            self._say(library.problem)
        self._fill()
        self.show_sampling(library.default().apply(self.sampling))

    # -- public -----------------------------------------------------------------------------------
    def show_sampling(self, sampling: SamplingParams) -> None:
        self.sampling = sampling
        match = self.library.preset_for(sampling)
        with QSignalBlocker(self.combo):
            self.combo.setCurrentIndex(self.combo.findText(match.name if match else CUSTOM))
        self._explain(match)

    def current_preset(self) -> Preset | None:
        return self.library.get(self.combo.currentText())

    def save_current(self, name: str, explanation: str) -> bool:
        try:
            preset = self.library.save(name, explanation, self.sampling)
        except (UserError, OSError) as exc:
            self._say(str(exc))
            self.failed.emit(str(exc))
            return False
        self._fill()
        self.show_sampling(self.sampling)
        self.name_edit.clear()
        self.note_edit.clear()
        self._say(f"Saved “{preset.name}”.")
        self.presetSaved.emit(preset.name)
        return True

    # -- internals --------------------------------------------------------------------------------
    def _fill(self) -> None:
        with QSignalBlocker(self.combo):
            self.combo.clear()
            for p in self.library.all():
                self.combo.addItem(p.name)
                tip = f"{p.explanation} (temperature {p.temperature:g})"
                self.combo.setItemData(self.combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
            self.combo.addItem(CUSTOM)
            self.combo.setItemData(self.combo.count() - 1, "Settings that match no preset", Qt.ItemDataRole.ToolTipRole)

    def _explain(self, preset: Preset | None) -> None:
        if preset is None:
            self.explanation.setText(f"Your own settings (temperature {self.sampling.temperature:g}).")
        else:
            self.explanation.setText(f"{preset.explanation} Temperature {preset.temperature:g}.")

    def _say(self, text: str) -> None:
        self.message.setText(text)
        self.message.show()

    @Slot(int)
    def _on_activated(self, index: int) -> None:
        preset = self.library.get(self.combo.itemText(index))
        if preset is None:  # "Custom" is a state, not a choice
            self.show_sampling(self.sampling)
            return
        self.sampling = preset.apply(self.sampling)
        self._explain(preset)
        self.presetChosen.emit(preset)
