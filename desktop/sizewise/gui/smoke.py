"""``sizewise --smoke-test``: prove a build works end to end, headless, in a temporary profile."""

from __future__ import annotations

import json
import os
import sys

from PySide6.QtWidgets import QApplication

from sizewise.commands import CliContext
from sizewise.core.paths import temporary_paths
from sizewise.core.starter import HOW_TO_GET, find_starter
from sizewise.gui.drive import DriveError, chat_turn, load_model


def run_smoke_test(app: QApplication, ctx: CliContext) -> int:
    from sizewise.core.sampling import SamplingParams
    from sizewise.gui.main_window import MainWindow

    app.setProperty("sizewise_headless", True)
    paths = ctx.paths if ctx.paths.temporary else temporary_paths().ensure()
    starter = find_starter()
    if starter is None:
        print(f"smoke test failed: {HOW_TO_GET}", file=sys.stderr)
        return 1
    window = MainWindow(paths)
    try:
        window.show()
        loaded = load_model(window, str(starter.path))
        window.sampling_panel.set_params(SamplingParams(temperature=0.2, max_tokens=8, seed=1), window.settings.load)
        stats = chat_turn(window, "Say hello.")
        text = window.chat.messages[-1].text
        print(
            json.dumps(
                {
                    "ok": True,
                    "model": str(starter.path),
                    "text": text,
                    "tokens": stats["tokens"],
                    "tg_tps": round(float(stats["tg_tps"]), 2),
                    "ttft_ms": round(float(stats["ttft_ms"]), 1),
                    "engine_peak_rss_bytes": stats["peak_rss_bytes"],
                    "buffers_bytes": sum(int(b["bytes"]) for b in loaded["buffers"]),
                    "platform": os.environ.get("QT_QPA_PLATFORM", app.platformName()),
                }
            )
        )
        return 0 if stats["tokens"] > 0 else 1
    except DriveError as exc:
        print(f"smoke test failed: {exc}", file=sys.stderr)
        return 1
    finally:
        window.close()
        window.deleteLater()
        if paths is not ctx.paths:
            paths.cleanup()
