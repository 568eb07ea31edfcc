"""Read a GGUF header straight from the Hub with HTTP Range requests — a few MB, never the whole file.

The same parser as for local files (``gguf_meta.parse_header``) runs over ``HttpRangeSource``, a
``ByteSource`` that fetches the file in ranges as the parser asks for bytes. Ranges start small and
grow (32 KiB doubling to 256 KiB) so a small header costs one request, and a fetch never reaches
further ahead than the 2 % budget allows unless the parser itself needs the bytes. Arrays whose
content is not kept (tokenizer scores, token types) are skipped by moving the position, not fetched;
after such a jump the read-ahead starts small again, because what was read ahead of a skip is wasted.
A server that ignores ``Range`` and answers with the whole file is read once, only as far as the
header goes, then the connection is closed; a hard ceiling (a quarter of the file) stops anything
pathological.

URLs, tokens and the session come from ``huggingface_hub`` (``hf_hub_url``, ``get_hf_file_metadata``,
``get_session``), so ``HF_ENDPOINT``, ``HF_TOKEN`` and ``HF_HUB_OFFLINE`` are honoured; errors become
one sentence through ``core.hub.explain_hub_error`` (gated, missing, offline …). None of these requests is
retried, so no network (a name that does not resolve, a refused connection) is one sentence at once:
``explain_hub_error`` recognises it in the connection error's cause and raises ``HubUnreachable``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sizewise.core.errors import UserError
from sizewise.core.gguf.header import GGUFError, GGUFHeader, parse_header
from sizewise.core.hub.browse import HubSettings, check_repo_id, check_repo_path, explain_hub_error

HEADER_BUDGET_FRACTION = 0.02  # the goal: at most 2 % of the file
HARD_CEILING_FRACTION = 0.25  # never more than this, whatever the header claims
FIRST_CHUNK = 32 << 10
MAX_CHUNK = 256 << 10

_HUB_SPEC = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)/(?P<file>.+\.gguf)$", re.IGNORECASE)


def parse_hub_spec(spec: str) -> tuple[str, str] | None:
    """``owner/repo/path/file.gguf`` → (repo id, file path); None if ``spec`` does not look like one."""
    m = _HUB_SPEC.match(spec.strip())
    if not m:
        return None
    return m["repo"], m["file"]


@dataclass
class FetchStats:
    bytes_fetched: int = 0
    requests: int = 0
    ranges: list[tuple[int, int]] = field(default_factory=list)


class HttpRangeSource:
    """Sequential reads over HTTP ranges, with a forward ``skip`` that fetches nothing."""

    def __init__(
        self,
        url: str,
        size: int,
        *,
        session: Any,
        headers: dict[str, str] | None = None,
        budget_fraction: float = HEADER_BUDGET_FRACTION,
    ) -> None:
        self.url = url
        self._size = size
        self.session = session
        self.headers = dict(headers or {})
        self.stats = FetchStats()
        self._buf = b""
        self._buf_start = 0  # file offset of _buf[0]
        self._pos = 0
        self._chunk = FIRST_CHUNK
        self._whole: _OpenBody | None = None
        self.budget = max(int(size * budget_fraction), FIRST_CHUNK)
        self.ceiling = max(int(size * HARD_CEILING_FRACTION), FIRST_CHUNK)

    @property
    def size(self) -> int:
        return self._size

    def skip(self, n: int) -> None:
        self._pos += n
        if self._pos > self._buf_start + len(self._buf):
            self._chunk = FIRST_CHUNK

    def read(self, n: int) -> bytes:
        if n <= 0:
            return b""
        end = min(self._pos + n, self._size)
        offset = self._pos - self._buf_start
        if offset < 0 or self._pos + n > self._buf_start + len(self._buf):
            self._fill(self._pos, end - self._pos)
            offset = 0
        data = self._buf[offset : offset + (end - self._pos)]
        self._pos += len(data)
        return data

    def _fill(self, start: int, needed: int) -> None:
        """Fetch from ``start``: at least ``needed`` bytes, more (read-ahead) only within the budget."""
        keep = b""
        if self._buf_start <= start < self._buf_start + len(self._buf):
            keep = self._buf[start - self._buf_start :]
        fetch_from = start + len(keep)
        want = max(needed - len(keep), self._chunk)
        room = self.budget - self.stats.bytes_fetched
        want = max(needed - len(keep), min(want, room))
        want = min(want, self._size - fetch_from)
        if self.stats.bytes_fetched + want > self.ceiling:
            raise GGUFError(
                f"The header of this file is larger than {self.ceiling:,} bytes; Sizewise will not read that much "
                "of a remote file just to inspect it."
            )
        data = self._get(fetch_from, want) if want > 0 else b""
        self._buf = keep + data
        self._buf_start = start
        self._chunk = min(self._chunk * 2, MAX_CHUNK)

    def _get(self, start: int, length: int) -> bytes:
        if self._whole is not None:  # the server ignores Range: keep reading the one open response
            return self._from_whole(start, length)
        from huggingface_hub import hf_raise_for_status

        end = start + length - 1
        headers = {**self.headers, "Range": f"bytes={start}-{end}"}
        self.stats.requests += 1
        self.stats.ranges.append((start, end))
        cm = self.session.stream("GET", self.url, headers=headers, follow_redirects=True, timeout=30)
        resp = cm.__enter__()
        try:
            hf_raise_for_status(resp)
            if resp.status_code == 200:
                self._whole = _OpenBody(cm, resp.iter_bytes())
                return self._from_whole(start, length)
            chunks: list[bytes] = []
            got = 0
            for chunk in resp.iter_bytes():
                take = chunk[: length - got]
                chunks.append(take)
                got += len(take)
                self.stats.bytes_fetched += len(take)
                if got >= length:
                    break  # closing the response stops the transfer
            return b"".join(chunks)
        finally:
            if self._whole is None:
                cm.__exit__(None, None, None)

    def _from_whole(self, start: int, length: int) -> bytes:
        """Read [start, start+length) from a response that carries the whole file, never rewinding."""
        body = self._whole
        assert body is not None
        if start < body.pos:
            raise GGUFError("The server ignores byte ranges and the header reader cannot go back.")
        out: list[bytes] = []
        got = 0
        while got < length:
            if not body.pending:
                try:
                    body.pending = next(body.chunks)
                except StopIteration:
                    break
                self.stats.bytes_fetched += len(body.pending)
            piece = body.pending
            if body.pos < start:  # discard up to start
                drop = min(len(piece), start - body.pos)
                body.pending = piece[drop:]
                body.pos += drop
                continue
            take = piece[: length - got]
            out.append(take)
            got += len(take)
            body.pending = piece[len(take) :]
            body.pos += len(take)
        return b"".join(out)

    def close(self) -> None:
        if self._whole is not None:
            self._whole.cm.__exit__(None, None, None)
            self._whole = None


@dataclass
class _OpenBody:
    cm: Any
    chunks: Iterator[bytes]
    pos: int = 0
    pending: bytes = b""


@dataclass(frozen=True)
class RemoteHeader:
    repo_id: str
    filename: str
    url: str
    header: GGUFHeader
    file_bytes: int
    bytes_fetched: int
    requests: int

    @property
    def display_path(self) -> str:
        return f"{self.repo_id}/{self.filename}"


def read_remote_header(repo_id: str, filename: str, revision: str = "main", *, session: Any = None) -> RemoteHeader:
    """Parse the header of ``filename`` in ``repo_id`` on the Hub (or the endpoint in HF_ENDPOINT)."""
    from huggingface_hub import get_hf_file_metadata, get_session, hf_hub_url
    from huggingface_hub.utils._headers import build_hf_headers

    check_repo_id(repo_id)
    check_repo_path(filename)
    settings = HubSettings.from_env()
    settings.require_online()
    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=settings.endpoint)
    try:
        meta = get_hf_file_metadata(url, token=settings.token or None, endpoint=settings.endpoint)
    except Exception as exc:
        raise explain_hub_error(exc, repo_id, filename, endpoint=settings.endpoint) from exc
    size = meta.size
    if not size:
        raise UserError(f"The Hub did not say how large {filename} is, so its header cannot be read in ranges.")
    location = meta.location or url
    same_origin = urlsplit(location).netloc == urlsplit(settings.endpoint).netloc
    # The token goes to the Hub only, never to the storage server a download is redirected to.
    headers = build_hf_headers(token=settings.token or None) if same_origin else {}
    src = HttpRangeSource(location, size, session=session or get_session(), headers=headers)
    try:
        header = parse_header(src)
    except GGUFError:
        raise
    except Exception as exc:
        raise explain_hub_error(exc, repo_id, filename, endpoint=settings.endpoint) from exc
    finally:
        src.close()
    return RemoteHeader(
        repo_id=repo_id,
        filename=filename,
        url=url,
        header=header,
        file_bytes=size,
        bytes_fetched=src.stats.bytes_fetched,
        requests=src.stats.requests,
    )
