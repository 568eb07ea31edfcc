"""``sizewise --smoke-test`` from the installed package: figures on success, a reason on failure.

The frozen bundle runs the same smoke test in tests/packaging/test_bundle.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.smoke_helpers import basedir_with_starter, check_report, run_smoke

SIZEWISE = [sys.executable, "-m", "sizewise"]


def test_smoke_test_reports_speed_and_memory(smollm2_path: Path, tmp_path: Path) -> None:
    base = basedir_with_starter(tmp_path / "base", smollm2_path)
    report = check_report(run_smoke([*SIZEWISE, "--basedir", str(base)], home=tmp_path))
    assert report["frozen"] is False and report["outside_bundle"] == []
    assert report["gpu_offload"] in (True, False)
    # The smoke test runs the window in a throwaway profile: the base dir gets no conversation.
    assert not (base / "data" / "conversations.sqlite3").exists()


def test_engine_that_cannot_load_llama_cpp_fails_with_the_reason(smollm2_path: Path, tmp_path: Path) -> None:
    """What a bundle without llama.cpp's shared libraries does: the worker dies at start-up. The smoke
    test must exit 1 with the engine's reason, not hang or exit 0."""
    broken = tmp_path / "broken"
    (broken / "llama_cpp").mkdir(parents=True)
    (broken / "llama_cpp" / "__init__.py").write_text(
        'raise OSError("libllama.so: cannot open shared object file: No such file or directory")\n'
    )
    base = basedir_with_starter(tmp_path / "base", smollm2_path)
    # PYTHONPATH reaches the spawned worker too: it imports this llama_cpp instead of the real one.
    cmd = ["/usr/bin/env", f"PYTHONPATH={broken}", *SIZEWISE, "--basedir", str(base)]
    result = run_smoke(cmd, home=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("smoke test failed:"), result.stderr
    assert "engine" in last.lower(), last
