"""The Discover view: search the Hub for GGUF models, see a repository's files with sizes and fit verdicts,
and download one with a click.

Everything that touches the network runs through ``run_in_background`` — the search, the repository
listing, and the fit verdicts (header-only range reads, a few MB per file), which arrive after the file
list so the sizes show at once and the verdicts fill in. A newer search or a different repository
makes older answers stale; they are dropped, never shown over the new ones. Errors are one sentence
in the status line (core.hub turns the Hub's errors into sentences, e.g. how to add a token for a
gated repository). When the Hub cannot be reached at all (no network, a name that does not resolve, a
refused connection) core.hub says so at once instead of retrying, and the status line says the Hub is
unreachable and that the models on this computer (the Library) still work; earlier results stay.

Before a search the view shows popular small model families from the curated catalogue (gui/hub/
popular_models.py, resources/catalogue.json), each with a memory estimate and verdict for the hardware chosen
under "Fit for", made without the network; choosing one searches the Hub for its repository and opens it,
where the real header-based verdicts appear. The first time the view is shown it checks, in the background,
whether the Hub can be reached at all (one TCP connection, no request); when it cannot, the status line says
so in the same sentence a failed search would, and the catalogue stays usable.

Standalone: the main window embeds it and connects ``downloadRequested`` (or hands in a
``DownloadQueue``, which then receives the files directly).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sizewise.core.errors import UserError
from sizewise.core.fit.verdict import Budget
from sizewise.core.hub.browse import (
    FitCheck,
    HubBrowser,
    HubUnreachable,
    ModelFile,
    RepoListing,
    SearchPage,
    SortKey,
    check_reachable,
)
from sizewise.core.hub.catalogue import Family, load_catalogue
from sizewise.core.hub.download_queue import DownloadQueue
from sizewise.gui.adapters.background import run_in_background
from sizewise.gui.hub.popular_models import PopularModels

SORT_CHOICES: list[tuple[str, SortKey]] = [
    ("Most downloaded", "downloads"),
    ("Most liked", "likes"),
    ("Recently updated", "recent"),
    ("Newest", "created"),
]
THIS_MACHINE = "This machine"
HUB_CHECK_S = 2.0  # the whole check on first sight, however many addresses the Hub's name has
VERDICT_LABELS = {"fits": "Fits", "tight": "Tight", "too big": "Too big", "unknown": "Unknown"}

FitCheckFactory = Callable[[str | None], FitCheck]
"""Builds a fit check for a target id (None = this machine); called off the GUI thread."""


BudgetFactory = Callable[[str | None], Budget]
"""The budget for a target id (None = this machine), for the catalogue's estimates; called off the GUI thread."""


def default_fit_factory(target: str | None) -> FitCheck:
    from sizewise.core.hub.remote_fit import machine_fit_check, target_fit_check

    return target_fit_check(target) if target else machine_fit_check()


def default_budget_factory(target: str | None) -> Budget:
    if target:
        from sizewise.core.fit.targets import find_target

        return find_target(target).budget()
    from sizewise.core.fit.hardware import machine_budget, probe_hardware

    return machine_budget(probe_hardware())


def catalogue_or_problem() -> tuple[list[Family], str]:
    """The curated catalogue, or no families and the one sentence saying what is wrong with the file."""
    try:
        return load_catalogue(), ""
    except UserError as exc:
        return [], str(exc)


def unreachable_sentence(exc: HubUnreachable) -> str:
    return (
        f"{exc.where} is unreachable ({exc.reason}): check the network connection and search again; "
        "the models on this computer are in the Library and still work."
    )


def default_targets() -> list[tuple[str, str]]:
    try:
        from sizewise.core.fit.targets import load_targets

        return [(t.name, t.id) for t in load_targets()]
    except Exception:  # the target list is optional; "This machine" always works
        return []


def _size(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


class DiscoverView(QWidget):
    """Popular models, or search → repositories → files (size, quant, fit) → download."""

    downloadRequested = Signal(str, object)  # repo id, ModelFile
    fitDetailsRequested = Signal(str, object)  # repo id, ModelFile: show it in the Fit view
    searchFinished = Signal(object)  # SearchPage (also after "more")
    filesShown = Signal(object)  # RepoListing, before fit verdicts
    fitFinished = Signal(object)  # RepoListing with verdicts
    failed = Signal(str)
    hubUnreachable = Signal(str)  # the sentence shown: from the check on first sight or from a request
    estimatesShown = Signal(object)  # the Budget the catalogue's verdicts were estimated for

    def __init__(
        self,
        browser: HubBrowser | None = None,
        queue: DownloadQueue | None = None,
        *,
        fit_factory: FitCheckFactory | None = default_fit_factory,
        targets: list[tuple[str, str]] | None = None,
        page_size: int = 20,
        catalogue: tuple[list[Family], str] | None = None,
        budget_factory: BudgetFactory | None = default_budget_factory,
        check_hub: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.browser = browser or HubBrowser()
        self.queue = queue
        self.fit_factory = fit_factory
        self.page_size = page_size
        self._fit_checks: dict[str | None, FitCheck] = {}
        self._search_gen = 0
        self._repo_gen = 0
        self._page: SearchPage | None = None
        self._repos: list[Any] = []
        self.listing: RepoListing | None = None
        self.budget_factory = budget_factory
        self._budgets: dict[str | None, Budget] = {}
        self._check_hub_pending = check_hub

        self.query = QLineEdit(placeholderText="Search GGUF models on the Hugging Face Hub, e.g. smollm2")
        self.query.setAccessibleName("Search the Hub")
        self.sort = QComboBox()
        for label, key in SORT_CHOICES:
            self.sort.addItem(label, key)
        self.search_button = QPushButton("Search")
        self.more_button = QPushButton("More results")
        self.more_button.setEnabled(False)
        self.target = QComboBox()
        self.target.setToolTip("Which hardware the fit verdicts are for")
        # Sized for "This machine", not the longest target name, so the search field keeps its room.
        self.target.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.target.setMinimumContentsLength(18)
        self.target.addItem(THIS_MACHINE, None)
        for name, tid in default_targets() if targets is None else targets:
            self.target.addItem(name, tid)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        families, problem = catalogue if catalogue is not None else catalogue_or_problem()
        self.popular = PopularModels(families, problem)
        self.popular_button = QPushButton("Popular models")
        self.popular_button.setToolTip("Back to the popular small models, with estimates for the chosen hardware")
        self.popular_button.setEnabled(False)

        self.repos = QTableWidget(0, 4)
        self.repos.setHorizontalHeaderLabels(["Repository", "Downloads", "Likes", "License"])
        self.files = QTableWidget(0, 6)
        self.files.setHorizontalHeaderLabels(["File", "Quant", "Size", "Fits?", "", ""])
        for table in (self.repos, self.files):
            table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
            table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
            table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
            table.verticalHeader().hide()
            # Names take what the figures and buttons leave: those are sized to their contents.
            table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
            table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.repo_title = QLabel("")
        self.repo_title.setWordWrap(True)

        bar = QHBoxLayout()
        bar.addWidget(self.query, 1)
        bar.addWidget(self.sort)
        bar.addWidget(self.search_button)
        bar.addSpacing(12)
        bar.addWidget(QLabel("Fit for:"))
        bar.addWidget(self.target)
        bar.addWidget(self.popular_button)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.repos)
        lv.addWidget(self.more_button)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.repo_title)
        rv.addWidget(self.files)
        self.results = QSplitter()
        self.results.addWidget(left)
        self.results.addWidget(right)
        # The files need the room (six columns, two of them buttons); the repository list is one name per row.
        self.results.setStretchFactor(0, 2)
        self.results.setStretchFactor(1, 3)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.popular)
        self.pages.addWidget(self.results)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.pages, 1)
        layout.addWidget(self.status)

        self.search_button.clicked.connect(self.search)
        self.query.returnPressed.connect(self.search)
        self.sort.currentIndexChanged.connect(lambda _i: self.search() if self.query.text().strip() else None)
        self.more_button.clicked.connect(self.load_more)
        self.repos.itemSelectionChanged.connect(self._repo_selected)
        self.files.cellDoubleClicked.connect(lambda row, _col: self.download_row(row))
        self.target.currentIndexChanged.connect(lambda _i: self._start_fit())
        self.target.currentIndexChanged.connect(lambda _i: self._estimate())
        self.popular.familyChosen.connect(self.open_family)
        self.popular_button.clicked.connect(self.show_popular)
        self._estimate()

    # -- helpers

    def _alive(self) -> bool:
        return shiboken6.isValid(self)

    def _fail(self, exc: BaseException) -> None:
        if not self._alive():
            return
        text = str(exc)
        if isinstance(exc, HubUnreachable):
            text = unreachable_sentence(exc)
            if self.repos.rowCount() == 0 and self.listing is None:
                self.show_popular()  # nothing found to show: the catalogue is still useful offline
        self.status.setText(text)
        self.failed.emit(text)
        if isinstance(exc, HubUnreachable):
            self.hubUnreachable.emit(text)

    # -- before a search: the catalogue, and whether the Hub is there at all

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._check_hub_pending:
            self._check_hub_pending = False
            self.check_hub()

    def check_hub(self) -> None:
        """Whether the Hub can be reached (HF_HUB_OFFLINE, or one TCP connection); said only while nothing newer has."""
        asked = (self._search_gen, self._repo_gen)
        settings = self.browser.settings

        def work() -> None:
            settings.require_online()
            deadline = time.monotonic() + HUB_CHECK_S

            def connect(sockaddr: tuple[Any, ...], timeout: float) -> Any:
                # One overall deadline, not one per address: a silent network never keeps this job long;
                # a timeout counts as "not sure" (check_reachable returns quietly) and the search will tell.
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no time left to check the Hub")
                return socket.create_connection((sockaddr[0], sockaddr[1]), timeout=min(timeout, left))

            check_reachable(settings.endpoint, connect=connect)

        def failed(exc: BaseException) -> None:
            if not self._alive() or (self._search_gen, self._repo_gen) != asked:
                return  # a search or a repository has been asked for since: its own answer says it
            text = unreachable_sentence(exc) if isinstance(exc, HubUnreachable) else str(exc)
            self.status.setText(text)
            self.hubUnreachable.emit(text)

        run_in_background(work, lambda _r: None, failed)

    def _estimate(self) -> None:
        """The catalogue's estimated verdicts for the hardware chosen under "Fit for" (its budget computed once)."""
        factory = self.budget_factory
        if factory is None:
            return
        target: str | None = self.target.currentData()
        name = self.target.currentText()
        known = self._budgets.get(target)
        if known is not None:
            self._estimated(target, name, known)
            return
        budgets = self._budgets

        def work() -> Budget:
            budget = factory(target)
            budgets[target] = budget
            return budget

        run_in_background(
            work,
            lambda budget: self._estimated(target, name, budget),
            lambda exc: self.popular.set_budget_failed(str(exc)) if self._alive() else None,
        )

    def set_machine_budget(self, budget: Budget) -> None:
        """This machine's budget, already known (the main window's hardware probe): estimates without probing again."""
        self._budgets[None] = budget
        if self.target.currentData() is None:
            self._estimated(None, THIS_MACHINE, budget)

    def _estimated(self, target: str | None, name: str, budget: Budget) -> None:
        if not self._alive() or target != self.target.currentData():
            return
        self.popular.set_budget(budget, "this machine" if target is None else name)
        self.estimatesShown.emit(budget)

    @Slot()
    def show_popular(self) -> None:
        self.pages.setCurrentWidget(self.popular)
        self.popular_button.setEnabled(False)

    def _show_results(self) -> None:
        self.pages.setCurrentWidget(self.results)
        self.popular_button.setEnabled(True)

    @Slot(object)
    def open_family(self, family: Family) -> None:
        """A catalogue family: search the Hub for its repository and open it, with the real verdicts."""
        self.query.setText(family.repo_id)
        self.search()
        self.open_repo(family.repo_id)

    # -- search

    @Slot()
    def search(self) -> None:
        self._search_gen += 1
        gen = self._search_gen
        text = self.query.text().strip()
        sort: SortKey = self.sort.currentData()
        self.status.setText(f"Searching for {text!r}…" if text else "Loading popular GGUF models…")
        self.more_button.setEnabled(False)
        self._show_results()
        browser, size = self.browser, self.page_size
        run_in_background(
            lambda: browser.search(text, sort=sort, page=0, page_size=size),
            lambda page: self._searched(gen, page, replace=True),
            lambda exc: self._fail(exc) if gen == self._search_gen else None,
        )

    @Slot()
    def load_more(self) -> None:
        if self._page is None or not self._page.has_more:
            return
        page = self._page
        gen = self._search_gen
        browser = self.browser
        self.more_button.setEnabled(False)
        run_in_background(
            lambda: browser.search(page.query, sort=page.sort, page=page.page + 1, page_size=page.page_size),
            lambda nxt: self._searched(gen, nxt, replace=False),
            lambda exc: self._fail(exc) if gen == self._search_gen else None,
        )

    def _searched(self, gen: int, page: SearchPage, *, replace: bool) -> None:
        if not self._alive() or gen != self._search_gen:
            return  # a newer search is on its way
        self._page = page
        if replace:
            self._repos = []
            self.repos.setRowCount(0)
        for r in page.items:
            row = self.repos.rowCount()
            self.repos.insertRow(row)
            name = r.repo_id + ("  🔒 gated" if r.gated else "")
            cells = [name, f"{r.downloads:,}", f"{r.likes:,}", r.license or "?"]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col in (1, 2):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.repos.setItem(row, col, item)
            self._repos.append(r)
        self.more_button.setEnabled(page.has_more)
        shown = self.repos.rowCount()
        self.status.setText(
            f"{shown} repositories" + (" — more available" if page.has_more else "") if shown else "No matches."
        )
        self.searchFinished.emit(page)

    # -- one repository

    def _repo_selected(self) -> None:
        rows = {i.row() for i in self.repos.selectedItems()}
        if rows:
            self.open_repo(self._repos[min(rows)].repo_id)

    def open_repo(self, repo_id: str) -> None:
        self._repo_gen += 1
        gen = self._repo_gen
        self.listing = None
        self.files.setRowCount(0)
        self.repo_title.setText(f"{repo_id} — loading files…")
        self._show_results()
        browser = self.browser
        run_in_background(
            lambda: browser.repo_files(repo_id, with_fit=False),
            lambda listing: self._listed(gen, listing),
            lambda exc: self._repo_failed(gen, repo_id, exc),
        )

    def _repo_failed(self, gen: int, repo_id: str, exc: BaseException) -> None:
        if self._alive() and gen == self._repo_gen:
            self.repo_title.setText(repo_id)
            self._fail(exc)

    def _listed(self, gen: int, listing: RepoListing) -> None:
        if not self._alive() or gen != self._repo_gen:
            return
        self.listing = listing
        notes = []
        if listing.gated:
            notes.append("gated: downloading needs a token with access")
        if listing.license:
            notes.append(f"license {listing.license}")
        if listing.refused_paths:
            notes.append(f"{len(listing.refused_paths)} unsafe file path(s) refused")
        if listing.incomplete_splits:
            notes.append("incomplete split models: " + ", ".join(listing.incomplete_splits))
        self.repo_title.setText(listing.repo_id + (" — " + "; ".join(notes) if notes else ""))
        self.files.setRowCount(0)
        for m in listing.models:
            row = self.files.rowCount()
            self.files.insertRow(row)
            label = m.name + (f"  ({len(m.parts)} parts)" if m.is_split else "")
            for col, text in enumerate([label, m.quantization, _size(m.size), "checking…" if self.fit_factory else ""]):
                self.files.setItem(row, col, QTableWidgetItem(text))
            button = QPushButton("Download")
            button.setAccessibleName(f"Download {m.name}")
            button.clicked.connect(lambda _checked=False, r=row: self.download_row(r))
            self.files.setCellWidget(row, 4, button)
            details = QPushButton("Fit details")
            details.setToolTip("Read this file's header from the Hub (a few MB) and open it in the Fit view")
            details.clicked.connect(lambda _checked=False, r=row: self.fit_details_row(r))
            self.files.setCellWidget(row, 5, details)
        if not listing.models:
            self.status.setText(f"{listing.repo_id} has no GGUF files.")
        self.filesShown.emit(listing)
        self._start_fit()

    # -- fit verdicts

    def _start_fit(self) -> None:
        listing, factory = self.listing, self.fit_factory
        if listing is None or factory is None or not listing.models:
            return
        gen = self._repo_gen
        target: str | None = self.target.currentData()
        for row in range(self.files.rowCount()):
            self._set_fit(row, "checking…", "")
        checks = self._fit_checks
        browser = self.browser

        def work() -> RepoListing:
            check = checks.get(target)
            if check is None:
                check = checks[target] = factory(target)
            return HubBrowser(browser.settings, fit_check=check).with_fit(listing)

        run_in_background(
            work, lambda judged: self._fitted(gen, target, judged), lambda exc: self._fit_failed(gen, exc)
        )

    def _set_fit(self, row: int, text: str, tip: str) -> None:
        item = QTableWidgetItem(text)
        item.setToolTip(tip)
        self.files.setItem(row, 3, item)

    def _fitted(self, gen: int, target: str | None, judged: RepoListing) -> None:
        if not self._alive() or gen != self._repo_gen or target != self.target.currentData():
            return
        self.listing = judged
        for row, m in enumerate(judged.models):
            if m.fit is None:
                self._set_fit(row, "", "")
            else:
                self._set_fit(row, VERDICT_LABELS.get(m.fit.verdict, m.fit.verdict), m.fit.reason)
        self.fitFinished.emit(judged)

    def _fit_failed(self, gen: int, exc: BaseException) -> None:
        if not self._alive() or gen != self._repo_gen:
            return
        for row in range(self.files.rowCount()):
            self._set_fit(row, "Unknown", str(exc))

    # -- download

    def model_at(self, row: int) -> ModelFile | None:
        if self.listing is None or not 0 <= row < len(self.listing.models):
            return None
        return self.listing.models[row]

    @Slot(int)
    def fit_details_row(self, row: int) -> None:
        model = self.model_at(row)
        if model is not None and self.listing is not None:
            self.fitDetailsRequested.emit(self.listing.repo_id, model)

    @Slot(int)
    def download_row(self, row: int) -> None:
        model = self.model_at(row)
        if model is None or self.listing is None:
            return
        repo_id = self.listing.repo_id
        if self.queue is not None:
            self.queue.add_model(repo_id, model, self.listing.revision)
        self.status.setText(f"Downloading {model.name} ({_size(model.size)}) — see Downloads.")
        self.downloadRequested.emit(repo_id, model)
