"""The compare view on the two real models: same prompt, seed and sampling; side by side; best choice; export."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from pytestqt.qtbot import QtBot

from sizewise.core.errors import UserError
from sizewise.core.paths import AppPaths
from sizewise.core.report import best_choice
from sizewise.core.resources import resource_path
from sizewise.core.sampling import LoadParams
from sizewise.gui.compare_view import CompareView, parse_temperatures

RUN_TIMEOUT_MS = 600_000


@pytest.fixture
def view(qtbot: QtBot, app_paths: AppPaths) -> CompareView:
    v = CompareView(app_paths)
    qtbot.addWidget(v)
    v.resize(1100, 800)
    v.show()
    v.max_tokens_spin.setValue(16)
    v.seed_spin.setValue(42)
    v.prompt_edit.setPlainText("Name two colours.")
    return v


def test_two_models_side_by_side_with_best_choice_and_export(
    qtbot: QtBot, view: CompareView, smollm2_path: Path, gemma_path: Path, tmp_path: Path
) -> None:
    view.add_run(smollm2_path, LoadParams(n_ctx=256))
    view.add_run(gemma_path, LoadParams(n_ctx=256))
    view.bench_check.setChecked(True)
    view.pp_spin.setValue(16)
    view.tg_spin.setValue(4)
    view.reps_spin.setValue(2)
    with qtbot.waitSignal(view.finished, timeout=RUN_TIMEOUT_MS):
        view.run_button.click()
    runner = view.runner
    assert runner is not None and not runner.stopped
    results = runner.results
    assert [r.error for r in results] == [None, None]
    assert [r.info.architecture for r in results if r.info] == ["llama", "gemma3"]
    # the same prompt, seed and sampling went to each
    assert results[0].sampling == results[1].sampling and results[0].sampling is not None
    assert results[0].sampling.seed == 42
    for r, panel in zip(results, view.panels, strict=True):
        assert r.text.strip() and r.stats and r.stats["seed"] == 42
        assert panel.text.toPlainText() == r.text
        assert f"{r.stats['tg_tps']:.1f} tokens/s" in panel.figures.text()
        assert r.bench is not None and r.bench["tg"]["n"] == 4 and len(r.bench["tg"]["samples_tps"]) == 2
    # each ran in its own engine: different load figures, both shut down (no_leftovers checks the processes)
    assert results[0].loaded != results[1].loaded
    report = view.report
    assert report is not None and [m["label"] for m in report["models"]] == [r.label for r in results]
    assert view.table.rowCount() == 2
    assert [view.table.item(i, 1).text() for i in range(2)] == [r.label for r in results]

    # the best choice follows the floor: at 0 the larger model (Gemma) wins; above every speed, none
    view.floor_spin.setValue(0.0)
    assert view.best_index == best_choice(view.report["models"], 0.0) == 1  # type: ignore[index]
    assert view.table.item(1, 0).text() == "★ best" and view.panels[1].title().startswith("★ ")
    view.floor_spin.setValue(999.0)
    assert view.best_index is None
    assert all(view.table.item(i, 0).text() == "" for i in range(2))
    assert not any(p.title().startswith("★ ") for p in view.panels)

    schema = json.loads(resource_path("report.schema.json").read_text(encoding="utf-8"))
    for suffix in ("html", "md", "json"):
        path = tmp_path / f"compare.{suffix}"
        assert view.export_report(path) == suffix
        text = path.read_text(encoding="utf-8")
        for r in results:
            assert r.label in text
    data = json.loads((tmp_path / "compare.json").read_text(encoding="utf-8"))
    jsonschema.validate(data, schema)
    assert data["kind"] == "compare" and data["floor_tps"] == 999.0
    assert [m["reply"]["text"] for m in data["models"]] == [r.text for r in results]
    assert data["models"][0]["tg"]["n"] == 4  # the GUI benchmark's figures are in the report
    assert (tmp_path / "compare.html").read_text(encoding="utf-8").count("<svg") == 4


def test_temperature_made_visible_with_a_fixed_seed(qtbot: QtBot, view: CompareView, smollm2_path: Path) -> None:
    view.add_run(smollm2_path, LoadParams(n_ctx=256))
    view.mode_temps.setChecked(True)
    view.temps_edit.setText("0.7, 0.7, 1.2")
    view.max_tokens_spin.setValue(24)
    with qtbot.waitSignal(view.finished, timeout=RUN_TIMEOUT_MS):
        view.run()
    runner = view.runner
    assert runner is not None
    results = runner.results
    assert [r.sampling.temperature for r in results if r.sampling] == [0.7, 0.7, 1.2]
    assert all(r.stats and r.stats["seed"] == 42 for r in results)
    # one model, one load: all three replies came from the same engine load
    assert results[0].loaded is not None and results[0].loaded == results[1].loaded == results[2].loaded
    # a fixed seed at the same temperature gives the same reply; that is what makes the comparison fair
    assert results[0].text == results[1].text and results[0].text.strip()
    report = view.report
    assert report is not None and report["kind"] == "temperature"
    assert report["settings"]["temperatures"] == [0.7, 0.7, 1.2] and report["settings"]["seed"] == 42
    assert [m["reply"]["sampling"]["temperature"] for m in report["models"]] == [0.7, 0.7, 1.2]
    assert view.panels[2].title().endswith("temperature 1.2")


def test_stop_ends_the_comparison_and_its_engine(qtbot: QtBot, view: CompareView, smollm2_path: Path) -> None:
    view.add_run(smollm2_path, LoadParams(n_ctx=256))
    view.add_run(smollm2_path, LoadParams(n_ctx=512))
    view.max_tokens_spin.setValue(400)
    view.run()
    runner = view.runner
    assert runner is not None
    qtbot.waitUntil(lambda: bool(runner.current and runner.current.text), timeout=RUN_TIMEOUT_MS)
    with qtbot.waitSignal(view.finished, timeout=60_000):
        view.stop_button.click()
    assert runner.stopped and not runner.running
    first, second = runner.results
    # stopped mid-reply: cancelled by the worker, or (if it did not answer within the grace time) killed
    assert (first.stats is not None and first.stats["finish_reason"] == "cancelled") or "stopped" in str(first.error)
    assert second.stats is None and second.loaded is None  # never started
    assert view.run_button.isEnabled() and not view.stop_button.isEnabled()


def test_runs_and_temperatures_are_checked(view: CompareView, smollm2_path: Path) -> None:
    view.run()
    assert "Add a model first" in view.status.text()
    view.add_run(smollm2_path)
    view.run()
    assert "at least two runs" in view.status.text()
    for _ in range(3):
        view.add_run(smollm2_path)
    with pytest.raises(UserError, match="at most 4"):
        view.add_run(smollm2_path)
    assert parse_temperatures("0.2; 0.7, 1.2") == [0.2, 0.7, 1.2]
    for bad in ("hot", "0.2, 3", "", "0.1, 0.2, 0.3, 0.4, 0.5"):
        with pytest.raises(UserError):
            parse_temperatures(bad)
    assert view.runner is None
