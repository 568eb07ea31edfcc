"""Writing help: turn (action, text, language) into a model request, and diff the result by words.

The prompts live in ``resources/writing_actions.json`` so they can be tuned without touching code;
placeholders are filled with plain string replacement (not ``str.format``), so a stray brace in an
edited prompt or in the user's text can never break a request.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from sizewise.core.errors import UserError
from sizewise.core.resources import resource_path
from sizewise.core.sampling import SamplingParams

DiffKind = Literal["equal", "insert", "delete"]

# Words, runs of whitespace, and single punctuation marks: a diff over these reads like an editor's
# markup ("teh" -> "the") instead of a character soup, and joining the pieces gives the text back.
_TOKEN_RE = re.compile(r"\s+|\w+(?:['’]\w+)*|[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class WritingAction:
    id: str
    label: str
    description: str
    instruction: str
    temperature: float
    needs_language: bool = False


@dataclass(frozen=True)
class WritingRequest:
    """What to send to the engine: ``messages`` for chat models, ``prompt`` for completion models."""

    action: WritingAction
    sampling: SamplingParams
    messages: list[dict[str, str]] | None = None
    prompt: str | None = None


def _fill(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


@dataclass(frozen=True)
class WritingCatalog:
    system: str
    user_template: str
    completion_template: str
    languages: tuple[str, ...]
    actions: tuple[WritingAction, ...]

    def get(self, action_id: str) -> WritingAction:
        for action in self.actions:
            if action.id == action_id:
                return action
        known = ", ".join(a.id for a in self.actions)
        raise UserError(f"There is no writing action {action_id!r}; the actions are {known}.")

    def request(
        self,
        action_id: str,
        text: str,
        *,
        language: str | None = None,
        chat: bool = True,
        base: SamplingParams | None = None,
    ) -> WritingRequest:
        """Build the request. ``base`` supplies the user's other settings (seed, samplers);
        the action decides the temperature and a reply length that fits the text."""
        action = self.get(action_id)
        if not text.strip():
            raise UserError("Paste or type some text first.")
        if action.needs_language and not (language and language.strip()):
            raise UserError("Pick a language to translate into.")
        instruction = _fill(action.instruction, language=(language or "").strip())
        base = base or SamplingParams()
        sampling = replace(base, temperature=action.temperature, max_tokens=reply_budget(text, base.max_tokens))
        if chat:
            user = _fill(self.user_template, instruction=instruction, text=text.strip())
            messages = [{"role": "system", "content": self.system}] if self.system.strip() else []
            messages.append({"role": "user", "content": user})
            return WritingRequest(action=action, sampling=sampling, messages=messages)
        prompt = _fill(self.completion_template, instruction=instruction, text=text.strip())
        return WritingRequest(action=action, sampling=sampling, prompt=prompt)


def reply_budget(text: str, at_least: int = 0) -> int:
    """Max tokens for a result: room for twice the text (translations grow) plus a margin.

    Heuristic: about 4 characters per token for English text; the budget only caps a runaway
    reply, so an overestimate costs nothing.
    """
    return max(at_least, 128, 2 * (len(text) // 4) + 64)


def load_catalog(path: Path | None = None) -> WritingCatalog:
    path = path or resource_path("writing_actions.json")
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        actions = tuple(
            WritingAction(
                id=str(a["id"]),
                label=str(a["label"]),
                description=str(a.get("description", "")),
                instruction=str(a["instruction"]),
                temperature=float(a.get("temperature", 0.3)),
                needs_language=bool(a.get("needs_language", False)),
            )
            for a in data["actions"]
        )
        catalog = WritingCatalog(
            system=str(data.get("system", "")),
            user_template=str(data.get("user", "{instruction}\n\n{text}")),
            completion_template=str(data.get("completion", "{instruction}\n\n{text}\n\n")),
            languages=tuple(str(x) for x in data.get("languages", [])),
            actions=actions,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"The writing actions file {path} could not be read: {exc}.") from exc
    for template in (catalog.user_template, catalog.completion_template):
        if "{text}" not in template:
            raise UserError(f"A prompt template in {path.name} lacks the {{text}} placeholder.")
    if not actions:
        raise UserError(f"The writing actions file {path} lists no actions.")
    if any(a.needs_language for a in actions) and not catalog.languages:
        raise UserError(f"The writing actions file {path} needs a list of languages.")
    return catalog


# -- word diff ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DiffSpan:
    kind: DiffKind
    text: str


def split_words(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


def word_diff(original: str, result: str) -> list[DiffSpan]:
    """Spans that rebuild ``original`` (equal + delete) and ``result`` (equal + insert).

    A replacement becomes a delete followed by an insert, and neighbouring spans of one kind are
    merged, so a GUI renders it with one style per span.
    """
    a, b = split_words(original), split_words(result)
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    spans: list[DiffSpan] = []

    def add(kind: DiffKind, pieces: list[str]) -> None:
        text = "".join(pieces)
        if not text:
            return
        if spans and spans[-1].kind == kind:
            spans[-1] = DiffSpan(kind, spans[-1].text + text)
        else:
            spans.append(DiffSpan(kind, text))

    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            add("equal", a[i1:i2])
        else:
            add("delete", a[i1:i2])
            add("insert", b[j1:j2])
    return spans


def rebuild(spans: list[DiffSpan], side: Literal["original", "result"]) -> str:
    skip: DiffKind = "insert" if side == "original" else "delete"
    return "".join(s.text for s in spans if s.kind != skip)


@dataclass(frozen=True)
class DiffSummary:
    words_added: int
    words_removed: int
    words_kept: int

    @property
    def sentence(self) -> str:
        return f"{self.words_added} words added, {self.words_removed} removed, {self.words_kept} kept"


def summarize_diff(spans: list[DiffSpan]) -> DiffSummary:
    def words(kind: str) -> int:
        return sum(len(re.findall(r"\w+", s.text)) for s in spans if s.kind == kind)

    return DiffSummary(words_added=words("insert"), words_removed=words("delete"), words_kept=words("equal"))
