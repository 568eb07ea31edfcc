"""Quality in a comparison, without a model: what each compared file's report entry says about its stored quality
run, the reference's figures by definition, and which reference each file is measured against."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sizewise.core.compare.plan import RunSpec
from sizewise.core.compare.quality import plan_quality_runs, quality_sections
from sizewise.core.compare.report import compare_report
from sizewise.core.compare.results import RunResult
from sizewise.core.gguf.header import ModelInfo
from sizewise.core.paths import basedir_paths
from sizewise.core.quant.quality import QualityFigures
from sizewise.core.quant.reference_pick import Candidate
from sizewise.core.quant.results import QualityRun, QualityStore
from sizewise.core.sampling import SamplingParams

PARAMS = 134_515_008


def run(
    model: Path, reference: Path | None, *, kld: float | None, same_top: float | None, when: float = 1.0
) -> QualityRun:
    figures = QualityFigures(
        ppl=28.4, ppl_err=6.1, tokens_scored=126, kld_mean=kld, kld_p99=None if kld is None else 5 * kld,
        same_top_pct=same_top, delta_p_mean=None if kld is None else 0.001, reference_ppl=None if kld is None else 28.7,
    )  # fmt: skip
    return QualityRun(
        model=str(model.resolve()), figures=figures, reference=None if reference is None else str(reference.resolve()),
        text_sha256="ab", text_name="Alice", ctx=128, chunks=2, eval_tokens_per_s=30.0, when=when,
    )  # fmt: skip


def info(path: Path, quant: str, size: int, *, arch: str = "llama", params: int = PARAMS) -> ModelInfo:
    return ModelInfo(
        path=str(path), file_bytes=size, name="SmolLM2", architecture=arch, parameters=params, quantization=quant,
        context_length=8192, n_layers=30, vocab_size=49152, has_chat_template=True, chat_template=None, split_count=1,
    )  # fmt: skip


def test_sections_mark_the_reference_and_leave_the_unmeasured_null(tmp_path: Path) -> None:
    f16, q8, q4 = tmp_path / "f16.gguf", tmp_path / "q8.gguf", tmp_path / "q4.gguf"
    runs = {str(q8.resolve()): run(q8, f16, kld=0.004, same_top=93.6)}
    lookup = runs.get
    q8_s, f16_s, q4_s = quality_sections([str(q8), str(f16), str(q4)], lookup)
    assert q8_s is not None and q8_s["same_top_pct"] == 93.6 and q8_s["reference"] == str(f16.resolve())
    assert not q8_s["is_reference"] and "model" not in q8_s
    # f16 was never measured alone, but q8 was measured against it: KLD 0, same top 100 %, the reference's ppl
    assert f16_s is not None and f16_s["is_reference"] and f16_s["kld_mean"] == 0.0 and f16_s["same_top_pct"] == 100.0
    assert f16_s["ppl"] == 28.7 and f16_s["ppl_err"] is None and f16_s["text"] == "Alice"
    assert q4_s is None
    # with a run of its own (perplexity only) the reference keeps its own perplexity and error
    runs[str(f16.resolve())] = run(f16, None, kld=None, same_top=None)
    f16_own = quality_sections([str(q8), str(f16)], lookup)[1]
    assert f16_own is not None and f16_own["is_reference"] and f16_own["ppl_err"] == 6.1 and f16_own["kld_mean"] == 0.0
    # alone, that perplexity-only run is just that: no KLD, not a reference of anything
    alone = quality_sections([str(f16)], lookup)[0]
    assert alone is not None and alone["kld_mean"] is None and not alone["is_reference"]


def test_store_prefers_the_latest_run_against_a_reference(tmp_path: Path) -> None:
    paths = basedir_paths(tmp_path / "base").ensure()
    model = tmp_path / "q8.gguf"
    model.write_bytes(b"GGUF")
    store = QualityStore(paths)
    assert store.preferred(model) is None
    store.add(run(model, tmp_path / "f16.gguf", kld=0.004, same_top=93.6, when=1.0))
    store.add(run(model, tmp_path / "f16.gguf", kld=0.005, same_top=92.0, when=2.0))
    store.add(run(model, None, kld=None, same_top=None, when=3.0))  # a later perplexity-only run
    preferred = store.preferred(model)
    assert preferred is not None and preferred.when == 2.0
    assert store.latest(model) is not None and store.latest(model).when == 3.0  # type: ignore[union-attr]


def test_references_come_from_the_compared_models_and_the_library(tmp_path: Path) -> None:
    f16, q8, q4, other = (tmp_path / n for n in ("f16.gguf", "q8.gguf", "q4.gguf", "gemma-f16.gguf"))
    lib_bf16 = tmp_path / "lib" / "bf16.gguf"
    compared = [info(q8, "Q8_0", 138), info(f16, "F16", 258), info(q4, "Q4_0", 85), info(q8, "Q8_0", 138)]
    library = [Candidate(str(other), "gemma3", 268_098_176, "F16", 540)]
    plan = plan_quality_runs(compared, library)
    r = {Path(m).name: (Path(ref).name if ref else None) for m, ref in plan}
    assert [Path(m).name for m, _ in plan] == ["q8.gguf", "f16.gguf", "q4.gguf"]  # each file once, in order
    assert r == {"q8.gguf": "f16.gguf", "f16.gguf": None, "q4.gguf": "f16.gguf"}  # another model is no reference
    # a more precise file of the same model in the Library wins, for the compared F16 too
    plan = plan_quality_runs(compared, [*library, Candidate(str(lib_bf16), "llama", PARAMS, "F32", 516)])
    assert {ref for _m, ref in plan} == {str(lib_bf16.resolve())}


def test_compare_report_carries_quality_and_the_floor(tmp_path: Path, smollm2_path: Path) -> None:
    from sizewise.core.compare.plan import inspect_cached

    _header, real = inspect_cached(smollm2_path)
    q8 = tmp_path / "q8.gguf"
    results = [RunResult(spec=RunSpec(str(smollm2_path)), label="starter", info=real)]
    results.append(
        RunResult(spec=RunSpec(str(q8)), label="q8", info=replace(real, path=str(q8), file_bytes=2 * real.file_bytes))
    )
    for r in results:
        r.sampling, r.stats = SamplingParams(), {"tg_tps": 40.0, "tokens": 4}
    runs = {str(q8.resolve()): run(q8, smollm2_path, kld=0.004, same_top=93.6)}

    def report(floor: float | None) -> dict[str, object]:
        return compare_report(
            kind="compare", results=results, prompt="hi", sampling=SamplingParams(), schedule="one_after_another",
            plan=None, reused=False, shared_threads=None, bench_settings=None, hardware=None, ready_info=None,
            floor_tps=10.0, quality=runs.get, min_same_top=floor,
        )  # fmt: skip

    with_floor = report(95.0)
    models = with_floor["models"]
    assert isinstance(models, list)
    assert models[0]["quality"]["is_reference"] and models[1]["quality"]["same_top_pct"] == 93.6
    assert with_floor["best"] == 0  # q8 is under the floor; the starter is its reference (100 % by definition)
    no_floor = report(None)
    assert no_floor["min_same_top"] is None and no_floor["best"] == 1  # the larger file wins without a floor
