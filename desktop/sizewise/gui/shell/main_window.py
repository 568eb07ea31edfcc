"""The main window: pick a model, load it in an engine process, chat, and see speed and memory.

The window owns layout, wiring and page switching only. The work lives in what it wires together:
loading a model in ModelLoader, chat turns in ChatActions and ChatController, conversation files in
ConversationFiles, the status bar's figures in StatusLine; the conversation lives in ChatModel,
llama.cpp in an engine process behind EngineAdapter, and every file read happens in the background.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, Qt, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from sizewise import APP_NAME
from sizewise.core.chat.opening import StoreProblem
from sizewise.core.chat.presets import Preset, PresetLibrary
from sizewise.core.chat.store import ConversationStore
from sizewise.core.errors import UserError
from sizewise.core.fit.devices import offload_summary
from sizewise.core.fit.hardware import HardwareReport, machine_budget
from sizewise.core.fit.memory_model import MemoryPrediction
from sizewise.core.fit.verdict import Budget
from sizewise.core.gguf.header import GGUFHeader, ModelInfo, model_info
from sizewise.core.hub.browse import ModelFile
from sizewise.core.hub.download_queue import DownloadQueue
from sizewise.core.hub.library import Library, download_state_file, verified_store_for
from sizewise.core.hub.remote_fit import merged_header
from sizewise.core.hub.remote_header import read_remote_header
from sizewise.core.hub.resolve import context_warning
from sizewise.core.hub.starter import find_app_starter, find_starter
from sizewise.core.paths import AppPaths
from sizewise.core.settings import Settings, SettingsStore
from sizewise.engine.speed.calibrate_job import CalibrationJob
from sizewise.engine.speed.devices import machine_devices
from sizewise.gui.adapters.background import run_in_background
from sizewise.gui.adapters.engine_adapter import EngineAdapter
from sizewise.gui.chat.chat_actions import ChatActions
from sizewise.gui.chat.chat_controller import ChatController
from sizewise.gui.chat.chat_model import ChatModel
from sizewise.gui.chat.chat_view import ChatView
from sizewise.gui.chat.conversation_files import ConversationFiles
from sizewise.gui.chat.conversation_sidebar import ConversationSidebar
from sizewise.gui.chat.empty_chat import EmptyChat
from sizewise.gui.chat.input_box import InputBox
from sizewise.gui.chat.writing_view import WritingView
from sizewise.gui.fit.fit_view import FitView
from sizewise.gui.fit.hardware_view import HardwareView
from sizewise.gui.fit.ladder_view import LadderView
from sizewise.gui.hub.discover_view import DiscoverView, catalogue_or_problem, default_budget_factory
from sizewise.gui.hub.library_view import LibraryView
from sizewise.gui.shell.about_dialog import AboutDialog
from sizewise.gui.shell.connect_dialog import ConnectDialog
from sizewise.gui.shell.lazy import LazyPage
from sizewise.gui.shell.model_loader import ModelLoader
from sizewise.gui.shell.status_line import StatusLine
from sizewise.gui.widgets.banner import Banner
from sizewise.gui.widgets.presets_widget import PresetsWidget
from sizewise.gui.widgets.sampling_panel import SamplingPanel

if TYPE_CHECKING:  # built on first sight (gui/shell/lazy.py): pyqtgraph stays out of start-up
    from sizewise.gui.compare.compare_view import CompareView
    from sizewise.gui.metrics.metrics_view import MetricsView


class MainWindow(QMainWindow):
    """Builds the window's parts, connects them to the controllers, switches pages, keeps settings."""

    def __init__(self, paths: AppPaths, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.paths = paths
        self.store = SettingsStore(paths.settings_file)
        self.settings: Settings = self.store.load()
        self.engine = EngineAdapter(log_path=paths.log_dir / "engine.log", parent=self)
        self.chat = ChatModel(self)
        self._closed = False
        # Bounded, as this runs before the window shows: a locked file is reported after a quarter of a
        # second, and a large history's integrity check is cut short and finished in the background
        # (_check_conversations).
        self.conversations = ConversationStore.open_at_startup(paths.database_file)
        self.presets = PresetLibrary(paths.config_dir)
        self.controller = ChatController(self.conversations, self.engine, self.chat, self)
        self.conversation_files = ConversationFiles(self.conversations, self.controller, self)
        self.downloads = DownloadQueue(state_file=download_state_file(paths), verified_store=verified_store_for(paths))
        self.downloads.restore()
        self._library: Library | None = None
        self._library_lock = threading.Lock()
        self.metrics_view: MetricsView | None = None
        self.compare_view: CompareView | None = None
        self.library_view: LibraryView | None = None
        self.discover_view: DiscoverView | None = None
        self.ladder_view: LadderView | None = None
        self._machine_report: HardwareReport | None = None
        self.catalogue = catalogue_or_problem()  # checked at start-up: a broken entry is one sentence now, not later
        self.setWindowTitle(APP_NAME)
        self._build()
        self.loader = ModelLoader(
            self.engine,
            self.settings,
            paths,
            self.fit_view,
            load_params=lambda: self.sampling_panel.load_params(self.settings.load),
            library=lambda: self.library,
            parent=self,
        )
        self.chat_actions = ChatActions(
            self.controller,
            input_box=self.input,
            chat_view=self.chat_view,
            sampling_panel=self.sampling_panel,
            presets=self.presets_widget,
            sidebar=self.sidebar,
            state=lambda: self.loader.state,
            parent=self,
        )
        self._wire()
        self._restore()
        self._check_conversations()
        self.engine.start()  # warm the engine now: the first load is faster and GPU support is known
        self._show_state(self.loader.state)

    # -- construction -----------------------------------------------------------------------------
    def _build(self) -> None:
        """The window's parts, top to bottom: model bar, summary and banner, pages, docks, status bar, menus."""
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addLayout(self._build_model_bar())
        self.model_summary = QLabel("No model loaded.")
        self.model_summary.setAccessibleName("Model summary")
        self.model_summary.setWordWrap(True)
        layout.addWidget(self.model_summary)
        self.banner = Banner()
        layout.addWidget(self.banner)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self._build_chat_page(), "Chat")
        self.tabs.setTabToolTip(0, "Chat with the loaded model (Ctrl+1)")
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        for i in range(9):
            QShortcut(QKeySequence(f"Ctrl+{i + 1}"), self, lambda i=i: self._show_tab(i))
        self._build_pages()
        self._build_docks()
        self.status_line = StatusLine(self.statusBar(), self)
        self._build_menus()

    def _build_model_bar(self) -> QHBoxLayout:
        """Which model (the starter and the Library's models), Open GGUF…, Load/Unload, and a busy indicator."""
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Model"))
        self.model_combo = QComboBox()
        self.model_combo.setAccessibleName("Model")
        self.model_combo.setMinimumWidth(200)
        self.model_combo.setToolTip("The starter model and every model the Library lists")
        bar.addWidget(self.model_combo, 1)
        self.open_button = QPushButton("Open GGUF…")
        self.open_button.setToolTip("Choose a .gguf model file (Ctrl+O)")
        bar.addWidget(self.open_button)
        # Short, so the bar still fits a 790-pixel window; the File menu says it in full.
        self.connect_button = QPushButton("Connect…")
        self.connect_button.setAccessibleName("Connect to a server…")
        self.connect_button.setToolTip("Connect to a server: use the models of a llama-server or another OpenAI server")
        bar.addWidget(self.connect_button)
        self.load_button = QPushButton("Load")
        self.load_button.setToolTip("Load the chosen model into a separate engine process")
        bar.addWidget(self.load_button)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setTextVisible(False)
        self.busy.hide()
        bar.addWidget(self.busy)
        return bar

    def _build_chat_page(self) -> QSplitter:
        """The first page: the conversation above (or, with no model and no messages, what to do first), the
        message box with Send and Stop below."""
        splitter = QSplitter(Qt.Orientation.Vertical)
        self.chat_view = ChatView()
        self.chat_view.setModel(self.chat)
        self.chat_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.empty_chat = EmptyChat()
        self.chat_stack = QStackedWidget()
        self.chat_stack.addWidget(self.empty_chat)
        self.chat_stack.addWidget(self.chat_view)
        splitter.addWidget(self.chat_stack)
        bottom = QWidget()
        bl = QHBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        self.input = InputBox()
        bl.addWidget(self.input, 1)
        buttons = QVBoxLayout()
        self.send_button = QPushButton("Send")
        self.send_button.setToolTip("Send the message (Enter)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the reply (Esc)")
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        bl.addLayout(buttons)
        splitter.addWidget(bottom)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([600, 90])
        self.input.setMinimumHeight(60)
        return splitter

    def _build_pages(self) -> None:
        """The pages after Chat, in tab order; Discover, Library and Compare are built on first sight."""
        self.fit_view = FitView()
        self.add_view("Fit", self.fit_view, "Predicted memory for the chosen model against this machine")
        self.hardware_view = HardwareView()
        self.add_view("Hardware", self.hardware_view, "What Sizewise detected on this machine, and how")
        self.writing_view = WritingView(self.engine)
        index = self.add_view("Writing", self.writing_view, "Writing help: rewrite, shorten, fix, summarize, translate")
        self._writing_page = self.tabs.widget(index)
        # Built on first sight: the Hub client's import (~0.25 s) stays out of start-up.
        self.discover_page = LazyPage(self._make_discover_view)
        self.library_page = LazyPage(self._make_library_view)
        self.add_view("Discover", self.discover_page, "Find GGUF models on the Hugging Face Hub")
        self.add_view("Library", self.library_page, "Downloads and every model on this computer")
        self.compare_page = LazyPage(self._make_compare_view)
        self.add_view("Compare", self.compare_page, "Models, quants or settings side by side, measured here")
        self.ladder_page = LazyPage(self._make_ladder_view)
        self.add_view("Ladder", self.ladder_page, "Which model sizes and quants fit this machine or a target, how fast")

    def _build_docks(self) -> None:
        """Conversations (left), sampling (right) and live metrics (bottom, hidden until asked for)."""
        self.sidebar = ConversationSidebar(self.conversations)
        side = self._dock("Conversations", "conversations-dock", self.sidebar, floatable=False)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, side)
        self.sampling_panel = SamplingPanel()
        self.presets_widget = PresetsWidget(self.presets)
        self.sampling_panel.add_header_widget(self.presets_widget)
        scroll = QScrollArea()
        scroll.setWidget(self.sampling_panel)
        scroll.setWidgetResizable(True)
        dock = self._dock("Sampling", "sampling-dock", scroll)
        self.metrics_page = LazyPage(self._make_metrics_view)
        metrics = self._dock("Live metrics", "metrics-dock", self.metrics_page)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, metrics)
        metrics.hide()  # charts on request (View menu); the status bar always shows the last figures
        self.docks = [side, dock, metrics]
        # The conversation list belongs to Chat, the sampling controls to Chat and Writing: on other
        # pages they step aside so wide views (Compare, Fit, Library) get the room. A dock the user
        # closed from the View menu stays closed.
        self._dock_pages = {side: {"Chat"}, dock: {"Chat", "Writing"}}
        self._dock_wanted = {side: True, dock: True}
        for d in self._dock_pages:
            d.toggleViewAction().triggered.connect(lambda on, d=d: self._dock_wanted.__setitem__(d, on))
        self.tabs.currentChanged.connect(self._fit_docks_to_page)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)

    def _dock(self, title: str, name: str, widget: QWidget, *, floatable: bool = True) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        features = QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetClosable
        if floatable:
            features |= QDockWidget.DockWidgetFeature.DockWidgetFloatable
        dock.setFeatures(features)
        return dock

    def _build_menus(self) -> None:
        """File, Chat, Conversations, View and Help; the actions with shortcuts are kept for wiring."""
        self._build_file_menu(self.menuBar().addMenu("&File"))
        self._build_chat_menu(self.menuBar().addMenu("&Chat"))
        conv_menu = self.menuBar().addMenu("C&onversations")
        sb = self.sidebar
        for action in (
            sb.new_action,
            sb.search_action,
            sb.next_action,
            sb.previous_action,
            sb.rename_action,
            sb.delete_action,
            sb.undo_action,
        ):
            conv_menu.addAction(action)
        view_menu = self.menuBar().addMenu("&View")
        for d in self.docks:
            view_menu.addAction(d.toggleViewAction())
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction("&About Sizewise", self.show_about)

    def _build_file_menu(self, menu: QMenu) -> None:
        self.open_action = QAction("&Open GGUF…", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        menu.addAction(self.open_action)
        self.connect_action = QAction("&Connect to a server…", self)
        menu.addAction(self.connect_action)
        menu.addSeparator()
        files = self.conversation_files
        menu.addAction("Export conversation as &Markdown…", lambda: files.export_conversation("md"))
        menu.addAction("Export conversation as &JSON…", lambda: files.export_conversation("json"))
        menu.addAction("Export &all conversations…", lambda: files.export_all())
        menu.addAction("&Import conversations…", lambda: files.import_conversations())
        menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        menu.addAction(quit_action)

    def _build_chat_menu(self, menu: QMenu) -> None:
        self.send_action = QAction("S&end message", self)
        self.send_action.setShortcut(QKeySequence("Ctrl+Return"))
        self.send_action.setToolTip("Send the message (Enter in the message box, or Ctrl+Return)")
        menu.addAction(self.send_action)
        self.stop_action = QAction("&Stop reply", self)
        self.stop_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.stop_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        menu.addAction(self.stop_action)
        self.regenerate_action = QAction("&Regenerate reply", self)
        self.regenerate_action.setShortcut(QKeySequence("Ctrl+R"))
        self.continue_action = QAction("C&ontinue reply", self)
        self.continue_action.setShortcut(QKeySequence("Ctrl+Shift+Return"))
        menu.addActions([self.regenerate_action, self.continue_action])

    def _wire(self) -> None:
        lo = self.loader
        self.model_combo.setModel(lo.choices)
        lo.choiceSelected.connect(self.model_combo.setCurrentIndex)
        lo.stateChanged.connect(self._show_state)
        lo.summaryChanged.connect(self.model_summary.setText)
        lo.message.connect(self.banner.show_message)
        lo.messageCleared.connect(self.banner.clear_message)
        lo.settingsChanged.connect(self.save_settings)
        lo.modelLoaded.connect(self.status_line.show_loaded)
        lo.modelLoaded.connect(lambda _: self.input.setFocus())
        lo.modelUnloaded.connect(self.status_line.show_unloaded)
        lo.predictionChanged.connect(self._on_prediction)
        lo.libraryChanged.connect(self._refresh_library_view)
        self.open_button.clicked.connect(lo.choose_file)
        self.open_action.triggered.connect(lo.choose_file)
        self.connect_button.clicked.connect(self.show_connect_dialog)
        self.connect_action.triggered.connect(self.show_connect_dialog)
        self.empty_chat.starterRequested.connect(lo.open_model)
        self.empty_chat.openRequested.connect(lo.choose_file)
        self.empty_chat.discoverRequested.connect(lambda: self.show_view(self.discover_page))
        for changed in (self.chat.rowsInserted, self.chat.rowsRemoved, self.chat.modelReset):
            changed.connect(self._show_chat_or_empty)
        self.load_button.clicked.connect(lambda: lo.toggle_load(self.model_combo.currentData()))
        a = self.chat_actions
        a.message.connect(self.banner.show_message)
        a.messageCleared.connect(self.banner.clear_message)
        self.send_button.clicked.connect(a.send)
        self.input.submitted.connect(a.send)
        self.send_action.triggered.connect(a.send)
        self.stop_button.clicked.connect(a.stop)
        self.stop_action.triggered.connect(a.stop)
        self.regenerate_action.triggered.connect(a.regenerate)
        self.continue_action.triggered.connect(a.continue_reply)
        self.chat_view.customContextMenuRequested.connect(a.show_menu)
        self.sidebar.conversationSelected.connect(self.controller.open_conversation)
        self.sidebar.conversationDeleted.connect(a.conversation_deleted)
        self.sidebar.storeFailed.connect(lambda text: self.banner.show_message(text))
        self.presets_widget.presetChosen.connect(self._apply_preset)
        self.sampling_panel.changed.connect(lambda: self.presets_widget.show_sampling(self.sampling_panel.sampling()))
        self.sampling_panel.n_ctx.valueChanged.connect(self._update_ctx_warning)
        self.hardware_view.reportChanged.connect(self.loader.set_hardware)
        self.hardware_view.reportChanged.connect(self._machine_budget_changed)
        e = self.engine
        e.ready.connect(self._on_ready)
        c = self.controller
        # Chat and Writing share the engine: the window is busy (no load or unload) while either has a
        # request queued or running, and each page's Stop stops its own.
        c.busyChanged.connect(self._pages_busy_changed)
        self.writing_view.busyChanged.connect(self._pages_busy_changed)
        self.tabs.currentChanged.connect(lambda _: self._show_state(self.loader.state))
        # The Sampling panel is shown beside the Writing page too: its seed and samplers apply there.
        self.writing_view.set_sampling_source(self.sampling_panel.sampling)
        c.replyFinished.connect(self.status_line.show_reply)
        c.replyFinished.connect(self.loader.record_reply)
        c.busyChanged.connect(self.status_line.set_replying)
        e.tokenCount.connect(self._count_reply_tokens)
        c.contextChanged.connect(self.status_line.show_context)
        c.message.connect(self.banner.show_message)
        c.messageCleared.connect(self.banner.clear_message)
        c.conversationChanged.connect(a.conversation_changed)
        self.conversation_files.message.connect(self.banner.show_message)
        self.conversation_files.imported.connect(self.sidebar.refresh)
        e.stats.connect(self.status_line.show_memory)

    def _restore(self) -> None:
        s = self.settings
        self.sampling_panel.set_params(s.sampling, s.load, s.system_prompt)
        self.loader.refresh_choices()
        self.empty_chat.set_starter(find_starter([self.paths.data_dir / "models"]))
        if s.window_geometry:
            self.restoreGeometry(QByteArray(base64.b64decode(s.window_geometry)))
        else:
            self.resize(1100, 720)
        if s.window_state:
            self.restoreState(QByteArray(base64.b64decode(s.window_state)))
        problems = [p for p in (self.store.problem, self.store_problem_text(), self.catalogue[1]) if p]
        if problems:
            self.banner.show_message(" ".join(problems), "warning")

    def store_problem_text(self) -> str:
        problem = self.conversations.problem
        return problem.message if problem is not None else ""

    def _check_conversations(self) -> None:
        """Finish the integrity check that opening cut short (a large history), off the GUI thread."""
        if self.conversations.persistent and not self.conversations.integrity_checked:
            run_in_background(self.conversations.check_integrity, self._on_conversations_checked)

    def _on_conversations_checked(self, problem: StoreProblem | None) -> None:
        if problem is not None and not self._closed:
            self.banner.show_message(problem.message, "warning")

    # -- state ------------------------------------------------------------------------------------
    @Slot()
    def _pages_busy_changed(self) -> None:
        self.loader.set_generating(self.controller.busy or self.writing_view.busy)

    @Slot(str)
    def _show_state(self, state: str) -> None:
        busy = state in ("checking", "loading")
        self.busy.setVisible(busy)
        self.load_button.setEnabled(state in ("empty", "ready"))
        self.load_button.setText("Unload" if state in ("ready", "generating") else "Load")
        self.model_combo.setEnabled(state in ("empty", "ready"))
        self.open_button.setEnabled(state in ("empty", "ready"))
        self.connect_button.setEnabled(state in ("empty", "ready"))
        self.connect_action.setEnabled(state in ("empty", "ready"))
        chat_busy = self.controller.busy
        # A chat turn may be sent while Writing runs (it waits for it); Stop is for the chat's own turn.
        self.send_button.setEnabled(state in ("ready", "generating") and not chat_busy)
        self.stop_button.setEnabled(chat_busy)
        # On the Writing page, Esc belongs to its own Stop while it runs (two Esc shortcuts would be ambiguous).
        writing_has_esc = self.tabs.currentWidget() is self._writing_page and self.writing_view.busy
        self.stop_action.setEnabled(chat_busy and not writing_has_esc)
        if state == "empty":
            self.status_line.clear_mode()
        self.empty_chat.set_busy(state not in ("empty", "ready"))
        self._show_chat_or_empty()

    @Slot()
    def _show_chat_or_empty(self) -> None:
        """The conversation, or — with no model loaded and nothing said yet — the panel that says what to do first.
        A conversation with messages stays readable without a model."""
        no_model = self.loader.state in ("empty", "checking", "loading")
        empty = no_model and self.chat.rowCount() == 0
        self.chat_stack.setCurrentWidget(self.empty_chat if empty else self.chat_view)

    # -- engine and model -------------------------------------------------------------------------
    @Slot(dict)
    def _on_ready(self, info: dict[str, Any]) -> None:
        self.hardware_view.set_engine_ready(info)
        self.hardware_view.refresh()
        can_offload, sentence = offload_summary(info)
        if not info.get("gpu_offload"):
            sentence += " See the README for CUDA, Vulkan and Metal builds."
        self.sampling_panel.set_gpu_support(can_offload, sentence)
        self.status_line.show_devices(info)

    @Slot(object)
    def _machine_budget_changed(self, report: HardwareReport) -> None:
        self._machine_report = report
        if self.discover_view is not None and self.loader.budget is not None:
            self.discover_view.set_machine_budget(self.loader.budget)
        if self.ladder_view is not None:
            self.ladder_view.set_machine(machine_budget(report), machine_devices(self.paths, report))

    @Slot(object)
    def _on_prediction(self, prediction: MemoryPrediction) -> None:
        if self.metrics_view is not None:
            self.metrics_view.set_prediction(prediction.ram_bytes, prediction.vram_bytes)

    # -- chatting ---------------------------------------------------------------------------------
    @Slot(int, int)
    def _count_reply_tokens(self, gen_id: int, n: int) -> None:
        """The chat reply's tokens feed the live speed; Writing help's requests do not."""
        if gen_id == self.controller.gen_id:
            self.status_line.count_tokens(n)

    def _apply_preset(self, preset: Preset) -> None:
        self.sampling_panel.set_params(
            preset.apply(self.sampling_panel.sampling()),
            self.sampling_panel.load_params(self.settings.load),
            self.sampling_panel.system_text(),
        )
        self.sidebar.set_new_conversation_defaults(preset.name, self.sampling_panel.system_text())

    @Slot(int)
    def _update_ctx_warning(self, n_ctx: int) -> None:
        if self.loader.model_info is not None:
            self.sampling_panel.set_context_warning(context_warning(self.loader.model_info, n_ctx))

    def show_hub_fit(self, repo_id: str, model: ModelFile) -> None:
        """The Fit view for a file on the Hub: its header is read remotely (Range requests), never downloaded."""
        discover = self.discover_view
        assert discover is not None  # the request came from it
        revision = discover.listing.revision if discover.listing else "main"

        def work() -> tuple[GGUFHeader, ModelInfo]:
            remote = [read_remote_header(repo_id, part.path, revision) for part in model.parts]
            header = merged_header([r.header for r in remote])
            return header, model_info(f"{repo_id}/{model.name}", header)

        def done(found: tuple[GGUFHeader, ModelInfo]) -> None:
            header, info = found
            budget = self.loader.budget
            if budget is None:
                self.banner.show_message("The hardware is still being probed; try again in a moment.", "info")
                return
            self.fit_view.set_model(header, info, budget, self.sampling_panel.load_params(self.settings.load))
            self.show_view(self.fit_view)

        discover.status.setText(f"Reading the header of {model.name} from the Hub…")
        run_in_background(
            work,
            done,
            lambda exc: discover.status.setText(f"The header of {model.name} could not be read: {exc}"),
        )

    @property
    def library(self) -> Library:
        """The model library, made on first use (from a background job at start-up)."""
        with self._library_lock:
            if self._library is None:
                self._library = Library.for_app(self.paths)
            return self._library

    def _make_library_view(self) -> QWidget:
        view = LibraryView(self.library, self.downloads, log_dir=self.paths.log_dir)
        view.loadRequested.connect(self._load_from_library)
        view.libraryRefreshed.connect(self.loader.show_library)  # the model picker lists what the Library lists
        view.discoverRequested.connect(lambda: self.show_view(self.discover_page))
        self.library_view = view
        view.refresh()
        return view

    def _make_discover_view(self) -> QWidget:
        def budget_for(target: str | None) -> Budget:  # called off the GUI thread
            known = self.loader.budget
            return known if target is None and known is not None else default_budget_factory(target)

        view = DiscoverView(queue=self.downloads, catalogue=self.catalogue, budget_factory=budget_for)
        view.downloadRequested.connect(lambda *_: self.show_view(self.library_page))
        view.fitDetailsRequested.connect(self.show_hub_fit)
        if self.loader.budget is not None:  # the hardware was probed already: the same budget as the Fit page
            view.set_machine_budget(self.loader.budget)
        self.discover_view = view
        return view

    def _make_ladder_view(self) -> QWidget:
        view = LadderView(calibrator=self._calibration_job)
        view.openRepo.connect(self._open_repo_in_discover)
        view.calibrated.connect(self._machine_calibrated)
        if self._machine_report is not None:
            view.set_machine(machine_budget(self._machine_report), machine_devices(self.paths, self._machine_report))
        self.ladder_view = view
        return view

    def _calibration_job(self, on_event: Callable[[dict[str, Any]], None]) -> CalibrationJob:
        """The ladder's "Measure this machine": calibration in a job process, borrowing the starter's tokenizer."""
        starter = find_app_starter(self.paths)
        if starter is None:
            raise UserError(
                "Measuring borrows the starter model's tokenizer, and the starter model is not installed; "
                "get it from the Library first."
            )
        return CalibrationJob(self.paths, starter.path, on_event)

    @Slot(object)
    def _machine_calibrated(self, profile: object) -> None:
        """A new profile was stored: every speed shown for this machine is worked out again from it."""
        report = self._machine_report
        if report is not None:
            self.loader.set_hardware(report)
            self._machine_budget_changed(report)

    def _open_repo_in_discover(self, repo_id: str) -> None:
        self.show_view(self.discover_page)
        view = self.discover_page.ensure()
        assert isinstance(view, DiscoverView)
        view.open_repo(repo_id)

    def _refresh_library_view(self) -> None:
        if self.library_view is not None:
            self.library_view.refresh()

    def _make_compare_view(self) -> QWidget:
        from sizewise.gui.compare.compare_view import CompareView

        self.compare_view = CompareView(self.paths)
        self._share_servers()
        return self.compare_view

    def _share_servers(self) -> None:
        """The servers the chat connected to are offered in Compare's model picker too."""
        if self.compare_view is not None:
            self.compare_view.add_servers(
                {url: (key, listing.models) for url, (key, listing) in self.loader.servers.items()}
            )

    def _make_metrics_view(self) -> QWidget:
        from sizewise.gui.metrics.metrics_view import MetricsView

        self.metrics_view = MetricsView(self.engine)
        if self.loader.prediction is not None:
            self.metrics_view.set_prediction(self.loader.prediction.ram_bytes, self.loader.prediction.vram_bytes)
        if self.loader.remote_info is not None:  # a server's model was in use before the view was first shown
            self.metrics_view.set_remote(self.loader.remote_info)
        return self.metrics_view

    def show_view(self, widget: QWidget) -> None:
        for i in range(self.tabs.count()):
            page = self.tabs.widget(i)
            if page is widget or (isinstance(page, QScrollArea) and page.widget() is widget):
                self.tabs.setCurrentIndex(i)

    def _load_from_library(self, path: str) -> None:
        self.tabs.setCurrentIndex(0)
        if self.loader.state in ("empty", "ready"):
            self.loader.open_model(path)

    def show_connect_dialog(self) -> ConnectDialog:
        """ "Connect to a server…": the server's models join the model list and the first one is used."""
        dialog = ConnectDialog(self.paths.log_dir / "remote.log", self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.connected.connect(self.loader.add_server)
        dialog.connected.connect(lambda *_: self._share_servers())
        dialog.open()
        return dialog

    def show_about(self) -> None:
        dialog = AboutDialog(self, self.engine.client.ready_info)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def _fit_docks_to_page(self, index: int) -> None:
        page = self.tabs.tabText(index)
        for d, pages in self._dock_pages.items():
            d.setVisible(self._dock_wanted[d] and page in pages)

    def _show_tab(self, index: int) -> None:
        if index < self.tabs.count():
            self.tabs.setCurrentIndex(index)

    def add_view(self, title: str, widget: QWidget, tooltip: str = "") -> int:
        """Add a page to the main tabs; Ctrl+N switches to the N-th page.

        Each page sits in a scroll area so a wide page never forces a wide window on a small screen.
        """
        scroll = QScrollArea()
        scroll.setWidget(widget)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        index = self.tabs.addTab(scroll, title)
        if tooltip:
            self.tabs.setTabToolTip(index, f"{tooltip} (Ctrl+{index + 1})" if index < 9 else tooltip)
        return index

    def screenshot_views(self) -> Iterator[tuple[str, QWidget]]:
        """The views the screenshot command renders, by file name: the whole window on each tab."""
        for i in range(self.tabs.count()):
            self.tabs.setCurrentIndex(i)
            slug = "".join(c if c.isalnum() else "-" for c in self.tabs.tabText(i).lower()).strip("-")
            yield ("main-window" if i == 0 else f"view-{slug}"), self
        self.tabs.setCurrentIndex(0)

    # -- persistence and shutdown -----------------------------------------------------------------
    def save_settings(self) -> None:
        s = self.settings
        s.sampling = self.sampling_panel.sampling()
        s.load = self.sampling_panel.load_params(s.load)
        s.system_prompt = self.sampling_panel.system_text()
        s.window_geometry = base64.b64encode(bytes(self.saveGeometry().data())).decode("ascii")
        s.window_state = base64.b64encode(bytes(self.saveState().data())).decode("ascii")
        try:
            self.store.save(s)
        except OSError as exc:
            self.banner.show_message(f"Settings could not be saved: {exc.strerror or exc}.", "warning")

    def closeEvent(self, event: QCloseEvent) -> None:
        self.chat.flush()
        self.save_settings()
        self.controller.stop()
        self.writing_view.stop()
        if self.library_view is not None:
            self.library_view.shutdown()  # pauses running downloads so they resume next time
        else:
            self.downloads.close()
        if self.compare_view is not None:
            self.compare_view.shutdown()
        if self.metrics_view is not None:
            self.metrics_view.shutdown()
        self.engine.shutdown()
        self.sidebar._finish_delete()  # an undo window still open becomes final, its timer stops
        self._closed = True
        self.conversations.close()  # also stops a background integrity check
        super().closeEvent(event)
