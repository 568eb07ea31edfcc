"""Sampling presets that teach: Precise, Balanced, Creative, and the user's own.

The built-in presets live in ``resources/presets.json`` (one line of explanation each, so the
picker can say what a preset is *for*); presets a user saves go to ``presets.json`` in the config
folder. A preset sets only the fields that change the *character* of a reply (temperature and the
truncation samplers); the reply length and the seed stay whatever the user chose.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sizewise.core.atomic import write_text_atomic
from sizewise.core.errors import UserError
from sizewise.core.resources import resource_path
from sizewise.core.sampling import SamplingParams

PRESET_FIELDS = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty")
USER_PRESETS_VERSION = 1
MAX_NAME = 40

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preset:
    name: str
    explanation: str
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    builtin: bool = True

    def apply(self, base: SamplingParams) -> SamplingParams:
        """``base`` with this preset's character; max_tokens and seed are kept."""
        return replace(base, **self.values())

    def values(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in PRESET_FIELDS}

    def matches(self, sampling: SamplingParams) -> bool:
        return all(abs(float(getattr(sampling, f)) - float(getattr(self, f))) < 1e-9 for f in PRESET_FIELDS)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "explanation": self.explanation, "sampling": self.values()}

    @classmethod
    def from_json(cls, data: Any, *, builtin: bool, source: str) -> Preset:
        if not isinstance(data, dict) or not isinstance(data.get("sampling"), dict):
            raise UserError(f"A preset in {source} is not an object with 'name' and 'sampling'.")
        name = str(data.get("name") or "").strip()
        if not name:
            raise UserError(f"A preset in {source} has no name.")
        base = SamplingParams()
        sampling = {f: data["sampling"].get(f, getattr(base, f)) for f in PRESET_FIELDS}
        try:
            params = SamplingParams(**sampling)
            params.validate()
        except (TypeError, ValueError) as exc:
            raise UserError(f"The preset {name!r} in {source} is invalid: {exc}") from exc
        return cls(
            name=name,
            explanation=str(data.get("explanation") or "").strip(),
            temperature=float(params.temperature),
            top_p=float(params.top_p),
            top_k=int(params.top_k),
            min_p=float(params.min_p),
            repeat_penalty=float(params.repeat_penalty),
            builtin=builtin,
        )


def load_builtin_presets(path: Path | None = None) -> tuple[list[Preset], str]:
    """The built-in presets and the name of the default one."""
    path = path or resource_path("presets.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"The presets file {path} could not be read: {exc}.") from exc
    presets = [Preset.from_json(p, builtin=True, source=path.name) for p in data.get("presets") or []]
    if not presets:
        raise UserError(f"The presets file {path} lists no presets.")
    default = str(data.get("default") or presets[0].name)
    if default not in {p.name for p in presets}:
        default = presets[0].name
    return presets, default


class PresetLibrary:
    """Built-in presets plus the user's own, saved atomically under the config folder.

    A damaged user file is moved aside (never overwritten) and ``problem`` says so, the same
    policy as the settings file.
    """

    def __init__(self, config_dir: Path, builtin_file: Path | None = None) -> None:
        self.user_file = config_dir / "presets.json"
        self.problem: str | None = None
        self.builtin, self.default_name = load_builtin_presets(builtin_file)
        self.user: list[Preset] = self._load_user()

    def _load_user(self) -> list[Preset]:
        if not self.user_file.exists():
            return []
        try:
            data = json.loads(self.user_file.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or int(data.get("version", 1)) > USER_PRESETS_VERSION:
                raise ValueError("not a presets file this Sizewise understands")
            builtin_names = {p.name.casefold() for p in self.builtin}
            return [
                p
                for p in (Preset.from_json(d, builtin=False, source=self.user_file.name) for d in data["presets"])
                if p.name.casefold() not in builtin_names
            ]
        except (OSError, ValueError, TypeError, KeyError, UserError) as exc:
            backup = self.user_file.with_name(f"{self.user_file.name}.unreadable-{int(time.time())}")
            try:
                self.user_file.replace(backup)
                self.problem = f"Your saved presets could not be read ({exc}); the file was kept as {backup.name}."
            except OSError:
                self.problem = f"Your saved presets could not be read ({exc})."
            log.warning("%s", self.problem)
            return []

    def all(self) -> list[Preset]:
        return [*self.builtin, *self.user]

    def get(self, name: str) -> Preset | None:
        key = name.casefold()
        return next((p for p in self.all() if p.name.casefold() == key), None)

    def default(self) -> Preset:
        found = self.get(self.default_name)
        assert found is not None
        return found

    def preset_for(self, sampling: SamplingParams) -> Preset | None:
        """The preset these settings equal, if any (so a picker can show 'Custom' otherwise)."""
        return next((p for p in self.all() if p.matches(sampling)), None)

    def save(self, name: str, explanation: str, sampling: SamplingParams) -> Preset:
        """Save (or replace) a user preset; a built-in name is refused so the teaching presets stay."""
        name = " ".join(name.split())
        if not name:
            raise UserError("Give the preset a name.")
        if len(name) > MAX_NAME:
            raise UserError(f"Preset names can be at most {MAX_NAME} characters long.")
        if any(p.name.casefold() == name.casefold() for p in self.builtin):
            raise UserError(f"{name!r} is a built-in preset; choose another name.")
        try:
            sampling.validate()
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        preset = Preset(
            name=name,
            explanation=" ".join(explanation.split()),
            builtin=False,
            **{f: getattr(sampling, f) for f in PRESET_FIELDS},
        )
        self.user = [p for p in self.user if p.name.casefold() != name.casefold()] + [preset]
        self._write()
        return preset

    def delete(self, name: str) -> None:
        if any(p.name.casefold() == name.casefold() for p in self.builtin):
            raise UserError(f"{name!r} is a built-in preset and cannot be deleted.")
        before = len(self.user)
        self.user = [p for p in self.user if p.name.casefold() != name.casefold()]
        if len(self.user) == before:
            raise UserError(f"There is no saved preset named {name!r}.")
        self._write()

    def _write(self) -> None:
        data = {"version": USER_PRESETS_VERSION, "presets": [p.to_json() for p in self.user]}
        write_text_atomic(self.user_file, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
