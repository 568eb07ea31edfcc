"""Verdicts, auto GPU layers, largest context, targets, the measurement store — and verdicts under a real cap.

The verdict-truth test at the end runs real engine loads inside a memory-limited control group and
checks the verdict against what happened; see its docstring for what the cap can and cannot show.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from sizewise.core.errors import UserError
from sizewise.core.fit import MARGIN_MIN_BYTES, Budget, check_fit, compare, margin_for, max_context
from sizewise.core.gguf_meta import read_header
from sizewise.core.llama_log import MeasuredBuffers
from sizewise.core.measurements import MeasurementStore, make_record, model_key
from sizewise.core.memory_model import Backend, predict
from sizewise.core.paths import AppPaths
from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.core.targets import custom_budget, find_target, load_targets, parse_targets
from sizewise.engine.session import EngineError, EngineSession

MiB, GiB = 1 << 20, 1 << 30
CPU = Backend(repack=True, cpu_features=frozenset({"avx2", "avx512"}))
GPU = Backend(gpu=True, repack=False, cpu_features=frozenset({"avx2"}))


def cpu_budget(ram: int) -> Budget:
    return Budget(ram_bytes=ram, vram_bytes=0, source="test", backend=CPU)


# -- verdicts ---------------------------------------------------------------------------------------


def test_cpu_verdicts_follow_the_margin(smollm2_path: Path) -> None:
    h = read_header(smollm2_path)
    need = predict(h, LoadParams(n_ctx=2048), CPU).ram_bytes
    margin = margin_for(need)
    assert margin >= MARGIN_MIN_BYTES
    ok = check_fit(h, LoadParams(n_ctx=2048), cpu_budget(need + margin), with_max_ctx=False)
    assert ok.verdict == "fits_cpu" and ok.gpu_layers == 0 and ok.ram_required == need + margin
    short = check_fit(h, LoadParams(n_ctx=2048), cpu_budget(need + margin - 1), with_max_ctx=False)
    assert short.verdict == "too_large"
    assert "Too large" in short.words() and "safety margin" in short.words()
    assert "Fits on the CPU" in ok.words()


def test_auto_gpu_layers_takes_the_most_that_fit(gemma_path: Path) -> None:
    h = read_header(gemma_path)
    params = LoadParams(n_ctx=2048)
    n_off = 19
    full = predict(h, replace(params, n_gpu_layers=-1), GPU)
    roomy = Budget(
        ram_bytes=64 * GiB, vram_bytes=full.vram_bytes + margin_for(full.vram_bytes), source="t", backend=GPU
    )
    r = check_fit(h, params, roomy, "auto", with_max_ctx=False)
    assert r.verdict == "fits_gpu" and r.gpu_layers == n_off
    # a card that holds about half of it: partial offload, and one more layer would not fit
    half = predict(h, replace(params, n_gpu_layers=10), GPU).vram_bytes
    tight = replace(roomy, vram_bytes=half + margin_for(half))
    r = check_fit(h, params, tight, "auto", with_max_ctx=False)
    assert r.verdict == "fits_partial" and 0 < r.gpu_layers < n_off
    more = predict(h, replace(params, n_gpu_layers=r.gpu_layers + 1), GPU).vram_bytes
    assert more + margin_for(more) > tight.vram_bytes
    assert f"{r.gpu_layers} of {n_off}" in r.words()
    # no VRAM at all: everything on the CPU
    r = check_fit(h, params, replace(roomy, vram_bytes=0), "auto", with_max_ctx=False)
    assert r.verdict == "fits_cpu" and r.gpu_layers == 0


def test_fixed_gpu_layers_without_gpu_backend_stay_on_cpu(smollm2_path: Path) -> None:
    h = read_header(smollm2_path)
    r = check_fit(h, LoadParams(), cpu_budget(8 * GiB), 12, with_max_ctx=False)
    assert r.gpu_layers == 0 and r.verdict == "fits_cpu"
    assert any("no GPU backend" in n for n in r.notes)


def test_too_much_vram_requested_is_too_large(smollm2_path: Path) -> None:
    h = read_header(smollm2_path)
    budget = Budget(ram_bytes=8 * GiB, vram_bytes=32 * MiB, source="t", backend=GPU)
    r = check_fit(h, LoadParams(), budget, -1, with_max_ctx=False)
    assert r.verdict == "too_large" and "VRAM" in r.words()


def test_max_context_is_the_largest_that_fits(smollm2_path: Path) -> None:
    h = read_header(smollm2_path)
    params = LoadParams(n_ctx=512)
    at_4096 = predict(h, replace(params, n_ctx=4096), CPU).ram_bytes
    budget = cpu_budget(at_4096 + margin_for(at_4096))
    best = max_context(h, params, budget)
    assert best == 4096
    assert check_fit(h, replace(params, n_ctx=best), budget, with_max_ctx=False).fits
    assert not check_fit(h, replace(params, n_ctx=best + 256), budget, with_max_ctx=False).fits
    # plenty of memory: capped at the trained context; none at all: 0
    assert max_context(h, params, cpu_budget(64 * GiB)) == 8192
    assert max_context(h, params, cpu_budget(10 * MiB)) == 0
    # q8_0 KV with flash attention halves the KV cache: a longer context fits in the same budget
    assert max_context(h, LoadParams(kv_type="q8_0", flash_attn=True), budget) > best


def test_unified_memory_counts_gpu_and_cpu_together(gemma_path: Path) -> None:
    h = read_header(gemma_path)
    apple = find_target("apple-m-16gb").budget()
    assert apple.unified and apple.backend.gpu
    r = check_fit(h, LoadParams(), apple, "auto", with_max_ctx=False)
    assert r.verdict == "fits_gpu"
    tiny = replace(apple, ram_bytes=r.prediction.ram_bytes + r.ram_margin)  # RAM alone would fit, not RAM + VRAM
    assert check_fit(h, LoadParams(), tiny, -1, with_max_ctx=False).verdict == "too_large"


def test_compare_reports_percent_per_component(smollm2_path: Path) -> None:
    pred = predict(read_header(smollm2_path), LoadParams(n_ctx=2048), CPU)
    measured = MeasuredBuffers()
    measured.add_log_text(
        "load_tensors:   CPU_Mapped model buffer size =    92.10 MiB\n"
        "llama_kv_cache:        CPU KV buffer size =    50.00 MiB\n"
        "sched_reserve:        CPU compute buffer size =    99.38 MiB\n"
    )
    diffs = {d.component: d for d in compare(pred, measured)}
    assert diffs["kv"].diff_pct == pytest.approx(100 * (45 - 50) / 50)
    assert abs(diffs["weights"].diff_pct or 0) < 0.01
    assert diffs["output"].diff_pct is None  # nothing measured: no percentage invented
    assert diffs["vram"].measured == 0


# -- targets ----------------------------------------------------------------------------------------


def test_targets_file_has_the_issue_targets() -> None:
    targets = {t.id: t for t in load_targets()}
    for wanted in ("laptop-8gb-cpu", "laptop-16gb", "apple-m-16gb", "nvidia-12gb-32gb", "nvidia-24gb", "rpi5-8gb"):
        assert wanted in targets
    t = targets["nvidia-12gb-32gb"]
    b = t.budget()
    assert b.backend.gpu and b.vram_bytes == 12 * GiB - t.vram_reserved_bytes
    assert b.ram_bytes == 32 * GiB - t.os_reserved_bytes
    assert "12 GiB VRAM" in b.source
    pi = targets["rpi5-8gb"].budget()
    assert not pi.backend.gpu and pi.vram_bytes == 0 and "dotprod" in pi.backend.cpu_features
    assert find_target("Raspberry Pi 5, 8 GB").id == "rpi5-8gb"


def test_unknown_target_lists_the_choices() -> None:
    with pytest.raises(UserError, match="laptop-8gb-cpu"):
        find_target("toaster")


def test_bad_targets_file_is_a_sentence() -> None:
    with pytest.raises(UserError, match="targets"):
        parse_targets({"nope": []})
    with pytest.raises(UserError, match="invalid ram_gib"):
        parse_targets({"targets": [{"id": "x", "ram_gib": "lots"}]})


def test_custom_budget() -> None:
    b = custom_budget(8, 4)
    assert b.ram_bytes == 8 * GiB and b.vram_bytes == 4 * GiB and b.backend.gpu
    assert not custom_budget(8).backend.gpu
    with pytest.raises(UserError):
        custom_budget(0)


def test_pi_predicts_arm_repacking(gemma_path: Path) -> None:
    h = read_header(gemma_path)
    pi = check_fit(h, LoadParams(), find_target("rpi5-8gb").budget(), with_max_ctx=False)
    laptop = check_fit(h, LoadParams(), find_target("laptop-8gb-cpu").budget(), with_max_ctx=False)
    assert pi.prediction.weights_repack > laptop.prediction.weights_repack > 0


# -- measurement store ------------------------------------------------------------------------------


def test_measurements_roundtrip_and_key_changes_with_the_file(app_paths: AppPaths, tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 100)
    store = MeasurementStore(app_paths)
    pred = predict_dummy()
    measured = MeasuredBuffers()
    measured.add_log_text("load_tensors:   CPU_Mapped model buffer size =    1.00 MiB\n")
    store.add(model, make_record(pred, measured, {"n_ctx": 512}))
    store.add(model, make_record(pred, measured, {"n_ctx": 1024}))
    assert [r.settings["n_ctx"] for r in store.records(model)] == [512, 1024]
    latest = store.latest(model, {"n_ctx": 512})
    assert latest is not None and latest.measured["weights_bytes"] == 1 << 20
    assert "weights" in latest.diff_pct
    data = json.loads(store.file.read_text())
    assert model_key(model) in data["models"]
    # no temporary files left next to the store (atomic replace)
    assert [p.name for p in store.file.parent.iterdir() if p.name.startswith(".")] == []
    # a changed file is a different model: old numbers are not shown for it
    time.sleep(0.01)
    model.write_bytes(b"GGUF" + b"\1" * 200)
    assert store.records(model) == []


def test_damaged_store_is_set_aside(app_paths: AppPaths, tmp_path: Path) -> None:
    store = MeasurementStore(app_paths)
    store.file.parent.mkdir(parents=True, exist_ok=True)
    store.file.write_text("{ not json")
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    assert store.records(model) == []
    assert store.file.with_suffix(".damaged.json").exists()


def predict_dummy() -> object:
    from sizewise.core.gguf_meta import GGUFHeader

    header = GGUFHeader(version=3, metadata={"general.architecture": "llama"}, tensors=[], data_offset=32, file_size=32)
    return predict(header, LoadParams(n_ctx=512))


# -- verdict truth: real loads under a real memory cap ----------------------------------------------


class MemoryCap:
    """A memory-limited control group that an engine worker is born into.

    cgroup v1 (``memory.limit_in_bytes``, as on this test machine) or v2 (``memory.max``). The worker
    must be charged for everything it allocates from its first page, so the *spawning thread* joins the
    group while the worker is started (a new process inherits its creator's cgroup) and leaves again
    right after; any of this process's own threads created meanwhile are moved back too.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.version, self.parent = _cgroup_parent()
        self.path = self.parent / f"sizewise-fit-test-{os.getpid()}-{time.monotonic_ns()}"
        self.path.mkdir()
        if self.version == 1:
            (self.path / "memory.limit_in_bytes").write_text(str(limit))
            memsw = self.path / "memory.memsw.limit_in_bytes"
            if memsw.exists():  # no swapping out of trouble either
                memsw.write_text(str(limit))
        else:
            (self.path / "memory.max").write_text(str(limit))
            with contextlib.suppress(OSError):
                (self.path / "memory.swap.max").write_text("0")

    @contextlib.contextmanager
    def spawning(self) -> Iterator[None]:
        tasks = "tasks" if self.version == 1 else "cgroup.threads"
        tid = threading.get_native_id()
        (self.path / tasks).write_text(str(tid))
        try:
            yield
        finally:
            for t in (self.path / tasks).read_text().split():
                if Path(f"/proc/self/task/{t}").exists():  # one of ours (this thread, a reader thread)
                    (self.parent / tasks).write_text(t)

    def oom_kills(self) -> int:
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        for line in (self.path / name).read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return 0

    def close(self) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def _cgroup_parent() -> tuple[int, Path]:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, rel = line.split(":", 2)
        rel = rel.strip().lstrip("/")
        if "memory" in controllers.split(","):
            return 1, Path("/sys/fs/cgroup/memory") / rel
        if controllers == "":
            for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
                here = root / rel
                if "memory" in (here / "cgroup.subtree_control").read_text(errors="ignore").split():
                    return 2, here
    raise OSError("no writable memory cgroup")


def _cap_unavailable() -> str | None:
    try:
        cap = MemoryCap(256 * MiB)
    except OSError as exc:
        return f"memory cgroups are not usable here ({exc})"
    cap.close()
    return None


def _run_capped(model: Path, params: LoadParams, limit: int, log: Path) -> tuple[bool, str, int]:
    """Load and generate under the cap: (succeeded, what happened, OOM kills in the group)."""
    cap = MemoryCap(limit)
    session = EngineSession(log_path=log)
    try:
        with cap.spawning():
            session.client.start()
        session.wait_for("ready", timeout=60)
        session.load(model, params)
        _, stats = session.generate(
            SamplingParams(temperature=0.0, max_tokens=4, seed=1), prompt="The weather today is " * 40
        )
        what = f"loaded and generated {stats.tokens} tokens, peak RSS {stats.peak_rss_bytes / MiB:.0f} MiB"
        return True, what, cap.oom_kills()
    except EngineError as exc:
        return False, str(exc), cap.oom_kills()
    finally:
        session.close()
        cap.close()


@pytest.mark.slow
def test_verdict_agrees_with_real_loads_under_a_memory_cap(
    smollm2_path: Path, gemma_path: Path, tmp_path: Path
) -> None:
    """Real loads inside a memory cgroup at budgets around the predicted need.

    The cap is the kernel's (cgroup v1 ``memory.limit_in_bytes`` here; v2 ``memory.max`` elsewhere): a
    worker that touches more is OOM-killed, which the engine reports as stopped. Budgets:

    * **just above** the need the verdict asks for (prediction + margin, × 1.03) → the verdict says it
      fits, and the load and a generation must really succeed (for both models);
    * **just below** (× 0.97) → the verdict says ``too_large``. The load usually still succeeds under the
      cap: the need counts every byte llama.cpp *reserves* — the worst-case compute buffer with logits
      for a full batch (512 MiB for Gemma's 262k vocabulary) and, for weights, the whole mapped file —
      while a chat only touches part of that, and the model file's pages, already in the page cache,
      are charged to whichever cgroup read them first. So below the need, failure is not guaranteed;
      the verdict errs on the safe side, and the outcome is printed for the record;
    * **far below** (× 0.2, less than the KV cache alone) → the load must fail (OOM), and the verdict
      must say ``too_large``.

    Over all budgets the test asserts the safety rule: the verdict never says a model fits when its
    load failed.
    """
    reason = _cap_unavailable()
    if reason:
        pytest.skip(reason)
    rows: list[str] = []
    with EngineSession(log_path=tmp_path / "probe.log") as probe:
        ready = probe.start()
    backend = Backend.from_system_info(ready["system_info"], gpu_offload=False)
    cases = [(smollm2_path, LoadParams(n_ctx=8192), (1.03, 0.97, 0.2)), (gemma_path, LoadParams(n_ctx=2048), (1.03,))]
    outcomes: dict[tuple[str, float], tuple[bool, str]] = {}
    for model, params, factors in cases:
        header = read_header(model)
        base = check_fit(header, params, Budget(64 * GiB, 0, "probe", backend), 0, with_max_ctx=False)
        need = base.ram_required
        for factor in factors:
            limit = int(need * factor)
            verdict = check_fit(header, params, Budget(limit, 0, "cgroup", backend), 0, with_max_ctx=False).verdict
            ok, what, kills = _run_capped(model, params, limit, tmp_path / f"{model.stem}-{factor}.log")
            outcomes[(model.name, factor)] = (ok, verdict)
            rows.append(
                f"{model.name} ctx={params.n_ctx} need={need / MiB:.0f} MiB cap={limit / MiB:.0f} MiB (x{factor}): "
                f"verdict={verdict} outcome={'ok' if ok else 'FAILED'} oom_kills={kills} — {what}"
            )
            assert not (verdict != "too_large" and not ok), rows[-1]  # never "fits" when the load failed
    print("\n" + "\n".join(rows))
    for model in (smollm2_path, gemma_path):
        ok, verdict = outcomes[(model.name, 1.03)]
        assert verdict == "fits_cpu" and ok, rows
    assert outcomes[(smollm2_path.name, 0.97)][1] == "too_large"
    ok, verdict = outcomes[(smollm2_path.name, 0.2)]
    assert verdict == "too_large" and not ok, rows
