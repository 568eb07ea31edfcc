"""The hardware-fit report from a real ``sizewise bench`` run on both test models, in all three formats."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from sizewise.core.report.fit_report import best_choice, render_markdown, write_report
from sizewise.core.report.svg_chart import Series, bar_chart_svg
from sizewise.core.resources import resource_path
from tests.cli_helpers import run_cli

SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path, gemma_path: Path) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("report")
    html = out / "fit.html"
    args = ["bench", str(smollm2_path), str(gemma_path), "--ctx", "256", "--pp", "16", "--tg", "4", "-r", "2"]
    proc = run_cli(*args, "--json", "--report", str(html), basedir=out / "base", timeout=600)
    assert proc.returncode == 0, proc.stderr
    return {"json": json.loads(proc.stdout), "html": html, "dir": out}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    s = json.loads(resource_path("report.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(s)
    return s


def _svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(m) for m in re.findall(r"<svg\b.*?</svg>", html, re.S)]


@pytest.mark.slow
def test_html_page_is_self_contained_with_both_models_numbers_and_charts(real_run: dict[str, Any]) -> None:
    html = real_run["html"].read_text(encoding="utf-8")
    models = real_run["json"]["models"]
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    for m in models:
        assert m["label"] in html
        for key in ("pp", "tg"):
            assert f"{m[key]['mean_tps']:.1f} ± {m[key]['sd_tps']:.1f}" in html
        assert f"{m['measured']['total_bytes'] / 2**20:,.1f} MiB" in html
        assert f"{m['predicted']['total_bytes'] / 2**20:,.1f} MiB" in html
        assert m["verdict"] in html
        assert "Memory prediction confidence: measured — " in html
    # nothing fetched from elsewhere: no scripts, no links, no external images or styles
    assert "<script" not in html and " src=" not in html and "href=" not in html and "@import" not in html
    charts = _svgs(html)
    titles = [c.find(f"{SVG_NS}title").text for c in charts]  # type: ignore[union-attr]
    assert titles == ["Generation speed", "Prompt processing", "Time to first token", "Memory"]
    # the generation chart has one bar per model, sized by the measured speed
    bars = [r for r in charts[0].iter(f"{SVG_NS}rect") if r.find(f"{SVG_NS}title") is not None]
    assert len(bars) == len(models)
    widths = [float(b.get("width", 0)) for b in bars]
    speeds = [m["tg"]["mean_tps"] for m in models]
    assert widths[0] / widths[1] == pytest.approx(speeds[0] / speeds[1], rel=0.02)
    # hardware with where each figure came from, and the llama.cpp build
    assert "/proc/cpuinfo" in html or "sysctl" in html
    assert real_run["json"]["llama_cpp"]["version"] in html


@pytest.mark.slow
def test_json_report_validates_against_the_schema(real_run: dict[str, Any], schema: dict[str, Any]) -> None:
    jsonschema.validate(real_run["json"], schema)
    path = real_run["dir"] / "fit.json"
    assert write_report(real_run["json"], path) == "json"
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written == real_run["json"]
    jsonschema.validate(written, schema)
    # and the schema has teeth: a report without a speed figure, or with a made-up verdict, fails it
    broken = json.loads(json.dumps(written))
    del broken["models"][0]["tg"]["mean_tps"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    broken = json.loads(json.dumps(written))
    broken["models"][1]["verdict"] = "probably fine"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


@pytest.mark.slow
def test_markdown_report(real_run: dict[str, Any]) -> None:
    path = real_run["dir"] / "fit.md"
    assert write_report(real_run["json"], path) == "md"
    md = path.read_text(encoding="utf-8")
    assert md == render_markdown(real_run["json"])
    for m in real_run["json"]["models"]:
        assert m["label"] in md
        assert f"{m['tg']['mean_tps']:.1f} ± {m['tg']['sd_tps']:.1f}" in md
        assert m["verdict_text"] in md
        # which kind of prediction and why (issue 15: the report says it, as the Fit view and fit --json do)
        pred = m["predicted"]
        assert pred["confidence"] == "measured"  # llama and gemma3
        assert f"Memory prediction confidence: measured — {pred['confidence_reason'].rstrip('.')}." in md
    assert "| weights |" in md and "| Item | Value | Source |" in md
    best = real_run["json"]["best"]
    if best is None:
        assert "No model meets the rule" in md
    else:
        assert f"**Best choice for this hardware:** {real_run['json']['models'][best]['label']}" in md


def test_best_choice_is_the_largest_that_fits_and_reads_fast_enough() -> None:
    def entry(
        params: int, size: int, tps: float, verdict: str = "fits_cpu", error: str | None = None
    ) -> dict[str, Any]:
        return {
            "model": {"parameters": params, "file_bytes": size},
            "settings": {"ctx": 2048},
            "tg": {"mean_tps": tps},
            "verdict": verdict,
            "error": error,
        }

    entries = [
        entry(135_000_000, 90, 120.0),
        entry(270_000_000, 240, 60.0),
        entry(270_000_000, 300, 9.0),  # bigger quant, below the floor
        entry(1_000_000_000, 700, 30.0, verdict="too_large"),
        entry(3_000_000_000, 2000, 15.0, error="load failed"),
    ]
    assert best_choice(entries, 10.0) == 1
    assert best_choice(entries, 8.0) == 2
    assert best_choice(entries, 100.0) == 0
    assert best_choice(entries, 500.0) is None


def test_svg_chart_scales_bars_and_escapes_labels() -> None:
    svg = bar_chart_svg(
        "Speed <test>",
        ["a & b", "c"],
        [Series("s", [10.0, 5.0]), Series("t", [None, 2.5])],
        "t/s",
        marker=4.0,
        highlight=0,
    )
    root = ET.fromstring(svg)
    rects = [r for r in root.iter(f"{SVG_NS}rect") if r.find(f"{SVG_NS}title") is not None]
    assert len(rects) == 3  # the missing value draws no bar
    w = [float(r.get("width", 0)) for r in rects]
    assert w[0] == pytest.approx(2 * w[1]) and w[1] == pytest.approx(2 * w[2])
    texts = "".join(root.itertext())
    assert "★ a & b" in texts and "n/a" in texts
