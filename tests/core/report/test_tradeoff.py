"""The quality trade-off in the report: the Pareto front, the best choice's quality floor, the quality columns,
the scatter chart and the schema — on hand-made entries, no model needed."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sizewise.core.gguf.header import ModelInfo
from sizewise.core.report.fit_report import (
    best_choice,
    build_report,
    generation_tps,
    model_entry,
    render_html,
    render_markdown,
    settings_summary,
)
from sizewise.core.report.pareto import Better, dominates, file_mib, pareto_front, quality_metric, tradeoff_points
from sizewise.core.report.svg_scatter import nice_ticks, scatter_svg
from sizewise.core.resources import resource_path
from sizewise.core.sampling import LoadParams

SVG_NS = "{http://www.w3.org/2000/svg}"
MiB = 1 << 20


# -- the Pareto front -------------------------------------------------------------------------------


def test_front_by_hand() -> None:
    # (size MiB, KLD): smaller and lower are better
    pts = [(258.0, 0.0), (138.0, 0.004), (150.0, 0.01), (85.0, 0.09), (90.0, 0.2), (85.0, 0.09)]
    front = pareto_front(pts, ("min", "min"))
    # 150/0.01 is beaten by 138/0.004; 90/0.2 by 85/0.09; the two identical 85/0.09 points both stay
    assert front == [3, 5, 1, 0]
    # speed (higher better) against same-top (higher better)
    pts2 = [(30.0, 100.0), (50.0, 93.0), (45.0, 90.0), (60.0, 80.0)]
    assert pareto_front(pts2, ("max", "max")) == [0, 1, 3]
    assert pareto_front([], ("min", "min")) == []
    assert pareto_front([(1.0, 1.0)], ("min", "max")) == [0]


def test_dominates_needs_one_strict_improvement() -> None:
    assert dominates((1, 1), (2, 1), ("min", "min"))
    assert not dominates((1, 1), (1, 1), ("min", "min"))
    assert not dominates((1, 2), (2, 1), ("min", "min"))
    assert dominates((2, 1), (1, 1), ("max", "min"))


coords = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
ways = st.sampled_from(["min", "max"])


@given(st.lists(st.tuples(coords, coords), max_size=25), ways, ways)
def test_front_properties(points: list[tuple[float, float]], wx: Better, wy: Better) -> None:
    better = (wx, wy)
    front = pareto_front(points, better)
    on = set(front)
    # nothing on the front is dominated, everything off it is, and the line runs left to right
    for i in front:
        assert not any(dominates(q, points[i], better) for q in points)
    for i in set(range(len(points))) - on:
        assert any(dominates(points[j], points[i], better) for j in on)
    assert [points[i][0] for i in front] == sorted(points[i][0] for i in front)
    assert bool(points) == bool(front)


# -- entries ----------------------------------------------------------------------------------------


def entry(
    label: str,
    quant: str,
    size_mib: float,
    tps: float | None,
    quality: dict[str, Any] | None,
    *,
    params: int = 135_000_000,
    verdict: str = "fits_cpu",
) -> dict[str, Any]:
    return {
        "label": label,
        "model": {"path": f"/m/{label}.gguf", "quantization": quant, "parameters": params,
                  "file_bytes": int(size_mib * MiB)},
        "settings": {"ctx": 2048},
        "tg": None if tps is None else {"mean_tps": tps},
        "verdict": verdict,
        "error": None,
        "quality": quality,
    }  # fmt: skip


def quality(same_top: float | None, kld: float | None, *, is_reference: bool = False) -> dict[str, Any]:
    return {
        "ppl": 28.4, "ppl_err": 6.1, "tokens_scored": 126, "kld_mean": kld, "kld_p99": None if kld is None else kld * 5,
        "same_top_pct": same_top, "delta_p_mean": 0.001, "reference_ppl": 28.7,
        "reference": None if kld is None else "/m/f16.gguf", "is_reference": is_reference,
        "text": "Alice ch. 1-2", "text_sha256": "ab", "ctx": 128, "chunks": 2, "eval_tokens_per_s": 30.0, "when": 1.0,
    }  # fmt: skip


def entries() -> list[dict[str, Any]]:
    return [
        entry("f16", "F16", 258, 20.0, quality(100.0, 0.0, is_reference=True)),
        entry("q8", "Q8_0", 138, 35.0, quality(93.6, 0.004)),
        entry("q4", "Q4_0", 85, 50.0, quality(80.0, 0.09)),
        entry("q5", "Q5_K_M", 100, 30.0, quality(78.0, 0.12)),  # bigger and worse than q4: dominated on size
        entry("q4_1", "Q4_1", 88, 55.0, None),  # never measured
    ]


def test_best_choice_with_a_quality_floor() -> None:
    es = entries()
    assert best_choice(es, 10.0) == 0  # no floor: the largest file
    assert best_choice(es, 25.0) == 1  # f16 too slow
    assert best_choice(es, 25.0, min_same_top=90.0) == 1
    assert best_choice(es, 25.0, min_same_top=95.0) is None  # q8 under the floor; q4_1 has no quality run
    assert best_choice(es, 40.0, min_same_top=80.0) == 2  # the unmeasured q4_1 is larger but does not pass
    assert best_choice(es, 40.0) == 4  # without a floor it would have won
    assert best_choice(es, 0.0, min_same_top=100.0) == 0  # the reference itself: 100 % by definition
    es[2]["quality"] = quality(None, None)  # perplexity only: no same-top figure, so it cannot pass
    assert best_choice(es, 40.0, min_same_top=0.0) is None


def real_entry(q: dict[str, Any] | None) -> dict[str, Any]:
    """An entry as model_entry builds it (no engine: nothing measured but quality)."""
    info = ModelInfo(
        path="/m/q8.gguf", file_bytes=138 * MiB, name="SmolLM2", architecture="llama", parameters=134_515_008,
        quantization="Q8_0", context_length=8192, n_layers=30, vocab_size=49152, has_chat_template=True,
        chat_template=None, split_count=1,
    )  # fmt: skip
    return model_entry(info=info, settings=settings_summary(LoadParams(), 0), fit=None, quality=q)


def report_for(es: list[dict[str, Any]], min_same_top: float | None) -> dict[str, Any]:
    return build_report(
        kind="compare", entries=es, hardware=None, llama_cpp=None, settings={}, floor_tps=25.0,
        min_same_top=min_same_top,
    )  # fmt: skip


def test_report_states_the_floor_and_validates_against_the_schema() -> None:
    schema = json.loads(resource_path("report.schema.json").read_text(encoding="utf-8"))
    with_floor = report_for(entries(), 90.0)
    assert with_floor["min_same_top"] == 90.0 and with_floor["best"] == 1
    assert "same top token as its reference at least 90 %" in with_floor["best_rule"]
    assert "not measured against a reference does not pass" in with_floor["best_rule"]
    no_floor = report_for(entries(), None)
    assert no_floor["min_same_top"] is None and "top token" not in no_floor["best_rule"]

    # a model entry carries quality (null when not measured); the schema checks both and has teeth
    q = quality(93.6, 0.004)
    first = real_entry(q)
    assert first["quality"] == q and first["quality"] is not q
    data = json.loads(json.dumps(report_for([first, real_entry(None)], 90.0)))
    assert data["models"][1]["quality"] is None
    jsonschema.validate(data, schema)
    for bad in ({"same_top_pct": 101.0}, {"kld_mean": -0.1}, {"ppl": "28"}):
        broken = json.loads(json.dumps(data))
        broken["models"][0]["quality"].update(bad)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)
    broken = json.loads(json.dumps(data))
    del broken["models"][1]["quality"]  # null when not measured, never absent
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_markdown_and_html_show_the_quality_columns_and_the_tradeoff_charts() -> None:
    report = report_for(entries(), None)
    md = render_markdown(report)
    assert "| Perplexity | KLD mean | Same top | Reference |" in md
    assert "| 28.400 ± 6.100 | 0.0040 | 93.6 % | f16.gguf |" in md
    assert "| is the reference |" in md and "| – | – | – | – |" in md  # the reference; the unmeasured one
    assert "Quality: perplexity ± its error on Alice ch. 1-2 (2 chunks of 128 tokens)" in md
    assert "Quality: not measured" in md

    html = render_html(report)
    assert "<th>Same top</th>" in html and "<td>93.6 %</td>" in html
    charts = {c.find(f"{SVG_NS}title").text: c for c in _svgs(html)}  # type: ignore[union-attr]
    size, speed = charts["Quality against file size"], charts["Quality against generation speed"]
    # one dot per measured quant; q5 (bigger and further from the reference than q4) is the only one greyed
    dots = {c.find(f"{SVG_NS}title").text.split(":")[0]: c.get("class") for c in size.iter(f"{SVG_NS}circle")  # type: ignore[union-attr]
            if c.find(f"{SVG_NS}title") is not None}  # fmt: skip
    assert dots == {"F16": "front", "Q8_0": "front", "Q4_0": "front", "Q5_K_M": "dominated"}
    line = size.find(f"{SVG_NS}polyline")
    assert line is not None and len(line.get("points", "").split()) == 3
    # against speed, q5 is slower and further than q8: dominated there too; the axes say which way is better
    speed_text = "".join(speed.itertext())
    assert "Generation speed (tokens/s) — faster is better" in speed_text and "KLD mean — lower is better" in speed_text
    speed_dots = [c.get("class") for c in speed.iter(f"{SVG_NS}circle") if c.find(f"{SVG_NS}title") is not None]
    assert speed_dots.count("dominated") == 1

    # without quality figures the report keeps its old shape: no quality columns, no trade-off chart
    plain = report_for([{**e, "quality": None} for e in entries()], None)
    assert "Perplexity" not in render_markdown(plain).split("## Settings")[0]
    assert "Quality against" not in render_html(plain)


def test_tradeoff_points_pick_one_per_file_and_the_metric() -> None:
    es = entries()
    pts = tradeoff_points(es, file_mib, "kld_mean")
    assert [(p.label, p.entry) for p in pts] == [("F16", 0), ("Q8_0", 1), ("Q4_0", 2), ("Q5_K_M", 3)]
    assert pts[1].x == pytest.approx(138.0) and pts[1].y == 0.004
    assert quality_metric(es) == "kld_mean"
    # a temperature comparison repeats one file: one point
    repeated = [es[1], {**es[1], "label": "q8 · temperature 1.2"}]
    assert len(tradeoff_points(repeated, generation_tps, "kld_mean")) == 1
    only_ppl = [{**e, "quality": quality(None, None)} for e in es]
    assert quality_metric(only_ppl) == "ppl" and quality_metric([es[1]]) is None


def test_scatter_svg_places_points_on_its_ticks() -> None:
    assert nice_ticks(0.0, 0.093) == pytest.approx([0.0, 0.02, 0.04, 0.06, 0.08, 0.1])
    from sizewise.core.report.pareto import Point

    svg = scatter_svg(
        "Q <&>", [Point("a&b", 10.0, 0.5, 0), Point("c", 20.0, 0.1, 1)], x_title="size", y_title="KLD",
        better=("min", "min"), highlight=1,
    )  # fmt: skip
    root = ET.fromstring(svg)
    circles = [c for c in root.iter(f"{SVG_NS}circle") if c.find(f"{SVG_NS}title") is not None]
    (ax, ay), (bx, by) = [(float(c.get("cx", 0)), float(c.get("cy", 0))) for c in circles]
    assert ax < bx and ay < by  # larger x to the right, larger y higher up (smaller svg y)
    assert circles[1].get("fill") == "#F58518"  # the best choice
    assert "★ c" in "".join(root.itertext()) and "a&b" in "".join(root.itertext())


def _svgs(html: str) -> list[ET.Element]:
    import re

    return [ET.fromstring(m) for m in re.findall(r"<svg\b.*?</svg>", html, re.S)]


def test_labels_of_close_points_are_stacked() -> None:
    from sizewise.core.report.pareto import Point, label_levels

    pts = [Point("Q4_0", 85, 0.23, 0), Point("Q6_K", 131, 0.010, 1), Point("Q8_0", 138, 0.004, 2)]
    pts.append(Point("F16", 258, 0, 3))
    assert label_levels(pts) == {3: 0, 2: 0, 1: 1, 0: 0}  # Q6_K's name goes a line above Q8_0's
    assert label_levels(pts[:1]) == {0: 0}
