"""The model-loading state machine, kept out of the main window.

Loading a model is a chain of steps with its own state: choose a file (the starter, a model the
Library lists, the Open dialog), read its header in the background, predict its memory against
this machine (shown in the Fit view) before anything is loaded, start the engine process if it is
not running, follow the load to ready or failure, unload, reload after a forced stop, and record
what a finished load measured beside what was predicted. A model on a server ("Connect to a server…") is a
choice too: choosing it connects instead of reading a file, and its memory is what the server reports or
Sizewise predicts (engine/remote/memory.py). This controller owns that chain and its
state; the window shows the state (buttons, summary, banner) through the signals below and never
reaches into the steps. It does not import the window.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QFileDialog, QWidget

from sizewise.core.errors import UserError
from sizewise.core.fit.hardware import HardwareReport, machine_budget
from sizewise.core.fit.llama_log import MeasuredBuffers
from sizewise.core.fit.measurements import MeasurementRecord, MeasurementStore, make_record, speed_record
from sizewise.core.fit.memory_model import Backend, MemoryPrediction, predict
from sizewise.core.fit.verdict import Budget
from sizewise.core.gguf.header import GGUFHeader, ModelInfo
from sizewise.core.hub.library import Library, LibraryEntry
from sizewise.core.hub.resolve import context_warning, inspect_model
from sizewise.core.hub.starter import STARTER_NAME, find_app_starter
from sizewise.core.paths import AppPaths
from sizewise.core.sampling import LoadParams
from sizewise.core.settings import Settings
from sizewise.core.speed.model import ModelCost, model_cost
from sizewise.core.speed.predicted import predict_reply
from sizewise.engine.remote.client import Listing
from sizewise.engine.remote.http import ApiKey
from sizewise.engine.speed.devices import machine_devices
from sizewise.gui.adapters.background import run_in_background
from sizewise.gui.adapters.engine_adapter import EngineAdapter
from sizewise.gui.fit.fit_view import FitView

MiB = 1 << 20
PATH_ROLE = Qt.ItemDataRole.UserRole  # where QComboBox.itemData/currentData look
REMOTE_ROLE = Qt.ItemDataRole.UserRole + 1  # (server url, model id) on a server's rows
REMOTE_PREFIX = "server:"  # a server row's PATH_ROLE: "server:<url> <model>", never a file name
NO_MODEL = "No model loaded."
NO_CHOICES = "No models yet — use Open GGUF…"

# empty: no model · checking: reading the header · loading: in the engine (also unloading and the
# reload after a forced stop) · ready: loaded, idle · generating: a reply or writing help is running
STATES = ("empty", "checking", "loading", "ready", "generating")


class ModelLoader(QObject):
    """Which model, loaded how far: the choices, the load itself, and what it measured.

    ``choices`` is the list model a combo box shows: the models the Library lists (the starter first), the
    same paths as the Library page and ``sizewise models`` (``show_library``); the window
    passes the chosen row's path back to ``load``/``toggle_load``. Messages for the banner and the
    summary line go out as signals; the Fit view is fed directly, as the place predictions show.
    """

    stateChanged = Signal(str)  # one of STATES
    summaryChanged = Signal(str)  # the line under the model bar (rich text once a model is loaded)
    message = Signal(str, str)  # sentence, level (error | warning | info)
    messageCleared = Signal()  # a new load began: an old message no longer applies
    choiceSelected = Signal(int)  # the row of ``choices`` to show as chosen
    settingsChanged = Signal()  # the settings now name the loaded model and its load parameters: save them
    modelLoaded = Signal(dict)  # the engine's load message, once the state is "ready"
    modelUnloaded = Signal()  # no model in the engine any more (unloaded, or the engine stopped)
    predictionChanged = Signal(object)  # the MemoryPrediction for the loaded model and its settings
    libraryChanged = Signal()  # the library has a model added or marked used

    def __init__(
        self,
        engine: EngineAdapter,
        settings: Settings,
        paths: AppPaths,
        fit_view: FitView,
        load_params: Callable[[], LoadParams],
        library: Callable[[], Library],
        parent: QWidget,
    ) -> None:
        super().__init__(parent)
        self.engine = engine
        self.settings = settings
        self.paths = paths
        self.fit_view = fit_view
        self._load_params = load_params  # what the sampling panel says now
        self._library = library  # made on first use, off the GUI thread
        self._dialog_parent = parent
        self.choices = QStandardItemModel(self)
        self._chosen_file: str | None = None  # a file being loaded that the library may not list yet
        self.state = "empty"
        self.model_info: ModelInfo | None = None
        self.model_header: GGUFHeader | None = None
        self.budget: Budget | None = None
        self.backend: Backend | None = None
        self.prediction: MemoryPrediction | None = None
        self.measurements = MeasurementStore(paths)
        self._load_record: tuple[str, MeasurementRecord] | None = None  # the loaded file and its load's record
        self._reply_cost: tuple[GGUFHeader, ModelCost] | None = None
        # Servers connected this session: url -> (API key, what it listed). The key is kept in memory only (an
        # ApiKey, which never prints itself): not in settings, not in logs; connecting again next time asks again.
        self.servers: dict[str, tuple[ApiKey | None, Listing]] = {}
        self.remote_info: dict[str, Any] | None = None  # the loaded message of the server's model in use
        engine.loaded.connect(self._on_loaded)
        engine.loadFailed.connect(self._on_load_failed)
        engine.unloaded.connect(self._on_unloaded)
        engine.stopForced.connect(self._on_stop_forced)
        engine.engineStopped.connect(self._on_engine_stopped)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.stateChanged.emit(state)

    @Slot(bool)
    def set_generating(self, busy: bool) -> None:
        """A reply (or writing help) started or ended: no loading or unloading while one runs."""
        if busy:
            self._set_state("generating")
        elif self.state == "generating":
            self._set_state("ready" if self.engine.is_loaded else "empty")

    # -- choosing a model -------------------------------------------------------------------------
    def refresh_choices(self) -> None:
        """At once: the starter, then the recent files (missing ones marked), the last model chosen. Then, off
        the GUI thread, the library's list, which the choices follow from then on (``show_library``)."""
        self.choices.clear()
        starter = find_app_starter(self.paths)
        if starter is not None:
            tooltip = f"{starter.path}\nfrom the {starter.source}"
            self._add_choice(f"{STARTER_NAME} (starter)", str(starter.path), tooltip)
        for p in self.settings.recent_models:
            if starter is not None and p == str(starter.path):
                continue
            missing = "" if Path(p).exists() else "  (missing)"
            self._add_choice(Path(p).name + missing, p, p)
        if self.settings.last_model:
            row = self.row_of(self.settings.last_model)
            if row >= 0:
                self.choiceSelected.emit(row)
        if self.choices.rowCount() == 0:
            self._add_choice(NO_CHOICES, None)
        library = self._library
        run_in_background(lambda: library().list(), self.show_library, self._library_failed)

    @Slot(list)
    def show_library(self, entries: list[LibraryEntry]) -> None:
        """Make the choices the library's models: one list of what can be loaded, as on the Library page.

        Rows are updated in place, so the row chosen in the combo box stays chosen: a model no longer listed
        goes, a new one is added (the starter at the top, others at the end). The file being loaded stays
        until the library lists it.
        """
        if not shiboken6.isValid(self):  # the window closed before a background listing came back
            return
        wanted: dict[str, tuple[str, str]] = {}
        for e in entries:
            text = f"{STARTER_NAME} (starter)" if e.source == "starter" else e.ollama_name or Path(e.path).name
            if e.status != "ok":
                text += f"  ({e.status})"
            wanted[e.path] = (text, e.message or (f"{e.path}\n{e.kept_because}" if e.kept_because else e.path))
        for row in reversed(range(self.choices.rowCount())):
            path = self.choices.index(row, 0).data(PATH_ROLE)
            if self.choices.index(row, 0).data(REMOTE_ROLE) is not None:
                continue  # a server's model: not the library's to list
            if path not in wanted and not (path is not None and path == self._chosen_file):
                self.choices.removeRow(row)
        for e in entries:
            text, tooltip = wanted[e.path]
            row = self.row_of(e.path)
            if row >= 0:
                item = self.choices.item(row)
                item.setText(text)
                item.setToolTip(tooltip)
            elif e.source == "starter":
                self.choices.insertRow(0, self._choice_item(text, e.path, tooltip))
            else:
                self._add_choice(text, e.path, tooltip)
        if self.choices.rowCount() == 0:
            self._add_choice(NO_CHOICES, None)

    def _library_failed(self, exc: BaseException) -> None:
        if shiboken6.isValid(self):
            self.message.emit(f"The list of local models could not be read: {exc}", "warning")

    def choice_paths(self) -> list[str]:
        """The paths the choices offer, top to bottom (the "no models" row has none)."""
        rows = (self.choices.index(row, 0).data(PATH_ROLE) for row in range(self.choices.rowCount()))
        return [p for p in rows if p is not None]

    @staticmethod
    def _choice_item(text: str, path: str | None, tooltip: str = "") -> QStandardItem:
        item = QStandardItem(text)
        if path is not None:
            item.setData(path, PATH_ROLE)
        if tooltip:
            item.setToolTip(tooltip)
        return item

    def _add_choice(self, text: str, path: str | None, tooltip: str = "") -> int:
        if path is not None:  # the "no models yet" row goes once there is a model
            placeholder = self.row_of_placeholder()
            if placeholder >= 0:
                self.choices.removeRow(placeholder)
        self.choices.appendRow(self._choice_item(text, path, tooltip))
        return self.choices.rowCount() - 1

    def row_of_placeholder(self) -> int:
        return next((r for r in range(self.choices.rowCount()) if self.choices.index(r, 0).data(PATH_ROLE) is None), -1)

    def row_of(self, path: str) -> int:
        """The row of ``choices`` holding this path, or -1."""
        for row in range(self.choices.rowCount()):
            if self.choices.index(row, 0).data(PATH_ROLE) == path:
                return row
        return -1

    @Slot()
    def choose_file(self) -> None:
        """The Open dialog, starting in the last model's folder; a chosen file is loaded."""
        start = str(Path(self.settings.last_model).parent) if self.settings.last_model else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self._dialog_parent, "Open a GGUF model", start, "GGUF models (*.gguf);;All files (*)"
        )
        if path:
            self.open_model(path)

    def open_model(self, path: str) -> None:
        """Add a file to the choices, choose it and load it (the Open dialog, the Library, tests)."""
        row = self.row_of(path)
        if row < 0:
            row = self._add_choice(Path(path).name, path)
        self.choiceSelected.emit(row)
        self.load(path)

    # -- servers ----------------------------------------------------------------------------------
    def add_server(self, listing: Listing, api_key: ApiKey | None) -> None:
        """A server "Connect to a server…" reached: its models join the choices, and the first is used."""
        self.servers[listing.url] = (api_key, listing)
        first = -1
        for model in listing.models:
            key = f"{REMOTE_PREFIX}{listing.url} {model}"
            row = self.row_of(key)
            if row < 0:
                name = Path(model).name if "/" in model else model
                plain = " — unencrypted" if listing.warning else ""
                tooltip = f"{model}\non the server at {listing.url} ({listing.kind}){plain}"
                row = self._add_choice(f"{name} @ {listing.url}{plain}", key, tooltip)
                self.choices.item(row).setData((listing.url, model), REMOTE_ROLE)
            first = row if first < 0 else first
        self.choiceSelected.emit(first)
        self.load(self.choices.index(first, 0).data(PATH_ROLE))

    def _load_remote(self, key: str) -> None:
        row = self.row_of(key)
        target = self.choices.index(row, 0).data(REMOTE_ROLE) if row >= 0 else None
        if target is None or target[0] not in self.servers:
            self.message.emit("That server is not connected in this session; use Connect to a server… again.", "error")
            return
        url, model = target
        self._chosen_file = None
        self.model_info = self.model_header = None
        self.prediction = None
        self.messageCleared.emit()
        self._set_state("loading")
        self.summaryChanged.emit(f"Connecting to {Path(model).name} on {url}…")
        self.engine.connect_remote(url, model, self.servers[url][0])

    def _on_remote_loaded(self, msg: dict[str, Any]) -> None:
        self.remote_info = msg
        self._load_record = None  # a server's replies are not measurements of this machine
        name = Path(str(msg["model"])).name
        plain = "" if msg.get("encrypted") or msg.get("loopback") else " · <b>unencrypted</b> (plain http)"
        memory = msg.get("memory") or {}
        self.summaryChanged.emit(
            f"<b>{name}</b> — remote, on {msg['url']} ({msg['server_kind']}){plain} · context {msg['n_ctx']} "
            f"of {msg['n_ctx_train']} trained · server memory: {memory.get('text', 'unknown')}"
        )
        if msg.get("warning"):
            self.message.emit(str(msg["warning"]), "warning")
        self._set_state("ready")
        self.modelLoaded.emit(msg)

    # -- loading ----------------------------------------------------------------------------------
    def toggle_load(self, path: str | None) -> None:
        """The Load/Unload button: unload a ready model, otherwise load the chosen file."""
        if self.state == "ready":
            self.engine.unload()
            self._set_state("loading")
        else:
            self.load(path)

    def load(self, path: str | None) -> None:
        """Read the file's header in the background; ``_checked`` predicts and starts the load."""
        if not path:
            self.message.emit("Choose a model first: use Open GGUF… to pick a .gguf file.", "error")
            return
        if path.startswith(REMOTE_PREFIX):
            self._load_remote(path)
            return
        self.remote_info = None
        chosen = path
        self._chosen_file = path
        self.messageCleared.emit()
        self._set_state("checking")
        self.summaryChanged.emit(f"Checking {Path(chosen).name}…")
        run_in_background(
            lambda: inspect_model(Path(chosen)), lambda found: self._checked(chosen, *found), self._check_failed
        )

    def _checked(self, path: str, header: GGUFHeader, info: ModelInfo) -> None:
        self.model_info = info
        self.model_header = header
        load = self._load_params()
        warning = context_warning(info, load.n_ctx)
        if warning:
            self.message.emit(warning, "warning")
        if self.budget is not None:
            self.fit_view.set_model(header, info, self.budget, load, load.n_gpu_layers)
        self._set_state("loading")
        self.summaryChanged.emit(f"Loading {info.name} ({info.parameters_label}, {info.quantization})…")
        if not self.engine.client.alive:
            self.engine.start()
        self.engine.load(path, load)

    def _check_failed(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, UserError) else f"The model could not be read: {exc}"
        self.message.emit(message, "error")
        self.summaryChanged.emit(NO_MODEL)
        self._set_state("empty" if not self.engine.is_loaded else "ready")

    @Slot(object)
    def set_hardware(self, report: HardwareReport) -> None:
        """The machine's budget (from the hardware probe) for every prediction from now on."""
        self.budget = machine_budget(report)
        self.backend = report.backend()
        offload = [d for d in report.devices if d.offloads]
        # the bars' label column is narrow: the device's name there, its kind in the budget line above the bars
        self.fit_view.device_name = offload[0].name if offload else "VRAM"
        self.fit_view.set_speed_devices(machine_devices(self.paths, report))
        if self.model_header is not None and self.model_info is not None:
            self.fit_view.set_model(self.model_header, self.model_info, self.budget, self.settings.load)
        else:
            self.fit_view.set_budget(self.budget)

    # -- engine events ----------------------------------------------------------------------------
    @Slot(dict)
    def _on_loaded(self, msg: dict[str, Any]) -> None:
        if msg.get("remote"):
            self._on_remote_loaded(msg)
            return
        path = str(msg["path"])
        info = self.model_info
        self.settings.remember_model(path)
        self.settings.load = self._load_params()
        self.settingsChanged.emit()
        name = info.name if info else Path(path).name
        mem = sum(int(b["bytes"]) for b in msg.get("buffers", []))
        self.summaryChanged.emit(
            f"<b>{name}</b> — {info.parameters_label if info else ''} {info.quantization if info else ''}, "
            f"context {msg['n_ctx']} of {msg['n_ctx_train']} trained · loaded in {float(msg['load_s']):.1f} s · "
            f"llama.cpp buffers {mem / MiB:.0f} MiB"
        )
        self._record_measurement(msg)
        self._remember_in_library(path)
        self._set_state("ready")
        self.modelLoaded.emit(msg)

    @Slot(str)
    def _on_load_failed(self, message: str) -> None:
        self.message.emit(message, "error")
        self.summaryChanged.emit(NO_MODEL)
        self._set_state("empty")

    @Slot()
    def _on_unloaded(self) -> None:
        self.remote_info = None
        self._load_record = None  # replies after this belong to no loaded file
        self.summaryChanged.emit(NO_MODEL)
        self.modelUnloaded.emit()
        self._set_state("empty")

    @Slot(int)
    def _on_stop_forced(self, gen_id: int) -> None:
        self.message.emit(
            "Stopped. The engine was restarted to interrupt prompt processing; the model is being loaded again.", "info"
        )
        self._set_state("loading")

    @Slot(str)
    def _on_engine_stopped(self, sentence: str) -> None:
        self.message.emit(sentence + " Your conversation is kept; load the model again to continue.", "error")
        self.summaryChanged.emit(NO_MODEL)
        self.modelUnloaded.emit()
        self._set_state("empty")

    # -- after a load -----------------------------------------------------------------------------
    def _record_measurement(self, msg: dict[str, Any]) -> None:
        """Measured (llama.cpp's log) beside predicted, shown in the Fit view and kept with the model."""
        header, load = self.model_header, self.engine.load_params
        if header is None or load is None:
            return
        measured = MeasuredBuffers.from_lines(msg.get("buffers", []))
        self.fit_view.show_measured(measured)
        prediction = predict(header, load, self.backend)
        self.prediction = prediction
        self.predictionChanged.emit(prediction)
        record = make_record(prediction, measured, load.to_dict(), {"rss_bytes": msg.get("rss_bytes")})
        path = str(msg["path"])
        self._load_record = (path, record)
        run_in_background(
            lambda: self.measurements.add(path, record),
            lambda _: None,
            lambda exc: self.message.emit(f"The measurement could not be saved: {exc}", "warning"),
        )

    @Slot(dict)
    def record_reply(self, stats: dict[str, Any]) -> None:
        """A chat reply finished: its measured speed beside the speed model's prediction for that reply (its prompt
        size and context depth), shown in the Fit view and kept with the model's measurements as one more point."""
        header, loaded, devices = self.model_header, self._load_record, self.fit_view.devices
        prediction = self.prediction
        if header is None or loaded is None or devices is None or prediction is None:
            return
        try:
            if self._reply_cost is None or self._reply_cost[0] is not header:
                self._reply_cost = (header, model_cost(header))
            reply = predict_reply(
                self._reply_cost[1], devices, prediction.settings.gpu_layers, prediction.n_layers + 1, stats
            )
        except ValueError:  # a header the speed model cannot read: nothing to compare
            return
        if reply is None:
            return
        if self.fit_view.header is header:
            self.fit_view.show_reply_speed(reply)
        path, load_record = loaded
        record = speed_record(load_record, reply)
        run_in_background(
            lambda: self.measurements.add(path, record),
            lambda _: None,
            lambda exc: self.message.emit(f"The measurement could not be saved: {exc}", "warning"),
        )

    def _remember_in_library(self, path: str) -> None:
        """A model that was loaded is one of "every local model": list it, with when it was last used."""

        def job() -> list[LibraryEntry]:
            library = self._library()
            if library.find(path) is None:
                library.import_file(path)
            library.mark_used(path)
            return library.list()

        def done(entries: list[LibraryEntry]) -> None:
            if shiboken6.isValid(self):
                self.show_library(entries)
                self.libraryChanged.emit()

        run_in_background(
            job,
            done,
            lambda exc: self.message.emit(f"The library could not record this model: {exc}", "warning"),
        )
