import json
from pathlib import Path

from sizewise.core.paths import basedir_paths, resolve_paths
from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.core.settings import SETTINGS_VERSION, Settings, SettingsStore


def test_roundtrip_keeps_every_field(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    s = Settings(
        sampling=SamplingParams(temperature=0.2, seed=42, max_tokens=99),
        load=LoadParams(n_ctx=4096),
        system_prompt="Be brief.",
        window_geometry="AAAA",
    )
    s.remember_model("/models/a.gguf")
    s.remember_model("/models/b.gguf")
    s.remember_model("/models/a.gguf")
    store.save(s)
    data = json.loads((tmp_path / "settings.json").read_text())
    assert data["version"] == SETTINGS_VERSION
    back = SettingsStore(tmp_path / "settings.json").load()
    assert back.sampling == s.sampling
    assert back.load.n_ctx == 4096
    assert back.system_prompt == "Be brief."
    assert back.recent_models == ["/models/a.gguf", "/models/b.gguf"]
    assert back.last_model == "/models/a.gguf"


def test_recent_list_is_capped(tmp_path: Path) -> None:
    s = Settings()
    for i in range(25):
        s.remember_model(f"/m/{i}.gguf")
    assert len(s.recent_models) == 10
    assert s.recent_models[0] == "/m/24.gguf"


def test_corrupt_file_is_kept_aside_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text("{not json")
    store = SettingsStore(path)
    s = store.load()
    assert s == Settings()
    assert store.problem is not None and "could not be read" in store.problem
    kept = list(tmp_path.glob("settings.json.unreadable-*"))
    assert len(kept) == 1 and kept[0].read_text() == "{not json"


def test_newer_version_is_not_silently_downgraded(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"version": SETTINGS_VERSION + 1, "system_prompt": "x"}))
    store = SettingsStore(path)
    store.load()
    assert store.problem and "newer" in store.problem
    assert list(tmp_path.glob("settings.json.unreadable-*"))


def test_atomic_save_leaves_no_temp_files(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "cfg" / "settings.json")
    for i in range(3):
        store.save(Settings(system_prompt=str(i)))
    assert sorted(p.name for p in (tmp_path / "cfg").iterdir()) == ["settings.json"]


def test_basedir_puts_every_path_under_it(tmp_path: Path) -> None:
    p = basedir_paths(tmp_path).ensure()
    for d in (p.config_dir, p.data_dir, p.cache_dir, p.log_dir, p.hf_home):
        assert d is not None and d.is_dir() and tmp_path in d.parents


def test_temp_basedir_is_removed_on_cleanup() -> None:
    p = resolve_paths(None, temp_basedir=True)
    root = p.config_dir.parent
    assert root.is_dir()
    p.cleanup()
    assert not root.exists()


def test_sampling_validation_messages() -> None:
    import pytest

    with pytest.raises(ValueError, match="Temperature"):
        SamplingParams(temperature=3).validate()
    with pytest.raises(ValueError, match="flash attention"):
        LoadParams(kv_type="q8_0").validate()
    LoadParams(kv_type="q8_0", flash_attn=True).validate()
