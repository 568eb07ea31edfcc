"""Pages built on first sight: their imports (pyqtgraph, numpy) stay out of the app's start-up."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget


class LazyPage(QWidget):
    created = Signal(QWidget)

    def __init__(self, factory: Callable[[], QWidget], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._factory: Callable[[], QWidget] | None = factory
        self.page: QWidget | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

    def ensure(self) -> QWidget:
        if self.page is None and self._factory is not None:
            factory, self._factory = self._factory, None
            self.page = factory()
            layout = self.layout()
            assert layout is not None
            layout.addWidget(self.page)
            self.created.emit(self.page)
        assert self.page is not None
        return self.page

    def showEvent(self, event: QShowEvent) -> None:
        self.ensure()
        super().showEvent(event)
