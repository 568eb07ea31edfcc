"""The hardware-fit report: what this machine is, what llama.cpp build ran, and per model what was
predicted, what was measured, the verdict and the speed — as JSON, Markdown and one self-contained
HTML page.

One data shape serves everything: ``sizewise bench --json`` prints it, ``--report`` and the compare
view's Export render it, and ``resources/report.schema.json`` describes it (tests validate real runs
against the schema). Entries are built from the engine's plain messages (``loaded``, ``bench_done``,
``done`` stats) so the CLI and the GUI cannot drift apart in what they report.

The HTML page embeds its charts as inline SVG (core/report/svg_chart.py) and its style in one ``<style>``
block: no scripts, no external files, no network — it opens the same on an air-gapped machine.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any, Literal

from sizewise import __version__
from sizewise.core.atomic import write_text_atomic
from sizewise.core.errors import UserError
from sizewise.core.fit.devices import device_memory_rows
from sizewise.core.fit.hardware import HardwareReport, describe
from sizewise.core.fit.llama_log import MeasuredBuffers
from sizewise.core.fit.verdict import FitResult, compare
from sizewise.core.gguf.header import ModelInfo
from sizewise.core.report import rpc_section
from sizewise.core.report.quality_section import (
    NOT_MEASURED_NOTE,
    QUALITY_HEAD,
    has_quality,
    passes_quality_floor,
    quality_basis,
    quality_cells,
    quality_line,
    tradeoff_svgs,
)
from sizewise.core.report.svg_chart import Series, bar_chart_svg
from sizewise.core.sampling import LoadParams

REPORT_VERSION = 2  # 2: quality per model and min_same_top (the quant lab)
READING_SPEED_FLOOR_TPS = 10.0  # a comfortable reading pace; the user can change it
MiB = 1 << 20

ReportFormat = Literal["md", "json", "html"]
_FORMATS: dict[str, ReportFormat] = {".md": "md", ".markdown": "md", ".json": "json", ".html": "html", ".htm": "html"}


# -- building ---------------------------------------------------------------------------------------


def llama_cpp_facts(ready: Mapping[str, Any] | None) -> dict[str, Any]:
    """The build that ran, from the engine's ``ready`` message."""
    ready = ready or {}
    return {
        "version": str(ready.get("llama_cpp_version", "")) or None,
        "system_info": str(ready.get("system_info", "")) or None,
        "gpu_offload": bool(ready.get("gpu_offload", False)),
        "source": "engine ready message (llama_cpp.__version__, llama_print_system_info, llama_supports_gpu_offload)",
    }


def hardware_section(report: HardwareReport) -> dict[str, Any]:
    """Every figure with where it came from, plus the rows people read."""
    rows = [{"label": label, "value": value, "source": source} for label, value, source in describe(report)]
    return {**report.to_dict(), "rows": rows}


def model_summary(info: ModelInfo) -> dict[str, Any]:
    return {
        "path": info.path,
        "name": info.name,
        "architecture": info.architecture,
        "parameters": info.parameters,
        "quantization": info.quantization,
        "file_bytes": info.file_bytes,
        "context_length": info.context_length,
        "n_layers": info.n_layers,
    }


def settings_summary(params: LoadParams, gpu_layers: int | str) -> dict[str, Any]:
    """The load settings as reports and ``--json`` show them (the issue's ``settings`` object)."""
    return {
        "ctx": params.n_ctx,
        "gpu_layers": gpu_layers,
        "kv_type": params.kv_type,
        "flash_attn": params.flash_attn,
        "n_batch": params.n_batch,
        "n_ubatch": params.n_ubatch,
    }


def measured_memory(
    loaded: Mapping[str, Any], peak_rss_bytes: int | None = None, baseline_rss_bytes: int | None = None
) -> tuple[MeasuredBuffers, dict[str, Any]]:
    """llama.cpp's logged buffers from a ``loaded`` message, with the process figures beside them."""
    buffers = MeasuredBuffers.from_lines(list(loaded.get("buffers") or []))
    peak = max(int(loaded.get("peak_rss_bytes") or 0), int(peak_rss_bytes or 0)) or None
    out: dict[str, Any] = buffers.to_dict()
    out.update(
        peak_rss_bytes=peak,
        rss_after_load_bytes=loaded.get("rss_bytes"),
        baseline_rss_bytes=baseline_rss_bytes,
        source="buffer sizes from llama.cpp's load log; RSS of the engine process (psutil, getrusage)",
    )
    return buffers, out


def model_entry(
    *,
    info: ModelInfo,
    settings: Mapping[str, Any],
    fit: FitResult | None,
    loaded: Mapping[str, Any] | None = None,
    bench: Mapping[str, Any] | None = None,
    reply: Mapping[str, Any] | None = None,
    peak_rss_bytes: int | None = None,
    baseline_rss_bytes: int | None = None,
    hardware: Mapping[str, Any] | None = None,
    llama_cpp: Mapping[str, Any] | None = None,
    label: str | None = None,
    error: str | None = None,
    quality: Mapping[str, Any] | None = None,
    rpc_split: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One model (or one model at one setting) in a report; missing parts are None, never invented.

    ``quality`` is the model's stored quality run as core/compare/quality.py summarises it; ``rpc_split`` a
    predicted split over rpc-servers (``RpcSplit.to_dict``), present only when hosts were given."""
    measured: dict[str, Any] | None = None
    diff: dict[str, float | None] | None = None
    if loaded:
        buffers, measured = measured_memory(loaded, peak_rss_bytes, baseline_rss_bytes)
        if fit is not None:
            diff = {
                d.component: (None if d.diff_pct is None else round(d.diff_pct, 2))
                for d in compare(fit.prediction, buffers)
            }
    bench = bench or {}
    if measured is not None and isinstance(bench.get("devices"), list):
        allocated = {d: sum(c.values()) for d, c in buffers.by_device().items()}
        measured["device_memory"] = device_memory_rows(list(bench["devices"]), allocated)
    return {
        "label": label or info.name,
        "model": model_summary(info),
        "settings": dict(settings),
        "pp": _speed(bench.get("pp")),
        "tg": _speed(bench.get("tg")),
        "ttft_ms": bench.get("ttft_ms") if bench.get("ttft_ms") is not None else (reply or {}).get("ttft_ms"),
        "ttft": bench.get("ttft"),
        "load_s": loaded.get("load_s") if loaded else None,
        "predicted": fit.prediction.to_dict() if fit is not None else None,
        "measured": measured,
        "diff_pct": diff,
        "verdict": fit.verdict if fit is not None else None,
        "verdict_text": fit.words() if fit is not None else None,
        "fit": fit.to_dict() if fit is not None else None,
        "reply": dict(reply) if reply is not None else None,
        "hardware": dict(hardware) if hardware is not None else None,
        "llama_cpp": dict(llama_cpp) if llama_cpp is not None else None,
        "quality": dict(quality) if quality is not None else None,
        "error": error,
        **({"rpc_split": dict(rpc_split)} if rpc_split is not None else {}),
    }


def _speed(s: Any) -> dict[str, Any] | None:
    if not isinstance(s, Mapping):
        return None
    keys = ("n", "repetitions", "mean_tps", "sd_tps", "samples_tps")
    return {k: s.get(k) for k in keys}


def generation_tps(entry: Mapping[str, Any]) -> float | None:
    """Generation speed: the benchmark's tg mean, else the reply's own figure."""
    tg = entry.get("tg")
    if isinstance(tg, Mapping) and tg.get("mean_tps") is not None:
        return float(tg["mean_tps"])
    reply = entry.get("reply")
    if isinstance(reply, Mapping) and reply.get("tg_tps") is not None:
        return float(reply["tg_tps"])
    return None


def best_choice(
    entries: Sequence[Mapping[str, Any]],
    floor_tps: float = READING_SPEED_FLOOR_TPS,
    min_same_top: float | None = None,
) -> int | None:
    """The index of the largest model that loaded, fits this machine and generates at least ``floor_tps``
    — and, with ``min_same_top`` set, picks its reference's top token at least that % of the time.

    "Largest" is parameters, then file size (a bigger quant of the same model keeps more quality),
    then context length; a tie goes to the faster one. A size says little about how much a quant lost,
    hence the optional quality floor; a model without a same-top figure does not pass a set floor (not
    measured is not the same as good enough). None when nothing qualifies.
    """
    best: tuple[Any, ...] | None = None
    best_i: int | None = None
    for i, e in enumerate(entries):
        tps = generation_tps(e)
        if e.get("error") or e.get("verdict") == "too_large" or tps is None or tps < floor_tps:
            continue
        if not passes_quality_floor(e, min_same_top):
            continue
        model = e.get("model") or {}
        key = (
            int(model.get("parameters") or 0),
            int(model.get("file_bytes") or 0),
            int((e.get("settings") or {}).get("ctx") or 0),
            tps,
        )
        if best is None or key > best:
            best, best_i = key, i
    return best_i


def best_rule(floor_tps: float, min_same_top: float | None = None) -> str:
    """The best-choice rule in words, as the report and the CLI print it."""
    if min_same_top is None:
        return f"the largest model that loaded, fits this machine and generates at least {floor_tps:g} tokens/s"
    return (
        f"the largest model that loaded, fits this machine, generates at least {floor_tps:g} tokens/s and picks "
        f"the same top token as its reference at least {min_same_top:g} % of the time ({NOT_MEASURED_NOTE})"
    )


def build_report(
    *,
    kind: str,
    entries: list[dict[str, Any]],
    hardware: Mapping[str, Any] | None,
    llama_cpp: Mapping[str, Any] | None,
    settings: Mapping[str, Any],
    floor_tps: float = READING_SPEED_FLOOR_TPS,
    notes: Sequence[str] = (),
    min_same_top: float | None = None,
) -> dict[str, Any]:
    """The whole report; ``kind`` is bench | compare | temperature | fit (fit --rpc-hosts --report); ``min_same_top``
    the optional quality floor."""
    best = best_choice(entries, floor_tps, min_same_top)
    return {
        "report_version": REPORT_VERSION,
        "kind": kind,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "sizewise_version": __version__,
        "hardware": dict(hardware) if hardware is not None else None,
        "llama_cpp": dict(llama_cpp) if llama_cpp is not None else None,
        "settings": dict(settings),
        "floor_tps": floor_tps,
        "min_same_top": min_same_top,
        "best": best,
        "best_rule": best_rule(floor_tps, min_same_top),
        "models": entries,
        "notes": list(notes),
    }


# -- writing ----------------------------------------------------------------------------------------


def report_format(path: str | Path) -> ReportFormat:
    fmt = _FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise UserError(f"A report file must end in .md, .json or .html, not {Path(path).name!r}.")
    return fmt


def render(report: Mapping[str, Any], fmt: ReportFormat) -> str:
    if fmt == "json":
        return render_json(report)
    if fmt == "md":
        return render_markdown(report)
    return render_html(report)


def write_report(report: Mapping[str, Any], path: str | Path) -> ReportFormat:
    fmt = report_format(path)
    try:
        write_text_atomic(Path(path).expanduser(), render(report, fmt))
    except OSError as exc:
        raise UserError(f"Could not write the report to {path}: {exc.strerror or exc}.") from exc
    return fmt


def render_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def _mib(n: Any) -> str:
    return "–" if n is None else f"{int(n) / MiB:,.1f} MiB"


def _num(v: Any, fmt: str = "{:.1f}") -> str:
    return "–" if v is None else fmt.format(float(v))


def _speed_text(s: Any) -> str:
    if not isinstance(s, Mapping) or s.get("mean_tps") is None:
        return "–"
    return f"{float(s['mean_tps']):.1f} ± {float(s.get('sd_tps') or 0):.1f}"


def _gen_text(e: Mapping[str, Any]) -> str:
    if isinstance(e.get("tg"), Mapping):
        return _speed_text(e["tg"]) + _predicted_text(e, "tg_tps")
    return _num(generation_tps(e))


def _pp_text(e: Mapping[str, Any]) -> str:
    if isinstance(e.get("pp"), Mapping):
        return _speed_text(e["pp"]) + _predicted_text(e, "pp_tps")
    reply = e.get("reply")
    return _num(reply.get("pp_tps")) if isinstance(reply, Mapping) else "–"


def _predicted_text(e: Mapping[str, Any], key: str) -> str:
    """ " (predicted N, estimate)" beside a measured speed, where the entry carries a speed prediction."""
    pred = e.get("predicted")
    value = pred.get(key) if isinstance(pred, Mapping) else None
    if not isinstance(value, int | float):
        return ""
    confidence = pred.get("speed_confidence") if isinstance(pred, Mapping) else None
    return f" (predicted {value:.1f}{', ' + str(confidence) if confidence else ''})"


def _summary_rows(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = [
        "",
        "Model",
        "Quant",
        "Params",
        "Verdict",
        "Prompt t/s",
        "Generation t/s",
        "TTFT ms",
        "Load s",
        "Predicted",
        "Measured",
        "Peak RSS",
    ]
    quality = has_quality(report.get("models") or [])
    if quality:
        head += QUALITY_HEAD
    rows = []
    for i, e in enumerate(report.get("models") or []):
        m, pred, meas = e.get("model") or {}, e.get("predicted") or {}, e.get("measured") or {}
        params = m.get("parameters")
        rows.append(
            [
                "★" if report.get("best") == i else "",
                str(e.get("label") or m.get("name") or ""),
                str(m.get("quantization") or ""),
                "–" if not params else (f"{params / 1e9:.2f}B" if params >= 1e9 else f"{params / 1e6:.0f}M"),
                "load failed"
                if e.get("error")
                else str(e.get("verdict") or (e.get("rpc_split") or {}).get("verdict") or "–"),
                _pp_text(e),
                _gen_text(e),
                _num(e.get("ttft_ms"), "{:.0f}"),
                _num(e.get("load_s"), "{:.2f}"),
                _mib(pred.get("total_bytes")),
                _mib(meas.get("total_bytes")),
                _mib(meas.get("peak_rss_bytes")),
                *(quality_cells(e.get("quality")) if quality else []),
            ]
        )
    return head, rows


_COMPONENTS = ("weights", "kv", "compute", "output", "total")


def _memory_rows(e: Mapping[str, Any]) -> list[list[str]]:
    pred, meas, diff = e.get("predicted") or {}, e.get("measured") or {}, e.get("diff_pct") or {}
    rows = []
    for c in _COMPONENTS:
        d = diff.get(c)
        rows.append(
            [c, _mib(pred.get(f"{c}_bytes")), _mib(meas.get(f"{c}_bytes")), "–" if d is None else f"{float(d):+.2f} %"]
        )
    rows.append(["RAM (with overhead) / peak RSS", _mib(pred.get("ram_bytes")), _mib(meas.get("peak_rss_bytes")), ""])
    rows.append(["VRAM", _mib(pred.get("vram_bytes")), _mib(meas.get("vram_bytes")), ""])
    devices = meas.get("device_memory") or []
    for dev in devices:  # the device by name, backend and kind; llama.cpp's buffers, and what the driver says
        in_use = (
            f"device: {_mib(dev.get('in_use_bytes'))} in use (all processes)"
            if dev.get("reports_usage")
            else "device: the driver reports no usage"
        )
        rows.append(
            [
                f"{dev.get('name')} ({dev.get('backend')}, {dev.get('label')}): llama.cpp's buffers",
                _mib(pred.get("vram_bytes")) if len(devices) == 1 else "",
                _mib(dev.get("llama_cpp_bytes")),
                in_use,
            ]
        )
    return rows


def _confidence_text(e: Mapping[str, Any]) -> str:
    """Which kind of memory prediction this is and why (measured architecture, estimate, rough), one sentence:
    a reader of the report weighs a 'fits' by it, as the Fit view and ``fit --json`` let them."""
    pred = e.get("predicted") or {}
    if not pred.get("confidence"):
        return ""
    reason = str(pred.get("confidence_reason") or "").rstrip(".")
    return f"Memory prediction confidence: {pred['confidence']}" + (f" — {reason}." if reason else ".")


def _settings_text(s: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in s.items() if v is not None and not isinstance(v, dict | list))


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    def cell(v: str) -> str:
        return v.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(report: Mapping[str, Any]) -> str:
    out: list[str] = [f"# Sizewise hardware-fit report ({report.get('kind')})", ""]
    out.append(f"Created {report.get('created')} by Sizewise {report.get('sizewise_version')}.")
    out.append("")
    head, rows = _summary_rows(report)
    out += ["## Summary", "", _md_table(head, rows), ""]
    best = report.get("best")
    models = report.get("models") or []
    if has_quality(models):
        out += [quality_basis(models), ""]
    if isinstance(best, int) and 0 <= best < len(models):
        out.append(f"**Best choice for this hardware:** {models[best].get('label')} — {report.get('best_rule')}.")
    else:
        out.append(f"No model meets the rule for a best choice ({report.get('best_rule')}).")
    out.append("")
    out += ["## Settings", "", _settings_text(report.get("settings") or {}) or "–", ""]
    for i, e in enumerate(models):
        out.append(f"## {'★ ' if best == i else ''}{e.get('label')}")
        out.append("")
        m = e.get("model") or {}
        out.append(
            f"- File: `{m.get('path')}` ({_mib(m.get('file_bytes'))}), {m.get('architecture')}, "
            f"{m.get('quantization')}, {m.get('n_layers')} layers, trained context {m.get('context_length')}"
        )
        out.append(f"- Settings: {_settings_text(e.get('settings') or {})}")
        if e.get("error"):
            out.append(f"- **Load failed:** {e['error']}")
        if e.get("verdict_text"):
            out.append(f"- Verdict: **{e.get('verdict')}** — {e.get('verdict_text')}")
        out.append(f"- {quality_line(e.get('quality'))}")
        out.append(
            f"- Prompt processing: {_pp_text(e)} tokens/s; generation: {_gen_text(e)} tokens/s; "
            f"time to first token: {_num(e.get('ttft_ms'), '{:.0f}')} ms; load: {_num(e.get('load_s'), '{:.2f}')} s"
        )
        for key, name in (("pp", "prompt"), ("tg", "generation")):
            s = e.get(key)
            if isinstance(s, Mapping) and s.get("samples_tps"):
                samples = ", ".join(f"{float(v):.1f}" for v in s["samples_tps"])
                out.append(f"- {name} runs ({s.get('n')} tokens each): {samples} tokens/s")
        split = rpc_section.split_of(e)
        if split is None or e.get("predicted") or e.get("measured"):  # a split alone has no one-machine figures
            out += ["", _md_table(["Memory", "Predicted", "Measured", "Difference"], _memory_rows(e)), ""]
            if confidence := _confidence_text(e):
                out += [confidence, ""]
        else:
            out.append("")
        if split is not None:
            out += ["### Split across machines (llama.cpp RPC, predicted)", ""]
            out += [_md_table(rpc_section.HEAD, rpc_section.rows(split)), ""]
            out += [*rpc_section.sentences(split), ""]
        reply = e.get("reply")
        if isinstance(reply, Mapping):
            out.append(f"Reply (seed {reply.get('seed')}, {_settings_text(reply.get('sampling') or {})}):")
            out.append("")
            out += ["> " + line for line in str(reply.get("text") or "").splitlines() or [""]]
            out.append("")
    out += _md_hardware(report)
    if report.get("notes"):
        out += ["## Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]
    return "\n".join(out) + "\n"


def _md_hardware(report: Mapping[str, Any]) -> list[str]:
    out = ["## Hardware (and how each figure was found)", ""]
    hw = report.get("hardware") or {}
    rows = [[str(r.get("label")), str(r.get("value")), str(r.get("source"))] for r in hw.get("rows") or []]
    out += [_md_table(["Item", "Value", "Source"], rows) if rows else "Not detected.", ""]
    lc = report.get("llama_cpp") or {}
    out += [
        "## llama.cpp",
        "",
        f"- llama-cpp-python {lc.get('version')}; GPU offload: {'yes' if lc.get('gpu_offload') else 'no'}",
        f"- System info: `{lc.get('system_info')}`",
        "",
    ]
    return out


# -- HTML -------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.2em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f2f2f2}td.num{text-align:right}tr.best{background:#fff7d6}.verdict{font-weight:bold}
.replies{display:grid;grid-template-columns:repeat(auto-fit,minmax(240px,1fr));gap:1em}
.reply{border:1px solid #ccc;border-radius:6px;padding:.6em;white-space:pre-wrap}
.reply h4{margin:.1em 0 .4em}.muted{color:#666;font-size:90%}code{background:#f4f4f4;padding:1px 3px}
.charts svg{display:block;margin:1em 0}
"""


def _html_table(head: list[str], rows: list[list[str]], row_classes: Sequence[str] = ()) -> str:
    parts = ["<table><thead><tr>", *(f"<th>{escape(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for i, r in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if i < len(row_classes) and row_classes[i] else ""
        parts.append(f"<tr{cls}>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def charts_svg(report: Mapping[str, Any]) -> list[str]:
    """The report's charts: generation speed (with the floor), prompt speed, TTFT, memory, and quality against
    size and speed when quality was measured."""
    models = report.get("models") or []
    if not models:
        return []
    labels = [str(e.get("label")) for e in models]
    best = report.get("best") if isinstance(report.get("best"), int) else None
    floor = float(report.get("floor_tps") or READING_SPEED_FLOOR_TPS)
    charts = [
        bar_chart_svg(
            "Generation speed",
            labels,
            [Series("generation", [generation_tps(e) for e in models])],
            "tokens/s",
            marker=floor,
            marker_label=f"floor {floor:g}",
            highlight=best,
        )
    ]
    pp = [
        (e["pp"].get("mean_tps") if isinstance(e.get("pp"), Mapping) else (e.get("reply") or {}).get("pp_tps"))
        for e in models
    ]
    if any(v is not None for v in pp):
        charts.append(bar_chart_svg("Prompt processing", labels, [Series("prompt", pp)], "tokens/s", highlight=best))
    ttft = [e.get("ttft_ms") for e in models]
    if any(v is not None for v in ttft):
        charts.append(bar_chart_svg("Time to first token", labels, [Series("TTFT", ttft)], "ms", highlight=best))

    def mib(e: Mapping[str, Any], part: str, key: str) -> float | None:
        v = (e.get(part) or {}).get(key)
        return None if v is None else int(v) / MiB

    charts.append(
        bar_chart_svg(
            "Memory",
            labels,
            [
                Series("predicted (llama.cpp buffers)", [mib(e, "predicted", "total_bytes") for e in models]),
                Series("measured (llama.cpp buffers)", [mib(e, "measured", "total_bytes") for e in models]),
                Series("predicted RAM need (incl. overhead)", [mib(e, "predicted", "ram_bytes") for e in models]),
                Series("measured peak RSS", [mib(e, "measured", "peak_rss_bytes") for e in models]),
            ],
            "MiB",
            highlight=best,
        )
    )
    return charts + tradeoff_svgs(models, generation_tps, best)


def render_html(report: Mapping[str, Any]) -> str:
    models = report.get("models") or []
    best = report.get("best")
    title = f"Sizewise hardware-fit report ({report.get('kind')})"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">Created {escape(str(report.get("created")))} by Sizewise '
        f"{escape(str(report.get('sizewise_version')))}.</p>",
        "<h2>Summary</h2>",
    ]
    head, rows = _summary_rows(report)
    out.append(_html_table(head, rows, ["best" if best == i else "" for i in range(len(rows))]))
    if has_quality(models):
        out.append(f'<p class="muted">{escape(quality_basis(models))}</p>')
    if isinstance(best, int) and 0 <= best < len(models):
        out.append(
            f"<p><b>Best choice for this hardware:</b> ★ {escape(str(models[best].get('label')))} — "
            f"{escape(str(report.get('best_rule')))}.</p>"
        )
    else:
        out.append(f"<p>No model meets the rule for a best choice ({escape(str(report.get('best_rule')))}).</p>")
    out.append(f"<h2>Settings</h2><p>{escape(_settings_text(report.get('settings') or {}) or '–')}</p>")
    out.append('<h2>Charts</h2><div class="charts">')
    out += charts_svg(report)
    out.append("</div>")
    replies = [e for e in models if isinstance(e.get("reply"), Mapping)]
    if replies:
        out.append('<h2>Replies</h2><div class="replies">')
        for e in replies:
            r = e["reply"]
            meta = f"seed {r.get('seed')} · {_settings_text(r.get('sampling') or {})}"
            speed = f"{_num(r.get('tg_tps'))} tokens/s · first token {_num(r.get('ttft_ms'), '{:.0f}')} ms"
            out.append(
                f'<div class="reply"><h4>{escape(str(e.get("label")))}</h4><div class="muted">{escape(meta)}<br>'
                f"{escape(speed)}</div>{escape(str(r.get('text') or ''))}</div>"
            )
        out.append("</div>")
    for i, e in enumerate(models):
        m = e.get("model") or {}
        out.append(f"<h2>{'★ ' if best == i else ''}{escape(str(e.get('label')))}</h2><ul>")
        out.append(
            f"<li>File <code>{escape(str(m.get('path')))}</code> ({escape(_mib(m.get('file_bytes')))}), "
            f"{escape(str(m.get('architecture')))}, {escape(str(m.get('quantization')))}, "
            f"{escape(str(m.get('n_layers')))} layers, trained context {escape(str(m.get('context_length')))}</li>"
        )
        out.append(f"<li>Settings: {escape(_settings_text(e.get('settings') or {}))}</li>")
        if e.get("error"):
            out.append(f"<li><b>Load failed:</b> {escape(str(e['error']))}</li>")
        if e.get("verdict_text"):
            out.append(
                f'<li>Verdict: <span class="verdict">{escape(str(e.get("verdict")))}</span> — '
                f"{escape(str(e.get('verdict_text')))}</li>"
            )
        out.append(f"<li>{escape(quality_line(e.get('quality')))}</li>")
        out.append(
            f"<li>Prompt processing {escape(_pp_text(e))} tokens/s · generation {escape(_gen_text(e))} tokens/s · "
            f"first token {escape(_num(e.get('ttft_ms'), '{:.0f}'))} ms · "
            f"load {escape(_num(e.get('load_s'), '{:.2f}'))} s</li></ul>"
        )
        split = rpc_section.split_of(e)
        if split is None or e.get("predicted") or e.get("measured"):
            out.append(_html_table(["Memory", "Predicted", "Measured", "Difference"], _memory_rows(e)))
            if confidence := _confidence_text(e):
                out.append(f"<p>{escape(confidence)}</p>")
        if split is not None:
            out.append("<h3>Split across machines (llama.cpp RPC, predicted)</h3>")
            out.append(_html_table(rpc_section.HEAD, rpc_section.rows(split)))
            out.append("<p>" + "<br>".join(escape(t) for t in rpc_section.sentences(split)) + "</p>")
    hw = report.get("hardware") or {}
    hw_rows = [[str(r.get("label")), str(r.get("value")), str(r.get("source"))] for r in hw.get("rows") or []]
    out.append("<h2>Hardware (and how each figure was found)</h2>")
    out.append(_html_table(["Item", "Value", "Source"], hw_rows) if hw_rows else "<p>Not detected.</p>")
    lc = report.get("llama_cpp") or {}
    out.append(
        f"<h2>llama.cpp</h2><p>llama-cpp-python {escape(str(lc.get('version')))} · GPU offload: "
        f"{'yes' if lc.get('gpu_offload') else 'no'}<br><code>{escape(str(lc.get('system_info')))}</code></p>"
    )
    if report.get("notes"):
        out.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(str(n))}</li>" for n in report["notes"]) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
