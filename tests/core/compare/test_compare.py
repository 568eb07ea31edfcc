"""The comparison's Qt-free half: which runs share an engine, whether they fit together, what a run records and
what the report says about how the runs went — all without Qt or an engine."""

from __future__ import annotations

from pathlib import Path

from sizewise.core.compare.plan import RunSpec, describe_settings, group_specs, inspect_cached, plan_runs
from sizewise.core.compare.report import SHARED_SPEED_NOTE, compare_notes, compare_report
from sizewise.core.compare.results import RunResult, speeds_shared
from sizewise.core.fit.verdict import Budget, check_fit
from sizewise.core.sampling import LoadParams, SamplingParams

GiB = 1 << 30
ROOMY = Budget(ram_bytes=64 * GiB, vram_bytes=0, source="test")
STATS = {"tokens": 4, "tg_tps": 12.5, "pp_tps": 80.0, "ttft_ms": 30.0, "peak_rss_bytes": 300, "seed": 7}


def test_consecutive_runs_on_one_file_and_settings_share_an_engine(tmp_path: Path) -> None:
    a, b = str(tmp_path / "a.gguf"), str(tmp_path / "b.gguf")
    specs = [RunSpec(a, temperature=0.2), RunSpec(a, temperature=1.2), RunSpec(b), RunSpec(a)]
    assert group_specs(specs) == [[0, 1], [2], [3]]
    assert RunSpec(a).engine_key != RunSpec(a, LoadParams(n_ctx=512)).engine_key
    assert describe_settings(LoadParams(n_ctx=512), 0) == "ctx 512, KV f16"
    assert describe_settings(LoadParams(n_ctx=512), "auto").endswith("GPU layers auto")


def test_plan_decides_together_and_says_why_not(smollm2_path: Path, tmp_path: Path) -> None:
    specs = [RunSpec(str(smollm2_path), LoadParams(n_ctx=256)), RunSpec(str(smollm2_path), LoadParams(n_ctx=512))]
    plan = plan_runs(specs, ROOMY)
    assert plan.all_at_once and len(plan.keys) == 2 and len(plan.fits) == 2
    assert plan.words().endswith("loading them together.")
    tight = plan_runs(specs, Budget(ram_bytes=1 << 20, vram_bytes=0, source="test"))
    assert tight.together is not None and not tight.all_at_once
    missing = plan_runs([RunSpec(str(tmp_path / "gone.gguf"))], ROOMY)
    assert not missing.all_at_once and missing.words().startswith("Could not check whether the runs fit together")


def test_a_run_records_its_reply_and_whether_its_speed_shared_the_cpu(smollm2_path: Path) -> None:
    r = RunResult(spec=RunSpec(str(smollm2_path)))
    assert r.reply("hi") is None and r.peak_rss is None and not r.speed_shared
    r.sampling, r.stats, r.text, r.side_by_side = SamplingParams(seed=7), dict(STATS), "red, blue", True
    reply = r.reply("hi")
    assert reply is not None and reply["prompt"] == "hi" and reply["speeds_shared_cpu"] is True
    assert r.speed_shared and speeds_shared([RunResult(spec=r.spec), r])
    r.bench = {"tg": {"mean_tps": 9.0, "sd_tps": 0.1}, "peak_rss_bytes": 900}
    assert not r.speed_shared and r.peak_rss == 900  # the benchmark measured it alone


def test_notes_say_how_the_runs_went() -> None:
    alone = compare_notes("one_after_another", plan=None, reused=False, shared_threads=None, benched=True)
    assert alone == [
        "Runs went one after another, each in its own engine process, with the same prompt, seed and sampling."
    ]
    together = compare_notes("generated_together", plan=None, reused=True, shared_threads=2, benched=True)
    assert SHARED_SPEED_NOTE in together[0] and "2 CPU thread(s)" in together[1]
    assert together[2].startswith("The benchmarks ran one at a time") and together[-1].startswith("The models were")


def test_report_records_the_shared_settings_and_schedule(smollm2_path: Path) -> None:
    header, info = inspect_cached(smollm2_path)
    specs = [RunSpec(str(smollm2_path), temperature=t) for t in (0.2, 1.2)]
    results = [RunResult(spec=s, label=f"t {s.temperature}") for s in specs]
    for r in results:
        r.info, r.fit, r.sampling, r.stats = info, check_fit(header, r.spec.load, ROOMY, 0), SamplingParams(), STATS
    results[1].side_by_side = True
    report = compare_report(
        kind="temperature",
        results=results,
        prompt="hi",
        sampling=SamplingParams(seed=7),
        schedule="generated_together",
        plan=plan_runs(specs, ROOMY),
        reused=False,
        shared_threads=None,
        bench_settings={"pp": 16, "tg": 4, "repetitions": 2},
        hardware=None,
        ready_info={},
        floor_tps=5.0,
    )
    s = report["settings"]
    assert s["temperatures"] == [0.2, 1.2] and (s["pp"], s["tg"], s["repetitions"]) == (16, 4, 2)
    assert s["schedule"] == "generated_together" and s["fit_together"]["fits"] and s["seed"] == 7
    assert [m["label"] for m in report["models"]] == ["t 0.2", "t 1.2"]
    assert report["best_rule"].endswith(f"(speeds {SHARED_SPEED_NOTE})")
    assert report["notes"][-1].startswith("Memory check before the run: ")
