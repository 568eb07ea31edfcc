"""User settings in one versioned JSON file, written atomically.

A file from a newer Sizewise, or a damaged one, is never overwritten silently: it is moved aside
with a note so the user can recover it, and defaults are used.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sizewise.core.atomic import write_text_atomic
from sizewise.core.sampling import LoadParams, SamplingParams

SETTINGS_VERSION = 1
MAX_RECENT = 10

log = logging.getLogger(__name__)


@dataclass
class Settings:
    sampling: SamplingParams = field(default_factory=SamplingParams)
    load: LoadParams = field(default_factory=LoadParams)
    system_prompt: str = ""
    last_model: str | None = None
    recent_models: list[str] = field(default_factory=list)
    window_geometry: str | None = None  # base64 of QWidget.saveGeometry(); opaque to the core
    window_state: str | None = None

    def remember_model(self, path: str) -> None:
        self.last_model = path
        self.recent_models = [path] + [p for p in self.recent_models if p != path]
        del self.recent_models[MAX_RECENT:]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": SETTINGS_VERSION,
            "sampling": self.sampling.to_dict(),
            "load": self.load.to_dict(),
            "system_prompt": self.system_prompt,
            "last_model": self.last_model,
            "recent_models": list(self.recent_models),
            "window_geometry": self.window_geometry,
            "window_state": self.window_state,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settings:
        data = migrate(data)
        s = cls()
        if isinstance(data.get("sampling"), dict):
            s.sampling = SamplingParams.from_dict(data["sampling"])
        if isinstance(data.get("load"), dict):
            s.load = LoadParams.from_dict(data["load"])
        s.system_prompt = str(data.get("system_prompt") or "")
        s.last_model = data.get("last_model") or None
        s.recent_models = [str(p) for p in data.get("recent_models") or []][:MAX_RECENT]
        s.window_geometry = data.get("window_geometry") or None
        s.window_state = data.get("window_state") or None
        return s


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring an older file up to SETTINGS_VERSION; one step per version keeps each change small."""
    version = int(data.get("version", 1))
    if version > SETTINGS_VERSION:
        raise ValueError(f"settings version {version} is newer than this Sizewise understands")
    return data


class SettingsStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.problem: str | None = None  # shown to the user when the file could not be read

    def load(self) -> Settings:
        if not self.path.exists():
            return Settings()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return Settings.from_json(data)
        except (OSError, ValueError, TypeError) as exc:
            backup = self.path.with_name(f"{self.path.name}.unreadable-{int(time.time())}")
            try:
                self.path.replace(backup)
                self.problem = (
                    f"Settings could not be read ({exc}); defaults are in use and the old file "
                    f"was kept as {backup.name}."
                )
            except OSError:
                self.problem = f"Settings could not be read ({exc}); defaults are in use."
            log.warning("%s", self.problem)
            return Settings()

    def save(self, settings: Settings) -> None:
        write_text_atomic(self.path, json.dumps(settings.to_json(), indent=2, sort_keys=True) + "\n")
