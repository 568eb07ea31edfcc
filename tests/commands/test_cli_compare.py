"""``sizewise compare`` through the real command line: the same prompt and seed over 2–4 runs, with real models."""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from sizewise.core.resources import resource_path
from tests.cli_helpers import run_cli

SHORT = ("--max-tokens", "12", "--ctx", "256")


def _one_sentence_error(r: subprocess.CompletedProcess[str], pattern: str) -> None:
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert re.search(pattern, lines[0]), lines[0]


def _compare_json(*args: str, basedir: Path) -> dict[str, Any]:
    r = run_cli("compare", *args, "--json", basedir=basedir, timeout=600)
    assert r.returncode == 0, r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


@pytest.mark.slow
def test_compare_temperatures_records_one_seed_and_the_low_run_repeats(tmp_path: Path) -> None:
    prompt = ("--prompt", "Name a fruit and say its colour.")
    first = _compare_json("starter", *prompt, "--temperatures", "0.2,1.2", *SHORT, basedir=tmp_path / "a")
    assert first["kind"] == "temperature" and first["seed_source"] == "drawn"
    seed = first["seed"]
    runs = first["runs"]
    assert [r["temperature"] for r in runs] == [0.2, 1.2]
    for r in runs:
        assert r["error"] is None
        assert r["seed"] == seed and r["settings"]["sampling"]["seed"] == seed  # one seed for every run
        assert r["text"].strip() and r["tokens"] > 0
        assert r["tg_tps"] > 0 and r["pp_tps"] > 0 and r["ttft_ms"] > 0
        assert r["peak_rss_bytes"] > 50 * 2**20
        assert r["finish_reason"] in ("stop", "length")
        assert r["settings"]["load"]["ctx"] == 256
        assert r["verdict"] == "fits_cpu" and r["predicted"]["total_bytes"] > 80 * 2**20
    # the recorded seed repeats the low-temperature reply, in a fresh engine each time
    again = _compare_json(
        "starter", *prompt, "--temperatures", "0.2;0.2", "--seed", str(seed), *SHORT, basedir=tmp_path / "b"
    )
    assert again["seed_source"] == "given"
    assert [r["text"] for r in again["runs"]] == [runs[0]["text"], runs[0]["text"]]


@pytest.mark.slow
def test_compare_two_models_writes_the_fit_report_as_html_and_json(
    tmp_path: Path, smollm2_path: Path, gemma_path: Path
) -> None:
    models = (str(smollm2_path), str(gemma_path))
    args = ("--prompt", "The sky is", "--seed", "5", "--max-tokens", "8", "--ctx", "256")
    page = tmp_path / "fit.html"
    out = _compare_json(*models, *args, "--report", str(page), basedir=tmp_path / "a")
    assert out["kind"] == "compare" and out["seed"] == 5
    assert [r["model"]["path"] for r in out["runs"]] == list(models)
    assert all(r["seed"] == 5 and r["text"].strip() for r in out["runs"])

    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "<script" not in text and " src=" not in text
    for r in out["runs"]:
        assert html.escape(r["label"]) in text
        assert html.escape(r["text"]) in text
    assert "Runs went one after another, each in its own engine process" in text

    report_file = tmp_path / "fit.json"
    r = run_cli("compare", *models, *args, "--report", str(report_file), basedir=tmp_path / "b", timeout=600)
    assert r.returncode == 0, r.stderr
    assert "Report written to" in r.stderr
    # without --json each reply comes under its label, followed by its figures
    assert r.stdout.count("== ") == 2 and len(re.findall(r"\[\d+ tokens, [\d.]+ tok/s", r.stdout)) == 2
    report = json.loads(report_file.read_text(encoding="utf-8"))
    schema = json.loads(resource_path("report.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(report, schema)
    assert report["kind"] == "compare" and report["settings"]["seed"] == 5
    assert report["settings"]["schedule"] == "one_after_another"
    assert [m["model"]["path"] for m in report["models"]] == list(models)
    for m in report["models"]:
        assert m["reply"]["seed"] == 5 and m["reply"]["text"].strip()
        assert m["predicted"]["total_bytes"] > 0 and m["measured"]["peak_rss_bytes"] > 0
    # the same seed and settings give the same replies in both invocations
    assert [m["reply"]["text"] for m in report["models"]] == [x["text"] for x in out["runs"]]


def test_compare_bad_inputs_exit_nonzero_with_one_sentence(tmp_path: Path) -> None:
    p = ("--prompt", "hi")
    _one_sentence_error(run_cli("compare", "starter", *p), r"needs 2 to 4 models .*not 1")
    _one_sentence_error(run_cli("compare", *["starter"] * 5, *p), r"needs 2 to 4 models .*not 5")
    _one_sentence_error(
        run_cli("compare", "starter", "starter", *p, "--temperatures", "0.2,0.7"), "one model at several temperatures"
    )
    _one_sentence_error(run_cli("compare", "starter", *p, "--temperatures", "0.2"), "between 2 and 4 temperatures")
    _one_sentence_error(
        run_cli("compare", "starter", *p, "--temperatures", "0.1,0.2,0.3,0.4,0.5"), "between 2 and 4 temperatures"
    )
    _one_sentence_error(run_cli("compare", "starter", *p, "--temperatures", "0.2,warm"), "numbers separated by commas")
    _one_sentence_error(run_cli("compare", "starter", *p, "--temperatures", "0.2,3"), "between 0 and 2")
    _one_sentence_error(run_cli("compare", "starter", str(tmp_path / "missing.gguf"), *p), "does not exist")
    _one_sentence_error(
        run_cli("compare", "starter", "starter", *p, "--report", str(tmp_path / "r.txt")), r"\.md, \.json or \.html"
    )
    _one_sentence_error(run_cli("compare", "starter", "starter", "--prompt", "  "), "prompt is empty")
    _one_sentence_error(
        run_cli("compare", "starter", "starter", *p, "--min-same-top", "101"), r"percentage between 0 and 100"
    )


@pytest.mark.slow
def test_compare_reports_stored_quality_and_its_floor(tmp_path: Path, smollm2_path: Path) -> None:
    base = tmp_path / "base"
    q = run_cli("quality", "starter", "--ctx", "128", "--chunks", "2", "--json", basedir=base, timeout=600)
    assert q.returncode == 0, q.stderr
    measured = json.loads(q.stdout)
    assert measured["reference"] is None  # the starter is the only version of it here: perplexity only
    report_file = tmp_path / "fit.json"
    args = ("--prompt", "The sky is", "--seed", "5", "--max-tokens", "4", "--ctx", "256", "--floor", "0")
    r = run_cli("compare", "starter", "starter", *args, "--min-same-top", "50", "--report", str(report_file),
                basedir=base, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr
    # a floor on the same-top share, and a model measured without a reference: nothing passes, and it says why
    assert "No model meets the rule for a best choice" in r.stdout and "does not pass" in r.stdout
    report = json.loads(report_file.read_text(encoding="utf-8"))
    jsonschema.validate(report, json.loads(resource_path("report.schema.json").read_text(encoding="utf-8")))
    assert report["min_same_top"] == 50 and report["best"] is None
    for m in report["models"]:
        assert m["quality"]["ppl"] == measured["ppl"] and m["quality"]["same_top_pct"] is None
        assert m["quality"]["ctx"] == 128 and not m["quality"]["is_reference"]
    # without the floor the same runs have a best choice, and --json carries the quality per run
    out = _compare_json("starter", "starter", *args, basedir=base)
    assert out["best"] is not None and [run["quality"]["ppl"] for run in out["runs"]] == [measured["ppl"]] * 2
