"""Discover before a search: the catalogue's popular small model families, each with an estimated verdict.

The families come from ``resources/catalogue.json`` (core/hub/catalogue.py); the memory figures and verdicts
are estimates from the catalogue's numbers, made without the network, and say so in the column headers and in
each tooltip. Choosing a family hands it to the Discover view, which searches the Hub for its repository and
lists the files with verdicts read from their real headers.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sizewise.core.fit.verdict import Budget
from sizewise.core.hub.catalogue import Family, estimate_fit, estimate_memory, size_label
from sizewise.core.sampling import LoadParams

COLUMNS = ["Model", "Parameters", "Q4_K_M file", "Memory (estimate)", "Fits? (estimate)", ""]
FIT_COLUMN = 4
VERDICT_WORDS = {"fits": "Fits", "tight": "Tight", "too big": "Too big"}
VERDICT_COLOURS = {"fits": "#1b6e20", "tight": "#8a5a00", "too big": "#9b1c1c"}


def _file_tip(family: Family) -> str:
    if family.file_estimated:
        return "Estimated from the parameter count: the catalogue has no size for this file"
    return "Rounded from the repository's file list" if family.file_approx else "The file's size on the Hub"


class PopularModels(QWidget):
    """The catalogue as a table: family, size, estimated memory and verdict, and a Show files button."""

    familyChosen = Signal(object)  # Family

    def __init__(self, families: list[Family], problem: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.families = families
        self.params = LoadParams()  # the default context: what a first load uses
        self.heading = QLabel("<b>Popular small models</b> — a good place to start")
        self.explain = QLabel(
            f"Memory and verdicts here are <b>estimates</b> from each model's published figures (its Q4_K_M file "
            f"and {self.params.n_ctx:,} tokens of context), made without the network. Choose a model to see its "
            "files on the Hugging Face Hub, each with a verdict read from the file itself."
        )
        self.explain.setWordWrap(True)
        self.budget_line = QLabel("Estimating for this machine…")
        self.budget_line.setWordWrap(True)
        self.problem = QLabel(problem)
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color:#8a1c1c;")
        self.problem.setVisible(bool(problem))

        self.table = QTableWidget(len(families), len(COLUMNS))
        self.table.setAccessibleName("Popular small models")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for row, family in enumerate(families):
            est = estimate_memory(family, self.params)
            about = "≈ " if family.file_approx else ""
            cells = [
                family.name,
                family.params_label,
                f"{about}{size_label(family.file_bytes)}",
                size_label(est.total_bytes),
                "…",
            ]
            tips = [
                f"{family.repo_id} · license {family.license}",
                f"{family.params:,} parameters"
                + (f", {family.active_params:,} of them used per token" if family.active_params else ""),
                _file_tip(family),
                f"Estimate: {est.breakdown()}",
                "",
            ]
            for col, (text, tip) in enumerate(zip(cells, tips, strict=True)):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                if col in (1, 2, 3):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
            button = QPushButton("Show files")
            button.setAccessibleName(f"Show the files of {family.name}")
            button.setToolTip(f"Search the Hub for {family.repo_id} and list its files with real verdicts")
            button.clicked.connect(lambda _checked=False, f=family: self.familyChosen.emit(f))
            self.table.setCellWidget(row, len(COLUMNS) - 1, button)
        self.table.cellClicked.connect(self._clicked)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.setSpacing(8)
        layout.addWidget(self.heading)
        layout.addWidget(self.explain)
        layout.addWidget(self.problem)
        layout.addWidget(self.budget_line)
        layout.addWidget(self.table, 1)

    def _clicked(self, row: int, col: int) -> None:
        if 0 <= row < len(self.families) and col != len(COLUMNS) - 1:
            self.familyChosen.emit(self.families[row])

    def verdict_text(self, row: int) -> str:
        item = self.table.item(row, FIT_COLUMN)
        return item.text() if item is not None else ""

    def set_budget(self, budget: Budget, target_name: str) -> None:
        """Estimated verdicts against this budget (this machine's, or a target's)."""
        gpu = f" and {size_label(budget.vram_bytes)} of GPU memory" if budget.backend.gpu and budget.vram_bytes else ""
        self.budget_line.setText(
            f"Estimated for <b>{target_name}</b>: {size_label(budget.ram_bytes)} of RAM available{gpu}."
        )
        self.budget_line.setToolTip(budget.source)
        for row, family in enumerate(self.families):
            verdict = estimate_fit(family, budget, self.params)
            item = QTableWidgetItem(VERDICT_WORDS.get(verdict.verdict, verdict.verdict))
            item.setToolTip(verdict.reason)
            colour = VERDICT_COLOURS.get(verdict.verdict)
            if colour:
                item.setForeground(QColor(colour))
            self.table.setItem(row, FIT_COLUMN, item)

    def set_budget_failed(self, sentence: str) -> None:
        self.budget_line.setText(f"No estimate: {sentence}")
        for row in range(len(self.families)):
            self.table.setItem(row, FIT_COLUMN, QTableWidgetItem("Unknown"))
