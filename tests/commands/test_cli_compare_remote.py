"""``sizewise compare --server URL[#MODEL]`` through the real command line: models on servers beside or instead
of local files, against a real llama-server and the Ollama stand-in (Ollama's documented examples)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import run_cli
from tests.llama_server import LlamaServer
from tests.ollama_server import MODEL, OllamaStandIn, fixture

PROMPT = ("--prompt", "Name a fruit.")


def _json(r: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert r.returncode == 0, r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def _one_sentence(r: subprocess.CompletedProcess[str], needle: str) -> None:
    assert r.returncode == 1, r.stdout + r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr, r.stderr


@pytest.mark.native
def test_a_server_model_beside_a_local_file_and_one_at_two_temperatures(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    args = (*PROMPT, "--seed", "5", "--max-tokens", "8", "--ctx", "256", "--json")
    out = _json(run_cli("compare", "starter", "--server", llama_server.url, *args, basedir=tmp_path, timeout=600))
    local, remote = out["runs"]
    assert out["kind"] == "compare" and out["seed"] == 5 and out["best"] is None
    assert "on a server took part" in out["best_rule"]
    assert set(local) < set(remote) and set(remote) - set(local) == {"remote", "server_timings", "memory"}
    assert local["verdict"] == "fits_cpu" and local["peak_rss_bytes"] > 0  # the local run is as before
    assert remote["error"] is None and remote["text"].strip() and remote["seed"] == 5
    assert remote["tokens"] == remote["server_timings"]["predicted_n"] > 0 and remote["tg_tps"] > 0
    assert remote["verdict"] is None and remote["peak_rss_bytes"] is None  # nothing ran on this machine
    assert remote["model"]["server"] == llama_server.url and remote["model"]["name"].endswith(".gguf")
    assert remote["remote"]["kind"] == "llama-server" and remote["memory"]["source"] == "predicted"
    assert remote["label"] == f"{remote['model']['name']} on {llama_server.url}"
    # one server model at two temperatures, the same seed: the same reply twice (the seed reaches the server)
    temps = _json(run_cli("compare", "--server", llama_server.url, "--temperatures", "0.9,0.9", *args,
                          basedir=tmp_path))  # fmt: skip
    assert temps["kind"] == "temperature" and [r["temperature"] for r in temps["runs"]] == [0.9, 0.9]
    assert temps["runs"][0]["text"] == temps["runs"][1]["text"] and temps["runs"][0]["text"].strip()
    assert temps["runs"][0]["label"].endswith(" · temperature 0.9")


def test_two_ollama_models_with_measured_memory_and_ollamas_timings(
    ollama_servers: Callable[..., OllamaStandIn], tmp_path: Path
) -> None:
    server = ollama_servers()
    r = run_cli("compare", "--server", f"{server.url}#{MODEL}", "--server", f"{server.url}#codellama:13b",
                *PROMPT, "--seed", "9", "--json", basedir=tmp_path)  # fmt: skip
    out = _json(r)
    assert [run["model"]["name"] for run in out["runs"]] == [MODEL, "codellama:13b"]
    final = fixture("chat_stream")[-1]
    for run in out["runs"]:
        assert run["text"] == "The sky is blue." and run["seed"] == 9 and run["error"] is None
        assert run["server_timings"]["eval_count"] == final["eval_count"] == run["tokens"]
        assert run["server_timings"]["eval_duration"] == final["eval_duration"]
        assert run["model"]["quantization_level"] == "Q4_0" and run["model"]["parameter_size"] == "8.0B"
        assert run["remote"]["kind"] == "ollama" and run["remote"]["server_version"] == "0.12.6"
    assert out["runs"][0]["memory"]["source"] == "measured" and out["runs"][0]["memory"]["bytes"] == 5137025024
    assert out["runs"][1]["memory"]["source"] == "unknown"  # /api/ps lists only llama3:latest
    sent = server.sent("api/chat")
    assert sent["options"]["seed"] == 9 and sent["messages"] == [{"role": "user", "content": "Name a fruit."}]
    human = run_cli("compare", "--server", f"{server.url}#{MODEL}", "--server", f"{server.url}#codellama:13b",
                    *PROMPT, basedir=tmp_path)  # fmt: skip
    assert human.returncode == 0, human.stderr
    assert human.stdout.count(f"== {MODEL} on {server.url} ==") == 1
    assert "tok/s as received, server 62.2 tok/s" in human.stdout  # 282 tokens in 4.5356 s, Ollama's own figure
    assert "memory 4899 MiB measured by the server (Ollama /api/ps)" in human.stdout


def test_a_server_gone_mid_reply_keeps_the_partial_reply_marked_interrupted(
    ollama_servers: Callable[..., OllamaStandIn], tmp_path: Path
) -> None:
    good, drop = ollama_servers(), ollama_servers("drop")
    r = run_cli("compare", "--server", f"{drop.url}#{MODEL}", "--server", f"{good.url}#{MODEL}", *PROMPT, "--json",
                basedir=tmp_path)  # fmt: skip
    assert r.returncode == 1, r.stderr
    cut, whole = json.loads(r.stdout)["runs"]
    assert cut["text"] == "The" and cut["finish_reason"] == "interrupted"
    assert cut["error"] == (
        f"The server at {drop.url} closed the connection in the middle of the reply. "
        "The reply so far is kept, marked interrupted."
    )
    assert whole["error"] is None and whole["text"] == "The sky is blue."  # the other run still went ahead


def test_bad_server_arguments_get_one_sentence(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9"
    _one_sentence(run_cli("compare", "--server", url, *PROMPT, basedir=tmp_path), "needs 2 to 4 models")
    _one_sentence(run_cli("compare", "starter", *["--server", url] * 4, *PROMPT, basedir=tmp_path), "not 5")
    _one_sentence(run_cli("compare", "--server", f"{url}#", "--server", url, *PROMPT, basedir=tmp_path),
                  "names no model after '#'")  # fmt: skip
    _one_sentence(run_cli("compare", "starter", "starter", "--api-key-env", "X", *PROMPT, basedir=tmp_path),
                  "go with --server")  # fmt: skip
    _one_sentence(run_cli("compare", "starter", "--server", url, *PROMPT, "--report", str(tmp_path / "r.md"),
                          basedir=tmp_path), "--report is for models on this machine")  # fmt: skip
    _one_sentence(run_cli("compare", "starter", "--server", url, "--temperatures", "0.2,0.7", *PROMPT,
                          basedir=tmp_path), "give one MODEL or --server with --temperatures, not 2")  # fmt: skip
    # an unreachable server is that run's one-sentence error; the exit status says a run failed
    r = run_cli("compare", "--server", url, "--server", url, *PROMPT, "--json", basedir=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert all("connection was refused" in run["error"] for run in json.loads(r.stdout)["runs"])
