"""``--gpu-layers N|auto`` is one flag with one meaning in every command that loads a model."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sizewise.cli import build_parser
from sizewise.commands import parse_gpu_layers
from sizewise.commands.compare import plan_specs
from sizewise.core.errors import UserError
from sizewise.core.sampling import LoadParams
from tests.cli_helpers import run_cli

LOADING = {
    "generate": ["m.gguf", "--prompt", "hi"],
    "chat": ["m.gguf", "--conversation", "c", "--prompt", "hi"],
    "write": ["summarize", "m.gguf"],
    "compare": ["a.gguf", "b.gguf", "--prompt", "hi"],
    "bench": ["m.gguf"],
    "fit": ["m.gguf"],
}


@pytest.mark.parametrize("command", sorted(LOADING))
def test_every_loading_command_takes_a_number_or_auto(command: str) -> None:
    parser = build_parser(only=command)
    for value, expected in (("auto", "auto"), ("AUTO", "auto"), ("12", 12), ("-1", -1)):
        args = parser.parse_args([command, *LOADING[command], "--gpu-layers", value])
        assert parse_gpu_layers(args.gpu_layers) == expected


def test_a_bad_value_is_one_sentence() -> None:
    with pytest.raises(UserError, match=r"--gpu-layers takes a number or 'auto', not 'many'\."):
        parse_gpu_layers("many")


def test_compare_passes_auto_to_every_run(smollm2_path: Path) -> None:
    specs, _ = plan_specs([str(smollm2_path)] * 2, None, LoadParams(), "auto")
    assert [s.gpu_layers for s in specs] == ["auto", "auto"]
    specs, _ = plan_specs([str(smollm2_path)], "0.2,0.8", LoadParams(n_gpu_layers=5))
    assert [s.gpu_layers for s in specs] == [5, 5]


def test_generate_auto_loads_with_the_layers_it_names(smollm2_path: Path, tmp_path: Path) -> None:
    """On this (CPU) build auto resolves through the same fit check as ``sizewise fit``; the note on stderr and the
    settings in --json agree with what was loaded."""
    args = ("generate", str(smollm2_path), "--prompt", "Hi", "--max-tokens", "2", "--temperature", "0", "--json")
    result = run_cli(*args, "--gpu-layers", "auto", basedir=tmp_path)
    assert result.returncode == 0, result.stderr
    note = re.search(r"GPU layers auto: (\d+) of 31 ", result.stderr)
    assert note, result.stderr
    out = json.loads(result.stdout)
    assert out["settings"]["load"]["n_gpu_layers"] == int(note[1])
    fit = json.loads(run_cli("fit", str(smollm2_path), "--json", basedir=tmp_path).stdout)
    assert fit["gpu_layers"] == int(note[1])  # the same choice as sizewise fit's default, auto
    bad = run_cli("generate", str(smollm2_path), "--prompt", "Hi", "--gpu-layers", "many", basedir=tmp_path)
    assert bad.returncode != 0 and "--gpu-layers takes a number or 'auto', not 'many'." in bad.stderr


@pytest.mark.parametrize("command", ["chat", "write"])
def test_chat_and_write_resolve_auto_too(command: str, smollm2_path: Path, tmp_path: Path) -> None:
    common = ("--gpu-layers", "auto", "--max-tokens", "2", "--temperature", "0")
    if command == "chat":
        result = run_cli("chat", str(smollm2_path), "--conversation", "t", "--prompt", "Hi", *common, basedir=tmp_path)
    else:
        cmd = [sys.executable, "-m", "sizewise", "--basedir", str(tmp_path), "write", "shorten", str(smollm2_path)]
        result = subprocess.run(
            [*cmd, *common], input="A long sentence.", capture_output=True, text=True, timeout=300, env=os.environ
        )
    assert result.returncode == 0, result.stderr
    assert re.search(r"GPU layers auto: \d+ of 31 ", result.stderr), result.stderr
