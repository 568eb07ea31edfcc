"""The worker process's entry point, kept apart from worker.py on purpose.

The parent (GUI or CLI) must name a target for ``multiprocessing``, and naming it imports its
module. This module imports nothing heavy: the worker module, and with it llama_cpp, is imported
by name only inside the child process. That keeps llama.cpp out of the GUI process — checked at
run time by tests/gui/shell/test_process_isolation.py, and statically by import-linter, which would
otherwise follow the import chain gui → engine.client → engine.worker → llama_cpp.
"""

from __future__ import annotations

import importlib
import os
import sys
from multiprocessing.connection import Connection
from pathlib import Path

# A folder holding another build of llama-cpp-python's ``llama_cpp`` package (a GPU build: scripts/vulkan-build.sh
# prints one), taken before the installed one. Only the worker imports llama_cpp, so only the worker needs it; the
# app and its CPU build stay as installed, and one machine can hold a CPU and a GPU build side by side.
LLAMA_CPP_PATH_ENV = "SIZEWISE_LLAMA_CPP_PATH"


def use_llama_cpp_from(folder: str) -> None:
    """Put ``folder`` first on the import path, once it is known to hold a llama_cpp package."""
    if not (Path(folder) / "llama_cpp" / "__init__.py").is_file():
        raise SystemExit(f"{LLAMA_CPP_PATH_ENV}={folder} holds no llama_cpp package")
    if folder not in sys.path:
        sys.path.insert(0, folder)


def run_worker(conn: Connection, log_path: str | None = None) -> None:
    folder = os.environ.get(LLAMA_CPP_PATH_ENV)
    if folder:
        use_llama_cpp_from(folder)
    worker = importlib.import_module("sizewise.engine.worker")
    worker.run_worker(conn, log_path)
