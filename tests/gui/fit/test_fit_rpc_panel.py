"""The Fit view's "Across machines" panel (issue 17): hosts typed, the split shown host by host (pytest-qt)."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from sizewise.core.fit.memory_model import Backend
from sizewise.core.fit.rpc.hosts import parse_rpc_hosts
from sizewise.core.fit.rpc.split import predict_rpc_split
from sizewise.core.fit.verdict import Budget
from sizewise.core.gguf.header import model_info, read_header
from sizewise.core.sampling import LoadParams
from sizewise.gui.fit.fit_view import FitView

GiB = 1 << 30


def test_hosts_typed_show_the_split_and_follow_the_context(qtbot: QtBot, smollm2_path: Path) -> None:
    view = FitView()
    qtbot.addWidget(view)
    view.set_model(
        read_header(smollm2_path), model_info(smollm2_path), Budget(8 * GiB, 0, "test", Backend()), LoadParams()
    )
    view.show()
    panel = view.rpc_panel
    assert not panel.table.isVisible() and panel.split is None  # nothing until hosts are typed
    qtbot.keyClicks(panel.hosts_edit, "a=24GiB,b=8GiB")
    assert panel.split is not None and panel.table.isVisible()
    assert [panel.table.item(r, 0).text() for r in range(3)] == ["this machine (llama-server)", "a", "b"]
    assert panel.table.item(1, 1).text() == "0-23" and panel.table.item(2, 1).text() == "24-29 + output"
    want = predict_rpc_split(
        read_header(smollm2_path),
        LoadParams(n_gpu_layers=-1),
        parse_rpc_hosts("a=24GiB,b=8GiB"),
        local_budget_bytes=8 * GiB,
    )
    assert panel.split == want
    assert "Fits the group" in panel.summary.text() and "--tensor-split 24576,8192" in panel.summary.text()
    assert "no authentication" in panel.summary.text()
    kv_2048 = panel.split.hosts[1].kv_bytes
    view.ctx_slider.setValue(4096 // 256)  # the split follows the Fit view's settings
    assert panel.split.hosts[1].kv_bytes == 2 * kv_2048


def test_bad_hosts_say_what_is_wrong(qtbot: QtBot, smollm2_path: Path) -> None:
    view = FitView()
    qtbot.addWidget(view)
    view.set_model(read_header(smollm2_path), model_info(smollm2_path), Budget(8 * GiB, 0, "test", Backend()))
    view.show()
    view.rpc_panel.hosts_edit.setText("a=lots")
    assert view.rpc_panel.split is None and not view.rpc_panel.table.isVisible()
    assert "'lots' is not a memory size (host a)" in view.rpc_panel.summary.text()
    view.rpc_panel.hosts_edit.setText("a=100MiB,b=100MiB")
    assert view.rpc_panel.split is not None and view.rpc_panel.split.verdict == "too large"
    assert "a, b would run out of memory" in view.rpc_panel.summary.text()
