"""``sizewise generate`` and the global options, through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sizewise import __version__
from tests.cli_helpers import run_cli
from tests.ggufs import write_truncated_copy, write_unknown_arch


def test_version() -> None:
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"sizewise {__version__}"


def test_generate_json_fields_and_determinism(tmp_path: Path) -> None:
    args = (
        "generate",
        "starter",
        "--prompt",
        "Name a fruit.",
        "--seed",
        "7",
        "--temperature",
        "0.8",
        "--max-tokens",
        "20",
        "--ctx",
        "512",
        "--json",
    )
    a = run_cli(*args, basedir=tmp_path / "a")
    assert a.returncode == 0, a.stderr
    out = json.loads(a.stdout)
    for key in ("text", "tokens", "ttft_ms", "pp_tps", "tg_tps", "finish_reason"):
        assert key in out
    assert out["text"].strip() and out["tokens"] > 0
    assert out["finish_reason"] in ("stop", "length")
    assert out["engine"]["peak_rss_bytes"] > 50 * 2**20
    buffers = out["engine"]["buffers"]
    assert buffers["weights_bytes"] > 80 * 2**20 and buffers["kv_bytes"] > 0 and buffers["compute_bytes"] > 0
    b = run_cli(*args, basedir=tmp_path / "b")
    assert json.loads(b.stdout)["text"] == out["text"]
    # every file written went under the base dir
    assert (tmp_path / "a" / "logs" / "engine.log").is_file()


def test_generate_streams_text(gemma_path: Path, tmp_path: Path) -> None:
    r = run_cli(
        "generate",
        str(gemma_path),
        "--prompt",
        "The sky is",
        "--seed",
        "1",
        "--max-tokens",
        "8",
        "--ctx",
        "512",
        basedir=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()
    assert "plain completion mode" in r.stderr


def _one_sentence_error(r, pattern: str) -> None:  # type: ignore[no-untyped-def]
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    import re

    assert re.search(pattern, lines[0]), lines[0]


def test_bad_inputs_exit_nonzero_with_one_sentence(tmp_path: Path, smollm2_path: Path) -> None:
    _one_sentence_error(run_cli("generate", str(tmp_path / "missing.gguf"), "--prompt", "hi"), "does not exist")
    junk = tmp_path / "junk.gguf"
    junk.write_text("definitely not a model\n" * 20)
    _one_sentence_error(run_cli("generate", str(junk), "--prompt", "hi"), "not a GGUF model file")
    cut = write_truncated_copy(smollm2_path, tmp_path / "cut.gguf", 40_000_000)
    _one_sentence_error(run_cli("generate", str(cut), "--prompt", "hi"), "incomplete|truncated")
    odd = write_unknown_arch(tmp_path / "odd.gguf")
    _one_sentence_error(run_cli("generate", str(odd), "--prompt", "hi"), "unknown model architecture")
    _one_sentence_error(run_cli("generate", "starter", "--prompt", "   "), "prompt is empty")
    _one_sentence_error(run_cli("generate", "starter", "--prompt", "hi", "--temperature", "5"), "Temperature")


def test_debug_shows_traceback(tmp_path: Path) -> None:
    r = run_cli("--debug", "generate", str(tmp_path / "missing.gguf"), "--prompt", "hi")
    assert r.returncode == 1 and "Traceback" in r.stderr


def test_context_beyond_training_warns(tmp_path: Path) -> None:
    r = run_cli(
        "generate", "starter", "--prompt", "hi", "--ctx", "16384", "--max-tokens", "2", "--seed", "1", basedir=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert "beyond the 8192 tokens" in r.stderr


def test_temp_basedir_leaves_nothing(tmp_path: Path) -> None:
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("sizewise-*"))
    r = run_cli("--temp-basedir", "generate", "starter", "--prompt", "hi", "--max-tokens", "2", "--ctx", "256")
    assert r.returncode == 0, r.stderr
    assert set(Path(tempfile.gettempdir()).glob("sizewise-*")) == before


@pytest.mark.parametrize("flag", ["--basedir", "--temp-basedir"])
def test_global_options_come_before_command(flag: str, tmp_path: Path) -> None:
    args = [flag, str(tmp_path)] if flag == "--basedir" else [flag]
    r = run_cli("generate", "starter", "--prompt", "hi", *args)
    assert r.returncode == 2 and "unrecognized arguments" in r.stderr
