"""A core's L2 size from sysfs, which the prompt re-read term of the speed model counts against."""

from __future__ import annotations

from pathlib import Path

import pytest

from sizewise.core.speed.cpu_cache import l2_bytes, parse_size


def _cache(root: Path, index: int, level: int, kind: str, size: str) -> None:
    entry = root / f"index{index}"
    entry.mkdir(parents=True)
    (entry / "level").write_text(f"{level}\n")
    (entry / "type").write_text(f"{kind}\n")
    (entry / "size").write_text(f"{size}\n")


@pytest.mark.parametrize(("text", "size"), [("2048K", 2 << 20), ("1M", 1 << 20), ("512", 512), ("", 0), ("big", 0)])
def test_sizes_read_as_sysfs_writes_them(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_the_level_2_cache_is_found_among_the_others(tmp_path: Path) -> None:
    _cache(tmp_path, 0, 1, "Data", "48K")
    _cache(tmp_path, 1, 1, "Instruction", "64K")
    _cache(tmp_path, 2, 2, "Unified", "2048K")
    _cache(tmp_path, 3, 3, "Unified", "491520K")
    assert l2_bytes(tmp_path) == 2 << 20


def test_no_sysfs_or_no_level_2_means_unknown(tmp_path: Path) -> None:
    assert l2_bytes(tmp_path / "absent") == 0
    _cache(tmp_path, 0, 1, "Data", "32K")
    (tmp_path / "index1").mkdir()  # an entry sysfs left without its files
    assert l2_bytes(tmp_path) == 0


def test_this_machine_reports_an_l2_where_linux_lists_one() -> None:
    listed = Path("/sys/devices/system/cpu/cpu0/cache/index2/level")
    if not listed.exists():
        pytest.skip("no sysfs cache listing on this machine")
    assert l2_bytes() >= 64 << 10
