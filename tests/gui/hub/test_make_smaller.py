"""Library → a model → "Make smaller…", with real llama.cpp and the real SmolLM2 (Q4_1) file.

What a person would check: the action is there only for a model that can be quantized; the dialog lists every
type, the ones llama.cpp cannot make here disabled with the reason; Make writes the file into Sizewise's own
models folder and the Library lists it as "Made here" with the model it came from; Cancel and closing while it
runs leave no file, no partial file and no process; an existing file is refused in words and left untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from sizewise.commands.quant_lab.quantize import made_here_folder
from sizewise.core.hub.library import DiscoveryRoots, Library, LibraryEntry
from sizewise.core.paths import AppPaths
from sizewise.core.quant.plan import PARTIAL_PREFIX
from sizewise.gui.adapters.background import wait_for_background
from sizewise.gui.hub.library_view import LibraryView
from sizewise.gui.hub.make_smaller_dialog import CANCELLED, MakeSmallerDialog

RUN_TIMEOUT_MS = 180_000  # a real quantization on a slow, shared machine
SLOW_TYPE = "IQ3_XXS"  # its codebook search takes seconds even on a fast machine: room to cancel mid-run


@pytest.fixture
def library(app_paths: AppPaths, smollm2_path: Path) -> Library:
    lib = Library(app_paths.data_dir, app_paths.cache_dir, DiscoveryRoots(hf_cache=None))
    lib.import_file(smollm2_path)
    return lib


@pytest.fixture
def view(qtbot: QtBot, library: Library) -> Iterator[LibraryView]:
    v = LibraryView(library)
    qtbot.addWidget(v)
    v.show()
    with qtbot.waitSignal(v.libraryRefreshed, timeout=15_000):
        v.refresh()
    yield v
    v.shutdown()
    if v.make_dialog is not None:
        v.make_dialog.close()
    wait_for_background()


def _row_of(view: LibraryView, path: Path) -> int:
    return next(i for i, e in enumerate(view.entries) if Path(e.path).resolve() == path.resolve())


def _open_dialog(qtbot: QtBot, view: LibraryView, smollm2_path: Path) -> MakeSmallerDialog:
    view.table.selectRow(_row_of(view, smollm2_path))
    assert view.make_button.isEnabled()
    qtbot.mouseClick(view.make_button, Qt.MouseButton.LeftButton)
    dialog = view.make_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.source is not None or dialog.message.isVisible(), timeout=15_000)
    assert dialog.source is not None, dialog.message.text()
    return dialog


def _choose(qtbot: QtBot, dialog: MakeSmallerDialog, name: str) -> str:
    """Select a type and wait for its plan to be checked; the plan's sentence, or "" when it would go ahead."""
    with qtbot.waitSignal(dialog.previewed, timeout=15_000) as blocker:
        dialog.choose_type(name)
    chosen = dialog.chosen()
    assert chosen is not None and chosen.type.name == name
    return str(blocker.args[0])


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _quantize_children() -> list[int]:
    """Child processes still running, but multiprocessing's resource tracker (it lives as long as pytest)."""
    alive = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(p.cmdline()):
                alive.append(p.pid)
        except psutil.Error:
            continue
    return alive


def test_make_smaller_is_offered_only_for_a_present_single_file_model(view: LibraryView, smollm2_path: Path) -> None:
    row = _row_of(view, smollm2_path)
    view.table.selectRow(row)
    assert view.make_button.isEnabled()
    menu = view.row_menu(row)
    actions = {a.text(): a for a in menu.actions()}
    assert list(actions) == ["Load", "Make smaller…", "Remove…"]
    assert actions["Make smaller…"].isEnabled()
    menu.deleteLater()

    e = view.entries[row]
    missing = LibraryEntry(path="/nowhere/gone.gguf", name="gone", source="imported", status="missing")
    split = LibraryEntry(path=e.path, name="big", source="imported", status="ok", parts=("a.gguf", "b.gguf"))
    assert view.why_not_make_smaller(e) == ""
    assert "missing" in view.why_not_make_smaller(missing)
    assert "split into 2 files" in view.why_not_make_smaller(split)
    view.entries[row] = split  # what the button shows for such a row
    view._update_remove_button()
    assert not view.make_button.isEnabled()
    assert "single-file" in view.make_button.toolTip()


def test_dialog_lists_every_type_and_disables_those_llama_cpp_cannot_make(
    qtbot: QtBot, view: LibraryView, smollm2_path: Path, app_paths: AppPaths
) -> None:
    dialog = _open_dialog(qtbot, view, smollm2_path)
    rows = {}
    for i in range(dialog.types.topLevelItemCount()):
        item = dialog.types.topLevelItem(i)
        assert item is not None
        rows[item.text(0)] = item
    assert {"Q8_0", "Q4_K_M", "IQ2_XS", "IQ3_XXS", "TQ1_0"} <= set(rows)

    imatrix = rows["IQ2_XS"]
    assert not imatrix.flags() & Qt.ItemFlag.ItemIsEnabled
    assert "importance matrix" in imatrix.toolTip(0)
    assert "importance matrix" in imatrix.text(3)  # the reason beside it, not only on hover
    assert not rows["TQ1_0"].flags() & Qt.ItemFlag.ItemIsEnabled
    assert not rows["IQ2_M"].flags() & Qt.ItemFlag.ItemIsEnabled  # llama.cpp refuses it without a matrix too
    dialog.choose_type("IQ2_XS")
    assert dialog.chosen() is None or dialog.chosen().type.name != "IQ2_XS"  # type: ignore[union-attr]

    assert rows["Q4_1"].flags() & Qt.ItemFlag.ItemIsEnabled
    assert "this model's own type" in rows["Q4_1"].text(3)
    assert "Q4_1" in dialog.source_label.text()

    assert _choose(qtbot, dialog, "Q8_0") == ""
    assert "Q8_0" in dialog.choice_label.text() and "from Q4_1" in dialog.choice_label.text()
    assert dialog.warning.isVisible() and "already quantized" in dialog.warning.text()
    assert dialog.out_edit.text() == str(made_here_folder(app_paths) / "SmolLM2-135M-Instruct-Q8_0.gguf")
    assert "MiB" in rows["Q8_0"].text(2)
    assert dialog.make_button.isEnabled() and not dialog.cancel_button.isEnabled()


def test_make_q8_0_writes_the_file_and_the_library_lists_it_as_made_here(
    qtbot: QtBot, view: LibraryView, smollm2_path: Path, app_paths: AppPaths
) -> None:
    folder = made_here_folder(app_paths)
    assert view.made_folder == folder
    dialog = _open_dialog(qtbot, view, smollm2_path)
    _choose(qtbot, dialog, "Q8_0")
    progress: list[dict[str, object]] = []
    dialog.adapter.progress.connect(progress.append)
    with (
        qtbot.waitSignal(dialog.made, timeout=RUN_TIMEOUT_MS) as made,
        qtbot.waitSignal(view.libraryRefreshed, timeout=RUN_TIMEOUT_MS),
    ):
        qtbot.mouseClick(dialog.make_button, Qt.MouseButton.LeftButton)
        assert dialog.busy and dialog.cancel_button.isEnabled() and not dialog.make_button.isEnabled()

    out = folder / "SmolLM2-135M-Instruct-Q8_0.gguf"
    result = made.args[0]
    assert result.out == out.resolve() and out.is_file()
    assert result.bytes == out.stat().st_size > smollm2_path.stat().st_size  # 8.5 bits from 4.78
    assert _leftovers(folder) == [out.name]  # no .sizewise-partial-* left behind
    assert any(m["type"] == "estimate" for m in progress)
    steps = [m for m in progress if m["type"] == "progress"]
    assert steps and steps[-1]["step"] == steps[-1]["steps"]
    assert dialog.bar.value() == dialog.bar.maximum()
    text = dialog.message.text()
    assert text.startswith(f"Wrote {out.name} (") and " MiB) in " in text, text
    assert not dialog.busy and dialog.make_button.isEnabled()

    made_entries = [e for e in view.entries if Path(e.path) == out.resolve()]
    assert len(made_entries) == 1, [e.path for e in view.entries]
    made_entry = made_entries[0]
    assert made_entry.source == "made" and made_entry.source_label == "Made here"
    assert made_entry.made_from == str(smollm2_path.resolve())
    assert made_entry.quantization == "Q8_0" and made_entry.status == "ok"
    row = _row_of(view, out)
    assert view.table.item(row, 5).text() == "Made here"
    assert f"Made from {smollm2_path.name}" in view.table.item(row, 0).toolTip()
    assert view.status.text().startswith(f"Made {out.name} from {smollm2_path.name}.")


def test_cancel_during_a_run_leaves_no_file_and_no_process(
    qtbot: QtBot, view: LibraryView, smollm2_path: Path, app_paths: AppPaths
) -> None:
    folder = made_here_folder(app_paths)
    dialog = _open_dialog(qtbot, view, smollm2_path)
    _choose(qtbot, dialog, SLOW_TYPE)
    with qtbot.waitSignal(
        dialog.adapter.progress, timeout=RUN_TIMEOUT_MS, check_params_cb=lambda m: m["type"] == "progress"
    ):
        qtbot.mouseClick(dialog.make_button, Qt.MouseButton.LeftButton)
    assert any(p.name.startswith(PARTIAL_PREFIX) for p in folder.iterdir())  # it really was writing
    with qtbot.waitSignal(dialog.ended, timeout=60_000) as ended:
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)

    assert ended.args[0] == CANCELLED == dialog.message.text()
    assert _leftovers(folder) == []
    assert _quantize_children() == []
    assert dialog.isVisible() and not dialog.busy  # still usable: choose again, Make again
    assert dialog.make_button.isEnabled() and not dialog.cancel_button.isEnabled() and dialog.types.isEnabled()
    assert not any(e.source == "made" for e in view.library.list())


def test_closing_while_running_asks_then_stops_and_leaves_nothing(
    qtbot: QtBot, view: LibraryView, smollm2_path: Path, app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = made_here_folder(app_paths)
    dialog = _open_dialog(qtbot, view, smollm2_path)
    _choose(qtbot, dialog, SLOW_TYPE)
    with qtbot.waitSignal(
        dialog.adapter.progress, timeout=RUN_TIMEOUT_MS, check_params_cb=lambda m: m["type"] == "progress"
    ):
        qtbot.mouseClick(dialog.make_button, Qt.MouseButton.LeftButton)

    answers = iter([False, True])  # "Keep making it", then "Stop and close"
    asked: list[bool] = []
    monkeypatch.setattr(dialog, "ask_stop", lambda: asked.append(True) or next(answers))
    dialog.close()
    assert asked and dialog.isVisible() and dialog.busy  # kept running
    with qtbot.waitSignal(dialog.ended, timeout=60_000):
        qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
        assert not dialog.isVisible()
        assert _quantize_children() == []  # stop_now waited for the process
    assert len(asked) == 2
    assert _leftovers(folder) == []


def test_an_existing_output_file_is_refused_in_words_and_left_alone(
    qtbot: QtBot, view: LibraryView, smollm2_path: Path, tmp_path: Path
) -> None:
    dialog = _open_dialog(qtbot, view, smollm2_path)
    _choose(qtbot, dialog, "Q8_0")
    elsewhere = tmp_path / "mine"
    elsewhere.mkdir()
    taken = elsewhere / "precious.gguf"
    taken.write_bytes(b"someone's model")

    with qtbot.waitSignal(dialog.previewed, timeout=15_000) as preview:
        dialog.set_output(taken)  # what "Save as…" does with the chosen file
    assert "already exists" in preview.args[0] and "never overwrites" in preview.args[0]
    assert dialog.message.isVisible() and dialog.message.text() == preview.args[0]

    with qtbot.waitSignal(dialog.ended, timeout=15_000) as ended:
        qtbot.mouseClick(dialog.make_button, Qt.MouseButton.LeftButton)
    sentence = ended.args[0]
    assert sentence == f"{taken} already exists; Sizewise never overwrites a model. Choose another file name."
    assert dialog.message.text() == sentence
    assert taken.read_bytes() == b"someone's model"
    assert _leftovers(elsewhere) == ["precious.gguf"]
    assert not dialog.busy and not dialog.bar.isVisible() and dialog.make_button.isEnabled()
    assert _quantize_children() == []

    _choose(qtbot, dialog, "Q6_K")  # the folder chosen stays; the name follows the type
    assert dialog.out_edit.text() == str(elsewhere / "SmolLM2-135M-Instruct-Q6_K.gguf")
    assert not dialog.message.isVisible()
