"""The Downloads and Library view: download progress bars above one list of every local model.

Downloads run on the DownloadQueue's own worker thread (core/hub/download_queue.py); its progress callbacks
arrive on that thread and cross to the GUI thread through a Qt signal, so the bars update without the
window ever waiting. Listing, importing and deleting read or delete files, so they run through
``run_in_background`` too. A finished download refreshes the list.

Import works through the file dialog and by dropping ``.gguf`` files on the view. ``loadRequested(path)``
is for the main window: a double-click or "Load" asks it to load that model.

When the list comes back empty the table gives way to a short panel: the folders that were scanned (the
Hugging Face cache, LM Studio's, Ollama's and GPT4All's folders, and files imported before), whether each is
there at all, and the ways to add a model this app really has — import a file, drop one here, download one
from Discover (``discoverRequested``), or download it in one of those apps and look again.

"Remove…" always asks first, whatever state the model is in, and names the file and its folder. A model
Sizewise downloaded is deleted from disk (the question says how much space that frees). Any other file —
imported, or found in LM Studio's, GPT4All's, Ollama's folder or the shared Hugging Face cache — is only
taken off the list by default (core/hub/library.py remembers that across scans); deleting it from disk is
a separate choice with its own question, which names the folder and the app it belongs to. Ollama's files
are never deleted here. The starter model is neither: it belongs to the installation, so Remove… is disabled
while it is selected and its tooltip says why.

"Make smaller…" (a button, and in the row's context menu with Load and Remove…) opens the quant lab's dialog
(make_smaller_dialog.py) for a model that is present, readable and one file; the new file is listed as "Made
here", and its row's tooltip says which model it was made from. One dialog at a time: asking again while one is
making a file brings that one back to the front.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any, Literal

import shiboken6
from PySide6.QtCore import QObject, QPoint, Qt, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sizewise.core.hub.download_queue import DownloadQueue
from sizewise.core.hub.library import SOURCE_LABELS, DiscoveryRoots, Library, LibraryEntry
from sizewise.core.hub.transfer import DownloadedFile, DownloadState, Progress
from sizewise.core.quant.plan import made_here_folder
from sizewise.engine.quant.quantize import QuantizeResult
from sizewise.gui.adapters.background import run_in_background
from sizewise.gui.hub.make_smaller_dialog import MakeSmallerDialog
from sizewise.gui.widgets.empty_state import EmptyState

LIBRARY_COLUMNS = ["Name", "Quant", "Params", "Size", "Context", "Source", "Status", "Measured", "Last used"]
REMOVE_CHOICE = "Remove from library"
DELETE_ASK_CHOICE = "Delete from disk…"
DELETE_CHOICE = "Delete from disk"
REMOVE_TOOLTIP = "Take the selected model off the list, or delete its files from disk (asks first)"
MAKE_SMALLER_TOOLTIP = "Make a smaller quant of the selected model with llama.cpp (listed here as “Made here”)"
_OTHER_APPS = {"lm-studio": "LM Studio", "gpt4all": "GPT4All", "ollama": "Ollama"}


def _size(n: float) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.2f} GiB"
    return f"{n / 2**20:.1f} MiB"


def scanned_folders(roots: DiscoveryRoots) -> list[tuple[str, Path, bool]]:
    """(app, folder, whether it exists) for every folder the library scans, in the order it scans them."""
    found: list[tuple[str, Path]] = []
    if roots.hf_cache is not None:
        found.append((SOURCE_LABELS["hf-cache"], roots.hf_cache))
    found += [(SOURCE_LABELS["lm-studio"], p) for p in roots.lm_studio]
    found += [(SOURCE_LABELS["ollama"], p) for p in roots.ollama]
    found += [(SOURCE_LABELS["gpt4all"], p) for p in roots.gpt4all]
    return [(app, path, path.is_dir()) for app, path in found]


def _ago(ts: float | None) -> str:
    if not ts:
        return ""
    s = time.time() - ts
    if s < 90:
        return "just now"
    if s < 5400:
        return f"{s / 60:.0f} min ago"
    if s < 129600:
        return f"{s / 3600:.0f} h ago"
    return f"{s / 86400:.0f} days ago"


class _Relay(QObject):
    """Carries the queue's callbacks from its worker thread to the GUI thread."""

    progress = Signal(object)
    finished = Signal(object, object)


class DownloadRow(QWidget):
    """One download: name, bar, speed/ETA and the pause/resume/cancel buttons."""

    def __init__(self, job_id: int, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job_id = job_id
        self.title = QLabel(title)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setAccessibleName(f"Progress of {title}")
        self.detail = QLabel("queued")
        self.pause = QPushButton("Pause")
        self.resume = QPushButton("Resume")
        self.cancel = QPushButton("Cancel")
        self.resume.hide()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title, 2)
        layout.addWidget(self.bar, 3)
        layout.addWidget(self.detail, 3)
        layout.addWidget(self.pause)
        layout.addWidget(self.resume)
        layout.addWidget(self.cancel)
        self.state = DownloadState.QUEUED

    def show_progress(self, p: Progress) -> None:
        self.state = p.state
        if p.total_bytes:
            self.bar.setValue(int(1000 * min(p.done_bytes / p.total_bytes, 1.0)))
        if p.state == DownloadState.DOWNLOADING:
            eta = f", {p.eta_s:.0f} s left" if p.eta_s is not None else ""
            total = _size(p.total_bytes) if p.total_bytes else "?"
            self.detail.setText(f"{_size(p.done_bytes)} of {total}, {_size(p.speed_bps)}/s{eta}")
        else:
            self.detail.setText(p.message or p.state.value)
        self.detail.setToolTip(p.message)
        paused = p.state in (DownloadState.PAUSED, DownloadState.FAILED)
        self.pause.setVisible(not paused and not p.state.finished)
        self.resume.setVisible(paused)
        self.cancel.setVisible(not (p.state.finished and p.state != DownloadState.FAILED))


class LibraryView(QWidget):
    """Downloads with progress bars, then the library: import, delete, load."""

    loadRequested = Signal(str)
    discoverRequested = Signal()  # the empty library's "Find one on Discover"
    libraryRefreshed = Signal(list)  # list[LibraryEntry]
    downloadFinished = Signal(object, object)  # Progress, DownloadedFile | None
    failed = Signal(str)

    def __init__(
        self,
        library: Library,
        queue: DownloadQueue | None = None,
        parent: QWidget | None = None,
        *,
        made_folder: Path | None = None,
        log_dir: Path | None = None,
    ) -> None:
        """``made_folder``: where "Make smaller…" puts new files (default: the app's models folder);
        ``log_dir``: where llama.cpp's quantize log goes (default: nowhere)."""
        super().__init__(parent)
        self.library = library
        self.queue = queue
        self.made_folder = made_folder if made_folder is not None else made_here_folder(library.data_dir)
        self.log_dir = log_dir
        self.make_dialog: MakeSmallerDialog | None = None
        self.entries: list[LibraryEntry] = []
        self.download_rows: dict[int, DownloadRow] = {}
        self._refresh_gen = 0
        self._note = ""  # what just happened, kept in front of the count when the list refreshes
        self._relay = _Relay()
        self._relay.progress.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)
        self._relay.finished.connect(self._on_finished, Qt.ConnectionType.QueuedConnection)
        if queue is not None:
            queue.on_progress = self._relay.progress.emit
            queue.on_finished = self._relay.finished.emit
        self.setAcceptDrops(True)

        self.downloads_box = QWidget()
        self.downloads_layout = QVBoxLayout(self.downloads_box)
        self.downloads_layout.setContentsMargins(0, 0, 0, 0)
        self.downloads_title = QLabel("<b>Downloads</b>")
        self.downloads_title.hide()

        self.table = QTableWidget(0, len(LIBRARY_COLUMNS))
        self.table.setHorizontalHeaderLabels(LIBRARY_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.cellDoubleClicked.connect(lambda row, _c: self.load_row(row))
        self.table.itemSelectionChanged.connect(self._update_remove_button)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._show_row_menu)
        self.import_button = QPushButton("Import…")
        self.import_button.setToolTip("Add .gguf files from anywhere (or drop them here)")
        self.load_button = QPushButton("Load")
        self.delete_button = QPushButton("Remove…")
        self.delete_button.setToolTip(REMOVE_TOOLTIP)
        self.make_button = QPushButton("Make smaller…")
        self.make_button.setToolTip(MAKE_SMALLER_TOOLTIP)
        self.refresh_button = QPushButton("Refresh")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.import_button.clicked.connect(self.choose_files)
        self.load_button.clicked.connect(lambda: self.load_row(self.selected_row()))
        self.delete_button.clicked.connect(lambda: self.delete_row(self.selected_row()))
        self.make_button.clicked.connect(lambda: self.make_smaller_row(self.selected_row()))
        self.refresh_button.clicked.connect(self.refresh)

        buttons = QHBoxLayout()
        for b in (self.import_button, self.load_button, self.make_button, self.delete_button, self.refresh_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.empty = self._build_empty()
        self.pages = QStackedWidget()
        self.pages.addWidget(self.table)
        self.pages.addWidget(self.empty)
        layout = QVBoxLayout(self)
        layout.addWidget(self.downloads_title)
        layout.addWidget(self.downloads_box)
        layout.addWidget(QLabel("<b>Library</b> — every model on this computer"))
        layout.addWidget(self.pages, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        if queue is not None:
            for p in queue.jobs():  # e.g. unfinished downloads restored from last time
                self._on_progress(p)

    def _build_empty(self) -> EmptyState:
        """The panel shown instead of an empty table: where Sizewise looked and how to add a model."""
        empty = EmptyState("No models found on this computer", "Sizewise looked for .gguf files in these folders:")
        self.scanned_note = empty.add_note(above_actions=True)
        self.empty_import = empty.add_action(
            "Import a GGUF file…", "Add .gguf files from any folder. You can also drop them on this page."
        )
        self.empty_discover = empty.add_action(
            "Find one on Discover", "Popular small models on the Hugging Face Hub, each file with a Download button."
        )
        self.empty_refresh = empty.add_action(
            "Look again", "Scan these folders again, e.g. after downloading a model in LM Studio, Ollama or GPT4All."
        )
        # Only what the library really follows (core/hub/library.py DiscoveryRoots.default, HubSettings.from_env).
        self.folders_note = empty.add_note(
            "Sizewise finds models where these apps keep them: the models folder set in LM Studio "
            "(<code>downloadsFolder</code> in <code>~/.lmstudio/settings.json</code>), Ollama's "
            "<code>OLLAMA_MODELS</code> variable, and <code>HF_HOME</code> or <code>HF_HUB_CACHE</code> "
            "for the Hugging Face cache."
        )
        self.empty_import.clicked.connect(self.choose_files)
        self.empty_discover.clicked.connect(self.discoverRequested)
        self.empty_refresh.clicked.connect(self.refresh)
        return empty

    def _show_scanned(self, folders: list[tuple[str, Path, bool]]) -> None:
        items = [
            f"<li>{html.escape(app)}: <code>{html.escape(str(path))}</code>{'' if there else ' (not there)'}</li>"
            for app, path, there in folders
        ]
        items.append("<li>Files you import: none yet</li>")
        self.scanned_note.setText(f"<ul style='margin-left:0'>{''.join(items)}</ul>")
        self.scanned_note.show()

    def _alive(self) -> bool:
        return shiboken6.isValid(self)

    def _fail(self, exc: BaseException) -> None:
        if self._alive():
            self.status.setText(str(exc))
            self.failed.emit(str(exc))

    # -- downloads

    @Slot(object)
    def _on_progress(self, p: Progress) -> None:
        if not self._alive():
            return
        row = self.download_rows.get(p.job_id)
        if row is None:
            row = DownloadRow(p.job_id, p.filename)
            row.pause.clicked.connect(lambda _c=False, j=p.job_id: self._queue_call("pause", j))
            row.resume.clicked.connect(lambda _c=False, j=p.job_id: self._queue_call("resume", j))
            row.cancel.clicked.connect(lambda _c=False, j=p.job_id: self._queue_call("cancel", j))
            self.download_rows[p.job_id] = row
            self.downloads_layout.addWidget(row)
            self.downloads_title.show()
        row.show_progress(p)

    def _queue_call(self, action: str, job_id: int) -> None:
        if self.queue is not None:
            getattr(self.queue, action)(job_id)

    @Slot(object, object)
    def _on_finished(self, p: Progress, result: DownloadedFile | None) -> None:
        if not self._alive():
            return
        self._on_progress(p)
        if p.state == DownloadState.DONE:
            self._note = f"{p.filename} downloaded and verified."
            self.status.setText(self._note)
            self.refresh()
        elif p.state == DownloadState.FAILED:
            self.status.setText(p.message)
        self.downloadFinished.emit(p, result)

    # -- the library list

    @Slot()
    def refresh(self) -> None:
        self._refresh_gen += 1
        gen = self._refresh_gen
        library = self.library

        def work() -> tuple[list[LibraryEntry], list[tuple[str, Path, bool]]]:
            entries = library.list()
            return entries, [] if entries else scanned_folders(library.roots)

        run_in_background(work, lambda found: self._listed(gen, *found), self._fail)

    def _listed(self, gen: int, entries: list[LibraryEntry], folders: list[tuple[str, Path, bool]]) -> None:
        if not self._alive() or gen != self._refresh_gen:
            return
        self.entries = entries
        if not entries:
            self._show_scanned(folders)
        self.pages.setCurrentWidget(self.table if entries else self.empty)
        self.load_button.setEnabled(bool(entries))
        self.delete_button.setEnabled(bool(entries))
        self.table.setRowCount(0)
        for e in entries:
            row = self.table.rowCount()
            self.table.insertRow(row)
            status = ("verified ✓" if e.verified else "ok") if e.status == "ok" else e.status
            measured = ""
            if e.measured is not None:
                bits = []
                if e.measured.memory_bytes:
                    bits.append(_size(e.measured.memory_bytes))
                if e.measured.tg_tps:
                    bits.append(f"{e.measured.tg_tps:.0f} tok/s")
                measured = ", ".join(bits)
            cells = [
                e.name,
                e.quantization,
                e.parameters_label,
                _size(e.size_bytes) if e.size_bytes else "",
                f"{e.context_length:,}" if e.context_length else "",
                e.source_label,
                status,
                measured,
                _ago(e.last_used),
            ]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(self._row_tooltip(e))
                if e.status != "ok":
                    item.setForeground(Qt.GlobalColor.darkGray)
                self.table.setItem(row, col, item)
        missing = sum(1 for e in entries if e.status != "ok")
        count = f"{len(entries)} model" + ("" if len(entries) == 1 else "s")
        count += f", {missing} missing or unreadable" if missing else ""
        if not entries:  # the panel says it; the status line keeps only what just happened
            self.status.setText(self._note)
        else:
            self.status.setText(f"{self._note} {count}." if self._note else count)
        self._note = ""
        self._update_remove_button()
        self.libraryRefreshed.emit(entries)

    @staticmethod
    def _row_tooltip(e: LibraryEntry) -> str:
        """The row's details: its file (or what is wrong with it), why it is kept, and what it was made from."""
        lines = [e.message or e.path]
        if e.kept_because and not e.message:
            lines.append(e.kept_because)
        if e.made_from:
            made_from = Path(e.made_from)
            lines.append(f"Made from {made_from.name}, in {made_from.parent}")
        return "\n".join(lines)

    @Slot()
    def _update_remove_button(self) -> None:
        """Remove… needs a chosen model, and is disabled for one the app must keep (the starter), with the
        reason as its tooltip; Make smaller… needs one it can quantize, and says why not otherwise."""
        e = self.entry_at(self.selected_row())
        kept = e.kept_because if e is not None else ""
        self.delete_button.setEnabled(e is not None and not kept)
        self.delete_button.setToolTip(kept or REMOVE_TOOLTIP)
        why_not = self.why_not_make_smaller(e) if e is not None else ""
        self.make_button.setEnabled(e is not None and not why_not)
        self.make_button.setToolTip(why_not or MAKE_SMALLER_TOOLTIP)

    def selected_row(self) -> int:
        rows = {i.row() for i in self.table.selectedItems()}
        return min(rows) if rows else -1

    def entry_at(self, row: int) -> LibraryEntry | None:
        return self.entries[row] if 0 <= row < len(self.entries) else None

    @Slot(int)
    def load_row(self, row: int) -> None:
        e = self.entry_at(row)
        if e is None:
            return
        if e.status != "ok":
            self.status.setText(f"{e.name} cannot be loaded: {e.message}.")
            return
        library = self.library
        run_in_background(lambda: library.mark_used(e.path), lambda _r: None, self._fail)  # for "last used"
        self.loadRequested.emit(e.path)

    # -- the row menu

    def row_menu(self, row: int) -> QMenu:
        """The right-click menu of one row: the same per-model actions as the buttons, enabled alike."""
        e = self.entry_at(row)
        menu = QMenu(self)
        menu.setToolTipsVisible(True)
        load = menu.addAction("Load")
        load.setEnabled(e is not None and e.status == "ok")
        load.triggered.connect(lambda: self.load_row(row))
        make = menu.addAction("Make smaller…")
        why_not = self.why_not_make_smaller(e) if e is not None else "No model chosen."
        make.setEnabled(not why_not)
        make.setToolTip(why_not or MAKE_SMALLER_TOOLTIP)
        make.triggered.connect(lambda: self.make_smaller_row(row))
        remove = menu.addAction("Remove…")
        remove.setEnabled(e is not None and not e.kept_because)
        remove.setToolTip((e.kept_because if e is not None else "") or REMOVE_TOOLTIP)
        remove.triggered.connect(lambda: self.delete_row(row))
        return menu

    @Slot(QPoint)
    def _show_row_menu(self, pos: QPoint) -> None:
        row = self.table.rowAt(pos.y())
        if row < 0:
            return
        self.table.selectRow(row)
        menu = self.row_menu(row)
        menu.exec(self.table.viewport().mapToGlobal(pos))
        menu.deleteLater()

    # -- make smaller

    @staticmethod
    def why_not_make_smaller(e: LibraryEntry) -> str:
        """Why "Make smaller…" is off for this model, as its tooltip; "" when it can be quantized."""
        if e.status != "ok":
            return f"{e.name} cannot be made smaller: its file is {e.status}."
        if len(e.parts) > 1:
            return f"{e.name} is split into {len(e.parts)} files; only a single-file model can be made smaller."
        return ""

    @Slot(int)
    def make_smaller_row(self, row: int) -> None:
        """Open the "Make smaller…" dialog for one row (or bring back the one still making a file)."""
        e = self.entry_at(row)
        if e is None:
            return
        why_not = self.why_not_make_smaller(e)
        if why_not:
            self.status.setText(why_not)
            return
        old = self.make_dialog
        if old is not None and old.busy and old.isVisible():
            old.raise_()
            old.activateWindow()
            self.status.setText(f"Finish or cancel making a copy of {old.entry.name} first.")
            return
        if old is not None:
            old.stop_now()
            old.deleteLater()
        log = str(self.log_dir / "quantize.log") if self.log_dir is not None else None
        dialog = MakeSmallerDialog(e, self.library, self.made_folder, log_path=log, parent=self)
        dialog.made.connect(self._made)
        self.make_dialog = dialog
        dialog.show()

    @Slot(object)
    def _made(self, result: QuantizeResult) -> None:
        if self._alive():
            self._note = f"Made {result.out.name} from {result.plan.source.path.name}."
            self.status.setText(self._note)
            self.refresh()

    # -- import

    @Slot()
    def choose_files(self) -> None:
        paths, _filter = QFileDialog.getOpenFileNames(self, "Import models", "", "GGUF models (*.gguf);;All files (*)")
        if paths:
            self.import_paths(paths)

    def import_paths(self, paths: list[str]) -> None:
        library = self.library

        def work() -> list[str]:
            problems = []
            for p in paths:
                try:
                    library.import_file(p)
                except Exception as exc:  # one bad file does not stop the others
                    problems.append(str(exc))
            return problems

        def done(problems: list[str]) -> None:
            if not self._alive():
                return
            self.refresh()
            if problems:
                self._fail(Exception(" ".join(problems)))

        run_in_background(work, done, self._fail)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(u.isLocalFile() and u.toLocalFile().lower().endswith(".gguf") for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        ggufs = [p for p in paths if p.lower().endswith(".gguf")]
        if ggufs:
            event.acceptProposedAction()
            self.import_paths(ggufs)

    # -- remove / delete

    def _ask(self, title: str, text: str, details: str, choices: list[tuple[str, QMessageBox.ButtonRole]]) -> str:
        """A question with the given buttons plus Cancel; the label clicked, or "" for Cancel / Escape.
        The first choice is the default unless it deletes something; then Cancel is."""
        box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton, self)
        box.setInformativeText(details)
        buttons = {label: box.addButton(label, role) for label, role in choices}
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        first_label, first_role = choices[0]
        box.setDefaultButton(cancel if first_role == QMessageBox.ButtonRole.DestructiveRole else buttons[first_label])
        box.setEscapeButton(cancel)
        box.exec()
        clicked = box.clickedButton()
        box.deleteLater()
        return next((label for label, b in buttons.items() if b is clicked), "")

    def _files(self, e: LibraryEntry) -> str:
        names = [Path(p).name for p in e.parts or (e.path,)]
        if len(names) == 1:
            return names[0]
        if len(names) == 2:
            return f"{names[0]} and {names[1]}"
        return f"the {len(names)} files {names[0]} to {names[-1]}"

    def _where(self, e: LibraryEntry) -> str:
        folder = self.library.folder_of(e)
        if e.source in ("downloaded", "hf-cache"):
            return f"the Hugging Face cache at “{folder}”"
        app = _OTHER_APPS.get(e.source)
        return f"{app}'s folder “{folder}”" if app else f"the folder “{folder}”"

    @staticmethod
    def _problem(e: LibraryEntry) -> str:
        message = e.message.rstrip(".")
        if e.status == "unreadable":
            return f"Sizewise cannot read this file. {message[:1].upper()}{message[1:]}. "
        if e.status == "missing":
            return f"This model is incomplete: {message}. "
        return ""

    def ask_how_to_remove(self, e: LibraryEntry) -> Literal["remove", "delete"] | None:
        """Ask what to do with the model, in words that name its files and folder; None when the person cancels."""
        remove = [(REMOVE_CHOICE, QMessageBox.ButtonRole.AcceptRole)]
        title, question = "Remove model", f"Remove “{e.name}” from the library?"
        if not e.has_files:
            details = f"Its file is no longer at {e.path}, so there is nothing to delete from disk."
            return "remove" if self._ask(title, question, details, remove) else None
        files, where, size = self._files(e), self._where(e), _size(e.size_bytes)
        if not e.can_delete:
            details = (
                f"Its file stays in {where}. Ollama shares its files between models, so Sizewise leaves deleting "
                f"them to Ollama: run 'ollama rm {e.ollama_name or e.name}' to free the space."
            )
            return "remove" if self._ask(title, question, details, remove) else None
        if e.downloaded_by_sizewise:
            details = (
                f"{self._problem(e)}Sizewise downloaded {files} into {where}. Deleting it frees {size}; "
                "you can download it again from the Hub."
            )
            delete = [(DELETE_CHOICE, QMessageBox.ButtonRole.DestructiveRole)]
            return "delete" if self._ask("Delete model", f"Delete “{e.name}” from disk?", details, delete) else None
        them = "it" if len(e.parts) <= 1 else "them"
        details = (
            f"{self._problem(e)}Sizewise did not download {files}, so removing the model from the library leaves "
            f"{them} where {'it is' if them == 'it' else 'they are'}, in {where}; Sizewise only stops listing "
            f"the model. Importing it again brings it back.\n\nTo free {size} instead, choose “{DELETE_ASK_CHOICE}”."
        )
        choice = self._ask(
            title, question, details, [*remove, (DELETE_ASK_CHOICE, QMessageBox.ButtonRole.DestructiveRole)]
        )
        if choice == REMOVE_CHOICE:
            return "remove"
        if choice == DELETE_ASK_CHOICE and self.confirm_delete_from_disk(e):
            return "delete"
        return None

    def confirm_delete_from_disk(self, e: LibraryEntry) -> bool:
        """The second, explicit question before deleting a file Sizewise did not download."""
        app = _OTHER_APPS.get(e.source)
        if app:
            after = f" {app} will no longer find the model."
        elif e.source == "hf-cache":
            after = " Other programs that use this cache will download it again if they need it."
        else:
            after = ""
        files = self._files(e)
        details = (
            f"{self._problem(e)}This permanently deletes {files} from {self._where(e)} and frees "
            f"{_size(e.size_bytes)}.{after} This cannot be undone."
        )
        delete = [(DELETE_CHOICE, QMessageBox.ButtonRole.DestructiveRole)]
        return bool(self._ask("Delete from disk", f"Delete {files} from disk?", details, delete))

    @Slot(int)
    def delete_row(self, row: int) -> None:
        """Remove… for one row: ask, then take the model off the list or delete its files (off the GUI thread)."""
        e = self.entry_at(row)
        if e is None:
            return
        if e.kept_because:
            self.status.setText(e.kept_because)
            return
        choice = self.ask_how_to_remove(e)
        if choice is None:
            return
        library = self.library
        if choice == "remove":
            kept = "its file stays" if len(e.parts) <= 1 else "its files stay"
            note = f"Removed {e.name} from the library; {kept} in {library.folder_of(e)}." if e.has_files else ""

            def removed(_r: Any) -> None:
                if self._alive():
                    self._note = note or f"Removed {e.name} from the library."
                    self.status.setText(self._note)
                    self.refresh()

            run_in_background(lambda: library.remove_from_library(e), removed, self._fail)
            return

        def deleted(freed: Any) -> None:
            if self._alive():
                self._note = f"Deleted {e.name} from disk; {_size(int(freed))} freed."
                self.status.setText(self._note)
                self.refresh()

        run_in_background(lambda: library.delete(e), deleted, self._fail)

    # -- shutdown

    def shutdown(self) -> None:
        """Pause running downloads (they resume next time), stop the queue's worker, and stop a quantization
        (its partial file is deleted)."""
        if self.make_dialog is not None and shiboken6.isValid(self.make_dialog):
            self.make_dialog.stop_now()
        if self.queue is not None:
            self.queue.close()
