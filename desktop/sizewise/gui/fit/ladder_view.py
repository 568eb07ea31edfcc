"""The model ladder page: which model sizes and quants fit this machine (or a target), and how fast, at a glance.

Rows are the catalogue's models from small to large, columns quant types; each cell says where the model
would run (GPU, partial offload, CPU) and its predicted generation speed, or "too large", with the file size
under it, and is coloured: green where it fits and generates at least the reading-speed floor, amber where it
fits but is slower, grey where it does not fit. The tooltip has the rest (memory, largest context, prompt
speed, where the speed figures come from). A double-click opens the model's repository in Discover.

The cells are arithmetic on virtual headers (core/ladder), a few hundred predictions: they are computed off
the GUI thread, and a newer request supersedes an older one, so the page never stalls while it fills.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sizewise.core.fit.hardware import format_bytes
from sizewise.core.fit.targets import Target, load_targets
from sizewise.core.fit.verdict import Budget
from sizewise.core.ladder.catalogue_rows import Rows, ladder_rows
from sizewise.core.ladder.cells import LADDER_QUANTS, READING_FLOOR_TPS, LadderCell, LadderModel, build_ladder
from sizewise.core.ladder.hub_refresh import RefreshedCell, refresh_cell
from sizewise.core.sampling import LoadParams
from sizewise.core.speed.predicted import Devices
from sizewise.engine.speed.devices import target_devices
from sizewise.gui.adapters.background import run_in_background
from sizewise.gui.fit.calibration_panel import GPU_OFFER, OFFER, CalibrationPanel, JobFactory

CONTEXTS = (2048, 4096, 8192, 16384, 32768)
USABLE = QColor("#cdebc5")
SLOW = QColor("#f7e0a3")
TOO_LARGE = QColor("#e4e4e4")
WHERE = {"fits_gpu": "GPU", "fits_partial": "GPU + CPU", "fits_cpu": "CPU"}


class LadderView(QWidget):
    """The ladder for one budget; ``openRepo(repo_id)`` when a cell is double-clicked, ``calibrated(profile)``
    when this machine was measured from the page's offer (the owner then hands in the new devices)."""

    openRepo = Signal(str)
    calibrated = Signal(object)

    def __init__(
        self,
        parent: QWidget | None = None,
        compute: Callable[..., list[LadderCell]] = build_ladder,
        *,
        calibrator: JobFactory | None = None,
        refresher: Callable[..., RefreshedCell] = refresh_cell,
    ) -> None:
        super().__init__(parent)
        self._compute = compute
        self._refresher = refresher
        self._machine: tuple[Budget, Devices] | None = None
        self._targets: list[Target] = load_targets()
        self._gen = 0
        self._shown: tuple[Budget, Devices, LoadParams] | None = None
        self._models: dict[str, LadderModel] = {}
        self.cells: list[LadderCell] = []

        outer = QVBoxLayout(self)
        intro = QLabel(
            "Every popular model size at every common quant type, judged before any download: where it would run, "
            "how fast it would write, and its file size. Double-click a cell to open the model on the Hub; "
            "right-click it to check it against the real file's header."
        )
        intro.setWordWrap(True)
        outer.addWidget(intro)
        self.calibration = CalibrationPanel(calibrator)
        self.calibration.calibrated.connect(self.calibrated)
        self.calibration.hide()
        outer.addWidget(self.calibration)
        row = QHBoxLayout()
        outer.addLayout(row)
        row.addWidget(QLabel("For"))
        self.where = QComboBox()
        self.where.setAccessibleName("Machine or target")
        self.where.addItem("This machine", None)
        for t in self._targets:
            self.where.addItem(t.name, t.id)
        row.addWidget(self.where)
        row.addWidget(QLabel("Context"))
        self.ctx = QComboBox()
        self.ctx.setAccessibleName("Context length")
        for n in CONTEXTS:
            self.ctx.addItem(f"{n:,} tokens", n)
        self.ctx.setCurrentIndex(CONTEXTS.index(4096))
        row.addWidget(self.ctx)
        row.addWidget(QLabel("Reading-speed floor"))
        self.floor = QDoubleSpinBox()
        self.floor.setAccessibleName("Reading-speed floor")
        self.floor.setRange(0.0, 1000.0)
        self.floor.setDecimals(0)
        self.floor.setSuffix(" tokens/s")
        self.floor.setValue(READING_FLOOR_TPS)
        self.floor.setToolTip("Cells that fit but generate more slowly than this are amber: usable, but slow to read.")
        row.addWidget(self.floor)
        row.addStretch(1)
        self.status = QLabel("Waiting for the hardware probe…")
        self.status.setWordWrap(True)
        outer.addWidget(self.status)
        self.table = QTableWidget(0, len(LADDER_QUANTS))
        self.table.setHorizontalHeaderLabels(list(LADDER_QUANTS))
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.cellDoubleClicked.connect(self._on_double_click)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._on_menu)
        outer.addWidget(self.table, 1)
        legend = QLabel(
            '<span style="background:#cdebc5">&nbsp;fits, at least the floor&nbsp;</span> '
            '<span style="background:#f7e0a3">&nbsp;fits but slow&nbsp;</span> '
            '<span style="background:#e4e4e4">&nbsp;too large&nbsp;</span>'
        )
        outer.addWidget(legend)
        self.where.currentIndexChanged.connect(self.refresh)
        self.ctx.currentIndexChanged.connect(self.refresh)
        self.floor.valueChanged.connect(self._recolour)

    # -- inputs ------------------------------------------------------------------------------------
    def set_machine(self, budget: Budget, devices: Devices) -> None:
        self._machine = (budget, devices)
        if self.where.currentData() is None:
            self.refresh()

    def _update_offer(self) -> None:
        """The calibration offer shows for this machine while its speeds are estimates (and while it runs): the
        CPU's, or those of the GPU the build offloads to."""
        machine = self.where.currentData() is None and self._machine is not None
        estimate = False
        if self._machine is not None:
            budget, devices = self._machine
            gpu_unmeasured = (
                budget.backend.gpu
                and budget.vram_bytes > 0
                and not devices.gpu_software  # calibration skips a software GPU: nothing to offer
                and not (devices.gpu and devices.gpu.measured)
            )
            estimate = not devices.cpu.measured or gpu_unmeasured
            self.calibration.set_offer(OFFER if not devices.cpu.measured else GPU_OFFER)
        self.calibration.setVisible(self.calibration.running or (machine and estimate))

    def _choice(self) -> tuple[Budget, Devices] | None:
        target_id = self.where.currentData()
        if target_id is None:
            return self._machine
        target = next(t for t in self._targets if t.id == target_id)
        return target.budget(), target_devices(target.id)

    def refresh(self) -> None:
        self._update_offer()
        choice = self._choice()
        if choice is None:
            self.status.setText("Waiting for the hardware probe…")
            return
        budget, devices = choice
        params = LoadParams(n_ctx=int(self.ctx.currentData()))
        floor = self.floor.value()
        self._gen += 1
        gen = self._gen
        self.status.setText("Working out every cell…")
        compute = self._compute

        def work() -> tuple[Rows, list[LadderCell]]:
            rows = ladder_rows()
            return rows, compute(rows.models, budget, devices, params, LADDER_QUANTS, floor)

        def done(found: tuple[Rows, list[LadderCell]]) -> None:
            if gen == self._gen:
                self._models = {m.name: m for m in found[0].models}
                self._shown = (budget, devices, params)
            self._show(gen, found[1], budget, devices, found[0].note())

        run_in_background(
            work,
            done,
            lambda exc: self.status.setText(f"The ladder could not be worked out: {exc}"),
        )

    # -- output ------------------------------------------------------------------------------------
    def _show(self, gen: int, cells: list[LadderCell], budget: Budget, devices: Devices, left_out: str = "") -> None:
        if gen != self._gen:
            return  # a newer choice is on its way
        self.cells = cells
        rows: dict[str, list[LadderCell]] = {}
        for c in cells:
            rows.setdefault(c.model, []).append(c)
        self.table.setRowCount(len(rows))
        self.table.setVerticalHeaderLabels(list(rows))
        for i, row in enumerate(rows.values()):
            for j, c in enumerate(row):
                self.table.setItem(i, j, self._item(c))
        self.table.resizeRowsToContents()
        speed = devices.cpu.note or "speeds from this machine's calibrated profile"
        if budget.backend.gpu and budget.vram_bytes > 0:  # the GPU's share of each split: how it is timed
            gpu = devices.gpu
            if gpu is None:
                speed += "; the GPU's layers are timed as the CPU's"
            else:
                speed += f"; GPU: {gpu.note or 'from its calibrated profile'}"
        text = f"Budget: {budget.source}. {speed[0].upper()}{speed[1:]}."
        self.status.setText(text + (f" {left_out[0].upper()}{left_out[1:]}." if left_out else ""))
        self._recolour()

    def _item(self, c: LadderCell) -> QTableWidgetItem:
        checked = " ✓" if c.from_file else ""  # judged on the Hub file's own header
        if c.fits:
            text = f"{WHERE[c.verdict]} · {c.tg_tps:.0f} t/s\n{format_bytes(c.file_bytes)}{checked}"
        else:
            text = f"too large\n{format_bytes(c.file_bytes)}{checked}"
        item = QTableWidgetItem(text)
        item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
        item.setData(Qt.ItemDataRole.UserRole, c)
        tip = [
            f"{c.model} at {c.quant}: {c.verdict.replace('_', ' ')}",
            f"file {format_bytes(c.file_bytes)}; needs {format_bytes(c.ram_bytes)} RAM"
            + (f" and {format_bytes(c.vram_bytes)} VRAM ({c.gpu_layers} layers on the GPU)" if c.vram_bytes else ""),
            f"largest context that fits: {c.max_ctx:,} tokens" if c.max_ctx else "no context length fits",
            f"predicted ({c.confidence}): generation {c.tg_tps:.1f} tokens/s "
            f"({c.tg_tps_full_ctx:.1f} with the context full), prompt {c.pp_tps:,.0f} tokens/s",
            f"judged on the header of {c.from_file} on the Hub"
            if c.from_file
            else "judged on a header built from the catalogue (right-click to check the real file)",
            f"{c.repo_id} — double-click to open it in Discover",
        ]
        item.setToolTip("\n".join(tip))
        return item

    def _recolour(self) -> None:
        floor = self.floor.value()
        for i in range(self.table.rowCount()):
            for j in range(self.table.columnCount()):
                item = self.table.item(i, j)
                if item is None:
                    continue
                c: LadderCell = item.data(Qt.ItemDataRole.UserRole)
                colour = TOO_LARGE if not c.fits else (USABLE if c.tg_tps >= floor else SLOW)
                item.setBackground(QBrush(colour))
                item.setForeground(QBrush(QColor("#202020")))

    def colour_of(self, model: str, quant: str) -> str:
        """The cell's background as #rrggbb (for tests and accessibility checks)."""
        for i in range(self.table.rowCount()):
            for j in range(self.table.columnCount()):
                item = self.table.item(i, j)
                c = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
                if item is not None and c is not None and c.model == model and c.quant == quant:
                    return str(item.background().color().name())
        raise KeyError((model, quant))

    def _on_double_click(self, row: int, col: int) -> None:
        item = self.table.item(row, col)
        if item is not None:
            self.openRepo.emit(item.data(Qt.ItemDataRole.UserRole).repo_id)

    # -- one cell against the real file ------------------------------------------------------------
    def _cell_at(self, row: int, col: int) -> LadderCell | None:
        item = self.table.item(row, col)
        cell = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        return cell if isinstance(cell, LadderCell) else None

    def _on_menu(self, pos: QPoint) -> None:
        index = self.table.indexAt(pos)
        cell = self._cell_at(index.row(), index.column()) if index.isValid() else None
        if cell is None:
            return
        menu = QMenu(self)
        check = menu.addAction(f"Check against the {cell.quant} file on the Hub (reads its header only)")
        check.triggered.connect(lambda: self.refresh_from_hub(index.row(), index.column()))
        menu.addAction("Open in Discover", lambda: self.openRepo.emit(cell.repo_id))
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def refresh_from_hub(self, row: int, col: int) -> None:
        """Judge one cell again on its Hub file's header, off the GUI thread; the cell and status show the result."""
        cell = self._cell_at(row, col)
        shown = self._shown
        model = self._models.get(cell.model) if cell is not None else None
        if cell is None or shown is None or model is None:
            return
        budget, devices, params = shown
        gen, floor, refresher = self._gen, self.floor.value(), self._refresher
        self.status.setText(f"Reading the header of {model.repo_id}'s {cell.quant} file…")

        def done(found: RefreshedCell) -> None:
            if gen != self._gen:
                return  # the ladder was worked out again for another choice meanwhile
            self.cells = [found.cell if c is cell else c for c in self.cells]
            self.table.setItem(row, col, self._item(found.cell))
            self._recolour()
            self.status.setText(
                f"{cell.model} at {cell.quant} is now judged on {found.file} itself (read "
                f"{format_bytes(found.bytes_fetched)} of its {format_bytes(found.file_bytes)}, "
                f"{found.fetched_share:.1%}): file {format_bytes(found.cell.file_bytes)}, "
                f"{'fits' if found.cell.fits else 'too large'}."
            )

        def failed(exc: BaseException) -> None:
            if gen == self._gen:
                self.status.setText(f"Could not check {cell.model} at {cell.quant} against the Hub: {exc}")

        run_in_background(
            lambda: refresher(model, cell.quant, budget, devices, params, floor),
            done,
            failed,
        )
