"""A loopback stand-in for Ollama that serves its documented API examples (tests/ollama/*.json).

No real Ollama is reachable from the test machines, so these are Ollama's documented examples (each file's
``_source`` says where from and what was changed), not recordings. The stand-in runs as a child process
(like ``fake_servers`` in tests/llama_server.py) so a test cannot leave a thread behind, and it writes each
POST body it gets to ``requests/<endpoint>.json`` so a test can check what Sizewise sent.

Modes: ``warm`` (the model is in ``/api/ps`` from the start), ``cold`` (``/api/ps`` is empty until a
``/api/generate`` or ``/api/chat`` has loaded it, as Ollama loads on first use), ``drop`` (a chat stream
sends its first chunk and closes the connection: a server gone mid-reply).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.llama_server import free_port

FIXTURES = Path(__file__).resolve().parent / "ollama"
MODEL = "llama3:latest"  # the model every fixture describes


def fixture(name: str) -> Any:
    """A documented response, without its ``_source`` note."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))["response"]


OLLAMA_SERVER = textwrap.dedent(
    """
    import http.server, json, pathlib, sys, time
    mode, port, fixtures, requests = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3]), pathlib.Path(sys.argv[4])
    def doc(name):
        return json.loads((fixtures / (name + ".json")).read_text())["response"]
    state = {"loaded": mode != "cold"}
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def send_json(self, data, status=200):
            body = json.dumps(data).encode()
            self.send_response(status); self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
        def do_GET(self):
            if self.path == "/api/version":
                self.send_json(doc("version"))
            elif self.path == "/api/tags":
                self.send_json(doc("tags"))
            elif self.path == "/api/ps":
                self.send_json(doc("ps") if state["loaded"] else {"models": []})
            elif self.path == "/":
                body = b"Ollama is running"
                self.send_response(200); self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
            else:
                self.send_json({"error": "404 page not found"}, 404)  # unknown paths: Ollama's router answers 404
        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = json.loads(raw)
            name = self.path.strip("/").replace("/", "_")
            (requests / (name + ".json")).write_bytes(raw)
            if self.path == "/api/show":
                if body.get("model") not in ("llama3:latest", "codellama:13b"):
                    self.send_json({"error": "model '%s' not found" % body.get("model")}, 404); return
                self.send_json(doc("show")); return
            if self.path not in ("/api/chat", "/api/generate"):
                self.send_json({"error": "404 page not found"}, 404); return
            state["loaded"] = True
            if self.path == "/api/generate" and body.get("stream") is False and not body.get("prompt"):
                # the documented "Load a model" answer
                self.send_json({"model": body["model"], "created_at": "2023-12-18T19:52:07.071755Z",
                                "response": "", "done": True}); return
            chunks = doc("chat_stream" if self.path == "/api/chat" else "generate_stream")
            self.send_response(200); self.send_header("Content-Type", "application/x-ndjson"); self.end_headers()
            for i, chunk in enumerate(chunks):
                if mode == "drop" and i == 1:
                    return  # the connection closes after the first chunk
                self.wfile.write(json.dumps(chunk).encode() + b"\\n"); self.wfile.flush()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
    print("ready", flush=True)
    server.serve_forever()
    """
)


class OllamaStandIn:
    """One stand-in process; ``requests`` holds the last body POSTed to each endpoint."""

    def __init__(self, mode: str, requests: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests = requests
        requests.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", OLLAMA_SERVER, mode, str(self.port), str(FIXTURES), str(requests)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            self.stop()
            pytest.fail(f"the Ollama stand-in ({mode}) did not start")

    def sent(self, endpoint: str) -> Any:
        """The last JSON body POSTed to ``endpoint`` (e.g. "api/chat")."""
        return json.loads((self.requests / (endpoint.replace("/", "_") + ".json")).read_text())

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def ollama_servers(tmp_path: Path) -> Iterator[Callable[..., OllamaStandIn]]:
    started: list[OllamaStandIn] = []

    def start(mode: str = "warm") -> OllamaStandIn:
        server = OllamaStandIn(mode, tmp_path / f"ollama-requests-{len(started)}")
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
