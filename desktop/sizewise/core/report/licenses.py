"""Which third-party components ship with Sizewise, under which licenses, and where their texts are.

Two sources, one answer. A pip or source install reads the installed packages' own metadata
(``License-Expression``, ``License``, classifiers, and the license files in each ``.dist-info``), so
the list is always the one really installed. A PyInstaller bundle has no ``.dist-info`` folders: at
build time packaging/collect_licenses.py writes the same list, with copies of the texts, to
``licenses/index.json`` among the bundled resources, and that file wins when it exists.

Components that are not Python packages (llama.cpp's C/C++ library, Qt) or whose wheels carry no
license file (nvidia-ml-py) have hand-collected texts in ``resources/licenses/``.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from sizewise.core.errors import UserError
from sizewise.core.resources import resource_path

INDEX_NAME = "licenses/index.json"
ROOT_DISTRIBUTION = "sizewise"
_TEXT_FILE_RE = re.compile(r"(^|/)(LICEN[CS]E|COPYING|NOTICE|AUTHORS)[^/]*$", re.IGNORECASE)


@dataclass(frozen=True)
class Component:
    name: str
    version: str
    license: str  # SPDX expression where the package gives one, else its own words
    role: str = ""  # why it is there, in a few words
    text_paths: tuple[str, ...] = field(default_factory=tuple)  # absolute, or relative to the index
    note: str = ""

    def texts(self, base: Path | None = None) -> str:
        """The license texts, concatenated; a sentence instead when none could be found."""
        parts = []
        for p in self.text_paths:
            path = Path(p) if base is None or Path(p).is_absolute() else base / p
            try:
                parts.append(path.read_text(encoding="utf-8", errors="replace"))
            except OSError:
                continue
        if not parts:
            return f"No license text was found for {self.name}; its metadata says: {self.license}."
        return "\n\n".join(parts)


# Not Python packages, or packages that ship no license file: texts collected by hand in resources/licenses.
STATIC_COMPONENTS: tuple[tuple[str, str, str, str], ...] = (
    # (name, license, role, file under resources/licenses)
    ("llama.cpp / ggml", "MIT", "the inference library (C/C++), compiled into llama-cpp-python", "llama.cpp.txt"),
    ("Qt 6", "LGPL-3.0-only", "the GUI toolkit (shared libraries inside PySide6)", "Qt-PySide6-LGPL-3.0.txt"),
)
# Distributions whose wheels carry no license text; the hand-collected file stands in.
STATIC_TEXTS = {
    "nvidia-ml-py": "nvidia-ml-py.txt",
    "pyside6-essentials": "Qt-PySide6-LGPL-3.0.txt",
    "shiboken6": "Qt-PySide6-LGPL-3.0.txt",
}
ROLES = {
    "llama-cpp-python": "Python bindings for llama.cpp",
    "pyside6-essentials": "Qt for Python (the GUI)",
    "shiboken6": "Qt for Python's binding runtime",
    "huggingface-hub": "model search and downloads",
    "pyqtgraph": "charts",
    "gguf": "GGUF header reading",
    "psutil": "memory and CPU figures",
    "platformdirs": "where settings and data live",
    "nvidia-ml-py": "NVIDIA GPU memory figures",
    "markdown-it-py": "Markdown in chat replies",
    "numpy": "arrays for gguf and pyqtgraph",
}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _field(meta: metadata.PackageMetadata, key: str) -> str | None:
    """A header or None (``meta[key]`` on a missing key is deprecated since Python 3.12)."""
    values = meta.get_all(key)
    return str(values[0]) if values else None


def license_of(meta: metadata.PackageMetadata) -> str:
    """The declared license: the SPDX expression, else a short License field, else the classifiers."""
    expr = _field(meta, "License-Expression")
    if expr:
        return expr.strip()
    text = (_field(meta, "License") or "").strip()
    if text and "\n" not in text and len(text) <= 80:
        return text
    all_classifiers = meta.get_all("Classifier") or []
    classifiers = [c.rsplit("::", 1)[-1].strip() for c in all_classifiers if c.startswith("License ::")]
    if classifiers:
        return " / ".join(classifiers)
    return "unknown (not declared in the package metadata)"


def runtime_distributions(root: str = ROOT_DISTRIBUTION) -> list[metadata.Distribution]:
    """The installed run-time dependency closure of ``root`` (extras and other platforms' markers skipped)."""
    from packaging.requirements import InvalidRequirement, Requirement

    found: dict[str, metadata.Distribution] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        key = normalise(name)
        if key in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found[key] = dist
        for line in dist.requires or []:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            todo.append(req.name)
    found.pop(normalise(root), None)
    return sorted(found.values(), key=lambda d: normalise(d.metadata["Name"]))


def _license_files(dist: metadata.Distribution) -> list[Path]:
    out = []
    for f in dist.files or []:
        posix = f.as_posix()
        if ".dist-info/" in posix and _TEXT_FILE_RE.search(posix):
            path = Path(str(dist.locate_file(f)))
            if path.is_file():
                out.append(path)
    return out


def _static_path(file_name: str) -> str | None:
    try:
        return str(resource_path(f"licenses/{file_name}"))
    except UserError:
        return None


def _python_component() -> Component:
    version = ".".join(str(v) for v in sys.version_info[:3])
    candidates = [
        Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "LICENSE.txt",
        Path(sys.base_prefix) / "LICENSE.txt",
    ]
    paths = tuple(str(p) for p in candidates if p.is_file())[:1]
    return Component("Python", version, "PSF-2.0", "the interpreter", paths)


def installed_components() -> list[Component]:
    """Live, from the installed packages' metadata plus the hand-collected texts."""
    out = [_python_component()]
    for name, lic, role, file_name in STATIC_COMPONENTS:
        static = _static_path(file_name)
        out.append(Component(name, "", lic, role, (static,) if static else ()))
    for dist in runtime_distributions():
        key = normalise(dist.metadata["Name"])
        paths = [str(p) for p in _license_files(dist)]
        if key in STATIC_TEXTS and not paths:
            static = _static_path(STATIC_TEXTS[key])
            paths = [static] if static else []
        out.append(
            Component(dist.metadata["Name"], dist.version, license_of(dist.metadata), ROLES.get(key, ""), tuple(paths))
        )
    return out


@dataclass(frozen=True)
class LicenseList:
    components: list[Component]
    base: Path | None  # the folder relative text paths are read from (the index's), or None
    source: str  # "bundle index" | "installed package metadata"

    def text(self, component: Component) -> str:
        return component.texts(self.base)


def load_index(path: Path) -> LicenseList:
    data = json.loads(path.read_text(encoding="utf-8"))
    comps = [
        Component(
            name=str(c["name"]),
            version=str(c.get("version", "")),
            license=str(c["license"]),
            role=str(c.get("role", "")),
            text_paths=tuple(str(p) for p in c.get("text_paths", [])),
            note=str(c.get("note", "")),
        )
        for c in data["components"]
    ]
    return LicenseList(comps, path.parent, "bundle index")


def bundled_components() -> LicenseList:
    """The bundle's index when there is one, else the live list from the installed packages."""
    try:
        index = resource_path(INDEX_NAME)
    except UserError:
        return LicenseList(installed_components(), None, "installed package metadata")
    return load_index(index)


def write_index(components: list[Component], out_dir: Path) -> Path:
    """Copy each component's texts into ``out_dir`` and write ``index.json`` with relative paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for comp in components:
        slug = re.sub(r"[^A-Za-z0-9.]+", "-", comp.name).strip("-")
        rel = []
        for i, p in enumerate(comp.text_paths):
            src = Path(p)
            name = f"{slug}-{i + 1}-{src.name}"
            (out_dir / name).write_bytes(src.read_bytes())
            rel.append(name)
        entry = asdict(comp)
        entry["text_paths"] = rel
        entries.append(entry)
    index = out_dir / "index.json"
    index.write_text(json.dumps({"components": entries}, indent=1), encoding="utf-8")
    return index
