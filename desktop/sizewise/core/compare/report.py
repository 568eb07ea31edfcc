"""The hardware-fit report of a finished comparison: one entry per run, the settings every run shared, how
the runs were scheduled and why, in the words the report carries.

It turns the comparison's plain records (``RunResult``, ``RunPlan``) into ``core.report.fit_report``'s
report, so what a comparison writes down is decided in core and testable without Qt or an engine. The
benchmark's settings arrive as plain numbers: the request type itself belongs to the engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sizewise.core.compare.plan import RunPlan, Schedule
from sizewise.core.compare.quality import QualityLookup, quality_sections
from sizewise.core.compare.results import RunResult, speeds_shared
from sizewise.core.fit.hardware import HardwareReport
from sizewise.core.report.fit_report import build_report, hardware_section, llama_cpp_facts, model_entry
from sizewise.core.sampling import SamplingParams, default_threads

SHARED_SPEED_NOTE = "measured side by side, sharing the CPU"
REMOTE_BEST_RULE = "none: a model on a server took part, and its speed and memory are not this machine's"


def remote_entry(r: RunResult, prompt: str) -> dict[str, Any]:
    """A server run's entry: the model as the server names it and the reply; no prediction, no local memory.

    Its keys are a local entry's, plus ``remote`` (what the server said: facts, timings, memory)."""
    remote = r.remote or {}
    server = remote.get("server") or {}
    reply = r.reply(prompt)
    return {
        "label": r.label,
        "model": {
            "path": r.spec.server,
            "name": server.get("model") or r.spec.server,
            "server": server.get("url"),
            **(server.get("facts") or {}),
        },
        "settings": {},
        "pp": None,
        "tg": None,
        "ttft_ms": (reply or {}).get("ttft_ms"),
        "ttft": None,
        "load_s": None,
        "predicted": None,
        "measured": None,
        "diff_pct": None,
        "verdict": None,
        "verdict_text": None,
        "fit": None,
        "reply": reply,
        "hardware": None,
        "llama_cpp": None,
        "quality": None,
        "error": r.error,
        "remote": {
            "server": server or None,
            "server_timings": remote.get("server_timings"),
            "memory": remote.get("memory"),
        },
    }


def compare_entries(
    results: Sequence[RunResult],
    prompt: str,
    *,
    hardware: HardwareReport | None,
    ready_info: Mapping[str, Any] | None,
    quality: QualityLookup | None = None,
) -> list[dict[str, Any]]:
    """The report's model entries: one per run whose model could be read, in run order; ``quality`` finds a
    model's stored quality run (None: no quality figures)."""
    hw = hardware_section(hardware) if hardware is not None else None
    lc = llama_cpp_facts(ready_info)
    read = [r for r in results if r.info is not None]
    sections = quality_sections([r.spec.path for r in read], quality) if quality is not None else [None] * len(read)
    by_run = dict(zip((id(r) for r in read), sections, strict=True))
    out = []
    for r in results:
        if r.spec.server:
            out.append(remote_entry(r, prompt))
            continue
        if r.info is None:
            continue
        q = by_run[id(r)]
        out.append(
            model_entry(
                info=r.info,
                settings=r.settings,
                fit=r.fit,
                loaded=r.loaded,
                bench=r.bench,
                reply=r.reply(prompt),
                peak_rss_bytes=r.peak_rss,
                baseline_rss_bytes=r.baseline_rss,
                hardware=hw,
                llama_cpp=lc,
                label=r.label,
                error=r.error,
                quality=q,
            )
        )
    return out


def compare_notes(
    schedule: Schedule,
    *,
    plan: RunPlan | None,
    reused: bool,
    shared_threads: int | None,
    benched: bool,
) -> list[str]:
    """How the runs went (one after another, loaded together, generated together) and what that means for
    their figures."""
    same = "with the same prompt, seed and sampling"
    if schedule == "one_after_another":
        notes = [f"Runs went one after another, each in its own engine process, {same}."]
    elif schedule == "loaded_together":
        notes = [
            f"All runs were loaded at once, each in its own engine process, and answered one at a time "
            f"(the others waiting loaded), {same}: each speed is what that model gets alone."
        ]
    else:
        notes = [
            f"All runs were loaded at once, each in its own engine process, and answered at the same time, "
            f"{same}: their reply speeds were {SHARED_SPEED_NOTE}, so each is lower than that model gets alone."
        ]
        if shared_threads is not None:
            notes.append(
                f"While generating together each engine used {shared_threads} CPU thread(s) instead of "
                f"{default_threads()}: the cores were split between them, because llama.cpp threads that "
                "compete for the same cores wait on each other and slow down far more than the split costs."
            )
        if benched:
            notes.append("The benchmarks ran one at a time after the replies, so their figures are not shared.")
    if plan is not None:
        notes.append(f"Memory check before the run: {plan.words()}")
    if reused:
        notes.append("The models were still loaded from the previous run, so nothing was loaded again.")
    return notes


def compare_report(
    *,
    kind: str,
    results: Sequence[RunResult],
    prompt: str,
    sampling: SamplingParams,
    schedule: Schedule,
    plan: RunPlan | None,
    reused: bool,
    shared_threads: int | None,
    bench_settings: Mapping[str, int] | None,
    hardware: HardwareReport | None,
    ready_info: Mapping[str, Any] | None,
    floor_tps: float,
    quality: QualityLookup | None = None,
    min_same_top: float | None = None,
) -> dict[str, Any]:
    """The whole report; ``kind`` is compare | temperature, ``bench_settings`` the benchmark's pp, tg and
    repetitions (None: no benchmark ran), ``quality`` finds stored quality runs and ``min_same_top`` is the
    best choice's quality floor (None: none)."""
    settings: dict[str, Any] = {"prompt": prompt, **sampling.to_dict()}
    if kind == "temperature":
        settings["temperatures"] = [r.spec.temperature for r in results]
    if bench_settings is not None:
        settings.update(bench_settings)
    settings["schedule"] = schedule
    if plan is not None and plan.together is not None:
        settings["fit_together"] = plan.together.to_dict()
    report = build_report(
        kind=kind,
        entries=compare_entries(results, prompt, hardware=hardware, ready_info=ready_info, quality=quality),
        hardware=hardware_section(hardware) if hardware is not None else None,
        llama_cpp=llama_cpp_facts(ready_info),
        settings=settings,
        floor_tps=floor_tps,
        min_same_top=min_same_top,
        notes=compare_notes(
            schedule, plan=plan, reused=reused, shared_threads=shared_threads, benched=bench_settings is not None
        ),
    )
    if speeds_shared(results):
        report["best_rule"] += f" (speeds {SHARED_SPEED_NOTE})"
    if any(r.spec.server for r in results):
        report["best"], report["best_rule"] = None, REMOTE_BEST_RULE
    return report
