"""``sizewise screenshots DIR``: render each main view to PNG files offscreen: first as a new user sees it
(``empty-…``: no model loaded, nothing searched), then with a model loaded and a short conversation.

Used to look at every change to a window; the README shows one of these images.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from sizewise.commands import CliContext
from sizewise.core.errors import UserError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("screenshots", help="render the main views to PNG files (offscreen)")
    p.add_argument("out_dir", metavar="DIR", help="folder for the PNG files")
    p.add_argument("--model", default="starter", help="model to load (default: starter)")
    p.add_argument("--prompt", default="In one sentence, what is a GGUF file?")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from sizewise.core.hub.resolve import resolve_model_path
    from sizewise.core.sampling import SamplingParams
    from sizewise.gui.shell.app import install_excepthook, make_app
    from sizewise.gui.shell.drive import DriveError, chat_turn, load_model
    from sizewise.gui.shell.main_window import MainWindow

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = resolve_model_path(args.model)
    install_excepthook()
    app = make_app()
    app.setProperty("sizewise_headless", True)
    window = MainWindow(ctx.paths)
    written: list[Path] = []
    try:
        window.resize(1200, 760)
        window.show()
        written += _grab_views(app, window, out, prefix="empty-")
        load_model(window, str(model))
        window.sampling_panel.set_params(
            SamplingParams(temperature=0.2, max_tokens=60, seed=7), window.settings.load, "You are a concise assistant."
        )
        chat_turn(window, args.prompt)
        app.processEvents()
        written += _grab_views(app, window, out)
    except DriveError as exc:
        raise UserError(f"Screenshots failed: {exc}.") from exc
    finally:
        window.close()
        window.deleteLater()
        app.processEvents()
    for p in written:
        print(p)
    return 0


def _grab_views(app: Any, window: Any, out: Path, prefix: str = "") -> list[Path]:
    written = []
    from sizewise.gui.adapters.background import wait_for_background

    for name, widget in window.screenshot_views():
        for _ in range(3):  # a page shown for the first time fills in from background work (chained)
            app.processEvents()
            wait_for_background(5_000)
        app.processEvents()
        path = out / f"{prefix}{name}.png"
        if not widget.grab().save(str(path)):
            raise UserError(f"Could not write {path}.")
        written.append(path)
    return written
