"""Ships the top-level ``resources/`` folder inside the package as ``sizewise/resources/``.

Everything else about the package is declared in pyproject.toml. The data files (presets, targets,
writing prompts, icons, the .desktop entry, licenses) live at the top of the repository so they can
be edited without touching code, but a wheel can only carry files inside a package: this copies them
there at build time, where ``sizewise.core.resources`` looks first. Editable installs and the source
checkout find the top-level folder directly; the PyInstaller bundle copies it in packaging/sizewise.spec.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RESOURCES = Path(__file__).resolve().parent / "resources"


class BuildPyWithResources(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # the editable package reads the checkout's resources/ directly
            return
        target = Path(self.build_lib) / "sizewise" / "resources"
        shutil.copytree(RESOURCES, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))


setup(cmdclass={"build_py": BuildPyWithResources})
