"""``sizewise write``: writing help headless, text in on stdin and the result out on stdout."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sizewise.commands.write import TrimmedStream
from sizewise.core.chat.writing import load_catalog

TEXT = "teh cat sat on teh mat and it were very happy about it\n"


def run_write(
    *args: str, text: str, basedir: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """The real command with ``text`` on stdin (tests/cli_helpers.run_cli leaves stdin alone)."""
    cmd = [sys.executable, "-m", "sizewise"]
    if basedir is not None:
        cmd += ["--basedir", str(basedir)]
    return subprocess.run(
        [*cmd, "write", *args], input=text, capture_output=True, text=True, timeout=timeout, env=dict(os.environ)
    )


def _one_sentence_error(r: subprocess.CompletedProcess[str], pattern: str) -> str:
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


@pytest.mark.slow
def test_write_streams_the_result_of_an_action_to_stdout(tmp_path: Path) -> None:
    r = run_write("grammar", "--seed", "1", "--max-tokens", "40", "--ctx", "512", text=TEXT, basedir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()
    assert r.stdout == r.stdout.strip() + "\n"  # trimmed as the writing view trims it, then one newline
    # the action decided the temperature (0.1 for grammar); the figures went to stderr
    assert re.search(r"\[Fix grammar and spelling: \d+ tokens, .*temperature 0\.1, seed 1, (stop|length)\]", r.stderr)


@pytest.mark.slow
def test_write_with_a_model_without_chat_template_uses_the_completion_prompt(tmp_path: Path, gemma_path: Path) -> None:
    r = run_write(
        "shorten", str(gemma_path), "--seed", "1", "--max-tokens", "16", "--ctx", "512", text=TEXT, basedir=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert "no chat template; using the plain completion prompt" in r.stderr
    assert r.stdout.endswith("\n")


def test_write_list_shows_every_action_with_its_description() -> None:
    r = run_write("--list", text="")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    catalog = load_catalog()
    assert len(lines) == len(catalog.actions)
    for line, action in zip(lines, catalog.actions, strict=True):
        assert line.startswith(action.id + " ") and action.description in line
    assert "needs --language" in next(line for line in lines if line.startswith("translate"))


def test_write_bad_inputs_exit_nonzero_with_one_sentence() -> None:
    _one_sentence_error(run_write("clearer", text=""), "no text on stdin")
    _one_sentence_error(run_write("clearer", text="  \n\t\n"), "no text on stdin")
    line = _one_sentence_error(run_write("poeticize", text=TEXT), "no writing action 'poeticize'")
    assert all(a.id in line for a in load_catalog().actions)  # names every valid action
    _one_sentence_error(run_write("translate", text=TEXT), "needs a language.*--language")
    _one_sentence_error(run_write(text=TEXT), "Name a writing action")
    _one_sentence_error(run_write("clearer", "--system", "be brief", text=TEXT), "--system does not apply")
    _one_sentence_error(run_write("clearer", "--temperature", "5", text=TEXT), "Temperature")
    _one_sentence_error(run_write("clearer", "/nowhere/missing.gguf", text=TEXT), "does not exist")


def test_trimmed_stream_writes_as_it_goes_without_outer_blank_space(capsys: pytest.CaptureFixture[str]) -> None:
    out = TrimmedStream()
    seen = []
    for piece in ["\n ", "  Hello", " world", "  \n", "!", "\n\n", " "]:
        out.write(piece)
        seen.append(capsys.readouterr().out)
    assert seen == ["", "Hello", " world", "", "  \n!", "", ""]
    assert out.written == len("Hello world  \n!")
