"""The compare view on the two real models: same prompt, seed and sampling; side by side; best choice; export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import jsonschema
import psutil
import pytest
from pytestqt.qtbot import QtBot

from sizewise.core.compare.plan import parse_temperatures
from sizewise.core.compare.report import SHARED_SPEED_NOTE
from sizewise.core.errors import UserError
from sizewise.core.fit.verdict import Budget
from sizewise.core.paths import AppPaths
from sizewise.core.report.fit_report import best_choice
from sizewise.core.resources import resource_path
from sizewise.core.sampling import LoadParams
from sizewise.gui.compare.compare_runner import CompareRunner
from sizewise.gui.compare.compare_view import CompareView

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


def engine_workers() -> list[int]:
    """Pids of this process's live engine workers (multiprocessing spawn children, not the resource tracker).

    Direct children only: a process a worker forks (before its exec) carries the worker's command line."""
    pids = []
    for p in psutil.Process().children(recursive=False):
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(p.cmdline()):
                pids.append(p.pid)
        except psutil.Error:
            continue
    return pids


class WorkerSampler:
    """Counts live engine workers every 10 ms on a thread: the most that were alive at the same moment."""

    def __init__(self) -> None:
        self.most = 0
        self.seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-sampler")

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            pids = engine_workers()
            self.seen.update(pids)
            self.most = max(self.most, len(pids))

    def __enter__(self) -> WorkerSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def too_small_for_both(qtbot: QtBot, view: CompareView) -> Budget:
    """This machine's budget cut to just under what the runs need together, but enough for each alone."""
    qtbot.waitUntil(lambda: view.plan is not None and view.plan.together is not None, timeout=60_000)
    assert view.plan is not None and view.plan.together is not None
    together = view.plan.together
    budget = replace(together.budget, ram_bytes=together.ram_required - 1)
    assert all(f.ram_required <= budget.ram_bytes for f in view.plan.fits)
    return budget


def overlap(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool:
    assert a is not None and b is not None
    return a[0] < b[1] and b[0] < a[1]


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


def stop_mid_reply(qtbot: QtBot, view: CompareView) -> CompareRunner:
    """Start a long comparison, click Stop once the first reply streams, and wait for the end."""
    view.max_tokens_spin.setValue(400)
    view.run()
    runner = view.runner
    assert runner is not None
    qtbot.waitUntil(lambda: bool(runner.current and runner.current.text), timeout=RUN_TIMEOUT_MS)
    with qtbot.waitSignal(view.finished, timeout=60_000):
        view.stop_button.click()
    return runner


def test_stop_ends_the_comparison_and_its_engine(qtbot: QtBot, view: CompareView, smollm2_path: Path) -> None:
    view.add_run(smollm2_path, LoadParams(n_ctx=256))
    view.add_run(smollm2_path, LoadParams(n_ctx=512))
    view.budget_override = too_small_for_both(qtbot, view)  # one after another: the second never starts
    runner = stop_mid_reply(qtbot, view)
    assert runner.stopped and not runner.running
    first, second = runner.results
    # stopped mid-reply: cancelled by the worker, or (if it did not answer within the grace time) killed
    assert (first.stats is not None and first.stats["finish_reason"] == "cancelled") or "stopped" in str(first.error)
    assert second.stats is None and second.loaded is None  # never started
    assert runner.schedule == "one_after_another"
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


def test_all_at_once_when_they_fit_kept_loaded_shared_speeds_cancel_and_one_after_another(
    qtbot: QtBot, view: CompareView, smollm2_path: Path, gemma_path: Path
) -> None:
    view.add_run(smollm2_path, LoadParams(n_ctx=512))
    view.add_run(gemma_path, LoadParams(n_ctx=512))
    view.temp_spin.setValue(0.0)  # greedy with a fixed seed: each entry's reply is reproducible
    # before the run: the decision in words, with its numbers; "at the same time" is on offer but off
    qtbot.waitUntil(lambda: view.plan is not None, timeout=60_000)
    plan = view.plan
    assert plan is not None and plan.all_at_once and plan.together is not None
    assert view.plan_label.text() == plan.words()
    assert plan.words().startswith("All 2 fit in memory at once (") and "GiB RAM with margin" in plan.words()
    assert view.together_check.isEnabled() and not view.together_check.isChecked()

    # (a) loaded together: two workers alive at once, overlapping loads, replies one at a time
    with WorkerSampler() as sampler, qtbot.waitSignal(view.finished, timeout=RUN_TIMEOUT_MS):
        view.run_button.click()
    runner = view.runner
    assert runner is not None and runner.schedule == "loaded_together" and runner.plan is not None
    first = runner.results
    assert [r.error for r in first] == [None, None] and all(r.text.strip() for r in first)
    assert sampler.most == 2
    assert overlap(first[0].load_span, first[1].load_span)
    assert not overlap(first[0].gen_span, first[1].gen_span)
    pids = [r.pid for r in first]
    assert pids[0] != pids[1] and sorted(engine_workers()) == sorted(p for p in pids if p)  # kept loaded
    assert not runner.speeds_shared and view.table.horizontalHeaderItem(3).text() == "Generation t/s"
    assert view.report is not None and "All runs were loaded at once" in view.report["notes"][0]
    assert runner.plan.together is not None  # the run's own check, against the memory free when it started
    assert view.plan_label.text() == (
        f"{runner.plan.together.summary()} and are still loaded from the last run: running again loads nothing."
    )

    # (c, d) again, generated at the same time: nothing reloads, the replies overlap, speeds say "shared"
    view.together_check.setChecked(True)
    with qtbot.waitSignal(view.finished, timeout=RUN_TIMEOUT_MS):
        view.run_button.click()
    runner = view.runner
    assert runner is not None and runner.reused and runner.schedule == "generated_together"
    again = runner.results
    assert [r.pid for r in again] == pids and all(r.reused for r in again)
    assert [r.loaded for r in again] == [r.loaded for r in first]  # the same load message, not a new one
    assert [r.load_span for r in again] == [r.load_span for r in first]
    assert overlap(again[0].gen_span, again[1].gen_span)
    assert [r.text for r in again] == [r.text for r in first]
    assert all(r.side_by_side for r in again) and runner.speeds_shared
    assert all(SHARED_SPEED_NOTE in p.figures.text() for p in view.panels)
    assert "shared CPU" in view.table.horizontalHeaderItem(3).text()
    assert "shared CPU" in view.speed_chart.plotItem.titleLabel.text
    view.floor_spin.setValue(0.0)
    best = view.best_index
    assert best is not None and view.table.item(best, 0).text() == "★ best (shared CPU)"
    report = view.report
    assert report is not None and report["settings"]["schedule"] == "generated_together"
    assert SHARED_SPEED_NOTE in report["best_rule"] and SHARED_SPEED_NOTE in report["notes"][0]
    assert all(m["reply"]["speeds_shared_cpu"] for m in report["models"])

    # the temperature comparison on the first run's model takes its kept engine too
    view.mode_temps.setChecked(True)
    view.temps_edit.setText("0.0, 0.0")
    with qtbot.waitSignal(view.finished, timeout=RUN_TIMEOUT_MS):
        view.run()
    runner = view.runner
    assert runner is not None and runner.reused
    assert [r.pid for r in runner.results] == [pids[0], pids[0]]
    assert [r.text for r in runner.results] == [first[0].text] * 2
    view.mode_models.setChecked(True)

    # (e) stop during an all-at-once run: every engine stops, no worker is left
    view.together_check.setChecked(False)
    runner = stop_mid_reply(qtbot, view)
    assert runner.stopped and engine_workers() == [] and not view.pool.engines

    # (b) a budget too small for both together: one after another, never two workers, the same replies
    view.max_tokens_spin.setValue(16)
    view.budget_override = replace(plan.together.budget, ram_bytes=plan.together.ram_required - 1)
    assert all(f.ram_required <= view.budget_override.ram_bytes for f in plan.fits)
    view.replan()
    qtbot.waitUntil(lambda: view.plan is not None and not view.plan.all_at_once, timeout=60_000)
    assert view.plan_label.text().startswith("Together they need ")
    assert view.plan_label.text().endswith("available: running one after another.")
    assert not view.together_check.isEnabled() and "one after another" in view.together_check.toolTip()
    with WorkerSampler() as sampler, qtbot.waitSignal(view.finished, timeout=RUN_TIMEOUT_MS):
        view.run_button.click()
    runner = view.runner
    assert runner is not None and runner.schedule == "one_after_another"
    assert sampler.most == 1 and len(sampler.seen) == 2
    assert [r.text for r in runner.results] == [r.text for r in first]
    assert not overlap(runner.results[0].load_span, runner.results[1].load_span)
    assert engine_workers() == [] and "one after another" in runner.build_report()["notes"][0]


def test_a_worker_that_dies_fails_only_its_own_run(qtbot: QtBot, view: CompareView, smollm2_path: Path) -> None:
    view.add_run(smollm2_path, LoadParams(n_ctx=256))
    view.add_run(smollm2_path, LoadParams(n_ctx=512))
    view.max_tokens_spin.setValue(64)
    with qtbot.waitSignal(view.finished, timeout=RUN_TIMEOUT_MS):
        view.run()
        runner = view.runner
        assert runner is not None
        qtbot.waitUntil(lambda: bool(runner.current and runner.current.text), timeout=RUN_TIMEOUT_MS)
        assert runner.schedule == "loaded_together" and runner.active == [0]
        victim, survivor = runner.results
        assert victim.pid is not None and survivor.pid is not None
        psutil.Process(victim.pid).kill()  # as the out-of-memory killer would
    assert victim.error is not None and "The engine stopped" in victim.error and victim.stats is None
    assert survivor.error is None and survivor.stats is not None and survivor.text.strip()
    assert "Failed:" in view.panels[0].figures.text() and "tokens/s" in view.panels[1].figures.text()
    assert engine_workers() == [survivor.pid]  # the survivor stays loaded for the next run
    assert view.report is not None and view.table.item(0, 2).text() == "failed"


def test_closing_with_engines_kept_loaded_exits_cleanly(smollm2_path: Path, tmp_path: Path) -> None:
    """The app's exit waits for kept compare engines to shut down: no worker left, no exit traceback.

    Before, the interpreter could exit while their shutdown threads ran; multiprocessing's exit handler
    then joined a process object one of them had just closed and printed "ValueError: process object
    is closed" (2 exits in 3 here).
    """
    script = Path(__file__).with_name("compare_exit_script.py")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, str(script), str(smollm2_path), str(tmp_path / "base")],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("closed"), done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    workers = [int(p) for line in done.stdout.splitlines() if line.startswith("workers ") for p in line.split()[1:]]
    assert len(workers) == 2 and not any(psutil.pid_exists(p) for p in workers)
