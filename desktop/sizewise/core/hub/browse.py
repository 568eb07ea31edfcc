"""Browsing the Hugging Face Hub for GGUF models, through ``huggingface_hub`` only.

Why a module of its own: search results, a repository's GGUF files (quantization, size, sha256, split
parts grouped as one model, license, gated status) and the Hub's errors turned into sentences a person
can act on are shared by the CLI (``sizewise search``/``pull``) and the GUI's Discover view.

``huggingface_hub`` reads ``HF_ENDPOINT``, ``HF_HOME`` and ``HF_HUB_OFFLINE`` once, when it is imported;
``HubSettings.from_env()`` reads them at call time and every call passes them explicitly, so a
``--basedir`` (which sets ``HF_HOME``) or a test server (``HF_ENDPOINT``) takes effect even when the
library was imported earlier. The token comes from ``huggingface_hub.get_token()`` (``HF_TOKEN`` or the
saved login) and is never put into a message or a log.

Before a search or a listing, ``check_reachable`` resolves the Hub's host name and opens one TCP connection
to it (or to the proxy the environment names). ``huggingface_hub`` retries every network error five times
with back-off (about 25 s, and a warning line on stderr for each try); a name that does not resolve or a
refused connection will not recover in that time, so it becomes one sentence at once (``HubUnreachable``).
A timeout or anything else unclear is left to the real request, whose retries are meant for it (as are 5xx).
"""

from __future__ import annotations

import errno
import os
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

from sizewise.core.errors import UserError

SortKey = Literal["downloads", "likes", "recent", "created"]
SORT_KEYS: tuple[SortKey, ...] = ("downloads", "likes", "recent", "created")
_HUB_SORT = {"downloads": "downloads", "likes": "likes", "recent": "last_modified", "created": "created_at"}

DEFAULT_ENDPOINT = "https://huggingface.co"
TOKEN_HELP = (
    "create a read token at https://huggingface.co/settings/tokens and set it in the HF_TOKEN environment "
    "variable or run 'hf auth login'"
)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


@dataclass(frozen=True)
class HubSettings:
    """Where the Hub is and where its files go, read from the environment when needed."""

    endpoint: str
    cache_dir: Path  # the standard HF cache (``$HF_HOME/hub`` unless HF_HUB_CACHE says otherwise)
    offline: bool
    token: str | None = field(default=None, repr=False)  # never shown

    @classmethod
    def from_env(cls) -> HubSettings:
        from huggingface_hub import get_token

        endpoint = (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        if os.environ.get("HF_HUB_CACHE"):
            cache = Path(os.environ["HF_HUB_CACHE"])
        elif os.environ.get("HF_HOME"):
            cache = Path(os.environ["HF_HOME"]) / "hub"
        else:
            xdg = os.environ.get("XDG_CACHE_HOME")
            cache = (Path(xdg) if xdg else Path.home() / ".cache") / "huggingface" / "hub"
        offline = _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE"))
        return cls(endpoint=endpoint, cache_dir=cache.expanduser(), offline=offline, token=get_token())

    def require_online(self) -> None:
        if self.offline:
            raise UserError(
                "HF_HUB_OFFLINE is set, so Sizewise does not contact the Hugging Face Hub; unset it to search "
                "or download (local models still work)."
            )

    def api(self) -> Any:
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint, token=self.token or False)

    def repo_url(self, repo_id: str) -> str:
        return f"{self.endpoint}/{repo_id}"


# --- Is the Hub there at all? ---------------------------------------------------------------------------------


class HubUnreachable(UserError):
    """The Hub cannot be reached at all: its name does not resolve, the connection is refused, or there is
    no route to it. Said at once, never retried; local models are unaffected. ``where`` names the Hub
    ("The Hugging Face Hub" or "The Hub at URL") and ``reason`` says why, for views that word it their way."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(
            f"{where} could not be reached: {reason}; check the network connection and try again "
            "(local models still work)."
        )
        self.where = where
        self.reason = reason


REACH_TIMEOUT_S = 3.0
_NO_ROUTE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EADDRNOTAVAIL}
Resolver = Callable[..., list[tuple[Any, ...]]]
Connector = Callable[[tuple[Any, ...], float], Any]


def _default_connect(sockaddr: tuple[Any, ...], timeout: float) -> Any:
    return socket.create_connection((sockaddr[0], sockaddr[1]), timeout=timeout)


def unreachable(endpoint: str, reason: str) -> HubUnreachable:
    """One sentence: where, why, and that nothing local is affected."""
    plain = not endpoint or endpoint.rstrip("/") == DEFAULT_ENDPOINT
    return HubUnreachable("The Hugging Face Hub" if plain else f"The Hub at {endpoint}", reason)


def connect_failure(exc: BaseException) -> str | None:
    """Why a connection failed, when the reason is final (see ``check_reachable``); None otherwise."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, socket.gaierror):
            return "its name does not resolve (no network, or no DNS)"
        if isinstance(cur, ConnectionRefusedError):
            return "the connection was refused"
        if isinstance(cur, OSError) and cur.errno in _NO_ROUTE:
            return "there is no network route to it"
        cur = cur.__cause__ or cur.__context__
    return None


def _proxy_for(url: str) -> tuple[str, int] | None:
    """The proxy (host, port) that requests to ``url`` go through, from the environment, or None."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or (parts.hostname and urllib.request.proxy_bypass(parts.hostname)):
        return None
    p = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if not p.hostname:
        return None
    return p.hostname, p.port or (443 if p.scheme == "https" else 1080 if p.scheme.startswith("socks") else 80)


def check_reachable(
    endpoint: str,
    *,
    timeout_s: float = REACH_TIMEOUT_S,
    resolve: Resolver | None = None,
    connect: Connector | None = None,
) -> None:
    """Raise ``HubUnreachable`` when the Hub (or the proxy in front of it) surely cannot be reached now.

    Resolves the host name and opens (and closes) one TCP connection. A failed name resolution, a refused
    connection and "no route" are final; a timeout or any other error returns quietly and the real request
    decides (huggingface_hub retries those). ``resolve``/``connect`` replace ``socket.getaddrinfo`` and the
    connection for tests.
    """
    parts = urlsplit(endpoint)
    if not parts.hostname:
        return
    via_proxy = _proxy_for(endpoint)
    host, port = via_proxy or (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    what = f"the proxy {host}:{port}" if via_proxy else f"{host}:{port}"
    try:
        addresses = (resolve or socket.getaddrinfo)(host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror:
        raise unreachable(endpoint, f"the name {host} does not resolve (no network, or no DNS)") from None
    except OSError:
        return
    refused = no_route = 0
    for *_, sockaddr in addresses:
        try:
            conn = (connect or _default_connect)(sockaddr, timeout_s)
        except ConnectionRefusedError:
            refused += 1
        except OSError as exc:
            if exc.errno not in _NO_ROUTE:
                return  # a timeout or something unclear: the request itself will tell (and retry)
            no_route += 1
        else:
            conn.close()
            return
    if refused:
        raise unreachable(endpoint, f"{what} refused the connection")
    if no_route:
        raise unreachable(endpoint, f"there is no network route to {what}")


# --- File names: quantization and split parts ------------------------------------------------------------

# Longest alternatives first so Q4_K_M is not read as Q4_K; matched case-insensitively between separators.
_QUANT = re.compile(
    r"(?<![A-Za-z0-9])("
    r"IQ[1-4]_(?:XXS|XS|NL|S|M)|IQ[1-4]"
    r"|Q[2-8]_K_(?:XXL|XL|L|M|S)|Q[2-8]_K"
    r"|Q4_0_[48]_[48]|Q[4-8]_[01]|Q[2-8]"
    r"|TQ[12]_0|MXFP4|BF16|F16|FP16|F32|FP32"
    r")(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_SPLIT = re.compile(r"^(?P<base>.+)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)


def quantization_from_name(filename: str) -> str:
    """The quant label in a GGUF file name (``…-Q4_K_M.gguf`` → ``Q4_K_M``); ``?`` when the name has none."""
    stem = PurePosixPath(filename).name
    found = _QUANT.findall(stem.replace(".", "-"))
    if not found:
        return "?"
    q = str(found[-1]).upper()
    return {"FP16": "F16", "FP32": "F32"}.get(q, q)


def split_part(filename: str) -> tuple[str, int, int] | None:
    """``(base, part, count)`` for ``name-00001-of-00003.gguf``, else None."""
    m = _SPLIT.match(filename)
    if not m:
        return None
    return m["base"], int(m["part"]), int(m["count"])


def is_safe_repo_path(path: str) -> bool:
    """A repository path that stays inside the download folder: relative, no ``..``, no drive, no backslash."""
    if not path or "\0" in path or "\\" in path or path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return False
    parts = path.split("/")
    return all(p not in ("", ".", "..") for p in parts)


def check_repo_path(path: str) -> str:
    if not is_safe_repo_path(path):
        raise UserError(
            f"Refusing the file path {path!r}: it would be written outside the download folder "
            "(it is absolute or contains '..')."
        )
    return path


def check_revision(revision: str) -> str:
    """A branch, tag or commit name, which becomes ``refs/<revision>`` in the cache: it must stay in there."""
    if not is_safe_repo_path(revision):
        raise UserError(
            f"Refusing the revision {revision!r}: a branch, tag or commit name cannot be empty or absolute, "
            "or contain '..'."
        )
    return revision


def check_repo_id(repo_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*", repo_id) or ".." in repo_id:
        raise UserError(f"{repo_id!r} is not a Hugging Face repository name (expected 'owner/name').")
    return repo_id


# --- What the Hub tells us ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepoSummary:
    repo_id: str
    downloads: int
    likes: int
    last_modified: str | None  # ISO date
    created_at: str | None
    gated: bool
    private: bool
    license: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "downloads": self.downloads,
            "likes": self.likes,
            "last_modified": self.last_modified,
            "created_at": self.created_at,
            "gated": self.gated,
            "private": self.private,
            "license": self.license,
        }


@dataclass(frozen=True)
class SearchPage:
    query: str
    sort: SortKey
    page: int
    page_size: int
    items: list[RepoSummary]
    has_more: bool


@dataclass(frozen=True)
class RemoteFile:
    """One file in a repository, with the Hub's checksum when it is stored in LFS (every GGUF is)."""

    path: str
    size: int
    sha256: str | None
    blob_id: str


@dataclass(frozen=True)
class FitVerdict:
    """Whether a file fits this machine (or a chosen target); produced by a fit check (core/fit/verdict.py)."""

    verdict: Literal["fits", "tight", "too big", "unknown"]
    reason: str
    needed_bytes: int | None = None
    available_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "needed_bytes": self.needed_bytes,
            "available_bytes": self.available_bytes,
        }


@dataclass(frozen=True)
class ModelFile:
    """One downloadable model: a single GGUF or all parts of a split one, in part order."""

    name: str  # the first part's path for split models; what `sizewise pull --file` accepts
    quantization: str
    parts: tuple[RemoteFile, ...]
    fit: FitVerdict | None = None

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)

    @property
    def is_split(self) -> bool:
        return len(self.parts) > 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "quantization": self.quantization,
            "bytes": self.size,
            "split": self.is_split,
            "parts": [{"path": p.path, "bytes": p.size, "sha256": p.sha256} for p in self.parts],
            "fit": self.fit.to_dict() if self.fit else None,
        }


@dataclass(frozen=True)
class RepoListing:
    repo_id: str
    revision: str
    commit: str | None
    gated: bool
    private: bool
    license: str | None
    models: list[ModelFile]
    refused_paths: list[str]  # hostile or unusable paths the Hub listed (never downloaded)
    incomplete_splits: list[str]  # split models with missing parts

    def find(self, file: str | None = None, quant: str | None = None) -> ModelFile:
        """The model a user named by file or quantization; one plain sentence when it is not there."""
        if file is not None:
            check_repo_path(file)
            for m in self.models:
                if file == m.name or file in (p.path for p in m.parts):
                    return m
            raise UserError(f"{self.repo_id} has no GGUF file named {file}; choose one of: {self._names()}.")
        if quant is not None:
            wanted = quant.upper()
            hits = [m for m in self.models if m.quantization == wanted]
            if not hits:
                have = ", ".join(sorted({m.quantization for m in self.models})) or "none"
                raise UserError(f"{self.repo_id} has no {wanted} file; it has: {have}.")
            if len(hits) > 1:
                raise UserError(
                    f"{self.repo_id} has several {wanted} files; pick one with --file: "
                    f"{', '.join(m.name for m in hits)}."
                )
            return hits[0]
        if len(self.models) == 1:
            return self.models[0]
        if not self.models:
            raise UserError(f"{self.repo_id} has no GGUF files.")
        raise UserError(
            f"{self.repo_id} has {len(self.models)} GGUF files; pick one with --file or --quant: {self._names()}."
        )

    def _names(self) -> str:
        return ", ".join(m.name for m in self.models) or "none"

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "revision": self.revision,
            "commit": self.commit,
            "gated": self.gated,
            "private": self.private,
            "license": self.license,
            "models": [m.to_dict() for m in self.models],
            "refused_paths": self.refused_paths,
            "incomplete_splits": self.incomplete_splits,
        }


FitCheck = Callable[[RepoListing, ModelFile], FitVerdict | None]
"""A fit check: given a repository and one of its models, a verdict (or None when it cannot say)."""


def group_gguf_files(files: Iterable[RemoteFile]) -> tuple[list[ModelFile], list[str]]:
    """Turn a file list into models: split parts become one model; returns (models, incomplete split names)."""
    singles: list[ModelFile] = []
    splits: dict[tuple[str, int], dict[int, RemoteFile]] = {}
    for f in files:
        if not f.path.lower().endswith(".gguf"):
            continue
        sp = split_part(f.path)
        if sp is None:
            singles.append(ModelFile(f.path, quantization_from_name(f.path), (f,)))
        else:
            base, part, count = sp
            splits.setdefault((base, count), {})[part] = f
    incomplete: list[str] = []
    for (base, count), parts in splits.items():
        if sorted(parts) != list(range(1, count + 1)):
            incomplete.append(f"{base} ({len(parts)} of {count} parts)")
            continue
        ordered = tuple(parts[i] for i in range(1, count + 1))
        singles.append(ModelFile(ordered[0].path, quantization_from_name(base + ".gguf"), ordered))
    singles.sort(key=lambda m: (m.size, m.name))
    return singles, incomplete


def _license(info: Any) -> str | None:
    card = getattr(info, "card_data", None)
    lic = getattr(card, "license", None) if card is not None else None
    if isinstance(lic, list):
        lic = ", ".join(str(x) for x in lic)
    if lic:
        return str(lic)
    for tag in getattr(info, "tags", None) or []:
        if isinstance(tag, str) and tag.startswith("license:"):
            return tag.removeprefix("license:")
    return None


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else (str(value) if value else None)


def _summary(info: Any) -> RepoSummary:
    return RepoSummary(
        repo_id=str(info.id),
        downloads=int(getattr(info, "downloads", 0) or 0),
        likes=int(getattr(info, "likes", 0) or 0),
        last_modified=_iso(getattr(info, "last_modified", None)),
        created_at=_iso(getattr(info, "created_at", None)),
        gated=bool(getattr(info, "gated", False)),
        private=bool(getattr(info, "private", False)),
        license=_license(info),
    )


# --- Errors as sentences --------------------------------------------------------------------------------------


def explain_hub_error(exc: BaseException, repo_id: str, filename: str | None = None, endpoint: str = "") -> UserError:
    """Map huggingface_hub/httpx errors to one sentence; never includes the token or a traceback."""
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = endpoint or "the Hugging Face Hub"
    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, GatedRepoError):
        return UserError(
            f"{repo_id} is gated: accept its terms on {where}/{repo_id} while logged in, then {TOKEN_HELP}."
        )
    if isinstance(exc, RepositoryNotFoundError):
        return UserError(
            f"The repository {repo_id} was not found on {where}, or it is private; if it is private, {TOKEN_HELP}."
        )
    if isinstance(exc, RevisionNotFoundError):
        return UserError(f"{repo_id} has no such revision (branch, tag or commit).")
    if isinstance(exc, RemoteEntryNotFoundError):
        return UserError(f"{repo_id} has no file named {filename}." if filename else f"{repo_id}: file not found.")
    if isinstance(exc, OfflineModeIsEnabled):
        return UserError("HF_HUB_OFFLINE is set, so Sizewise does not contact the Hugging Face Hub; unset it first.")
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            return UserError(f"The Hub refused access to {repo_id} (HTTP {status}); {TOKEN_HELP}.")
        return UserError(f"The Hub answered with an error (HTTP {status}) for {repo_id}; try again later.")
    if isinstance(exc, httpx2.ConnectError) and (reason := connect_failure(exc)) is not None:
        return unreachable(endpoint, reason)
    if isinstance(exc, httpx2.TimeoutException):
        return UserError(f"{where} did not answer in time; check the connection and try again.")
    if isinstance(exc, httpx2.TransportError):
        return UserError(f"{where} could not be reached ({type(exc).__name__}); check the connection and try again.")
    if isinstance(exc, ValueError) and "filename" in str(exc).lower():
        return UserError(f"Refusing a file path from {repo_id}: {exc}")
    return UserError(f"Talking to the Hub about {repo_id} failed: {type(exc).__name__}.")


# --- The client -----------------------------------------------------------------------------------------------


class HubBrowser:
    """Search and repository listings with a small in-memory cache (results change slowly, clicks are fast)."""

    def __init__(
        self,
        settings: HubSettings | None = None,
        *,
        cache_ttl_s: float = 300.0,
        fit_check: FitCheck | None = None,
    ) -> None:
        self._settings = settings
        self.cache_ttl_s = cache_ttl_s
        self.fit_check = fit_check
        self._lock = threading.Lock()
        self._search_cache: dict[tuple[str, str, str], tuple[float, list[RepoSummary], bool]] = {}
        self._repo_cache: dict[tuple[str, str, str], tuple[float, RepoListing]] = {}
        self.hub_calls = 0  # how many searches/listings went to the Hub (tests check the cache with it)

    @property
    def settings(self) -> HubSettings:
        return self._settings or HubSettings.from_env()

    def search(self, query: str, *, sort: SortKey = "downloads", page: int = 0, page_size: int = 20) -> SearchPage:
        """One page of GGUF repositories matching ``query``, most downloaded/liked/recent first."""
        if sort not in SORT_KEYS:
            raise UserError(f"Unknown sort {sort!r}; use one of: {', '.join(SORT_KEYS)}.")
        if page < 0 or not 1 <= page_size <= 500:
            raise UserError("The page must be 0 or more and the page size between 1 and 500.")
        s = self.settings
        s.require_online()
        want = (page + 1) * page_size
        key = (s.endpoint, query.strip().lower(), sort)
        now = time.monotonic()
        with self._lock:
            hit = self._search_cache.get(key)
        if hit is not None and now - hit[0] < self.cache_ttl_s and (len(hit[1]) > want or hit[2]):
            items, exhausted = hit[1], hit[2]
        else:
            check_reachable(s.endpoint)
            try:
                found = s.api().list_models(
                    search=query.strip() or None,
                    filter="gguf",
                    sort=_HUB_SORT[sort],
                    limit=want + 1,  # one more tells whether another page exists
                    expand=["downloads", "likes", "lastModified", "createdAt", "gated", "private", "cardData", "tags"],
                )
                items = [_summary(m) for m in found]
            except Exception as exc:
                raise explain_hub_error(exc, query or "search", endpoint=s.endpoint) from exc
            exhausted = len(items) <= want
            with self._lock:
                self.hub_calls += 1
                self._search_cache[key] = (now, items, exhausted)
        start = page * page_size
        return SearchPage(
            query=query,
            sort=sort,
            page=page,
            page_size=page_size,
            items=items[start : start + page_size],
            has_more=len(items) > start + page_size,
        )

    def repo_files(self, repo_id: str, revision: str = "main", *, with_fit: bool = True) -> RepoListing:
        """A repository's GGUF models with sizes, sha256, split parts grouped, license, gated status (cached)."""
        check_repo_id(repo_id)
        s = self.settings
        s.require_online()
        key = (s.endpoint, repo_id, revision)
        now = time.monotonic()
        with self._lock:
            hit = self._repo_cache.get(key)
        if hit is not None and now - hit[0] < self.cache_ttl_s:
            listing = hit[1]
        else:
            check_reachable(s.endpoint)
            api = s.api()
            try:
                info = api.model_info(repo_id, revision=revision)
                entries = list(api.list_repo_tree(repo_id, recursive=True, revision=revision))
            except Exception as exc:
                raise explain_hub_error(exc, repo_id, endpoint=s.endpoint) from exc
            files: list[RemoteFile] = []
            refused: list[str] = []
            for e in entries:
                if not hasattr(e, "size") or not hasattr(e, "blob_id"):
                    continue  # a folder
                if not is_safe_repo_path(e.path):
                    refused.append(e.path)
                    continue
                files.append(RemoteFile(e.path, int(e.size), e.lfs.sha256 if e.lfs else None, e.blob_id))
            models, incomplete = group_gguf_files(files)
            listing = RepoListing(
                repo_id=repo_id,
                revision=revision,
                commit=getattr(info, "sha", None),
                gated=bool(getattr(info, "gated", False)),
                private=bool(getattr(info, "private", False)),
                license=_license(info),
                models=models,
                refused_paths=refused,
                incomplete_splits=incomplete,
            )
            with self._lock:
                self.hub_calls += 1
                self._repo_cache[key] = (now, listing)
        if with_fit and self.fit_check is not None:
            listing = self.with_fit(listing)
        return listing

    def with_fit(self, listing: RepoListing) -> RepoListing:
        """Fill in each model's fit verdict; a failing check gives "unknown" with its reason, never an error."""
        check = self.fit_check
        if check is None:
            return listing
        models = []
        for m in listing.models:
            try:
                verdict = check(listing, m)
            except Exception as exc:  # a fit check must not break browsing
                verdict = FitVerdict("unknown", f"the fit check failed: {exc}")
            models.append(replace(m, fit=verdict))
        return replace(listing, models=models)

    def clear_cache(self) -> None:
        with self._lock:
            self._search_cache.clear()
            self._repo_cache.clear()
