"""What a conversation is, as plain data: the records the store returns and the file formats write.

It exists so the store (``store.py``) and the export formats (``export.py``) can share these
definitions without importing each other: both import this module, which imports nothing of theirs.
Nothing here touches SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

DEFAULT_TITLE = "New conversation"
ROLES = ("system", "user", "assistant")
STATUSES = ("complete", "interrupted", "streaming")

Status = Literal["complete", "interrupted", "streaming"]


@dataclass(frozen=True)
class Conversation:
    id: int
    uid: str
    title: str
    system_prompt: str
    preset: str
    created_at: float
    updated_at: float
    deleted_at: float | None = None
    message_count: int = 0


@dataclass(frozen=True)
class StoredMessage:
    id: int
    uid: str
    conversation_id: int
    position: int
    role: str
    content: str
    status: str
    model_path: str
    sampling: dict[str, Any]
    stats: dict[str, Any]
    created_at: float
    updated_at: float

    def for_chat(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class SearchHit:
    conversation: Conversation
    snippet: str  # where the words were found ("" for a title-only match)
    in_title: bool


@dataclass(frozen=True)
class ImportResult:
    imported: int
    skipped: int  # already present (same uid): importing a file twice adds nothing
    messages: int
