"""Real servers on loopback for the remote-engine tests; conftest.py imports the fixtures.

* ``native_bin`` (session): llama.cpp's tools from scripts/native-tools.sh — built once per machine (13-16 min on
  2 cores the first time, then cached outside the checkout), so these tests carry the ``native`` marker.
* ``llama_servers`` (function): start real ``llama-server`` processes (SmolLM2, ``-t 1 -c 2048 -np 1``) on free
  loopback ports, each waited for on ``/health``, all stopped at the test's end. Function-scoped because the
  ``no_leftovers`` guard fails a test that leaves a child process running.
* ``fake_servers`` (function): things that are not OpenAI servers — Python's ``http.server`` (HTML error pages),
  a TCP listener that answers garbage bytes, a stream that sends half a reply and hangs, a TLS server with a
  self-signed certificate, a 9 MiB model list, a 2 MiB stream event,
  a server with two models.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def native_bin() -> Path:
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "native-tools.sh")], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"native tools could not be built: {proc.stderr.strip()}")
    return Path(proc.stdout.strip().splitlines()[-1])


class LlamaServer:
    """One real llama-server process."""

    def __init__(
        self, binary: Path, model: Path, log: Path, api_key: str | None = None, extra: tuple[str, ...] = ()
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = [str(binary), "-m", str(model), "-t", "1", "-c", "2048", "-np", "1"]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port)]
        if api_key:
            cmd += ["--api-key", api_key]
        cmd += list(extra)
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"llama-server exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if json.loads(r.read()).get("status") == "ok":
                        return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.1)
        pytest.fail(f"llama-server did not become healthy in {timeout:.0f} s: {self.log.read_text()[-2000:]}")

    def busy(self) -> bool:
        """Whether a slot is still generating (``/slots``)."""
        with urllib.request.urlopen(self.url + "/slots", timeout=5) as r:
            return any(slot.get("is_processing") for slot in json.loads(r.read()))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log_file.close()


@pytest.fixture
def llama_servers(native_bin: Path, smollm2_path: Path, tmp_path: Path) -> Iterator[Callable[..., LlamaServer]]:
    started: list[LlamaServer] = []

    def start(api_key: str | None = None, extra: tuple[str, ...] = ()) -> LlamaServer:
        log = tmp_path / f"llama-server-{len(started)}.log"
        server = LlamaServer(native_bin / "llama-server", smollm2_path, log, api_key, extra)
        started.append(server)
        server.wait_ready()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def llama_server(llama_servers: Callable[..., LlamaServer]) -> LlamaServer:
    return llama_servers()


# Servers that are not OpenAI servers. Each runs as a child process (one script, a mode argument) so a test
# cannot leave a thread behind.
FAKE_SERVER = textwrap.dedent(
    """
    import http.server, socket, ssl, sys, time
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "garbage":
        s = socket.socket(); s.bind(("127.0.0.1", port)); s.listen()
        print("ready", flush=True)
        while True:
            c, _ = s.accept(); c.recv(65536); c.sendall(b"\\x00\\xffnot http at all\\r\\n\\r\\n"); c.close()
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def do_GET(self):
            if mode in ("stall", "tls", "huge", "hugeevent", "two") and self.path == "/v1/models":
                body = b'{"object": "list", "data": [{"id": "m", "object": "model"}]}'
                if mode == "two":
                    body = b'{"object": "list", "data": [{"id": "small"}, {"id": "large"}]}'
                if mode == "huge":
                    body = b'{"object": "list", "data": [], "pad": "' + b"x" * (9 * 2**20) + b'"}'
                self.send_response(200); self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
            else:
                self.send_error(404)
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if mode == "hugeevent":
                self.send_response(200); self.send_header("Content-Type", "text/event-stream"); self.end_headers()
                big = b"y" * 2**21
                self.wfile.write(b'data: {"choices": [{"index": 0, "delta": {"content": "' + big + b'"}}]}\\n\\n')
                return
            if mode == "stall":
                self.send_response(200); self.send_header("Content-Type", "text/event-stream"); self.end_headers()
                chunk = b'data: {"choices": [{"index": 0, "delta": {"content": "half a "}}]}\\n\\n'
                self.wfile.write(chunk); self.wfile.flush(); time.sleep(600)
            self.send_error(501)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)  # a stalled reply must not block the next
    if mode == "tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("ready", flush=True)
    server.serve_forever()
    """
)


class FakeServer:
    def __init__(self, mode: str, *extra: str) -> None:
        self.port = free_port()
        scheme = "https" if mode == "tls" else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FAKE_SERVER, mode, str(self.port), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            self.stop()
            pytest.fail(f"the {mode} stand-in server did not start")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def fake_servers(tmp_path: Path) -> Iterator[Callable[[str], FakeServer]]:
    started: list[FakeServer] = []

    def start(mode: str) -> FakeServer:
        extra: tuple[str, ...] = ()
        if mode == "tls":
            cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                 "-addext", "subjectAltName=IP:127.0.0.1",
                 "-keyout", str(key), "-out", str(cert)],
                check=True,
                capture_output=True,
            )  # fmt: skip
            extra = (str(cert), str(key))  # the certificate is tmp_path / "cert.pem"
        server = FakeServer(mode, *extra)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
