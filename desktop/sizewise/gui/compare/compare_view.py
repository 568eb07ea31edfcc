"""Compare models, quants or settings — or one model at several temperatures — on this machine.

Two to four runs get the same prompt, seed and sampling, each in its own engine (gui/compare/engine_pool.py),
sequenced by gui/compare/compare_runner.py.
When they all fit in memory at once (the view says so, with the numbers, before the run) they are
loaded together and kept loaded for the next run; the replies are still generated one at a time
unless "Generate at the same time" is ticked, because replies generated together share the CPU and
their speeds (labelled as such) are not what one model gets alone. Otherwise they run one after
another, one model in memory at a time. The replies appear side by side with each one's speed and memory,
then a table and bar charts, with the best choice for this hardware marked: the largest model that
fits and generates at or above a reading-speed floor the user sets (default 10 tokens/s).

"Temperature made visible": the same prompt at several temperatures with a fixed seed, replies side
by side and the seed and settings recorded — low temperatures stay focused and repeatable, high ones
wander, shown on the user's own model. Export writes the hardware-fit report
(core/report/fit_report.py) as Markdown, JSON or a self-contained HTML page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from sizewise.core.compare.plan import MAX_RUNS, RunPlan, RunSpec, describe_settings, parse_temperatures, plan_runs
from sizewise.core.compare.report import SHARED_SPEED_NOTE, compare_report
from sizewise.core.compare.results import RunResult, planned_results
from sizewise.core.errors import UserError
from sizewise.core.fit.verdict import Budget
from sizewise.core.hub.library import Library
from sizewise.core.hub.starter import find_starter
from sizewise.core.paths import AppPaths
from sizewise.core.quant.results import QualityStore
from sizewise.core.report.fit_report import READING_SPEED_FLOOR_TPS, generation_tps, write_report
from sizewise.core.report.quality_section import QUALITY_HEAD, quality_cells
from sizewise.core.sampling import TEMPERATURE_HINT, LoadParams, SamplingParams
from sizewise.engine.bench import BenchRequest
from sizewise.engine.remote.http import ApiKey
from sizewise.gui.adapters.background import run_in_background
from sizewise.gui.compare.compare_runner import CompareRunner
from sizewise.gui.compare.engine_pool import EnginePool
from sizewise.gui.compare.quality_runner import DEFAULT_CTX, QualityMeasurer
from sizewise.gui.compare.tradeoff_chart import TradeoffChart

MiB = float(1 << 20)
DEFAULT_PROMPT = "Explain in three sentences what a context window is in a language model."
DEFAULT_TEMPERATURES = "0.2, 0.7, 1.2"
TOGETHER_TIP = (
    "Generate every reply at once instead of one after another. The models then share the CPU, so each "
    "reply's speed is lower than that model gets alone; the table, the best choice and the report say so."
)


class _ReplyPanel(QGroupBox):
    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        layout = QVBoxLayout(self)
        self.figures = QLabel("waiting…")
        self.figures.setWordWrap(True)
        self.figures.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text = QTextBrowser()
        self.text.setOpenLinks(False)
        layout.addWidget(self.figures)
        layout.addWidget(self.text, 1)
        self.setMinimumWidth(220)


class CompareView(QWidget):
    finished = Signal()  # a comparison ended (done or stopped); results and report are ready
    qualityFinished = Signal(str)  # Measure quality ended: "done", "cancelled" or "failed"; the table is refilled

    def __init__(self, paths: AppPaths, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.paths = paths
        self.specs: list[RunSpec] = []
        self.server_keys: dict[str, ApiKey | None] = {}  # the servers "Connect to a server…" reached, by URL
        self.runner: CompareRunner | None = None
        self.report: dict[str, Any] | None = None
        self.panels: list[_ReplyPanel] = []
        self.pool = EnginePool(self)  # engines kept loaded after an all-at-once run
        self.budget_override: Budget | None = None  # None: this machine's budget (tests inject a smaller one)
        self.plan: RunPlan | None = None
        self.measurer: QualityMeasurer | None = None
        # Measure quality's window and chunks (None: all the text has); tests shrink them.
        self.quality_ctx = DEFAULT_CTX
        self.quality_chunks: int | None = None
        self._report_serial = 0
        self._plan_serial = 0
        self._replan_waits = False
        self._build()
        self._live = QTimer(self)  # replies stream in: refresh the panels a few times a second, not per token
        self._live.setInterval(150)
        self._live.timeout.connect(self._refresh_live)
        self._sync_mode()
        run_in_background(self._local_models, self._fill_models)

    # -- construction -----------------------------------------------------------------------------
    def _build(self) -> None:
        """The page, top to bottom: the runs beside the prompt and its settings, the memory plan and status
        lines, then the replies above the results table and charts."""
        outer = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(self._build_runs_box(), 1)
        top.addWidget(self._build_ask_box(), 1)
        outer.addLayout(top)
        outer.addWidget(self._build_plan_label())
        outer.addWidget(self._build_status_label())
        outer.addWidget(self._build_results(), 1)

    def _build_runs_box(self) -> QGroupBox:
        """The runs: the form that describes one, Add/Remove, the list so far and "Generate at the same time"."""
        runs_box = QGroupBox("Runs (2–4: models, quants or settings)")
        rl = QVBoxLayout(runs_box)
        rl.addLayout(self._build_run_form())
        rl.addLayout(self._build_run_buttons())
        self.run_list = QListWidget()
        self.run_list.setAccessibleName("Runs")
        self.run_list.setMaximumHeight(110)
        rl.addWidget(self.run_list)
        self.together_check = QCheckBox("Generate at the same time (when they all fit in memory)")
        self.together_check.setEnabled(False)
        self.together_check.setToolTip("Add runs that fit in memory together first.")
        rl.addWidget(self.together_check)
        return runs_box

    def _build_run_form(self) -> QFormLayout:
        """One run's model file and load settings: context, GPU layers, KV cache type."""
        form = QFormLayout()
        form.addRow("Model", self._build_model_picker())
        self.ctx_spin = QSpinBox()
        self.ctx_spin.setRange(256, 131072)
        self.ctx_spin.setSingleStep(256)
        self.ctx_spin.setValue(2048)
        form.addRow("Context", self.ctx_spin)
        self.gpu_spin = QSpinBox()
        self.gpu_spin.setRange(-2, 999)
        self.gpu_spin.setSpecialValueText("auto")
        self.gpu_spin.setMinimum(-2)
        self.gpu_spin.setValue(0)
        self.gpu_spin.setToolTip("Layers offloaded to the GPU: auto = the most that fit, -1 = all")
        form.addRow("GPU layers", self.gpu_spin)
        self.kv_combo = QComboBox()
        self.kv_combo.addItems(["f16", "q8_0", "q4_0"])
        form.addRow("KV cache", self.kv_combo)
        return form

    def _build_model_picker(self) -> QHBoxLayout:
        """The model file: an editable list (the starter model now, local models once scanned) and Browse…."""
        pick = QHBoxLayout()
        self.model_edit = QComboBox()
        self.model_edit.setEditable(True)
        self.model_edit.setAccessibleName("Model file")
        self.model_edit.setToolTip("A .gguf model file")
        starter = find_starter()
        if starter is not None:
            self.model_edit.addItem(str(starter.path))
        pick.addWidget(self.model_edit, 1)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        pick.addWidget(browse)
        return pick

    def _build_run_buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.add_button = QPushButton("Add run")
        self.add_button.clicked.connect(self._add_from_form)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self._remove_selected)
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        return row

    def _build_ask_box(self) -> QGroupBox:
        """What every run is asked, and how: the mode, the prompt, sampling and benchmark, Run/Stop/Export."""
        ask_box = QGroupBox("Same prompt, seed and sampling for each")
        al = QVBoxLayout(ask_box)
        al.addLayout(self._build_mode_row())
        self.prompt_edit = QPlainTextEdit(DEFAULT_PROMPT)
        self.prompt_edit.setAccessibleName("Prompt")
        self.prompt_edit.setMaximumHeight(70)
        al.addWidget(self.prompt_edit)
        al.addLayout(self._build_sampling_form())
        al.addLayout(self._build_action_buttons())
        return ask_box

    def _build_mode_row(self) -> QHBoxLayout:
        """Compare runs, or one model at several temperatures."""
        modes = QHBoxLayout()
        self.mode_models = QRadioButton("Compare runs")
        self.mode_temps = QRadioButton("Temperature made visible")
        self.mode_temps.setToolTip(TEMPERATURE_HINT)
        self.mode_models.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.mode_models)
        group.addButton(self.mode_temps)
        self.mode_models.toggled.connect(self._sync_mode)
        modes.addWidget(self.mode_models)
        modes.addWidget(self.mode_temps)
        return modes

    def _build_sampling_form(self) -> QFormLayout:
        """Seed, temperature (or temperatures), max tokens, the reading-speed floor and the benchmark row."""
        sf = QFormLayout()
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setValue(42)
        sf.addRow("Seed", self.seed_spin)
        self.temp_spin = QDoubleSpinBox()
        self.temp_spin.setRange(0.0, 2.0)
        self.temp_spin.setSingleStep(0.1)
        self.temp_spin.setValue(0.7)
        self.temp_spin.setToolTip(TEMPERATURE_HINT)
        sf.addRow("Temperature", self.temp_spin)
        self.temps_edit = QLineEdit(DEFAULT_TEMPERATURES)
        self.temps_edit.setToolTip("Temperatures to compare on the first run's model, separated by commas")
        sf.addRow("Temperatures", self.temps_edit)
        self.max_tokens_spin = QSpinBox()
        self.max_tokens_spin.setRange(1, 4096)
        self.max_tokens_spin.setValue(96)
        sf.addRow("Max tokens", self.max_tokens_spin)
        self.floor_spin = QDoubleSpinBox()
        self.floor_spin.setRange(0.0, 1000.0)
        self.floor_spin.setValue(READING_SPEED_FLOOR_TPS)
        self.floor_spin.setSuffix(" tokens/s")
        self.floor_spin.setToolTip("The slowest generation speed you would accept (about reading speed)")
        self.floor_spin.valueChanged.connect(self._refresh_best)
        sf.addRow("Reading-speed floor", self.floor_spin)
        self.quality_floor_spin = QDoubleSpinBox()
        self.quality_floor_spin.setRange(0.0, 100.0)
        self.quality_floor_spin.setDecimals(1)
        self.quality_floor_spin.setSpecialValueText("off")
        self.quality_floor_spin.setValue(0.0)
        self.quality_floor_spin.setAccessibleName("Quality floor")
        self.quality_floor_spin.setToolTip(
            "The best choice must pick the same top token as its reference at least this often (Measure "
            "quality gives the figure). A model without a quality run against a reference does not pass. "
            "0 = off."
        )
        self.quality_floor_spin.valueChanged.connect(self._refresh_best)
        sf.addRow("Quality floor (same top token ≥ %)", self.quality_floor_spin)
        sf.addRow(self._build_bench_row())
        return sf

    def _build_bench_row(self) -> QHBoxLayout:
        """Benchmark too, with its pp and tg sizes and repetitions."""
        bench_row = QHBoxLayout()
        self.bench_check = QCheckBox("Benchmark too (llama-bench pp/tg)")
        self.pp_spin = QSpinBox()
        self.pp_spin.setRange(1, 8192)
        self.pp_spin.setValue(128)
        self.pp_spin.setPrefix("pp ")
        self.tg_spin = QSpinBox()
        self.tg_spin.setRange(1, 4096)
        self.tg_spin.setValue(32)
        self.tg_spin.setPrefix("tg ")
        self.reps_spin = QSpinBox()
        self.reps_spin.setRange(1, 50)
        self.reps_spin.setValue(3)
        self.reps_spin.setSuffix("×")
        for w in (self.bench_check, self.pp_spin, self.tg_spin, self.reps_spin):
            bench_row.addWidget(w)
        return bench_row

    def _build_action_buttons(self) -> QHBoxLayout:
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.run)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setEnabled(False)
        self.export_button = QPushButton("Export report…")
        self.export_button.clicked.connect(self._export_dialog)
        self.export_button.setEnabled(False)
        self.quality_button = QPushButton("Measure quality")
        self.quality_button.setToolTip(
            "Perplexity of each compared model on a bundled public-domain text, and its KL divergence and "
            "top-token agreement with the most precise version of the same model (compared or in the "
            "Library), one model after another. The figures are kept for later comparisons and reports."
        )
        self.quality_button.clicked.connect(self._quality_clicked)
        for b in (self.run_button, self.stop_button, self.quality_button, self.export_button):
            buttons.addWidget(b)
        return buttons

    def _build_plan_label(self) -> QLabel:
        """Whether the runs fit in memory together, in words; hidden until there is a decision."""
        self.plan_label = QLabel("")
        self.plan_label.setAccessibleName("Memory plan")
        self.plan_label.setWordWrap(True)
        self.plan_label.hide()  # shown once there is a decision to show
        self.plan_label.setToolTip(
            "Whether every run fits in memory at the same time: each one's predicted need added up, "
            "the safety margin held back once, against the RAM (and VRAM) available now"
        )
        return self.plan_label

    def _build_status_label(self) -> QWidget:
        """The status sentence, and the quality run's progress bar beside it while one runs."""
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        self.status = QLabel("Add two to four runs, or pick one model for the temperature comparison.")
        self.status.setAccessibleName("Comparison status")
        self.status.setWordWrap(True)
        self.quality_progress = QProgressBar()
        self.quality_progress.setAccessibleName("Quality run progress")
        self.quality_progress.setRange(0, 1000)
        self.quality_progress.setTextVisible(False)
        self.quality_progress.setMaximumWidth(220)
        self.quality_progress.hide()
        layout.addWidget(self.status, 1)
        layout.addWidget(self.quality_progress)
        return row

    def _build_results(self) -> QSplitter:
        """The replies side by side above the results table and the charts."""
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self._build_reply_area())
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self._build_table())
        bottom.addWidget(self._build_charts())
        bottom.setSizes([560, 640])  # the table has 14 columns now: give it room next to the charts
        splitter.addWidget(bottom)
        splitter.setSizes([320, 260])
        return splitter

    def _build_reply_area(self) -> QScrollArea:
        """A scrolling row for the reply panels (``_make_panels`` fills it for each run)."""
        self.panel_host = QWidget()
        self.panel_layout = QHBoxLayout(self.panel_host)
        scroll = QScrollArea()
        scroll.setWidget(self.panel_host)
        scroll.setWidgetResizable(True)
        return scroll

    def _build_table(self) -> QTableWidget:
        """One row per run: verdict, speeds, predicted and measured memory, benchmark; the best one starred."""
        self.table = QTableWidget(0, 10 + len(QUALITY_HEAD))
        self.table.setHorizontalHeaderLabels(
            [
                "",
                "Run",
                "Verdict",
                "Generation t/s",
                "Prompt t/s",
                "TTFT ms",
                "Predicted MiB",
                "Measured MiB",
                "Peak RSS MiB",
                "Bench tg t/s",
                *QUALITY_HEAD,
            ]
        )
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        # Fourteen columns: each as wide as its figures, the long run names cut (their tooltip has them whole).
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(1, 220)
        self.table.verticalHeader().setVisible(False)
        return self.table

    def _build_charts(self) -> QTabWidget:
        """Two tabs: speed and memory (generation speed against the floor, memory predicted / allocated / peak),
        and the quality trade-off (quality against file size and speed, with the Pareto front)."""
        self.chart_tabs = QTabWidget()
        charts = QWidget()
        self.chart_tabs.addTab(charts, "Speed and memory")
        self.tradeoff = TradeoffChart()
        self.chart_tabs.addTab(self.tradeoff, "Quality trade-off")
        cl = QVBoxLayout(charts)
        cl.setContentsMargins(0, 0, 0, 0)
        self.speed_chart = pg.PlotWidget(background="w", title="Generation tokens/s (dashed: floor)")
        self.memory_chart = pg.PlotWidget(
            background="w", title="Memory MiB: predicted need / llama.cpp allocated / peak RSS"
        )
        for chart in (self.speed_chart, self.memory_chart):
            chart.setMouseEnabled(x=False, y=False)
            chart.setMenuEnabled(False)
            chart.hideButtons()
            chart.setMinimumHeight(120)
            cl.addWidget(chart)
        return self.chart_tabs

    # -- runs -------------------------------------------------------------------------------------
    def _local_models(self) -> list[tuple[str, str]]:
        """(label, path) of the usable local models (the library scans folders: off the GUI thread)."""
        try:
            entries = Library.for_app(self.paths).list()
        except Exception:  # the picker still works with Browse… and the starter model
            return []
        return [
            (f"{e.name} {e.quantization} ({e.parameters_label or '?'}) — {Path(e.path).name}", e.path)
            for e in entries
            if e.status == "ok"
        ]

    def _fill_models(self, models: list[tuple[str, str]]) -> None:
        known = {self.model_edit.itemText(i) for i in range(self.model_edit.count())}
        for label, path in models:
            if path not in known:
                self.model_edit.addItem(path)
                self.model_edit.setItemData(self.model_edit.count() - 1, label, Qt.ItemDataRole.ToolTipRole)

    def add_servers(self, servers: dict[str, tuple[ApiKey | None, list[str]]]) -> None:
        """The models of the servers the chat connected to ({url: (key, models)}) join the model picker, as
        "MODEL @ URL": the same servers, without connecting again (the main window passes them on)."""
        known = {self.model_edit.itemText(i) for i in range(self.model_edit.count())}
        for url, (key, models) in servers.items():
            self.server_keys[url] = key
            for model in models:
                text = f"{model} @ {url}"
                if text not in known:
                    self.model_edit.addItem(text, (url, model))
                    self.model_edit.setItemData(
                        self.model_edit.count() - 1, f"{model} on the server at {url}", Qt.ItemDataRole.ToolTipRole
                    )

    def add_server_run(self, url: str, model: str, label: str = "") -> None:
        """Add a run on a server's model (the view and tests both come here); nothing is loaded here for it."""
        if len(self.specs) >= MAX_RUNS:
            raise UserError(f"A comparison holds at most {MAX_RUNS} runs.")
        target = f"{url}#{model}"
        spec = RunSpec(path=target, label=label or f"{model} @ {url}", server=target)
        self.specs.append(spec)
        self.run_list.addItem(f"{model} @ {url} · on the server")
        self._runs_changed()

    def add_run(
        self, path: str | Path, load: LoadParams | None = None, gpu_layers: int | str = 0, label: str = ""
    ) -> None:
        """Add one run (tests and the form both come here)."""
        if len(self.specs) >= MAX_RUNS:
            raise UserError(f"A comparison holds at most {MAX_RUNS} runs.")
        load = load or LoadParams()
        try:
            load.validate()
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        spec = RunSpec(path=str(path), load=load, gpu_layers=gpu_layers, label=label)
        self.specs.append(spec)
        self.run_list.addItem(f"{Path(spec.path).name} · {describe_settings(load, gpu_layers)}")
        self._runs_changed()

    @Slot()
    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model", str(Path.home()), "GGUF models (*.gguf)")
        if path:
            self.model_edit.setCurrentText(path)

    @Slot()
    def _add_from_form(self) -> None:
        server = self.model_edit.currentData()
        if isinstance(server, tuple) and self.model_edit.currentText() == f"{server[1]} @ {server[0]}":
            try:
                self.add_server_run(*server)
            except UserError as exc:
                self.status.setText(str(exc))
            return
        path = self.model_edit.currentText().strip()
        if not path or not Path(path).expanduser().is_file():
            self.status.setText("Choose an existing .gguf file first.")
            return
        gpu: int | str = "auto" if self.gpu_spin.value() == self.gpu_spin.minimum() else self.gpu_spin.value()
        kv = self.kv_combo.currentText()
        load = LoadParams(n_ctx=self.ctx_spin.value(), kv_type=kv, flash_attn=kv != "f16")
        try:
            self.add_run(Path(path).expanduser(), load, gpu)
        except UserError as exc:
            self.status.setText(str(exc))

    @Slot()
    def _remove_selected(self) -> None:
        row = self.run_list.currentRow()
        if 0 <= row < len(self.specs):
            del self.specs[row]
            self.run_list.takeItem(row)
            self._runs_changed()

    @Slot()
    def _sync_mode(self) -> None:
        temps = self.mode_temps.isChecked()
        self.temps_edit.setEnabled(temps)
        self.temp_spin.setEnabled(not temps)
        self.replan()

    # -- all at once? -----------------------------------------------------------------------------
    def _runs_changed(self) -> None:
        """Other runs: the kept engines no longer belong to the selection, so they are unloaded. Before any
        comparison the table lists the planned runs, with the quality figures stored for their models."""
        if not self.busy:
            self.pool.close_all()
        self.replan()
        if self.runner is None:
            self.refresh_report()

    def replan(self) -> None:
        """Check again (off the GUI thread) whether the planned runs fit in memory at once; shown in words."""
        self._plan_serial += 1
        serial = self._plan_serial
        try:
            specs, _kind = self.planned_specs()
        except UserError:
            self._show_plan(None)
            return
        keys = [s.engine_key for s in specs]
        if self.pool.covers(keys):
            self._show_plan(self.pool.plan, kept=True)
            return
        if self.pool.closing:  # RAM still held by engines shutting down: check once they are gone
            if not self._replan_waits:
                self._replan_waits = True
                self.pool.closed.connect(self._replan_once_closed)
            return
        budget = self.budget_override
        run_in_background(lambda: plan_runs(specs, budget), lambda plan: self._planned(serial, plan))

    @Slot()
    def _replan_once_closed(self) -> None:
        if self.pool.closing:
            return
        self._replan_waits = False
        self.pool.closed.disconnect(self._replan_once_closed)
        self.replan()

    def _planned(self, serial: int, plan: RunPlan) -> None:
        if serial == self._plan_serial and not self.busy:
            self._show_plan(plan)

    @Slot(object)
    def _show_plan(self, plan: RunPlan | None, kept: bool = False) -> None:
        self.plan = plan
        text = "" if plan is None else plan.words()
        if plan is not None and kept and plan.together is not None:
            verb = "is" if plan.together.n == 1 else "are"
            text = f"{plan.together.summary()} and {verb} still loaded from the last run: running again loads nothing."
        self.plan_label.setText(text)
        self.plan_label.setVisible(bool(text))
        together = plan is not None and plan.all_at_once and len(plan.keys) > 1
        self.together_check.setEnabled(together)
        if together:
            self.together_check.setToolTip(TOGETHER_TIP)
        elif plan is not None and plan.all_at_once:
            self.together_check.setToolTip("Needs two or more different models or settings loaded together.")
        elif plan is not None:
            self.together_check.setToolTip(
                "Not available: the runs do not all fit in memory at once, so they run one after another."
            )
        else:
            self.together_check.setToolTip("Add runs that fit in memory together first.")

    # -- running ----------------------------------------------------------------------------------
    def sampling(self, temperature: float | None = None) -> SamplingParams:
        return SamplingParams(
            temperature=self.temp_spin.value() if temperature is None else temperature,
            max_tokens=self.max_tokens_spin.value(),
            seed=self.seed_spin.value(),
        )

    def planned_specs(self) -> tuple[list[RunSpec], str]:
        """(runs, kind) for the current mode; UserError when they make no comparison."""
        if not self.specs:
            raise UserError("Add a model first.")
        if self.mode_temps.isChecked():
            base = self.specs[0]
            temps = parse_temperatures(self.temps_edit.text())
            name = base.label if base.server else Path(base.path).stem
            return [replace(base, temperature=t, label=f"{name} · temperature {t:g}") for t in temps], "temperature"
        if len(self.specs) < 2:
            raise UserError("Add at least two runs to compare (or choose the temperature comparison).")
        return list(self.specs), "compare"

    @Slot()
    def run(self) -> None:
        if self.runner is not None and self.runner.running:
            return
        if self.measuring:
            self.status.setText("Quality is being measured; run the comparison when it has finished.")
            return
        try:
            specs, kind = self.planned_specs()
        except UserError as exc:
            self.status.setText(str(exc))
            return
        prompt = self.prompt_edit.toPlainText().strip() or DEFAULT_PROMPT
        bench = None
        if self.bench_check.isChecked():
            bench = BenchRequest(
                pp=self.pp_spin.value(), tg=self.tg_spin.value(), repetitions=self.reps_spin.value(), ttft=False
            )
            problem = next((p for s in specs if (p := bench.problem(s.load.n_ctx))), None)
            if problem:
                self.status.setText(problem)
                return
        self.report = None
        self.runner = CompareRunner(
            specs,
            self.sampling(),
            prompt,
            log_path=self.paths.log_dir / "engine.log",
            bench=bench,
            kind=kind,
            floor_tps=self.floor_spin.value(),
            budget=self.budget_override,
            pool=self.pool,
            generate_together=self.together_check.isEnabled() and self.together_check.isChecked(),
            quality=QualityStore(self.paths).preferred,
            server_keys=self.server_keys,
            parent=self,
        )
        self._plan_serial += 1  # a check still running from before the run is out of date
        self._make_panels(len(specs))
        self.runner.planned.connect(self._show_plan)
        self.runner.progress.connect(self.status.setText)
        self.runner.resultChanged.connect(self._on_result_changed)
        self.runner.allFinished.connect(self._on_all_finished)
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.export_button.setEnabled(False)
        self.quality_button.setEnabled(False)
        self._live.start()
        self.runner.start()

    @Slot()
    def stop(self) -> None:
        """Stop the comparison; every engine it loaded (kept ones included) shuts down."""
        if self.runner is not None:
            self.runner.stop()
        self.pool.close_all()

    @property
    def busy(self) -> bool:
        return self.runner is not None and self.runner.running

    def shutdown(self) -> None:
        """For the main window's close: stop a running comparison or quality run and unload the kept engines
        (in the background)."""
        self.cancel_quality()
        self.stop()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    # -- results ----------------------------------------------------------------------------------
    def _make_panels(self, n: int) -> None:
        for p in self.panels:
            self.panel_layout.removeWidget(p)
            p.deleteLater()
        self.panels = [_ReplyPanel(f"Run {i + 1}") for i in range(n)]
        for p in self.panels:
            self.panel_layout.addWidget(p, 1)

    @Slot()
    def _refresh_live(self) -> None:
        runner = self.runner
        if runner is None:
            return
        for i in runner.active:
            panel, r = self.panels[i], runner.results[i]
            if panel.text.toPlainText() != r.text:
                panel.text.setPlainText(r.text)

    @Slot(int)
    def _on_result_changed(self, i: int) -> None:
        if self.runner is None or i >= len(self.panels):
            return
        r = self.runner.results[i]
        panel = self.panels[i]
        panel.setTitle(r.label or f"Run {i + 1}")
        panel.text.setPlainText(r.text)
        panel.figures.setText(self._figures_text(r))

    @staticmethod
    def _figures_text(r: RunResult) -> str:
        if r.error:
            return f"Failed: {r.error}"
        parts = []
        if r.fit is not None:
            parts.append(
                f"predicted {r.fit.prediction.ram_bytes / MiB:.0f} MiB RAM ({r.fit.verdict.replace('_', ' ')})"
            )
        if r.stats:
            s = r.stats
            shared = f" ({SHARED_SPEED_NOTE})" if r.side_by_side else ""
            parts.append(
                f"{float(s.get('tg_tps') or 0):.1f} tokens/s, prompt {float(s.get('pp_tps') or 0):.0f} tokens/s, "
                f"first token {float(s.get('ttft_ms') or 0):.0f} ms{shared}"
            )
        if r.peak_rss:
            parts.append(f"peak RSS {r.peak_rss / MiB:.0f} MiB")
        if r.sampling is not None:
            parts.append(f"seed {r.sampling.seed}, temperature {r.sampling.temperature:g}")
        if r.bench and r.bench.get("tg"):
            parts.append(f"bench tg {float(r.bench['tg']['mean_tps']):.1f} ± {float(r.bench['tg']['sd_tps']):.1f}")
        return " · ".join(parts) or "waiting…"

    @Slot()
    def _on_all_finished(self) -> None:
        self._live.stop()
        runner = self.runner
        assert runner is not None
        for i in range(len(runner.results)):
            self._on_result_changed(i)
        self.report = runner.build_report(self.floor_spin.value(), self.min_same_top)
        self._fill_table()
        self._draw_charts()
        # Runs changed during the run: what it kept loaded and is no longer selected goes.
        self.pool.retain(s.engine_key for s in self.specs)
        self.replan()
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.quality_button.setEnabled(True)
        self.export_button.setEnabled(bool(self.report and self.report["models"]))
        self.finished.emit()

    @Slot()
    def _refresh_best(self) -> None:
        if self.report is not None:
            self.refresh_report()

    def refresh_report(self, then: Callable[[], None] | None = None) -> None:
        """Rebuild the report, table and charts, reading the stored quality runs again: from the last comparison
        when it ran these runs, else from the planned runs (model facts and quality only; headers are read off
        the GUI thread). ``then`` runs once the table shows the result."""
        self._report_serial += 1
        serial = self._report_serial
        runner = self.runner
        done = then or (lambda: None)
        if runner is not None and runner.running:
            done()
            return
        specs, kind = self._compared_specs()
        if runner is not None and runner.report is not None and runner.specs == specs:
            self.report = runner.build_report(self.floor_spin.value(), self.min_same_top)
            self._show_report()
            done()
            return
        if not specs:
            self.report = None
            self.table.setRowCount(0)
            done()
            return
        prompt = self.prompt_edit.toPlainText().strip() or DEFAULT_PROMPT
        sampling, floor, floor_quality = self.sampling(), self.floor_spin.value(), self.min_same_top
        lookup = QualityStore(self.paths).preferred

        def build() -> dict[str, Any]:
            return compare_report(
                kind=kind,
                results=planned_results(specs),
                prompt=prompt,
                sampling=sampling,
                schedule="one_after_another",
                plan=None,
                reused=False,
                shared_threads=None,
                bench_settings=None,
                hardware=None,
                ready_info=None,
                floor_tps=floor,
                quality=lookup,
                min_same_top=floor_quality,
            )

        def show(report: dict[str, Any]) -> None:
            if serial == self._report_serial and not self.busy:
                self.report = report
                self._show_report()
            done()

        run_in_background(build, show)

    def _show_report(self) -> None:
        self._fill_table()
        self._draw_charts()

    def _compared_specs(self) -> tuple[list[RunSpec], str]:
        """The runs as the next comparison would make them; the added runs as they are when they make none yet
        (one model: quality can still be measured and listed)."""
        try:
            return self.planned_specs()
        except UserError:
            return list(self.specs), "compare"

    # -- quality ----------------------------------------------------------------------------------
    @property
    def min_same_top(self) -> float | None:
        """The quality floor, None when off."""
        value = self.quality_floor_spin.value()
        return None if value <= 0 else value

    @property
    def measuring(self) -> bool:
        return self.measurer is not None and self.measurer.running

    @Slot()
    def _quality_clicked(self) -> None:
        if self.measuring:
            self.cancel_quality()
        else:
            self.measure_quality()

    def measure_quality(self) -> None:
        """Measure each compared model's quality, one after another (gui/compare/quality_runner.py)."""
        if self.busy or self.measuring:
            return
        specs, _kind = self._compared_specs()
        specs = [s for s in specs if not s.server]  # quality is measured on a model file
        if not specs:
            self.status.setText("Add the models whose quality to measure first (files on this machine).")
            return
        m = QualityMeasurer(
            self.paths, [s.path for s in specs], ctx=self.quality_ctx, chunks=self.quality_chunks, parent=self
        )
        self.measurer = m
        m.progress.connect(self.status.setText)
        m.fraction.connect(self._quality_fraction)
        m.measured.connect(self._quality_measured)
        m.finished.connect(self._quality_finished)
        self.quality_button.setText("Cancel measuring")
        self.quality_button.setToolTip("Stop the quality run; the model being measured gets no figures")
        self.run_button.setEnabled(False)
        self.quality_progress.setValue(0)
        self.quality_progress.show()
        m.start()

    def cancel_quality(self) -> None:
        if self.measurer is not None:
            self.measurer.cancel()

    @Slot(float)
    def _quality_fraction(self, fraction: float) -> None:
        self.quality_progress.setValue(round(fraction * 1000))

    @Slot(object)
    def _quality_measured(self, _run: object) -> None:
        self.refresh_report()  # each model's figures show as soon as they are measured

    @Slot(str)
    def _quality_finished(self, outcome: str) -> None:
        self.quality_button.setText("Measure quality")
        self.run_button.setEnabled(True)
        self.quality_progress.hide()
        if self.measurer is not None and self.measurer.runs:
            self.chart_tabs.setCurrentWidget(self.tradeoff)
        self.refresh_report(lambda: self.qualityFinished.emit(outcome))

    @property
    def best_index(self) -> int | None:
        return None if self.report is None else self.report.get("best")

    def _fill_table(self) -> None:
        assert self.report is not None
        entries = self.report["models"]
        best = self.report.get("best")
        shared = self.runner is not None and self.runner.speeds_shared
        self.table.setRowCount(len(entries))
        header = QTableWidgetItem("Generation t/s (shared CPU)" if shared else "Generation t/s")
        if shared:
            header.setToolTip(f"Reply speeds {SHARED_SPEED_NOTE}: lower than each model gets alone")
        self.table.setHorizontalHeaderItem(3, header)
        mark = "★ best (shared CPU)" if shared else "★ best"

        def mib(v: Any) -> str:
            return "–" if v is None else f"{int(v) / MiB:.0f}"

        for row, e in enumerate(entries):
            reply = e.get("reply") or {}
            pred, meas = e.get("predicted") or {}, e.get("measured") or {}
            gen = generation_tps(e)
            tg = e.get("tg")
            cells = [
                mark if row == best else "",
                str(e.get("label")),
                "failed" if e.get("error") else ("on a server" if e.get("remote") else str(e.get("verdict") or "–")),
                "–" if gen is None else f"{gen:.1f}",
                "–" if not reply else f"{float(reply.get('pp_tps') or 0):.0f}",
                "–" if e.get("ttft_ms") is None else f"{float(e['ttft_ms']):.0f}",
                mib(pred.get("ram_bytes")),
                mib(meas.get("total_bytes")),
                mib(meas.get("peak_rss_bytes")),
                "–" if not tg else f"{tg['mean_tps']:.1f} ± {tg['sd_tps']:.1f}",
                *quality_cells(e.get("quality")),
            ]
            tip = self._quality_tip(e.get("quality"))
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col >= len(cells) - len(QUALITY_HEAD):
                    item.setToolTip(tip)
                if row == best:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                if col == 1:
                    item.setToolTip(text)
                self.table.setItem(row, col, item)
        for col in range(2, self.table.columnCount()):  # a column nobody measured says nothing: hide it
            texts = [cell.text() if (cell := self.table.item(r, col)) is not None else "–" for r in range(len(entries))]
            empty = all(t == "–" for t in texts)
            self.table.setColumnHidden(col, empty and bool(entries))
        for i, p in enumerate(self.panels):
            title = p.title().removeprefix("★ ")
            p.setTitle(("★ " if i == best else "") + title)

    @staticmethod
    def _quality_tip(q: Any) -> str:
        if not isinstance(q, dict):
            return "Not measured: Measure quality (or sizewise quality MODEL) gives these figures."
        ref = q.get("reference") or "none"
        return (
            f"Measured on {q.get('text')}, {q.get('chunks')} chunks of {q.get('ctx')} tokens "
            f"({q.get('tokens_scored')} tokens scored). Reference: {ref}."
        )

    def _draw_charts(self) -> None:
        assert self.report is not None
        entries = self.report["models"]
        best = self.report.get("best")
        x = np.arange(len(entries), dtype=float)
        ticks = [[(float(i), f"{i + 1}{'★' if i == best else ''}") for i in range(len(entries))]]
        self.speed_chart.clear()
        self.memory_chart.clear()
        self.tradeoff.show_entries(entries, best)
        if not any(e.get("predicted") or e.get("measured") or generation_tps(e) is not None for e in entries):
            return  # the planned runs before a comparison: no bars of zero for figures nobody measured
        shared = self.runner is not None and self.runner.speeds_shared
        self.speed_chart.setTitle(f"Generation tokens/s{' (shared CPU)' if shared else ''} (dashed: floor)")
        speeds = [generation_tps(e) or 0.0 for e in entries]
        brushes = [pg.mkBrush("#F58518" if i == best else "#4C78A8") for i in range(len(entries))]
        self.speed_chart.addItem(pg.BarGraphItem(x=x, height=speeds, width=0.6, brushes=brushes))
        self.speed_chart.addItem(
            pg.InfiniteLine(self.floor_spin.value(), angle=0, pen=pg.mkPen("#C00000", style=Qt.PenStyle.DashLine))
        )
        self.speed_chart.getAxis("bottom").setTicks(ticks)
        for k, (part, key, color) in enumerate(
            (
                ("predicted", "ram_bytes", "#9ecae9"),
                ("measured", "total_bytes", "#4C78A8"),
                ("measured", "peak_rss_bytes", "#54A24B"),
            )
        ):
            heights = [int((e.get(part) or {}).get(key) or 0) / MiB for e in entries]
            self.memory_chart.addItem(pg.BarGraphItem(x=x + (k - 1) * 0.25, height=heights, width=0.22, brush=color))
        self.memory_chart.getAxis("bottom").setTicks(ticks)

    # -- export -----------------------------------------------------------------------------------
    def export_report(self, path: str | Path) -> str:
        """Write the last comparison's report; the format follows the suffix (.md, .json, .html)."""
        if self.report is None:
            raise UserError("Run a comparison first.")
        if any(e.get("remote") for e in self.report["models"]):
            raise UserError(
                "The report is for models on this machine (it predicts from the model file); "
                "a comparison with a server's model is not exported."
            )
        return write_report(self.report, path)

    @Slot()
    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export report",
            str(Path.home() / "sizewise-report.html"),
            "HTML page (*.html);;Markdown (*.md);;JSON (*.json)",
        )
        if not path:
            return
        try:
            self.export_report(path)
        except UserError as exc:
            QMessageBox.warning(self, "Export report", str(exc))
            return
        self.status.setText(f"Report written to {path}")
