"""Conversations as files: JSON and Markdown export, and reading an export back for import.

Kept apart from the SQLite store so the file formats can be read (and tested) on their own.
JSON keeps everything the store knows (uids, model, sampling settings, speed figures, status), so
an export imported elsewhere is the same conversation, and importing it twice is recognised.
Markdown is for people: headings per speaker, figures in a small italic line.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sizewise.core.chat.records import DEFAULT_TITLE, ROLES, Conversation, StoredMessage
from sizewise.core.errors import UserError

EXPORT_FORMAT = "sizewise-conversations"
EXPORT_VERSION = 1
SPEAKERS = {"user": "You", "assistant": "Assistant", "system": "System"}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def from_iso(value: Any, default: float) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return default
    return default


def conversation_to_json(conv: Conversation, messages: list[StoredMessage]) -> dict[str, Any]:
    return {
        "uid": conv.uid,
        "title": conv.title,
        "system_prompt": conv.system_prompt,
        "preset": conv.preset,
        "created_at": iso(conv.created_at),
        "updated_at": iso(conv.updated_at),
        "messages": [
            {
                "uid": m.uid,
                "role": m.role,
                "content": m.content,
                "status": m.status,
                "model": m.model_path,
                "sampling": m.sampling,
                "stats": m.stats,
                "created_at": iso(m.created_at),
            }
            for m in messages
        ],
    }


def all_to_json(conversations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": iso(time.time()),
        "conversations": conversations,
    }


def conversation_to_markdown(conv: Conversation, messages: list[StoredMessage]) -> str:
    lines = [f"# {conv.title}", ""]
    meta = f"Exported from Sizewise · started {iso(conv.created_at)[:16].replace('T', ' ')} UTC"
    if conv.preset:
        meta += f" · preset {conv.preset}"
    lines += [f"*{meta}*", ""]
    if conv.system_prompt.strip():
        lines += ["**System prompt:**", ""] + [f"> {ln}" for ln in conv.system_prompt.splitlines()] + [""]
    for m in messages:
        lines += [f"### {SPEAKERS.get(m.role, m.role)}", "", m.content.rstrip(), ""]
        notes = []
        if m.model_path:
            notes.append(Path(m.model_path).name)
        if m.stats.get("tokens"):
            notes.append(f"{m.stats['tokens']} tokens")
        if m.stats.get("tg_tps"):
            notes.append(f"{float(m.stats['tg_tps']):.1f} tokens/s")
        if m.status != "complete":
            notes.append(m.status)
        if notes:
            lines += [f"*{' · '.join(notes)}*", ""]
    return "\n".join(lines).rstrip() + "\n"


def parse_import(data: Any, source: str) -> list[dict[str, Any]]:
    """Validate an import file into plain dicts with every field present."""

    def bad(why: str) -> UserError:
        return UserError(f"{source} is not a Sizewise conversation export: {why}.")

    if isinstance(data, dict) and "conversations" in data:
        if data.get("format") not in (None, EXPORT_FORMAT):
            raise bad(f"its format is {data.get('format')!r}")
        if int(data.get("version", 1)) > EXPORT_VERSION:
            raise bad(f"it was written by a newer Sizewise (version {data.get('version')})")
        raw = data["conversations"]
    elif isinstance(data, dict) and "messages" in data:
        raw = [data]
    else:
        raise bad("it has neither 'conversations' nor 'messages'")
    if not isinstance(raw, list):
        raise bad("'conversations' is not a list")
    now = time.time()
    out: list[dict[str, Any]] = []
    for n, conv in enumerate(raw, 1):
        if not isinstance(conv, dict) or not isinstance(conv.get("messages"), list):
            raise bad(f"conversation {n} has no list of messages")
        title = " ".join(str(conv.get("title") or "").split()) or DEFAULT_TITLE
        messages = []
        for k, m in enumerate(conv["messages"], 1):
            if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
                raise bad(f"message {k} of {title!r} needs a role (system, user or assistant) and text content")
            status = m.get("status") if m.get("status") in ("complete", "interrupted") else "complete"
            if m.get("status") == "streaming":
                status = "interrupted"
            messages.append(
                {
                    "uid": str(m.get("uid") or ""),
                    "role": m["role"],
                    "content": m["content"],
                    "status": status,
                    "model": str(m.get("model") or ""),
                    "sampling": m["sampling"] if isinstance(m.get("sampling"), dict) else {},
                    "stats": m["stats"] if isinstance(m.get("stats"), dict) else {},
                    "created_at": from_iso(m.get("created_at"), now),
                }
            )
        uid = str(conv.get("uid") or "")
        if not uid:  # derived from the content, so the same file imported twice is recognised
            digest = hashlib.sha256(
                json.dumps([title, [(m["role"], m["content"]) for m in messages]], ensure_ascii=False).encode()
            )
            uid = "import-" + digest.hexdigest()[:32]
        for k, m in enumerate(messages):
            if not m["uid"]:
                m["uid"] = f"{uid}-{k}"
        created = from_iso(conv.get("created_at"), now)
        out.append(
            {
                "uid": uid,
                "title": title,
                "system_prompt": str(conv.get("system_prompt") or ""),
                "preset": str(conv.get("preset") or ""),
                "created_at": created,
                "updated_at": from_iso(conv.get("updated_at"), created),
                "messages": messages,
            }
        )
    return out


def read_import_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{path} could not be read: {exc.strerror or exc}.") from exc
    except ValueError as exc:
        raise UserError(f"{path} is not valid JSON: {exc}.") from exc
