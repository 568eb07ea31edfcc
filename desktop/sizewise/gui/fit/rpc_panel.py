"""The Fit view's "Across machines" panel: rpc-servers typed as ``a=24GiB,b=16GiB``, and the predicted llama.cpp
RPC split host by host (core.fit.rpc) with the group's verdict.

Like the rest of the Fit view it recomputes synchronously: the split is arithmetic on the header plus cached graph
simulations, no file or network access, so nothing waits on the GUI thread. The hosts' memory is what the user
types; nothing is read from a server here.
"""

from __future__ import annotations

from dataclasses import replace
from html import escape

from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from sizewise.core.fit.hardware import format_bytes
from sizewise.core.fit.rpc.hosts import RPC_WARNING, parse_rpc_hosts
from sizewise.core.fit.rpc.split import RpcSplit, predict_rpc_split
from sizewise.core.gguf.header import GGUFHeader
from sizewise.core.sampling import LoadParams

COLUMNS = ["Host", "Layers", "Weights", "KV", "Compute", "Total", "Memory", "Verdict"]
_COLORS = {"fits": "#2ca02c", "tight": "#d68910", "too large": "#d62728", "unknown": "palette(text)"}


class RpcSplitPanel(QWidget):
    """Hosts field, per-host table and verdict; hidden rows until hosts are typed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header: GGUFHeader | None = None
        self.params = LoadParams()
        self.local_budget: int | None = None
        self.split: RpcSplit | None = None
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Across machines (llama.cpp RPC):"))
        self.hosts_edit = QLineEdit()
        self.hosts_edit.setAccessibleName("RPC hosts")
        self.hosts_edit.setPlaceholderText("rpc-servers in --rpc order, e.g. a=24GiB,b=16GiB")
        self.hosts_edit.setToolTip(RPC_WARNING)
        row.addWidget(self.hosts_edit, 1)
        outer.addLayout(row)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setAccessibleName("Split across machines")
        self.table.setVisible(False)
        outer.addWidget(self.table)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setAccessibleName("Split verdict")
        self.summary.setVisible(False)
        outer.addWidget(self.summary)
        self.hosts_edit.textChanged.connect(self.refresh)

    def show_for(self, header: GGUFHeader | None, params: LoadParams, local_budget: int | None) -> None:
        """The model and settings the Fit view shows; every layer goes to the rpc-servers, as ``serve --rpc``."""
        self.header, self.params, self.local_budget = header, replace(params, n_gpu_layers=-1), local_budget
        self.refresh()

    def refresh(self) -> None:
        text = self.hosts_edit.text().strip()
        self.split = None
        if not text or self.header is None:
            self.table.setVisible(False)
            self.summary.setVisible(False)
            return
        try:
            hosts = parse_rpc_hosts(text)
            self.split = predict_rpc_split(self.header, self.params, hosts, local_budget_bytes=self.local_budget)
        except ValueError as exc:
            self.table.setVisible(False)
            self.summary.setText(f'<span style="color:#d62728">{escape(str(exc), quote=False)}</span>')
            self.summary.setVisible(True)
            return
        self._fill(self.split)

    def _fill(self, split: RpcSplit) -> None:
        self.table.setRowCount(len(split.hosts))
        for i, h in enumerate(split.hosts):
            name = "this machine (llama-server)" if h.role == "local" else h.name
            cells = [
                name,
                h.layers_label,
                format_bytes(h.weights_bytes),
                format_bytes(h.kv_bytes),
                format_bytes(h.compute_bytes + h.output_bytes),
                format_bytes(h.total_bytes),
                format_bytes(h.budget_bytes),
                h.verdict,
            ]
            for j, text in enumerate(cells):
                self.table.setItem(i, j, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        rows_height = sum(self.table.rowHeight(i) for i in range(self.table.rowCount()))
        self.table.setFixedHeight(self.table.horizontalHeader().height() + rows_height + 4)
        self.table.setVisible(True)
        color = _COLORS[split.verdict]
        self.summary.setText(
            f'<b style="color:{color}">{escape(split.words(), quote=False)}</b> '
            "To get this split whatever the servers report, "
            f"start llama-server with <code>--tensor-split {split.tensor_split}</code>. Confidence: "
            f"{split.confidence}. {escape(RPC_WARNING, quote=False)}"
        )
        self.summary.setVisible(True)
