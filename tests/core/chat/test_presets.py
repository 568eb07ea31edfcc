"""Sampling presets: the built-in teaching presets from the data file, and the user's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sizewise.core.chat.presets import PresetLibrary, load_builtin_presets
from sizewise.core.errors import UserError
from sizewise.core.resources import resource_dirs, resource_path
from sizewise.core.sampling import SamplingParams


def test_builtin_presets_teach_what_each_is_for() -> None:
    presets, default = load_builtin_presets()
    by_name = {p.name: p for p in presets}
    assert list(by_name) == ["Precise", "Balanced", "Creative"]
    assert by_name["Precise"].temperature == pytest.approx(0.2)
    assert by_name["Balanced"].temperature == pytest.approx(0.7)
    assert by_name["Creative"].temperature == pytest.approx(1.1)
    assert default == "Balanced"
    for p in presets:
        assert p.explanation and "\n" not in p.explanation and len(p.explanation) < 100  # one line
    assert "facts" in by_name["Precise"].explanation and "code" in by_name["Precise"].explanation
    assert "brainstorming" in by_name["Creative"].explanation and "stories" in by_name["Creative"].explanation


def test_applying_a_preset_keeps_length_and_seed() -> None:
    presets, _ = load_builtin_presets()
    base = SamplingParams(temperature=1.5, max_tokens=77, seed=9, top_k=3)
    applied = presets[0].apply(base)
    assert (applied.temperature, applied.top_k, applied.max_tokens, applied.seed) == (0.2, 40, 77, 9)
    assert presets[0].matches(applied) and not presets[0].matches(base)


def test_user_presets_are_saved_and_read_back(tmp_path: Path) -> None:
    lib = PresetLibrary(tmp_path)
    assert lib.preset_for(SamplingParams()) is not None  # the defaults are the Balanced preset
    assert lib.preset_for(SamplingParams()).name == "Balanced"  # type: ignore[union-attr]
    mine = lib.save("  Poems   ", "Rhymes, loosely.", SamplingParams(temperature=1.3, top_p=0.9))
    assert mine.name == "Poems" and not mine.builtin
    data = json.loads((tmp_path / "presets.json").read_text())
    assert data["presets"][0]["sampling"]["temperature"] == 1.3
    again = PresetLibrary(tmp_path)
    assert [p.name for p in again.all()] == ["Precise", "Balanced", "Creative", "Poems"]
    assert again.get("poems") is not None and again.get("poems").explanation == "Rhymes, loosely."  # type: ignore[union-attr]
    assert again.preset_for(SamplingParams(temperature=1.3, top_p=0.9)).name == "Poems"  # type: ignore[union-attr]
    again.save("Poems", "Rhymes, strictly.", SamplingParams(temperature=0.9))  # replaces, no duplicate
    assert [p.name for p in PresetLibrary(tmp_path).user] == ["Poems"]
    again.delete("poems")
    assert PresetLibrary(tmp_path).user == []


def test_builtin_names_and_bad_values_are_refused(tmp_path: Path) -> None:
    lib = PresetLibrary(tmp_path)
    with pytest.raises(UserError, match="built-in"):
        lib.save("creative", "", SamplingParams())
    with pytest.raises(UserError, match="name"):
        lib.save("   ", "", SamplingParams())
    with pytest.raises(UserError, match="Temperature"):
        lib.save("Hot", "", SamplingParams(temperature=3.0))
    with pytest.raises(UserError, match="cannot be deleted"):
        lib.delete("Precise")
    assert not (tmp_path / "presets.json").exists()


def test_a_damaged_user_file_is_kept_aside(tmp_path: Path) -> None:
    (tmp_path / "presets.json").write_text("{not json")
    lib = PresetLibrary(tmp_path)
    assert lib.problem is not None and "could not be read" in lib.problem
    assert [p.name for p in lib.all()] == ["Precise", "Balanced", "Creative"]
    kept = list(tmp_path.glob("presets.json.unreadable-*"))
    assert len(kept) == 1 and kept[0].read_text() == "{not json"


def test_resources_are_found_in_the_checkout() -> None:
    dirs = resource_dirs()
    assert dirs[0].parts[-2:] == ("sizewise", "resources")  # a bundle's copy wins
    assert resource_path("presets.json").is_file()
    with pytest.raises(UserError, match="missing"):
        resource_path("no-such-file.json")
