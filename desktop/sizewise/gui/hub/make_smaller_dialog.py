"""Library → a model → "Make smaller…": choose a quant type, see its size and where the file goes, make it.

Why it is built this way:

* Nothing here blocks the window. Reading the model's header and planning (core/quant/plan.py: the header,
  the output name, free disk space) run through ``run_in_background``; the quantization itself runs in a job
  process (engine/quant/quantize.py) whose events reach the dialog through a JobAdapter.
* Every type llama.cpp knows is listed, so a person learns why IQ2_XS is not offered instead of wondering:
  a type that cannot be made from this model is shown disabled, with the reason beside it and as its tooltip.
* The plan is checked as soon as a type or a file is chosen, so its sentence ("… already exists; Sizewise never
  overwrites a model") shows before any work, and again when Make is pressed, since a file can appear meanwhile.
* Every ending but success leaves nothing on disk: Cancel ends the process (the Quantizer deletes its partial
  file) and the dialog stays open; closing the dialog while it works asks first, then cancels and waits for the
  process to end. The Library is told through the Quantizer's ``on_made`` (``Library.record_made``, on the
  job's reader thread: the Library is thread-safe), before ``made`` is emitted here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLayout,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sizewise.core.errors import UserError
from sizewise.core.hub.library import Library, LibraryEntry
from sizewise.core.quant.plan import (
    QuantizePlan,
    SourceFacts,
    choices_for,
    default_output,
    estimate_bytes,
    plan_quantize,
    read_source,
)
from sizewise.core.quant.types import BY_NAME, Availability, QuantType, source_bits, type_for_ftype
from sizewise.engine.quant.quantize import Quantizer, QuantizeResult
from sizewise.gui.adapters.background import run_in_background
from sizewise.gui.adapters.job_adapter import JobAdapter
from sizewise.gui.widgets.banner import Banner

TYPE_COLUMNS = ["Type", "Bits per weight", "Size (about)", "About"]
CANCELLED = "Cancelled; nothing was written."
STOP_WAIT_S = 15.0  # closing while it runs: how long to wait for the job process to end after cancelling
_UNSAFE_NAME = re.compile(r"[^\w.+-]+")


def _mib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB"


def sentence(exc: BaseException) -> str:
    """One sentence for the person: a UserError as it is, anything else with what kind of failure it was."""
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}."
    return f"Something went wrong: {type(exc).__name__}: {exc}"


class MakeSmallerDialog(QDialog):
    """Make a smaller quant of one Library model with llama.cpp's quantizer, and list it in the Library."""

    typesListed = Signal()  # the source was read and the types are listed (or the reading failed)
    previewed = Signal(str)  # a plan was checked: "" when it would go ahead, else its sentence
    made = Signal(object)  # QuantizeResult, after the Library recorded it
    ended = Signal(str)  # a Make that wrote nothing (refused, failed or cancelled): the sentence shown

    def __init__(
        self,
        entry: LibraryEntry,
        library: Library,
        folder: Path,
        *,
        log_path: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.entry = entry
        self.library = library
        self.folder = folder  # where the file goes unless the person chooses another ("Save as…")
        self.log_path = log_path
        self.source: SourceFacts | None = None
        self.choices: list[Availability] = []
        self.quantizer: Quantizer | None = None
        self.busy = False  # planning or running a Make
        self._cancel_requested = False
        self._gen = 0  # answers from older preview plans are dropped
        self.adapter = JobAdapter(self)
        self.adapter.progress.connect(self._on_progress)
        self.adapter.finished.connect(self._on_finished)
        self.adapter.failed.connect(lambda message: self._end(message, "error"))
        self.adapter.cancelled.connect(lambda: self._end(CANCELLED, "info"))

        self.setWindowTitle(f"Make a smaller copy of {entry.name}")
        self.setMinimumWidth(720)
        self.resize(780, 700)  # room for the list and the messages below it without squeezing either
        self.title = QLabel(f"<b>Make a smaller copy of {entry.name}</b>")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.source_label = QLabel(f"Reading {Path(entry.path).name}…")
        self.source_label.setWordWrap(True)
        self.types = QTreeWidget()
        self.types.setColumnCount(len(TYPE_COLUMNS))
        self.types.setHeaderLabels(TYPE_COLUMNS)
        self.types.setRootIsDecorated(False)
        self.types.setUniformRowHeights(True)
        self.types.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.types.setAccessibleName("Quant types")
        header = self.types.header()
        header.setStretchLastSection(True)
        for col in range(len(TYPE_COLUMNS) - 1):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.types.setMinimumHeight(200)
        self.types.currentItemChanged.connect(lambda *_: self._type_chosen())
        self.choice_label = QLabel("")
        self.choice_label.setWordWrap(True)
        self.warning = Banner()
        self.out_edit = QLineEdit()
        self.out_edit.setAccessibleName("Output file")
        self.out_edit.editingFinished.connect(self._preview)
        self.save_as_button = QPushButton("Save as…")
        self.save_as_button.setToolTip("Choose the folder and name of the new file (Sizewise never replaces a file)")
        self.save_as_button.clicked.connect(self.choose_output)
        self.bar = QProgressBar()
        self.bar.setFormat("Tensor %v of %m")
        self.bar.setAccessibleName("Quantization progress")
        self.bar.hide()
        self.estimate_label = QLabel("")
        self.estimate_label.setWordWrap(True)
        self.estimate_label.hide()
        self.message = Banner()
        self.make_button = QPushButton("Make")
        self.make_button.setToolTip("Write the smaller copy with llama.cpp's quantizer")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop making the file; nothing is written")
        self.close_button = QPushButton("Close")
        for b in (self.make_button, self.cancel_button, self.close_button, self.save_as_button):
            b.setAutoDefault(False)  # Enter in the file name checks it; it does not start a run
        self.make_button.clicked.connect(self.make)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.reject)

        out_row = QHBoxLayout()
        out_row.addWidget(QLabel("Save to:"))
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(self.save_as_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.make_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)  # grows as messages appear, never overlaps
        layout.addWidget(self.title)
        layout.addWidget(self.source_label)
        layout.addWidget(self.types, 1)
        layout.addWidget(self.choice_label)
        layout.addWidget(self.warning)
        layout.addLayout(out_row)
        layout.addWidget(self.bar)
        layout.addWidget(self.estimate_label)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self._update_buttons()
        path = entry.path
        run_in_background(lambda: read_source(path), self._source_read, self._source_failed)

    def _alive(self) -> bool:
        return shiboken6.isValid(self)

    # -- the types

    def _source_read(self, source: SourceFacts) -> None:
        if not self._alive():
            return
        self.source = source
        self.choices = choices_for(source)
        own = type_for_ftype(source.ftype) or BY_NAME.get(source.quantization.upper())
        bits = source_bits(source.ftype, source.quantization)
        params = f"{source.parameters / 1e6:,.0f}M" if source.parameters < 1e9 else f"{source.parameters / 1e9:.2f}B"
        self.source_label.setText(
            f"This model is {source.quantization or 'of an unknown type'} (about {bits:g} bits per weight), "
            f"{params} parameters, {_mib(source.file_bytes)}. A type with fewer bits per weight makes a smaller "
            "file that loses more quality."
        )
        for a in self.choices:
            self.types.addTopLevelItem(self._type_item(source, a, is_own=a.type == own))
        default = self._item_for(self._default_type())
        if default is not None:
            self.types.setCurrentItem(default)
        self._update_buttons()
        self.typesListed.emit()

    def _source_failed(self, exc: BaseException) -> None:
        if self._alive():
            self.source_label.setText(f"{Path(self.entry.path).name} cannot be made smaller.")
            self.message.show_message(sentence(exc), "error")
            self._update_buttons()
            self.typesListed.emit()

    def _type_item(self, source: SourceFacts, a: Availability, *, is_own: bool) -> QTreeWidgetItem:
        t = a.type
        about = t.note if a.allowed else a.reason
        if is_own:
            about = f"this model's own type — {about}"
        size = _mib(estimate_bytes(source, t)) if a.allowed else ""
        item = QTreeWidgetItem([t.name, f"{t.bits:g}", size, about])
        item.setData(0, Qt.ItemDataRole.UserRole, t.name)
        item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        for col in range(len(TYPE_COLUMNS)):
            item.setToolTip(col, a.reason or t.note)
        if not a.allowed:
            item.setFlags(item.flags() & ~(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable))
        if is_own:
            font = item.font(0)
            font.setBold(True)
            item.setFont(0, font)
        return item

    def _default_type(self) -> QuantType | None:
        """The most precise allowed type that is smaller than the model (Q4_K_M from a 16-bit model)."""
        if self.source is None:
            return None
        bits = source_bits(self.source.ftype, self.source.quantization)
        allowed = [a.type for a in self.choices if a.allowed]
        q4km = BY_NAME["Q4_K_M"]
        if q4km in allowed and q4km.bits < bits - 0.05:
            return q4km
        smaller = [t for t in allowed if t.bits < bits - 0.05]
        return max(smaller, key=lambda t: t.bits) if smaller else (allowed[0] if allowed else None)

    def _item_for(self, t: QuantType | None) -> QTreeWidgetItem | None:
        for i in range(self.types.topLevelItemCount()):
            item = self.types.topLevelItem(i)
            if t is not None and item is not None and item.data(0, Qt.ItemDataRole.UserRole) == t.name:
                return item
        return None

    def chosen(self) -> Availability | None:
        item = self.types.currentItem()
        name = item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None
        return next((a for a in self.choices if a.type.name == name and a.allowed), None)

    def choose_type(self, name: str) -> None:
        """Select a type by name (what clicking its row does); a disabled type cannot be chosen."""
        item = self._item_for(BY_NAME.get(name.upper()))
        if item is not None and item.flags() & Qt.ItemFlag.ItemIsEnabled:
            self.types.setCurrentItem(item)

    def _type_chosen(self) -> None:
        a = self.chosen()
        if a is None or self.source is None:
            self.choice_label.setText("")
            self.warning.clear_message()
            self._update_buttons()
            return
        t, src = a.type, self.source
        self.choice_label.setText(
            f"<b>{t.name}</b> from {src.quantization or 'this model'}: about "
            f"{_mib(estimate_bytes(src, t))} (this model is {_mib(src.file_bytes)})."
        )
        if a.reason:
            self.warning.show_message(a.reason, "warning")
        else:
            self.warning.clear_message()
        folder = Path(self.out_edit.text()).parent if self.out_edit.text().strip() else self.folder
        self.out_edit.setText(str(default_output(self._name_base(), t, folder)))
        self._update_buttons()
        self._preview()

    def _name_base(self) -> Path:
        """The file the new name is made from: the model's own file, or its name where the file has none
        that reads as a model (Ollama's blobs are called sha256-…)."""
        assert self.source is not None
        if self.source.path.suffix.lower() == ".gguf":
            return self.source.path
        return Path(f"{_UNSAFE_NAME.sub('-', self.entry.name).strip('-') or 'model'}.gguf")

    # -- the output file

    @Slot()
    def choose_output(self) -> None:
        current = self.out_edit.text().strip() or str(self.folder)
        path, _filter = QFileDialog.getSaveFileName(
            self,
            "Save the smaller copy as",
            current,
            "GGUF models (*.gguf)",
            options=QFileDialog.Option.DontConfirmOverwrite,  # the plan refuses an existing file, in words
        )
        if path:
            self.set_output(path if path.lower().endswith(".gguf") else f"{path}.gguf")

    def set_output(self, path: str | Path) -> None:
        self.out_edit.setText(str(path))
        self._preview()

    @Slot()
    def _preview(self) -> None:
        """Check the plan now, so a refusal shows before any work; Make checks it again."""
        a = self.chosen()
        if a is None or self.busy:
            return
        self.bar.hide()  # what the last run showed is about another choice now
        self.estimate_label.hide()
        self._gen += 1
        gen = self._gen
        source, name, out, folder = self.entry.path, a.type.name, self.out_edit.text().strip(), self.folder

        def work() -> QuantizePlan:
            return plan_quantize(source, name, out=out or None, default_folder=folder)

        run_in_background(work, lambda _plan: self._previewed(gen, ""), lambda exc: self._previewed(gen, sentence(exc)))

    def _previewed(self, gen: int, problem: str) -> None:
        if not self._alive() or gen != self._gen or self.busy:
            return
        if problem:
            self.message.show_message(problem, "error")
        else:
            self.message.clear_message()
        self.previewed.emit(problem)

    # -- making it

    @Slot()
    def make(self) -> None:
        a = self.chosen()
        if a is None or self.busy:
            return
        self.busy = True
        self._cancel_requested = False
        self._gen += 1  # a preview still on its way is out of date now
        self.message.clear_message()
        self.estimate_label.setText("Checking the model and the free disk space…")
        self.estimate_label.show()
        self.bar.setRange(0, 0)  # busy until the first tensor
        self.bar.show()
        self._update_buttons()
        library, adapter, log_path = self.library, self.adapter, self.log_path
        source, name, out, folder = self.entry.path, a.type.name, self.out_edit.text().strip(), self.folder

        def work() -> Quantizer:
            plan = plan_quantize(source, name, out=out or None, default_folder=folder)

            def on_made(result: QuantizeResult) -> None:  # on the job's reader thread, before ``finished``
                library.record_made(result.out, source=plan.source.path, quant=plan.target.name)

            return Quantizer(plan, adapter.on_event, log_path=log_path, on_made=on_made)

        run_in_background(work, self._planned, lambda exc: self._end(sentence(exc), "error"))

    def _planned(self, quantizer: Quantizer) -> None:
        if not self._alive():
            return  # never started: no process, no file
        if self._cancel_requested:
            self._end(CANCELLED, "info")
            return
        self.quantizer = quantizer
        self.out_edit.setText(str(quantizer.plan.out))
        self.estimate_label.setText(f"Starting llama.cpp to write {quantizer.plan.out.name}…")
        self.adapter.start(quantizer)

    @Slot(dict)
    def _on_progress(self, msg: dict[str, Any]) -> None:
        if msg.get("type") == "estimate":
            size = int(msg.get("bytes") or 0)
            fallback = int(msg.get("fallback_tensors") or 0)
            extra = (
                f"; {fallback} tensors use a fallback type (their rows are not a multiple of 256)" if fallback else ""
            )
            self.estimate_label.setText(f"llama.cpp expects {_mib(size)}{extra}.")
        elif msg.get("type") == "progress":
            self.bar.setRange(0, int(msg.get("steps") or 0))
            self.bar.setValue(int(msg.get("step") or 0))
            self.bar.setToolTip(str(msg.get("tensor", "")))

    @Slot(object)
    def _on_finished(self, result: QuantizeResult) -> None:
        text = f"Wrote {result.out.name} ({result.bytes / 2**20:,.1f} MiB) in {result.wall_s:.1f} s."
        if result.fallback_tensors:
            text += (
                f" {result.fallback_tensors} tensors were stored in a fallback type: llama.cpp's "
                f"{result.plan.target.name} needs rows that are a multiple of 256."
            )
        self._stop_running()
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        self.bar.setFormat("Done")
        self.message.show_message(f"{text} The Library lists it as “Made here”.", "info")
        self.made.emit(result)

    def _end(self, text: str, level: str) -> None:
        """A Make that wrote nothing: say why, and let the person choose again."""
        if not self._alive():
            return
        self._stop_running()
        self.bar.hide()
        self.estimate_label.hide()
        self.message.show_message(text, level)
        self.ended.emit(text)

    def _stop_running(self) -> None:
        self.busy = False
        self.quantizer = None
        self._update_buttons()

    def _update_buttons(self) -> None:
        ready = self.source is not None
        self.make_button.setEnabled(ready and not self.busy and self.chosen() is not None)
        self.cancel_button.setEnabled(self.busy)
        self.types.setEnabled(ready and not self.busy)
        self.out_edit.setEnabled(ready and not self.busy)
        self.save_as_button.setEnabled(ready and not self.busy)

    # -- stopping

    @Slot()
    def cancel(self) -> None:
        """Stop the Make in progress; the dialog stays open and says that nothing was written."""
        if not self.busy:
            return
        self._cancel_requested = True
        self.cancel_button.setEnabled(False)
        self.estimate_label.setText("Cancelling…")
        if self.quantizer is not None:
            self.adapter.cancel()  # the job deletes its partial file; ``cancelled`` follows

    def stop_now(self) -> None:
        """Cancel and wait until the job process has ended and its partial file is gone (closing, app exit)."""
        self._cancel_requested = True
        quantizer = self.quantizer
        if quantizer is not None and self.adapter.running:
            self.adapter.cancel()
            quantizer.wait(STOP_WAIT_S)

    def ask_stop(self) -> bool:
        """Closing while a file is being made: ask before throwing the work away."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Stop making the file?",
            f"Sizewise is still making a smaller copy of {self.entry.name}.",
            QMessageBox.StandardButton.NoButton,
            self,
        )
        box.setInformativeText("Stopping deletes the unfinished file; nothing is written.")
        stop = box.addButton("Stop and close", QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep making it", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.setEscapeButton(keep)
        box.exec()
        clicked = box.clickedButton()
        box.deleteLater()
        return clicked is stop

    def reject(self) -> None:
        """Close, Escape and the window's close button all come here: while running, ask, then stop first."""
        if self.busy:
            if not self.ask_stop():
                return
            self.stop_now()
        super().reject()
