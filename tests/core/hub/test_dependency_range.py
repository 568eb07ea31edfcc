"""The huggingface_hub versions pyproject.toml allows are the ones core/hub works with (issue 12, point 5).

core/hub imports ``httpx2`` (``browse.explain_hub_error``, ``transfer._http``), the HTTP library huggingface_hub
uses since 2.0; 1.x used ``httpx``, so a range reaching into 1.x promised installs that fail on the first
Hub error. CI has one huggingface_hub installed, so instead of running the code at each end of the range,
these tests hold the range, the pin in constraints.txt (the version the tests run with) and the installed
version together: a range that admits 1.x, a pin outside the range or an environment that brought another
huggingface_hub fails here, not in a person's download.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[3]
FIRST_ON_HTTPX2 = Version("2.0.0")  # huggingface_hub 2.0.0 requires httpx2>=2.0.0; 1.33.0 still httpx<1
NEXT_MAJOR = Version("3.0.0")  # not known to exist yet: its HTTP stack and API are unknown


def _requirement() -> Requirement:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    (req,) = [r for r in map(Requirement, deps) if canonicalize_name(r.name) == "huggingface-hub"]
    return req


def _pinned() -> Version:
    text = (ROOT / "constraints.txt").read_text(encoding="utf-8")
    m = re.search(r"^huggingface[-_]hub==(\S+)$", text, re.MULTILINE | re.IGNORECASE)
    assert m, "constraints.txt pins huggingface_hub"
    return Version(m[1])


def test_the_range_admits_only_releases_on_httpx2() -> None:
    spec = _requirement().specifier
    lower = [Version(s.version) for s in spec if s.operator in (">=", ">", "~=", "==")]
    upper = [Version(s.version) for s in spec if s.operator in ("<", "<=", "~=", "==")]
    assert lower and min(lower) >= FIRST_ON_HTTPX2, f"{spec} admits huggingface_hub 1.x, which uses httpx"
    assert upper and max(upper) <= NEXT_MAJOR, f"{spec} admits a major release nobody has tested"
    assert not spec.contains("1.33.0") and not spec.contains("3.0.0")


def test_the_version_the_tests_run_with_is_in_the_range() -> None:
    spec = _requirement().specifier
    assert spec.contains(_pinned()), f"constraints.txt pins {_pinned()}, outside {spec}"
    lowest = min(Version(s.version) for s in spec if s.operator == ">=")
    assert lowest <= _pinned(), "the range's lower end is a version the tests never ran with"


def test_the_installed_huggingface_hub_is_in_the_range_and_on_httpx2() -> None:
    installed = importlib.metadata.version("huggingface_hub")
    spec = _requirement().specifier
    assert spec.contains(installed, prereleases=True), f"huggingface_hub {installed} is installed, outside {spec}"
    requires = [Requirement(r) for r in importlib.metadata.requires("huggingface_hub") or []]
    assert any(r.name == "httpx2" and r.marker is None for r in requires), "huggingface_hub no longer uses httpx2"
    import httpx2  # what core/hub imports; present because huggingface_hub requires it

    assert httpx2.TransportError and httpx2.Timeout
