"""Every path the app writes comes from here, so one switch (--basedir) can redirect all of them.

Tests and smoke runs use a temporary base dir and leave the user's real profile alone
(the qutebrowser pattern).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from sizewise import APP_NAME


@dataclass(frozen=True)
class AppPaths:
    config_dir: Path
    data_dir: Path
    cache_dir: Path
    log_dir: Path
    hf_home: Path | None  # None: use huggingface_hub's own default (HF_HOME or ~/.cache/huggingface)
    temporary: bool = False

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def database_file(self) -> Path:
        return self.data_dir / "conversations.sqlite3"

    def ensure(self) -> AppPaths:
        for d in (self.config_dir, self.data_dir, self.cache_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        if self.hf_home is not None:
            self.hf_home.mkdir(parents=True, exist_ok=True)
        return self

    def cleanup(self) -> None:
        """Remove a temporary base dir; a real profile is never removed."""
        if self.temporary:
            shutil.rmtree(self.config_dir.parent, ignore_errors=True)


def default_paths() -> AppPaths:
    return AppPaths(
        config_dir=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        data_dir=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        cache_dir=Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
        log_dir=Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
        hf_home=None,
    )


def basedir_paths(basedir: str | os.PathLike[str], *, temporary: bool = False) -> AppPaths:
    base = Path(basedir).expanduser().resolve()
    return AppPaths(
        config_dir=base / "config",
        data_dir=base / "data",
        cache_dir=base / "cache",
        log_dir=base / "logs",
        hf_home=base / "huggingface",
        temporary=temporary,
    )


def temporary_paths() -> AppPaths:
    return basedir_paths(tempfile.mkdtemp(prefix="sizewise-"), temporary=True)


def resolve_paths(basedir: str | None, temp_basedir: bool) -> AppPaths:
    if temp_basedir:
        return temporary_paths().ensure()
    if basedir:
        return basedir_paths(basedir).ensure()
    return default_paths().ensure()
