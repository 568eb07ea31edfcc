"""The worker process's entry point, kept apart from worker.py on purpose.

The parent (GUI or CLI) must name a target for ``multiprocessing``, and naming it imports its
module. This module imports nothing heavy: the worker module, and with it llama_cpp, is imported
by name only inside the child process. That keeps llama.cpp out of the GUI process — checked at
run time by tests/gui/shell/test_process_isolation.py, and statically by import-linter, which would
otherwise follow the import chain gui → engine.client → engine.worker → llama_cpp.
"""

from __future__ import annotations

import importlib
from multiprocessing.connection import Connection


def run_worker(conn: Connection, log_path: str | None = None) -> None:
    worker = importlib.import_module("sizewise.engine.worker")
    worker.run_worker(conn, log_path)
