"""Turning a stored conversation into what the engine is sent.

Chat templates are strict: several (Gemma's among them) raise an error unless user and assistant
turns alternate, and an empty turn confuses small models. A stored conversation can break both
rules without anyone doing anything wrong — a reply that failed before its first token is stored
empty, leaving two user messages in a row — so the history is normalised here, in one place, for
the CLI and the GUI alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol


class _Turn(Protocol):
    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...


def chat_messages(system_prompt: str, turns: Iterable[_Turn]) -> list[dict[str, str]]:
    """``[{role, content}]`` for a chat template: system prompt first, empty turns left out,
    consecutive turns of one speaker joined (blank line between) so roles alternate."""
    out: list[dict[str, str]] = []
    if system_prompt.strip():
        out.append({"role": "system", "content": system_prompt.strip()})
    for turn in turns:
        if turn.role not in ("user", "assistant") or not turn.content.strip():
            continue
        if out and out[-1]["role"] == turn.role:
            out[-1] = {"role": turn.role, "content": out[-1]["content"] + "\n\n" + turn.content}
        else:
            out.append({"role": turn.role, "content": turn.content})
    return out


SPEAKER_PREFIX = {"system": "", "user": "User: ", "assistant": "Assistant: "}


def transcript_prompt(messages: Sequence[dict[str, str]]) -> str:
    """A plain-text prompt for models without a chat template (base models continue text):
    the turns as a transcript ending with 'Assistant:' for the model to carry on."""
    lines = [SPEAKER_PREFIX.get(m["role"], "") + m["content"].strip() for m in messages]
    return "\n\n".join(lines) + "\n\nAssistant:"
