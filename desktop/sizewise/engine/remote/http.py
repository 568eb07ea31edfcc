"""HTTP to an OpenAI-compatible server with the standard library: JSON calls and a server-sent-events stream.

Why ``http.client`` and not a client library: the stream must be stoppable from another thread (shutting the
socket down unblocks the reader at once), every read must be bounded (a hostile or broken server cannot make us
buffer without end) and every failure must become one sentence for the user. TLS uses
``ssl.create_default_context()``: certificates and host names are verified, always.

The API key lives in an ``ApiKey`` whose ``repr``/``str`` hide it; it is only ever written into the
``Authorization`` header, and any server text we quote has it cut out, so no log or message can carry it.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

MAX_JSON_BYTES = 8 * 2**20  # a whole non-streamed answer (/props carries the chat template: tens of KiB)
MAX_EVENT_BYTES = 2**20  # one server-sent event line
CONNECT_TIMEOUT_S = 10.0
STALL_TIMEOUT_S = 120.0  # no byte for this long mid-reply: the stream is cut (a slow prompt on a CPU server fits)


class RemoteError(RuntimeError):
    """One sentence for the user: why talking to the server failed; ``status`` is the HTTP status if one came."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ApiKey:
    """A secret that cannot leak through formatting: only ``header()`` gives it out."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def header(self) -> str:
        return f"Bearer {self._value}"

    def redact(self, text: str) -> str:
        return text.replace(self._value, "[API key]") if self._value else text

    def __repr__(self) -> str:
        return "ApiKey(hidden)"

    __str__ = __repr__


def read_api_key(env_var: str | None, file: str | None) -> ApiKey | None:
    """The key from an environment variable or a file (never from the command line, where ``ps`` shows it)."""
    if env_var:
        value = os.environ.get(env_var, "").strip()
        if not value:
            raise RemoteError(f"The environment variable {env_var} that --api-key-env names is not set or empty.")
        return ApiKey(value)
    if file:
        try:
            value = Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise RemoteError(f"The API key file {file} cannot be read ({exc.strerror or exc}).") from None
        if not value:
            raise RemoteError(f"The API key file {file} is empty.")
        return ApiKey(value)
    return None


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerAddress:
    scheme: str
    host: str
    port: int
    base_path: str  # "" or "/prefix" (a server behind a reverse proxy path)

    @classmethod
    def parse(cls, url: str) -> ServerAddress:
        text = url.strip()
        if "://" not in text:
            text = "http://" + text
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise RemoteError(f"{url!r} is not a server address; give one like http://127.0.0.1:8080.") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteError(f"{url!r} is not a server address; give one like http://127.0.0.1:8080.")
        if parts.username or parts.password:
            raise RemoteError("Put the API key in --api-key-env or --api-key-file, not in the server address.")
        base = parts.path.rstrip("/")
        if base.endswith("/v1"):
            base = base[: -len("/v1")]  # people paste the OpenAI base URL; our paths add /v1 themselves
        return cls(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), base)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.base_path}"

    @property
    def encrypted(self) -> bool:
        return self.scheme == "https"

    @property
    def loopback(self) -> bool:
        return _is_loopback(self.host)

    def warning(self) -> str | None:
        """The sentence shown for plain HTTP off this machine: prompts, replies and the key travel readable."""
        if self.encrypted or self.loopback:
            return None
        return (
            f"{self.url} is not encrypted (plain http to another machine): prompts, replies and any API key "
            "cross the network readable; use https:// or a network you trust."
        )


def _json_error(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            err = err.get("message")
        if isinstance(err, str) and err.strip():
            return err.strip()
    return None


class HttpClient:
    """Requests to one server; thread-safe only in that ``stop_stream`` may be called from another thread."""

    def __init__(
        self,
        address: ServerAddress,
        api_key: ApiKey | None = None,
        *,
        stall_timeout: float = STALL_TIMEOUT_S,
        log_path: Path | None = None,
    ) -> None:
        self.address = address
        self.api_key = api_key
        self.stall_timeout = stall_timeout
        self.log_path = log_path
        self._lock = threading.Lock()
        self._stream_sock: socket.socket | None = None
        self._stopped = False

    # -- plumbing ---------------------------------------------------------------------------------------------
    def _log(self, line: str) -> None:
        """One line per request (method, path, status, time): what ``--debug`` users read; never headers."""
        if self.log_path is None:
            return
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a", encoding="utf-8") as f:
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {self._redact(line)}\n")
        except OSError:
            pass

    def _redact(self, text: str) -> str:
        return self.api_key.redact(text) if self.api_key is not None else text

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        a = self.address
        if a.encrypted:
            return http.client.HTTPSConnection(a.host, a.port, timeout=timeout, context=ssl.create_default_context())
        return http.client.HTTPConnection(a.host, a.port, timeout=timeout)

    def _headers(self, body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json, text/event-stream", "User-Agent": "sizewise"}
        if body:
            headers["Content-Type"] = "application/json"
        if self.api_key is not None:
            headers["Authorization"] = self.api_key.header()
        return headers

    def _fail(self, exc: BaseException, what: str, timeout: float | None = None) -> RemoteError:
        """The sentence for a transport failure."""
        url = self.address.url
        if isinstance(exc, RemoteError):
            return exc
        if isinstance(exc, ssl.SSLCertVerificationError):
            reason = exc.verify_message or "unknown reason"
            return RemoteError(f"The TLS certificate of {self.address.host} could not be verified ({reason}).")
        if isinstance(exc, ssl.SSLError):
            return RemoteError(f"The TLS connection to {url} failed ({exc.reason or exc}); is it really https?")
        if isinstance(exc, ConnectionRefusedError):
            return RemoteError(f"Nothing answers at {url}: the connection was refused (is the server running?).")
        if isinstance(exc, socket.gaierror):
            return RemoteError(f"The host name {self.address.host} could not be found.")
        if isinstance(exc, TimeoutError):
            waited = timeout or self.stall_timeout
            return RemoteError(f"The server at {url} did not answer within {waited:g} s ({what}).")
        if isinstance(exc, http.client.IncompleteRead | http.client.RemoteDisconnected | ConnectionError):
            return RemoteError(f"The server at {url} closed the connection during {what}.")
        if isinstance(exc, http.client.HTTPException):
            return RemoteError(f"The server at {url} did not answer in HTTP during {what}; is that the right port?")
        if isinstance(exc, OSError):
            return RemoteError(f"Could not talk to {url} ({exc.strerror or exc}).")
        return RemoteError(f"Talking to {url} failed during {what} ({type(exc).__name__}).")

    def _status_error(self, status: int, body: bytes, content_type: str, path: str) -> RemoteError:
        error = self._status_sentence(status, body, content_type, path)
        error.status = status
        return error

    def _status_sentence(self, status: int, body: bytes, content_type: str, path: str) -> RemoteError:
        url = self.address.url
        if status in (401, 403):
            has_key = self.api_key is not None
            why = "refused the API key" if has_key else "needs an API key: give --api-key-env or --api-key-file"
            return RemoteError(f"The server at {url} answered HTTP {status}: it {why}.")
        message = _json_error(body)
        if message:
            message = self._redact(message)[:300]
            return RemoteError(f"The server at {url} answered HTTP {status} to {path}: {message.rstrip('.')}.")
        if "html" in content_type or body.lstrip()[:1] == b"<":
            return RemoteError(
                f"The server at {url} answered {path} with an HTML page (HTTP {status}), not an OpenAI-compatible API."
            )
        return RemoteError(f"The server at {url} answered HTTP {status} to {path}.")

    # -- JSON calls -------------------------------------------------------------------------------------------
    def call(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        """The decoded JSON answer; RemoteError for anything else (status, size, not JSON, transport)."""
        full = self.address.base_path + path
        t0 = time.monotonic()
        timeout = timeout or self.stall_timeout
        conn = self._connection(timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            conn.request(method, full, body=data, headers=self._headers(body is not None))
            resp = conn.getresponse()
            raw = resp.read(MAX_JSON_BYTES + 1)
            ctype = resp.getheader("Content-Type", "") or ""
        except Exception as exc:  # every transport failure becomes one sentence
            self._log(f"{method} {full} failed: {type(exc).__name__}")
            raise self._fail(exc, f"{method} {path}", timeout) from None
        finally:
            conn.close()
        self._log(f"{method} {full} -> {resp.status} ({len(raw)} bytes, {time.monotonic() - t0:.3f} s)")
        if len(raw) > MAX_JSON_BYTES:
            raise RemoteError(
                f"The server at {self.address.url} sent more than {MAX_JSON_BYTES // 2**20} MiB for {path}."
            )
        if resp.status >= 400:
            raise self._status_error(resp.status, raw, ctype, path)
        try:
            return json.loads(raw)
        except ValueError:
            raise RemoteError(
                f"The server at {self.address.url} answered {path} with something that is not JSON; "
                "is it an OpenAI-compatible server?",
                status=resp.status,
            ) from None

    # -- streaming --------------------------------------------------------------------------------------------
    def stream(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Each server-sent event's JSON; ends at ``[DONE]`` or the end of the stream.

        A non-streamed JSON answer (a server that ignores ``stream``) is yielded as one event. After
        ``stop_stream()`` the generator simply ends. Closing the generator closes the connection, which is what
        tells llama-server to stop generating.
        """
        full = self.address.base_path + path
        conn = self._connection(self.stall_timeout)
        with self._lock:
            self._stopped = False
        t0 = time.monotonic()
        events = 0
        try:
            try:
                conn.request("POST", full, body=json.dumps(body).encode(), headers=self._headers(True))
                with self._lock:
                    self._stream_sock = conn.sock
                    if self._stopped:
                        return
                resp = conn.getresponse()
            except Exception as exc:
                if self._stopped:
                    return
                raise self._fail(exc, "the request") from None
            ctype = resp.getheader("Content-Type", "") or ""
            if resp.status >= 400:
                raise self._status_error(resp.status, resp.read(MAX_JSON_BYTES), ctype, path)
            if "ndjson" in ctype:  # Ollama's native endpoints: one JSON object a line, no [DONE]
                for line in self._lines(resp):
                    try:
                        event = json.loads(line)
                    except ValueError:
                        raise self._garbage(path) from None
                    if not isinstance(event, dict):
                        raise self._garbage(path)
                    self._check_error(event)
                    events += 1
                    yield event
                return
            if "text/event-stream" not in ctype:
                raw = resp.read(MAX_JSON_BYTES + 1)
                try:
                    one = json.loads(raw) if len(raw) <= MAX_JSON_BYTES else None
                except ValueError:
                    one = None
                if not isinstance(one, dict):
                    raise self._garbage(path)
                self._check_error(one)
                events = 1
                yield one
                return
            for data in self._events(resp, path):
                if data == "[DONE]":
                    return
                try:
                    event = json.loads(data)
                except ValueError:
                    raise self._garbage(path) from None
                if not isinstance(event, dict):
                    raise self._garbage(path)
                self._check_error(event)
                events += 1
                yield event
        finally:
            with self._lock:
                self._stream_sock = None
            conn.close()
            self._log(f"POST {full} stream: {events} events, {time.monotonic() - t0:.3f} s")

    def _check_error(self, event: dict[str, Any]) -> None:
        """An error object in place of a reply (llama-server sends one mid-stream when a request fails)."""
        if "error" in event and "choices" not in event:
            message = _json_error(json.dumps(event).encode()) or "no reason given"
            message = self._redact(message)[:300].rstrip(".")
            raise RemoteError(f"The server at {self.address.url} stopped the reply: {message}.")

    def _garbage(self, path: str) -> RemoteError:
        return RemoteError(
            f"The server at {self.address.url} answered {path} with something that is not an OpenAI-compatible reply."
        )

    def _read_line(self, resp: http.client.HTTPResponse) -> bytes | None:
        """One line, bounded; None once stopped, b"" at the end of the stream."""
        try:
            line = resp.readline(MAX_EVENT_BYTES + 1)
        except Exception as exc:
            if self._stopped:
                return None
            raise self._fail(exc, "the reply") from None
        if self._stopped:
            return None
        if len(line) > MAX_EVENT_BYTES:
            raise RemoteError(
                f"The server at {self.address.url} sent an event over {MAX_EVENT_BYTES // 2**20} MiB; "
                "the reply was cut."
            )
        return line

    def _lines(self, resp: http.client.HTTPResponse) -> Iterator[str]:
        """The non-empty lines of a newline-delimited JSON stream, until its end (the caller checks ``done``)."""
        while (line := self._read_line(resp)) is not None and line:
            text = line.decode("utf-8", "replace").strip()
            if text:
                yield text

    def _events(self, resp: http.client.HTTPResponse, path: str) -> Iterator[str]:
        """The data of each event (``data:`` lines joined), bounded per line; EOF without [DONE] is a drop."""
        lines: list[str] = []
        while True:
            line = self._read_line(resp)
            if line is None:
                return
            if not line:
                raise RemoteError(f"The server at {self.address.url} closed the connection in the middle of the reply.")
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if text.startswith("data:"):
                lines.append(text[5:].lstrip(" "))
            elif not text and lines:
                yield "\n".join(lines)
                lines = []
            elif text and not text.startswith((":", "event:", "id:", "retry:")):
                raise self._garbage(path)

    def stop_stream(self) -> None:
        """End the running stream now (from any thread): the socket is shut, the reader sees the end."""
        with self._lock:
            self._stopped = True
            sock = self._stream_sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    @property
    def stopped(self) -> bool:
        return self._stopped

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_stream()
