"""The CLI imports only the command it runs; the full parser (help, unknown commands) still has every command."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from sizewise.cli import COMMANDS, build_parser, command_named


def _choices(parser: argparse.ArgumentParser) -> list[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


def test_every_command_module_defines_the_command_it_is_listed_under() -> None:
    assert _choices(build_parser()) == list(COMMANDS)
    for name in COMMANDS:
        assert _choices(build_parser(only=name)) == [name]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["ladder", "--json"], "ladder"),
        (["--basedir", "ladder", "fit", "x.gguf"], "fit"),  # a base dir named like a command is not the command
        (["--debug", "--temp-basedir", "hardware"], "hardware"),
        (["--help"], None),
        ([], None),
        (["no-such-command"], None),
    ],
)
def test_the_command_is_found_after_the_global_options(argv: list[str], expected: str | None) -> None:
    assert command_named(argv) == expected


def test_a_ladder_call_does_not_import_numpy_or_the_other_commands() -> None:
    code = (
        "import sys; from sizewise.cli import build_parser; build_parser(only='ladder'); "
        "print(sorted(m for m in sys.modules if m == 'numpy' or m.startswith('sizewise.commands.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "numpy" not in out and "sizewise.commands.compare" not in out and "sizewise.commands.speed.ladder" in out


def test_an_unknown_command_still_lists_every_command() -> None:
    r = subprocess.run([sys.executable, "-m", "sizewise", "no-such-command"], capture_output=True, text=True)
    assert r.returncode == 2 and "invalid choice" in r.stderr and "quantize" in r.stderr and "ladder" in r.stderr
