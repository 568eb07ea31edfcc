"""A core's L2 cache size, which decides how much of a prompt's matrix a CPU reads again per pass (model.py).

Read from Linux's sysfs (the same figures ``lscpu`` prints); elsewhere, or where sysfs says nothing, the size is
unknown (0) and the speed model leaves the re-reads out rather than guess a size.
"""

from __future__ import annotations

from pathlib import Path

SYSFS_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    """sysfs's ``2048K`` (or ``2M``, or plain bytes) as bytes; 0 for anything else."""
    text = text.strip().upper()
    factor = _UNITS.get(text[-1:], 1)
    digits = text[:-1] if text[-1:] in _UNITS else text
    return int(digits) * factor if digits.isdigit() else 0


def l2_bytes(root: Path = SYSFS_CACHE) -> int:
    """The first CPU's L2 (data or unified) cache in bytes; 0 when sysfs does not say."""
    try:
        entries = sorted(root.glob("index*"))
    except OSError:
        return 0
    for entry in entries:
        try:
            level = (entry / "level").read_text().strip()
            kind = (entry / "type").read_text().strip()
            size = (entry / "size").read_text()
        except OSError:
            continue
        if level == "2" and kind in ("Unified", "Data"):
            return parse_size(size)
    return 0
