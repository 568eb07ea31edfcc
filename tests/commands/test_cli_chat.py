"""``sizewise chat`` and ``sizewise history`` through the real command line and the starter model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.cli_helpers import run_cli

CHAT = ("--seed", "1", "--temperature", "0", "--max-tokens", "12", "--ctx", "512")


def test_chat_appends_and_history_shows_exports_and_imports(tmp_path: Path) -> None:
    base = tmp_path / "base"
    first = run_cli("chat", "starter", "--conversation", "Colours", "--prompt", "Name a colour.", *CHAT, basedir=base)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() and "Colours:" in first.stderr and "tok/s" in first.stderr
    second = run_cli(
        "chat", "starter", "--conversation", "colours", "--prompt", "Name another one.", *CHAT, basedir=base
    )  # the title is matched ignoring case: the same conversation goes on
    assert second.returncode == 0, second.stderr

    listed = run_cli("history", "list", "--json", basedir=base)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["title"], r["messages"], r["preset"]) for r in rows] == [("Colours", 4, "")]

    exported = run_cli("history", "export", "Colours", "--format", "json", basedir=base)
    assert exported.returncode == 0, exported.stderr
    conv = json.loads(exported.stdout)
    assert conv["title"] == "Colours"
    msgs = conv["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert msgs[0]["content"] == "Name a colour." and msgs[2]["content"] == "Name another one."
    # what was saved is exactly what was streamed to the terminal
    assert msgs[1]["content"] == first.stdout[:-1] and msgs[3]["content"] == second.stdout[:-1]
    for reply in (msgs[1], msgs[3]):
        assert reply["status"] == "complete" and reply["model"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
        assert reply["sampling"]["temperature"] == 0 and reply["sampling"]["seed"] == 1
        assert reply["stats"]["tokens"] > 0 and reply["stats"]["tg_tps"] > 0
    # the second reply was written with the first exchange in its prompt
    assert msgs[3]["stats"]["prompt_tokens"] > msgs[1]["stats"]["prompt_tokens"] + 5

    md = run_cli("history", "export", "Colours", "--format", "md", basedir=base)
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith("# Colours\n") and "### You\n\nName a colour." in md.stdout
    assert f"### Assistant\n\n{msgs[1]['content'].rstrip()}" in md.stdout
    shown = run_cli("history", "show", "Colours", basedir=base)
    assert shown.returncode == 0 and shown.stdout == md.stdout

    backup = tmp_path / "all.json"
    assert run_cli("history", "export", "--all", "--output", str(backup), basedir=base).returncode == 0
    other = tmp_path / "other"
    imported = run_cli("history", "import", str(backup), basedir=other)
    assert imported.returncode == 0, imported.stderr
    assert "Imported 1 conversation (4 messages); 0 already here" in imported.stdout
    again = run_cli("history", "import", str(backup), basedir=other)
    assert "Imported 0 conversations (0 messages); 1 already here" in again.stdout
    copy = json.loads(run_cli("history", "export", "Colours", "--format", "json", basedir=other).stdout)
    assert copy["messages"] == msgs


def test_chat_with_a_system_prompt_and_preset(tmp_path: Path) -> None:
    r = run_cli(
        "chat",
        "starter",
        "--conversation",
        "Terse",
        "--prompt",
        "Hi",
        "--system",
        "Answer in one word.",
        "--preset",
        "precise",
        "--seed",
        "2",
        "--max-tokens",
        "6",
        "--ctx",
        "512",
        basedir=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    conv = json.loads(run_cli("history", "export", "Terse", "--format", "json", basedir=tmp_path).stdout)
    assert conv["system_prompt"] == "Answer in one word." and conv["preset"] == "Precise"
    assert conv["messages"][1]["sampling"]["temperature"] == 0.2


def _one_line_error(r, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_a_damaged_database_stops_chat_and_is_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "data" / "conversations.sqlite3"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"\x00garbage" * 512)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    r = run_cli("chat", "starter", "--conversation", "X", "--prompt", "Hi", *CHAT, basedir=tmp_path)
    _one_line_error(r, "is damaged", "left untouched", str(db))
    _one_line_error(run_cli("history", "list", basedir=tmp_path), "is damaged")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_unknown_titles_and_presets_are_explained(tmp_path: Path) -> None:
    _one_line_error(run_cli("history", "show", "Nope", basedir=tmp_path), "no conversation titled 'Nope'")
    _one_line_error(
        run_cli("chat", "starter", "--conversation", "X", "--prompt", "Hi", "--preset", "Wild", basedir=tmp_path),
        "no preset named 'Wild'",
        "Precise, Balanced, Creative",
    )
    _one_line_error(run_cli("chat", "starter", "--conversation", "X", "--prompt", "  ", basedir=tmp_path), "empty")


def test_a_fixed_seed_gives_the_same_reply_in_two_new_conversations(tmp_path: Path) -> None:
    """README: "With a fixed --seed the same prompt and settings give the same text" — for chat too."""
    replies = []
    for title in ("first", "second"):
        out = run_cli(
            "chat", "starter", "--conversation", title, "--prompt", "Name a colour.",
            "--seed", "77", "--temperature", "1.0", "--max-tokens", "30", basedir=tmp_path,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        replies.append(out.stdout.strip())
    assert replies[0] and replies[0] == replies[1]
