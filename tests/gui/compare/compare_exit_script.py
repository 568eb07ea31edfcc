"""Run by test_compare_view.py in a fresh interpreter: an all-at-once comparison whose engines stay
loaded, then the view closes and the interpreter exits the way the app does (gui.app.after_event_loop)."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from sizewise.core.paths import basedir_paths
from sizewise.core.sampling import LoadParams
from sizewise.gui.compare.compare_view import CompareView
from sizewise.gui.shell.app import after_event_loop


def main() -> None:
    model, base = Path(sys.argv[1]), sys.argv[2]
    app = QApplication([])
    view = CompareView(basedir_paths(base).ensure())
    view.show()
    view.max_tokens_spin.setValue(4)
    view.add_run(model, LoadParams(n_ctx=256))
    view.add_run(model, LoadParams(n_ctx=512))
    loop = QEventLoop()
    QTimer.singleShot(120_000, loop.quit)
    view.finished.connect(loop.quit)
    poll = QTimer(interval=50)
    poll.timeout.connect(lambda: view.plan is not None and (poll.stop(), view.run()))
    poll.start()
    loop.exec()
    runner = view.runner
    assert runner is not None and runner.schedule == "loaded_together", runner and runner.schedule
    assert len(view.pool.engines) == 2, "the engines were not kept loaded"
    pids = [e.adapter.client.pid for e in view.pool.engines.values() if e.adapter is not None]
    print("workers", *pids, flush=True)
    view.close()  # starts shutting the kept workers down on their own threads
    app.processEvents()
    after_event_loop()
    print("closed", flush=True)


if __name__ == "__main__":
    main()
