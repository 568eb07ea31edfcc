"""The Fit page's picture, rendered offscreen: a need far below the budget, just under it, and over it.

Each test renders the whole Fit view to a PNG (kept under pytest's tmp folder for looking at) and
checks the drawing two ways: the chart's computed layout (segments, budget marker, texts) and the
pixels of the rendered image at the places the layout names.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage
from pytestqt.qtbot import QtBot

from sizewise.core.fit.hardware import format_bytes
from sizewise.core.fit.memory_model import Backend, predict
from sizewise.core.fit.verdict import Budget, margin_for
from sizewise.core.gguf.header import model_info, read_header
from sizewise.core.sampling import LoadParams
from sizewise.gui.fit.fit_view import FitView
from sizewise.gui.fit.memory_chart import (
    BUDGET_COLOR,
    COMPONENT_NAMES,
    MIN_SEGMENT_PX,
    ChartLayout,
    GroupLayout,
    MemoryChart,
)

GiB = 1 << 30
MiB = 1 << 20
CPU = Backend(repack=True, cpu_features=frozenset({"avx2", "avx512"}))
PARAMS = LoadParams(n_ctx=2048)
WIDTHS = (1000, 560)  # a wide window and a narrow one: the picture must read at both


def _need(path: Path) -> int:
    return predict(read_header(path), PARAMS, CPU).ram_bytes


def _render(qtbot: QtBot, path: Path, budget: int, width: int, png: Path) -> tuple[FitView, QImage, ChartLayout]:
    view = FitView()
    qtbot.addWidget(view)
    view.set_model(read_header(path), model_info(path), Budget(budget, 0, "test budget", CPU), PARAMS)
    view.resize(width, 620)
    view.show()
    qtbot.waitExposed(view)
    assert view.grab().save(str(png))  # the whole page, to look at
    image = view.bars.grab().toImage()
    layout = view.bars.chart()
    assert image.width() == round(layout.width)
    return view, image, layout


def _near(image: QImage, x: float, y: float, color: QColor, radius: int = 1) -> bool:
    """Whether a pixel within ``radius`` of (x, y) has ``color`` (within a little antialiasing)."""
    for dx in range(-radius, radius + 1):
        for dy in range(-radius, radius + 1):
            px = image.pixelColor(round(x) + dx, round(y) + dy)
            if all(abs(a - b) <= 40 for a, b in zip(px.getRgb()[:3], color.getRgb()[:3], strict=True)):
                return True
    return False


def _check_common(image: QImage, layout: ChartLayout, need: int, margin: int) -> GroupLayout:
    """Every component drawn wide enough in its colour and labelled with its size; no text clipped or overlapping."""
    group = layout.group("RAM")
    assert group is not None and len(layout.groups) == 1
    row = layout.row("RAM predicted")
    assert row is not None and row.need == need and row.margin == margin
    texts = layout.texts()
    inside = QRectF(0, 0, image.width(), image.height())
    assert layout.height <= image.height()
    for seg in row.segments:
        assert seg.rect.width() >= MIN_SEGMENT_PX - 1e-6, f"{seg.component} is {seg.rect.width():.1f} px wide"
        assert inside.contains(seg.rect), seg
        if seg.component != "margin":  # the margin is hatched: its centre pixel may be background
            assert _near(image, seg.rect.center().x(), seg.rect.center().y(), seg.color, 0), seg.component
            assert f"{COMPONENT_NAMES[seg.component]} {format_bytes(seg.n_bytes)}" in texts, texts
    assert {s.component for s in row.segments} >= {"weights", "kv", "compute", "margin"}
    assert f"safety margin {format_bytes(margin)}" in texts
    assert any(t.text.startswith(format_bytes(need)) for t in row.texts)  # the total at the bar's end
    boxes = [t.rect for g in layout.groups for t in g.texts]
    boxes += [t.rect for g in layout.groups for r in g.rows for t in r.texts]
    boxes += [t.swatch for g in layout.groups for r in g.rows for t in r.texts if t.swatch is not None]
    for box in boxes:
        assert inside.contains(box), f"text box {box} outside the {image.width()}x{image.height()} chart"
    for a, b in combinations(boxes, 2):
        assert not a.intersects(b), f"texts overlap: {a} and {b}"
    return group


def test_small_need_is_zoomed_with_the_budget_off_scale(qtbot: QtBot, smollm2_path: Path, tmp_path: Path) -> None:
    need = _need(smollm2_path)
    assert 0.1 * GiB < need < 0.5 * GiB  # about 0.3 GiB, against 23 GiB
    budget = 23 * GiB
    for width in WIDTHS:
        view, image, layout = _render(qtbot, smollm2_path, budget, width, tmp_path / f"fit-small-{width}.png")
        group = _check_common(image, layout, need, margin_for(need))
        assert group.zoomed and group.budget_x is None
        row = layout.row("RAM predicted")
        assert row is not None
        bar_end = row.segments[-1].rect.right()
        # the need fills most of the axis instead of a few pixels
        assert bar_end - group.plot.left() >= 0.5 * group.plot.width(), (bar_end, group.plot)
        assert group.scale_max < budget / 4
        marker = next(t for t in group.texts if t.text.startswith("budget"))
        assert marker.text == f"budget {format_bytes(budget)} →"
        assert group.plot.right() < marker.rect.left() and marker.rect.right() <= image.width()  # past the axis' end
        assert _near(image, marker.rect.center().x(), marker.rect.center().y(), BUDGET_COLOR, 6)  # drawn, in red
        assert view.result is not None and view.result.verdict == "fits_cpu"


def test_need_just_under_the_budget_is_drawn_to_scale(qtbot: QtBot, smollm2_path: Path, tmp_path: Path) -> None:
    need = _need(smollm2_path)
    budget = need + margin_for(need) + 8 * MiB
    for width in WIDTHS:
        view, image, layout = _render(qtbot, smollm2_path, budget, width, tmp_path / f"fit-under-{width}.png")
        group = _check_common(image, layout, need, margin_for(need))
        assert not group.zoomed and group.budget_x is not None
        row = layout.row("RAM predicted")
        assert row is not None
        bar_end = row.segments[-1].rect.right()
        assert group.plot.left() < bar_end < group.budget_x < image.width()
        assert group.budget_x - bar_end < 0.1 * group.plot.width()  # just under: close to the line
        assert _near(image, group.budget_x, group.plot.top() - 2, BUDGET_COLOR)  # the budget line is drawn
        assert f"budget {format_bytes(budget)}" in layout.texts()
        assert row.texts[1].text == format_bytes(need)  # the total after the bar, nothing over
        assert not row.texts[1].rect.contains(group.budget_x, row.texts[1].rect.center().y())  # clear of the line
        assert view.result is not None and view.result.verdict == "fits_cpu"


def test_need_over_the_budget_shows_by_how_much(qtbot: QtBot, smollm2_path: Path, tmp_path: Path) -> None:
    need = _need(smollm2_path)
    budget = int(need * 0.8)
    for width in WIDTHS:
        view, image, layout = _render(qtbot, smollm2_path, budget, width, tmp_path / f"fit-over-{width}.png")
        group = _check_common(image, layout, need, margin_for(need))
        assert not group.zoomed and group.budget_x is not None
        row = layout.row("RAM predicted")
        assert row is not None
        need_end = next(s for s in row.segments if s.component == "margin").rect.left()
        assert group.plot.left() < group.budget_x < need_end <= image.width()
        assert _near(image, group.budget_x, group.plot.top() - 2, BUDGET_COLOR)
        over = next(t for t in row.texts if "over" in t.text)
        assert over.text == f"{format_bytes(need)}, {format_bytes(need - budget)} over"
        assert over.color == BUDGET_COLOR
        assert _near(image, over.rect.center().x(), over.rect.center().y(), BUDGET_COLOR, 6)
        assert view.result is not None and view.result.verdict == "too_large"


def test_each_memory_gets_its_own_axis_and_tiny_parts_stay_visible(qtbot: QtBot, tmp_path: Path) -> None:
    chart = MemoryChart()
    qtbot.addWidget(chart)
    ram_parts = [("weights", 300 * MiB), ("output", 64 << 10), ("overhead", 90 * MiB)]
    vram_parts = [("weights", 7 * GiB), ("kv", 512 * MiB), ("compute", 900 * MiB)]
    chart.set_rows(
        [("RAM predicted", ram_parts, 32 * GiB, 64 * MiB), ("VRAM predicted", vram_parts, 8 * GiB, 64 * MiB)]
    )
    chart.resize(700, chart.heightForWidth(700))
    chart.show()
    qtbot.waitExposed(chart)
    image = chart.grab().toImage()
    assert image.save(str(tmp_path / "two-memories.png"))
    layout = chart.chart()
    ram, vram = layout.group("RAM"), layout.group("VRAM")
    assert ram is not None and vram is not None
    assert ram.zoomed and ram.budget_x is None and ram.scale_max < GiB  # 0.45 GiB against 32 GiB: zoomed
    assert not vram.zoomed and vram.budget_x is not None  # 8.4 GiB against 8 GiB: to scale, over
    assert ram.plot.bottom() < vram.plot.top()
    row = layout.row("RAM predicted")
    assert row is not None
    output = row.segment("output")
    assert output is not None and output.rect.width() >= MIN_SEGMENT_PX - 1e-6  # 64 KiB of 0.45 GiB
    # the bar's length stays to scale: widened tiny parts are paid for by the large ones
    bar = row.segments[-1].rect.right() - row.segments[0].rect.left()
    assert abs(bar - ram.plot.width() * (390 * MiB + (64 << 10) + 64 * MiB) / ram.scale_max) < 0.5
    over = layout.row("VRAM predicted")
    assert over is not None and over.texts[1].text.endswith("over") and over.texts[1].color == BUDGET_COLOR
    assert "VRAM predicted: 8.38 GiB" in chart.accessibleDescription()
