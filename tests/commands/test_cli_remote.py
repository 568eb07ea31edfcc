"""``generate``, ``chat`` and ``bench`` with ``--server`` through the real command line, against a real llama-server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sizewise.core.chat.store import ConversationStore, StoredMessage
from sizewise.core.paths import basedir_paths
from tests.cli_helpers import run_cli
from tests.hub_fixtures import closed_port
from tests.llama_server import FakeServer, LlamaServer
from tests.ollama_server import OllamaStandIn

native = pytest.mark.native
KEY = "sk-sizewise-test-0123456789abcdef"


def _one_sentence(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert r.returncode == 1, r.stdout + r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("sizewise: ")]
    assert len(lines) == 1, r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@native
def test_generate_json_has_the_local_fields_plus_server_timings(llama_server: LlamaServer, tmp_path: Path) -> None:
    common = ("--prompt", "Name a fruit.", "--seed", "11", "--temperature", "0.9", "--max-tokens", "12", "--json")
    local = run_cli("generate", "starter", *common, basedir=tmp_path / "local")
    assert local.returncode == 0, local.stderr
    a = run_cli("generate", "--server", llama_server.url, *common, basedir=tmp_path / "a")
    b = run_cli("generate", "--server", llama_server.url, *common, basedir=tmp_path / "b")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    out, local_out = json.loads(a.stdout), json.loads(local.stdout)
    assert set(out) - set(local_out) == {"remote", "server_timings"} and set(local_out) <= set(out)
    assert out["text"].strip() and out["text"] == json.loads(b.stdout)["text"]  # same seed, same reply
    assert out["seed"] == 11 and out["tokens"] == out["server_timings"]["predicted_n"] > 0
    assert out["server_timings"]["predicted_per_second"] > 0 and out["tg_tps"] > 0 and out["ttft_ms"] > 0
    assert out["engine"]["remote"] is True and "measured by this client" in out["remote"]["figures"]
    assert out["remote"]["kind"] == "llama-server" and out["model"]["server"] == llama_server.url
    assert "warning" not in a.stderr  # loopback plain http is not flagged
    named = run_cli(
        "generate", "--server", llama_server.url, "--model", out["model"]["name"], *common, basedir=tmp_path
    )
    assert named.returncode == 0 and json.loads(named.stdout)["text"] == out["text"], named.stderr
    _one_sentence(run_cli("generate", "--server", llama_server.url, "--model", "nope", "--prompt", "Hi",
                          basedir=tmp_path), "has no model named 'nope'")  # fmt: skip
    human = run_cli("generate", "--server", llama_server.url, "--prompt", "Hi", "--max-tokens", "8", basedir=tmp_path)
    assert human.returncode == 0 and human.stdout.strip(), human.stderr
    assert "tok/s as received" in human.stderr and "remote SmolLM2" in human.stderr and ", server " in human.stderr


@native
def test_the_api_key_is_never_shown_or_logged(llama_servers: Callable[..., LlamaServer], tmp_path: Path) -> None:
    server = llama_servers(api_key=KEY)
    base = tmp_path / "base"
    env = {"SW_KEY": KEY}
    (tmp_path / "wrong").write_text("sk-wrong-key-fedcba9876543210\n")
    runs = [
        run_cli("--debug", "generate", "--server", server.url, "--api-key-env", "SW_KEY", "--prompt", "Hi",
                "--max-tokens", "6", "--json", basedir=base, env=env),
        run_cli("--debug", "chat", "--server", server.url, "--api-key-env", "SW_KEY", "--conversation", "k",
                "--prompt", "Hi", "--max-tokens", "6", basedir=base, env=env),
        run_cli("--debug", "bench", "--server", server.url, "--api-key-env", "SW_KEY", "-r", "1", "--pp", "16",
                "--tg", "4", "--no-ttft", basedir=base, env=env),
        run_cli("--debug", "generate", "--server", server.url, "--api-key-file", str(tmp_path / "wrong"),
                "--prompt", "Hi", basedir=base),
        run_cli("--debug", "generate", "--server", server.url, "--prompt", "Hi", basedir=base),
    ]  # fmt: skip
    assert [r.returncode for r in runs] == [0, 0, 0, 1, 1], [r.stderr for r in runs]
    _one_sentence(runs[3], "refused the API key")
    _one_sentence(runs[4], "needs an API key")
    assert "Traceback" in runs[3].stderr  # --debug really was on
    for r in runs:
        for secret in (KEY, "sk-wrong-key"):
            assert secret not in r.stdout and secret not in r.stderr
    log = base / "logs" / "remote.log"
    assert "POST /v1/chat/completions stream" in log.read_text()  # the requests were logged, the key was not
    files = [p for p in base.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"remote.log", "conversations.sqlite3"}
    for p in files:
        data = p.read_bytes()
        assert KEY.encode() not in data and b"sk-wrong-key" not in data, p


def _interrupt_mid_reply(
    cmd: list[str], interrupt: Callable[[subprocess.Popen[bytes]], object]
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``, call ``interrupt`` once 40 bytes of the reply are on stdout, and collect the rest."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + 60
    while len(seen) < 40 and time.monotonic() < deadline:
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        seen += chunk
    interrupt(proc)
    out, err = proc.communicate(timeout=60)
    assert len(seen) >= 40, (seen, err)
    return subprocess.CompletedProcess(cmd, proc.returncode, (seen + out).decode(), err.decode())


def _stored(base: Path, title: str) -> list[StoredMessage]:
    store = ConversationStore.open(basedir_paths(base).database_file)
    try:
        conv = store.find_by_title(title)
        assert conv is not None
        return store.messages(conv.id)
    finally:
        store.close()


@native
def test_ctrl_c_stops_a_remote_chat_the_server_goes_idle_and_the_reply_is_kept(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    base = tmp_path / "base"
    cmd = [sys.executable, "-m", "sizewise", "--basedir", str(base), "chat", "--server", llama_server.url,
           "--conversation", "stop", "--prompt", "Write a very long story about a lighthouse keeper.",
           "--max-tokens", "1500", "--temperature", "1.0", "--seed", "3"]  # fmt: skip
    r = _interrupt_mid_reply(cmd, lambda proc: proc.send_signal(signal.SIGINT))  # Ctrl+C in a terminal
    assert r.returncode == 130 and "sizewise: interrupted." in r.stderr, r.stderr
    stopped = time.monotonic()
    while llama_server.busy():  # closing the stream is what stops llama-server
        assert time.monotonic() - stopped < 5, "llama-server kept generating after Ctrl+C"
        time.sleep(0.02)
    messages = _stored(base, "stop")
    assert [(m.role, m.status) for m in messages] == [("user", "complete"), ("assistant", "interrupted")]
    assert messages[1].content.strip() and messages[1].content in r.stdout


@native
def test_chat_keeps_the_conversation_when_the_server_dies_mid_reply(
    llama_servers: Callable[..., LlamaServer], tmp_path: Path
) -> None:
    server = llama_servers()
    base = tmp_path / "base"
    first = run_cli("chat", "--server", server.url, "--conversation", "trip", "--prompt", "Hello!",
                    "--max-tokens", "8", basedir=base)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "remote SmolLM2" in first.stderr
    cmd = [sys.executable, "-m", "sizewise", "--basedir", str(base), "chat", "--server", server.url,
           "--conversation", "trip", "--prompt", "Write a very long story about a lighthouse keeper.",
           "--max-tokens", "1500", "--temperature", "1.0", "--seed", "3"]  # fmt: skip
    r = _interrupt_mid_reply(cmd, lambda _proc: server.kill())
    _one_sentence(r, "closed the connection in the middle of the reply")
    messages = _stored(base, "trip")
    assert [(m.role, m.status) for m in messages] == [
        ("user", "complete"), ("assistant", "complete"), ("user", "complete"), ("assistant", "interrupted")
    ]  # fmt: skip
    assert messages[1].content.strip() and messages[3].content.strip()
    assert messages[3].content in r.stdout  # what was shown was kept
    assert messages[1].model_path.startswith(server.url)


@native
def test_bench_follows_llama_bench_and_says_what_differs(llama_server: LlamaServer, tmp_path: Path) -> None:
    r = run_cli("bench", "--server", llama_server.url, "-r", "2", "--pp", "32", "--tg", "8", "--json", basedir=tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    entry = report["models"][0]
    for key, n in (("pp", 32), ("tg", 8)):
        assert entry[key]["n"] == n and entry[key]["repetitions"] == 2 and len(entry[key]["samples_tps"]) == 2
        assert entry[key]["mean_tps"] > 0 and entry[key]["sd_tps"] >= 0 and entry[key]["client_mean_tps"] > 0
    timed = [t for t in entry["server_timings"] if t["phase"] == "pp"]
    assert len(timed) == 3 and all(t["prompt_n"] == 32 and t["cache_n"] == 0 for t in timed)  # warm-up + 2, no reuse
    assert all(t["predicted_n"] == 8 for t in entry["server_timings"] if t["phase"] == "tg")
    assert entry["ttft_ms"] > 0 and "cache_prompt false" in report["method"]
    assert any("memory" in d for d in report["differences_from_local"])
    human = run_cli("bench", "--server", llama_server.url, "-r", "1", "--pp", "16", "--tg", "4", "--no-warmup",
                    basedir=tmp_path)  # fmt: skip
    assert human.returncode == 0, human.stderr
    assert "Differs from a local bench:" in human.stdout and "± " in human.stdout
    assert "no memory figures" in human.stdout and "the network" in human.stdout and "threads" in human.stdout


def test_a_stalled_server_is_given_up_after_server_timeout(
    fake_servers: Callable[[str], FakeServer], tmp_path: Path
) -> None:
    server = fake_servers("stall")
    r = run_cli("generate", "--server", server.url, "--server-timeout", "1", "--prompt", "Hi", basedir=tmp_path)
    _one_sentence(r, "did not answer within 1 s")
    assert r.stdout.startswith("half a ")  # the part that came is kept on screen
    r = run_cli("generate", "--server", server.url, "--server-timeout", "1", "--prompt", "Hi", "--json",
                basedir=tmp_path)  # fmt: skip
    _one_sentence(r, "did not answer within 1 s")
    assert json.loads(r.stdout) == {"text": "half a ", "finish_reason": "interrupted"}  # --json keeps it too


def test_bad_targets_get_one_sentence(tmp_path: Path) -> None:
    port = closed_port()
    _one_sentence(run_cli("generate", "--server", f"http://127.0.0.1:{port}", "--prompt", "Hi", basedir=tmp_path),
                  "connection was refused")  # fmt: skip
    _one_sentence(run_cli("generate", "--server", "ftp://x", "--prompt", "Hi", basedir=tmp_path),
                  "is not a server address")  # fmt: skip
    _one_sentence(run_cli("generate", "starter", "--server", "http://127.0.0.1:1", "--prompt", "Hi", basedir=tmp_path),
                  "either MODEL or --server")  # fmt: skip
    _one_sentence(run_cli("generate", "--prompt", "Hi", basedir=tmp_path), "Give a MODEL")
    _one_sentence(run_cli("bench", "starter", "--api-key-env", "X", basedir=tmp_path), "go with --server")
    r = run_cli("chat", "--server", "http://sizewise-test.invalid:8080", "--conversation", "c", "--prompt", "Hi",
                basedir=tmp_path)  # fmt: skip
    _one_sentence(r, "could not be found")
    assert "warning: http://sizewise-test.invalid:8080 is not encrypted" in r.stderr


def test_generate_on_ollama_has_its_timings_and_measured_memory(
    ollama_servers: Callable[..., OllamaStandIn], tmp_path: Path
) -> None:
    """Against the Ollama stand-in (Ollama's documented examples, tests/ollama/), not a real Ollama."""
    server = ollama_servers()
    r = run_cli("generate", "--server", server.url, "--model", "llama3:latest", "--prompt", "Hi", "--seed", "4",
                "--json", basedir=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["text"] == "The sky is blue." and out["tokens"] == out["server_timings"]["eval_count"] == 282
    assert out["server_timings"]["predicted_per_second"] == pytest.approx(282 / 4.535599)
    assert out["remote"]["kind"] == "ollama" and out["remote"]["facts"]["family"] == "llama"
    memory = out["remote"]["memory"]
    assert memory["source"] == "measured" and memory["bytes"] == 5137025024 and memory["ram_bytes"] == 0
    assert out["engine"]["sampling_sent"] == [
        "min_p", "num_predict", "repeat_penalty", "seed", "temperature", "top_k", "top_p"
    ]  # fmt: skip
    human = run_cli("generate", "--server", server.url, "--model", "llama3:latest", "--prompt", "Hi", basedir=tmp_path)
    assert human.returncode == 0 and "server 62.2 tok/s" in human.stderr, human.stderr
