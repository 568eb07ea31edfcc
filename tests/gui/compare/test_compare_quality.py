"""Quality in the Compare view, on real quants of SmolLM2 (F16 and Q8_0, made here by llama.cpp's quantizer):
stored quality runs fill the table's quality columns and the trade-off chart, the quality floor picks the best
choice, and "Measure quality" runs real quality jobs one after another — or, cancelled, records nothing."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from sizewise.core.compare.quality import quality_sections
from sizewise.core.paths import AppPaths, basedir_paths
from sizewise.core.quant.plan import plan_quantize
from sizewise.core.quant.reference_cache import reference_cache_dir
from sizewise.core.quant.results import QualityRun, QualityStore
from sizewise.core.quant.text import load_text
from sizewise.core.report.fit_report import best_choice
from sizewise.core.report.quality_section import QUALITY_HEAD, quality_cells
from sizewise.core.sampling import LoadParams
from sizewise.engine.quant.quality_job import QualityJob
from sizewise.engine.quant.quantize import Quantizer
from sizewise.gui.compare.compare_view import CompareView

CTX, CHUNKS = 128, 2  # two windows of 128 tokens: seconds per model, still real figures
JOB_TIMEOUT_S = 300
MiB = 1 << 20


def quantize(source: Path, quant: str, out: Path) -> Path:
    events: list[dict[str, Any]] = []
    q = Quantizer(plan_quantize(source, quant, out=out, default_folder=out.parent), events.append)
    q.start()
    final = q.wait(JOB_TIMEOUT_S)
    assert final is not None and final["type"] == "finished", final
    return out


@pytest.fixture(scope="module")
def quants(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> tuple[Path, Path]:
    """(F16, Q8_0) of SmolLM2: the F16 is the most precise version there is here, the reference of the Q8_0."""
    folder = tmp_path_factory.mktemp("quants")
    f16 = quantize(smollm2_path, "F16", folder / "smol-f16.gguf")
    return f16, quantize(f16, "Q8_0", folder / "smol-q8_0.gguf")


def measure(paths: AppPaths, model: Path, reference: Path | None) -> QualityRun:
    finals: list[dict[str, Any]] = []
    job = QualityJob(
        model, lambda m: finals.append(m) if m["type"] != "progress" else None, text=load_text(None),
        cache_dir=reference_cache_dir(paths), reference=reference, ctx=CTX, chunks=CHUNKS,
        on_run=QualityStore(paths).add,
    )  # fmt: skip
    job.start()
    assert job.wait(JOB_TIMEOUT_S) is not None
    assert finals[-1]["type"] == "finished", finals[-1]
    run: QualityRun = finals[-1]["run"]
    return run


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory, quants: tuple[Path, Path]) -> AppPaths:
    """An app data dir whose quality store holds real runs: the Q8_0 against the F16, and the F16 alone."""
    paths = basedir_paths(tmp_path_factory.mktemp("measured") / "base").ensure()
    f16, q8 = quants
    measure(paths, q8, f16)
    measure(paths, f16, None)
    return paths


@pytest.fixture
def make_view(qtbot: QtBot) -> Iterator[Any]:
    def make(paths: AppPaths) -> CompareView:
        v = CompareView(paths)
        qtbot.addWidget(v)
        v.resize(1400, 900)
        v.show()
        v.max_tokens_spin.setValue(4)
        v.prompt_edit.setPlainText("Name a colour.")
        v.quality_ctx, v.quality_chunks = CTX, CHUNKS
        return v

    yield make


def quality_row(view: CompareView, row: int) -> list[str]:
    first = view.table.columnCount() - len(QUALITY_HEAD)
    return [view.table.item(row, c).text() for c in range(first, view.table.columnCount())]


def wait_for_rows(qtbot: QtBot, view: CompareView, *quants: str) -> None:
    """Until the table lists these runs (by quant, in order): the planned rows are built off the GUI thread."""

    def listed() -> bool:
        rows = [view.table.item(i, 1) for i in range(view.table.rowCount())]
        if len(rows) != len(quants):
            return False
        return all(r is not None and f" {q} " in r.text() for r, q in zip(rows, quants, strict=True))

    qtbot.waitUntil(listed, timeout=30_000)


def test_stored_quality_runs_fill_the_table_the_chart_and_the_quality_floor(
    qtbot: QtBot, make_view: Any, measured: AppPaths, quants: tuple[Path, Path], smollm2_path: Path
) -> None:
    f16, q8 = quants
    store = QualityStore(measured)
    q8_run, f16_run = store.preferred(q8), store.preferred(f16)
    assert q8_run is not None and f16_run is not None
    assert q8_run.reference == str(f16.resolve()) and q8_run.figures.same_top_pct is not None
    assert 0 < q8_run.figures.kld_mean < 0.1  # type: ignore[operator]  # Q8_0 is close to F16
    view = make_view(measured)
    view.add_run(f16, LoadParams(n_ctx=256))
    view.add_run(q8, LoadParams(n_ctx=256))
    # before any comparison the table lists the planned runs with their stored quality
    wait_for_rows(qtbot, view, "F16", "Q8_0")
    f16_cells, q8_cells = quality_row(view, 0), quality_row(view, 1)
    f = q8_run.figures
    assert q8_cells == [f"{f.ppl:.3f} ± {f.ppl_err:.3f}", f"{f.kld_mean:.4f}", f"{f.same_top_pct:.1f} %", f16.name]
    assert f16_cells[0] == f"{f16_run.figures.ppl:.3f} ± {f16_run.figures.ppl_err:.3f}"
    assert f16_cells[2:] == ["100.0 %", "is the reference"]
    assert "128 tokens" in view.table.item(1, view.table.columnCount() - 1).toolTip()

    # the trade-off chart: KLD against file size, one point per quant, both on the front (smaller vs closer)
    size = view.tradeoff.drawn["size"]
    assert {p.label: (round(p.x, 1), p.y) for p in size.points} == {
        "F16": (round(f16.stat().st_size / MiB, 1), 0.0),
        "Q8_0": (round(q8.stat().st_size / MiB, 1), f.kld_mean),
    }
    assert [size.points[i].label for i in size.front] == ["Q8_0", "F16"]  # the line runs left to right
    assert "lower is better" in size.y_title and "speed" not in view.tradeoff.drawn  # no speeds yet
    assert view.tradeoff.speed_plot.isHidden()
    view.tradeoff.metric_combo.setCurrentIndex(view.tradeoff.metric_combo.findData("same_top_pct"))
    view.tradeoff.metric_combo.activated.emit(view.tradeoff.metric_combo.currentIndex())
    assert sorted(p.y for p in view.tradeoff.drawn["size"].points) == [pytest.approx(f.same_top_pct), 100.0]

    # the Q8_0 against the starter (never measured): the quality floor decides the best choice
    view.run_list.setCurrentRow(0)
    view.remove_button.click()
    view.add_run(smollm2_path, LoadParams(n_ctx=256))
    wait_for_rows(qtbot, view, "Q8_0", "Q4_1")
    assert quality_row(view, 1) == ["–"] * len(QUALITY_HEAD)
    assert "Not measured" in view.table.item(1, view.table.columnCount() - 1).toolTip()
    view.floor_spin.setValue(0.0)
    with qtbot.waitSignal(view.finished, timeout=600_000):
        view.run_button.click()
    assert view.runner is not None and [r.error for r in view.runner.results] == [None, None]
    assert view.best_index == 0  # no floor: the larger file
    assert "speed" in view.tradeoff.drawn and [p.label for p in view.tradeoff.drawn["speed"].points] == ["Q8_0"]
    tenths = math.floor(f.same_top_pct * 10) / 10  # type: ignore[operator]  # the spin box holds one decimal
    view.quality_floor_spin.setValue(tenths + 0.1)  # just above the Q8_0's figure
    qtbot.waitUntil(lambda: view.report is not None and view.report["min_same_top"] is not None, timeout=10_000)
    report = view.report
    assert report is not None and view.best_index is None  # Q8_0 under the floor, the starter unmeasured
    assert "does not pass" in report["best_rule"] and view.table.item(0, 0).text() == ""
    view.quality_floor_spin.setValue(tenths - 0.1)  # just below it
    qtbot.waitUntil(lambda: view.best_index == 0, timeout=10_000)
    assert view.table.item(0, 0).text() == "★ best"
    assert best_choice(view.report["models"], 0.0, view.min_same_top) == 0  # type: ignore[index]
    view.quality_floor_spin.setValue(0.0)  # off
    qtbot.waitUntil(lambda: view.report is not None and view.report["min_same_top"] is None, timeout=10_000)
    view.shutdown()
    qtbot.waitUntil(lambda: not view.pool.closing and not view.pool.engines, timeout=30_000)


def test_measure_quality_runs_each_model_for_real_and_fills_the_columns(
    qtbot: QtBot, make_view: Any, app_paths: AppPaths, quants: tuple[Path, Path]
) -> None:
    f16, q8 = quants
    view = make_view(app_paths)
    view.add_run(q8, LoadParams(n_ctx=256))  # the reference comes second: it is found among the compared
    view.add_run(f16, LoadParams(n_ctx=256))
    wait_for_rows(qtbot, view, "Q8_0", "F16")
    assert quality_row(view, 0) == ["–"] * len(QUALITY_HEAD)
    said: list[str] = []
    with qtbot.waitSignal(view.qualityFinished, timeout=JOB_TIMEOUT_S * 1000) as done:
        view.quality_button.click()
        assert view.quality_button.text() == "Cancel measuring" and not view.run_button.isEnabled()
        assert view.quality_progress.isVisible()
        measurer = view.measurer
        assert measurer is not None
        measurer.progress.connect(said.append)
    assert done.args == ["done"]
    assert any("chunk 2/2" in s for s in said) and any("scoring the reference" in s for s in said)
    assert view.status.text() == "Quality measured for 2 model(s)."
    assert view.quality_button.text() == "Measure quality" and view.run_button.isEnabled()
    assert not view.quality_progress.isVisible()

    # the runs were stored: the Q8_0 against the F16 (the most precise of the compared), the F16 alone
    store = QualityStore(app_paths)
    q8_run, f16_run = store.runs(q8), store.runs(f16)
    assert len(q8_run) == 1 and len(f16_run) == 1
    assert q8_run[0].reference == str(f16.resolve()) and q8_run[0].ctx == CTX and q8_run[0].chunks == CHUNKS
    assert f16_run[0].reference is None and f16_run[0].figures.kld_mean is None
    assert any(reference_cache_dir(app_paths).iterdir())  # the F16's rows, kept for the next quant

    # and they fill the columns and the chart, exactly as stored
    sections = quality_sections([str(q8), str(f16)], store.preferred)
    assert [quality_row(view, i) for i in range(2)] == [quality_cells(s) for s in sections]
    assert quality_row(view, 0)[3] == f16.name and quality_row(view, 1)[3] == "is the reference"
    assert view.chart_tabs.currentWidget() is view.tradeoff
    assert sorted(p.label for p in view.tradeoff.drawn["size"].points) == ["F16", "Q8_0"]


def test_cancelling_measure_quality_records_no_run(
    qtbot: QtBot, make_view: Any, app_paths: AppPaths, quants: tuple[Path, Path]
) -> None:
    f16, q8 = quants
    view = make_view(app_paths)
    view.add_run(q8, LoadParams(n_ctx=256))
    view.add_run(f16, LoadParams(n_ctx=256))
    wait_for_rows(qtbot, view, "Q8_0", "F16")
    started: list[dict[str, Any]] = []
    view.measure_quality()
    measurer = view.measurer
    assert measurer is not None
    measurer.adapter.progress.connect(started.append)
    qtbot.waitUntil(lambda: bool(started), timeout=JOB_TIMEOUT_S * 1000)  # the first job is under way
    with qtbot.waitSignal(view.qualityFinished, timeout=60_000) as done:
        view.quality_button.click()  # now "Cancel measuring"
    assert done.args == ["cancelled"]
    assert "cancelled" in view.status.text() and view.quality_button.text() == "Measure quality"
    store = QualityStore(app_paths)
    assert store.runs(q8) == [] and store.runs(f16) == []
    assert not store.file.exists()
    assert quality_row(view, 0) == ["–"] * len(QUALITY_HEAD)
    assert measurer.runs == [] and measurer.started == [str(q8.resolve())]  # the F16 never started
    cache = reference_cache_dir(app_paths)
    assert not cache.exists() or not any(cache.iterdir())  # nor was the reference half-cached
