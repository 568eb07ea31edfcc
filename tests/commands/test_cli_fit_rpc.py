"""``sizewise fit MODEL --rpc-hosts``: fit across machines as a user runs it (real subprocesses, SmolLM2)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from sizewise.core.fit.rpc.hosts import parse_rpc_hosts
from sizewise.core.fit.rpc.split import predict_rpc_split
from sizewise.core.gguf.header import read_header
from sizewise.core.resources import resource_path
from sizewise.core.sampling import LoadParams
from tests.cli_helpers import run_cli


def test_json_lists_each_host(tmp_path: Path, smollm2_path: Path) -> None:
    proc = run_cli(
        "fit", str(smollm2_path), "--rpc-hosts", "a=24GiB,b=8GiB", "--ram-gib", "4", "--flash-attn", "--json",
        basedir=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [h["name"] for h in out["hosts"]] == ["local", "a", "b"]
    assert out["verdict"] == "fits"
    assert out["rpc"]["tensor_split"] == "24576,8192" and out["rpc"]["pipeline_parallel"] is True
    # the same figures the core predicts, host by host
    want = predict_rpc_split(
        read_header(smollm2_path),
        LoadParams(n_ctx=2048, n_gpu_layers=-1, flash_attn=True),
        parse_rpc_hosts("a=24GiB,b=8GiB"),
        local_budget_bytes=4 << 30,
    )
    assert out["hosts"] == [h.to_dict() for h in want.hosts]
    assert out["hosts"][0]["budget_bytes"] == 4 << 30 and out["hosts"][1]["budget_bytes"] == 24 << 30
    # 3:1 over 31 slots: il/31 < 0.75 up to block 23 (23/31 = 0.742), so 24 blocks on a
    assert out["hosts"][1]["n_layers"] == 24 and out["hosts"][2]["output_layer"] is True


def test_human_output_has_the_table_the_verdict_and_the_warning(tmp_path: Path, smollm2_path: Path) -> None:
    proc = run_cli("fit", str(smollm2_path), "--rpc-hosts", "big=8GiB,tiny=60MiB", "--ram-gib", "4", basedir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    header = next(line for line in text.splitlines() if line.strip().startswith("host"))
    assert header.split() == ["host", "layers", "weights", "KV", "compute", "output", "total", "memory", "verdict"]
    # 60 MiB of 8252 gets no layer; the group fits and says how to get this split from llama-server
    assert "Verdict: fits" in text and "--tensor-split 8192,60" in text
    assert "no authentication" in text and "trusted network" in text
    too_small = run_cli(
        "fit", str(smollm2_path), "--rpc-hosts", "a=100MiB,b=100MiB", "--ram-gib", "4", basedir=tmp_path
    )
    assert "Verdict: too large — Too large for the group: a, b would run out of memory." in too_small.stdout


def test_bad_hosts_are_one_sentence(tmp_path: Path, smollm2_path: Path) -> None:
    proc = run_cli("fit", str(smollm2_path), "--rpc-hosts", "a=lots", "--ram-gib", "4", basedir=tmp_path)
    assert proc.returncode != 0
    assert (
        proc.stderr.strip()
        == "sizewise: --rpc-hosts: 'lots' is not a memory size (host a): write it like 24GiB or 512MiB."
    )
    assert "no authentication" in run_cli("fit", "--help").stdout


def test_report_carries_the_split(tmp_path: Path, smollm2_path: Path) -> None:
    schema = json.loads(resource_path("report.schema.json").read_text(encoding="utf-8"))
    args = ("fit", str(smollm2_path), "--rpc-hosts", "a=24GiB,b=16GiB", "--ram-gib", "4")
    for suffix in ("json", "html", "md"):
        path = tmp_path / f"split.{suffix}"
        proc = run_cli(*args, "--report", str(path), basedir=tmp_path)
        assert proc.returncode == 0, proc.stderr
        text = path.read_text(encoding="utf-8")
        if suffix == "json":
            report = json.loads(text)
            jsonschema.validate(report, schema)
            assert report["kind"] == "fit"
            assert [h["name"] for h in report["models"][0]["rpc_split"]["hosts"]] == ["local", "a", "b"]
        else:
            assert "Split across machines" in text and "19-29 + output" in text and "no authentication" in text
            assert "--tensor-split 24576,16384" in text
    wrong = run_cli("fit", str(smollm2_path), "--ram-gib", "4", "--report", str(tmp_path / "x.md"), basedir=tmp_path)
    assert wrong.returncode != 0 and "--report goes with --rpc-hosts" in wrong.stderr
