"""Verdicts, auto GPU layers, largest context, targets, the measurement store — and verdicts under a real cap.

The verdict-truth test at the end runs real engine loads inside a memory-limited control group and
checks the verdict against what happened; see its docstring for what the cap can and cannot show.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from sizewise.core.errors import UserError
from sizewise.core.fit import memory_model as mm
from sizewise.core.fit.llama_log import MeasuredBuffers
from sizewise.core.fit.measurements import MeasurementStore, make_record, model_key
from sizewise.core.fit.memory_model import Backend, predict
from sizewise.core.fit.targets import custom_budget, find_target, load_targets, parse_targets
from sizewise.core.fit.verdict import MARGIN_MIN_BYTES, Budget, check_fit, compare, margin_for, max_context
from sizewise.core.gguf.header import GGUFHeader, read_header
from sizewise.core.paths import AppPaths
from sizewise.core.quant.shapes import HyperParams
from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.core.speed.synthetic import read_tokenizer
from sizewise.engine.session import EngineError, EngineSession
from tests.quant_models import quantize_all, write_model

MiB, GiB = 1 << 20, 1 << 30
CPU = Backend(repack=True, cpu_features=frozenset({"avx2", "avx512"}))
GPU = Backend(gpu=True, repack=False, cpu_features=frozenset({"avx2"}), gpu_backend="vulkan")  # scheduler replay


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
    # no VRAM at all: every layer on the CPU — and still too large for a GPU build, whose op offload runs the
    # prompt batches on the GPU (the logits and their inputs: GPU compute buffer with 0 layers offloaded)
    r = check_fit(h, params, replace(roomy, vram_bytes=0), "auto", with_max_ctx=False)
    assert r.gpu_layers == 0 and r.prediction.vram_bytes > 0 and r.verdict == "too_large"
    assert any(n.startswith("the GPU memory budget (0 MiB) is too small for even one layer") for n in r.notes)
    assert any("op offload" in n for n in r.notes)
    # room for op offload's buffer alone: every layer on the CPU, and it fits
    zero = predict(h, replace(params, n_gpu_layers=0), GPU).vram_bytes
    r = check_fit(h, params, replace(roomy, vram_bytes=zero + margin_for(zero)), "auto", with_max_ctx=False)
    assert r.verdict == "fits_cpu" and r.gpu_layers == 0
    # a device just too small for one layer says so, with what one layer needs; one just big enough takes it
    one = predict(h, replace(params, n_gpu_layers=1), GPU).vram_bytes
    r = check_fit(h, params, replace(roomy, vram_bytes=one + margin_for(one) - 1), "auto", with_max_ctx=False)
    need = one + margin_for(one)  # gemma-3's first layer with its compute buffer: 0.73 GiB
    assert r.gpu_layers == 0 and any(f"needs {need / GiB:.2f} GiB with its compute buffer" in n for n in r.notes)
    r = check_fit(h, params, replace(roomy, vram_bytes=one + margin_for(one)), "auto", with_max_ctx=False)
    assert r.gpu_layers == 1 and not any("even one layer" in n for n in r.notes)


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
    from sizewise.core.gguf.header import GGUFHeader

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

    def _counter(self, v1_file: str, v2_file: str, v2_key: str) -> int:
        if self.version == 1:
            return int((self.path / v1_file).read_text())
        for line in (self.path / v2_file).read_text().splitlines():
            if line.startswith(v2_key + " "):
                return int(line.split()[1])
        return 0

    def set_limit(self, limit: int) -> None:
        """Move the cap while the worker lives (v1 keeps memory.limit <= memsw.limit at every step)."""
        if self.version == 2:
            (self.path / "memory.max").write_text(str(limit))
        else:
            files = ["memory.limit_in_bytes"]
            if (self.path / "memory.memsw.limit_in_bytes").exists():
                files.append("memory.memsw.limit_in_bytes")
            for name in files if limit < self.limit else reversed(files):
                (self.path / name).write_text(str(limit))
        self.limit = limit

    def major_faults(self) -> int:
        """Major page faults in the group so far: file pages that had to be read (again) from the disk."""
        for line in (self.path / "memory.stat").read_text().splitlines():
            if line.startswith("pgmajfault "):
                return int(line.split()[1])
        return 0

    def oom_kills(self) -> int:
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        for line in (self.path / name).read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return 0

    def peak(self) -> int:
        """The group's highest charge: anonymous memory plus the page cache its worker brought in."""
        return int((self.path / ("memory.max_usage_in_bytes" if self.version == 1 else "memory.peak")).read_text())

    def hits(self) -> int:
        """How often the charge reached the cap (v2 ``memory.events`` max; v1 ``memory.failcnt``).

        Linux 6.18's v1 controller leaves both failcnt files at 0 even when the group is OOM-killed at
        its limit, so ``CappedRun.reached_cap`` also looks at the peak.
        """
        return self._counter("memory.failcnt", "memory.events", "max")

    def charged(self) -> tuple[int, int]:
        """(anonymous, page cache) bytes charged now; anonymous memory cannot be given back (no swap)."""
        stat = dict(line.split() for line in (self.path / "memory.stat").read_text().splitlines())
        anon, file = ("rss", "cache") if self.version == 1 else ("anon", "file")
        return int(stat[anon]), int(stat[file])

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
    try:
        cap.peak()
    except OSError:
        return "this kernel's memory cgroup keeps no peak figure (memory.peak needs Linux 5.19)"
    finally:
        cap.close()
    return None


def _evict_from_page_cache(path: Path) -> None:
    """Drop the file's cached pages so the capped worker pays for every page of the weights it maps.

    A page-cache page is charged to the cgroup that first read it: pages already cached would be free
    to the worker and make the cap look roomier than it is. The file is the test's private copy, so no
    other process keeps its pages mapped (mapped pages cannot be dropped); fsync first, as dirty pages
    are not dropped either. Cheaper and more precise than ``echo 3 > /proc/sys/vm/drop_caches``, which
    would also empty everyone else's cache on a shared machine.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


# The worst case a chat can produce at n_ctx 1024 with the default n_batch = n_ubatch = 512: a prompt of
# about 960 tokens (either tokenizer) goes through as a full 512-token micro-batch and a second one that
# sees all 1024 KV cells, so the attention part of the compute graph runs at its reserved size; the
# reply then takes the context to ~990 of 1024 tokens. (The KV cache needs no filling: llama.cpp clears
# the whole buffer at load, so every cell is charged from the start.)
WORKLOAD_CTX = 1024
WORKLOAD_PROMPT = " ".join(f"Item {i} is a {('red', 'blue', 'green', 'small')[i % 4]} thing." for i in range(108))
WORKLOAD_REPLY_TOKENS = 32
# README: the verdict's need is "within 1 % of the measured peak RSS". Measured 0.13-0.19 % (here, and at
# n_ctx 2048 in tests/core/fit/test_memory_model.py); the rest is room for what the need estimates from
# constants (core/fit/memory_model.py: the allocator's and the compute threads' share), which varies between
# machines.
PEAK_RSS_TOLERANCE = 0.01
CHARGE_BATCH_BYTES = 1 * MiB  # the kernel charges a cgroup in batches of up to 64 pages; a peak this close is the cap


@dataclass(frozen=True)
class CappedRun:
    budget: int  # the RAM the verdict was asked about
    limit: int  # the cgroup cap that stands for it (see _run_worst_case)
    verdict: str
    need: int  # predicted RAM need (ram_bytes) with the engine's measured start-up RSS
    ok: bool
    what: str
    oom_kills: int
    hits: int  # times the charge reached the cap
    rss_start: int  # worker RSS when ready (before loading)
    charge_start: int  # what the group was charged for it
    peak: int  # highest charge: anonymous + page cache
    peak_rss: int  # the worker's own peak RSS (VmHWM) after the chat; 0 if it died
    anon: int  # anonymous bytes at the end of a successful run
    file: int  # page-cache bytes at the end of a successful run (the mapped weights)
    reread: int  # major page faults while generating: pages of the weights read again from the disk
    tokens: int  # prompt + reply tokens that went through the context
    tg_tps: float  # the reply's generation speed
    seconds: float

    @property
    def reached_cap(self) -> bool:
        """The charge reached the cap: the kernel then reclaims the worker's own pages or kills it."""
        return self.hits > 0 or self.peak >= self.limit - CHARGE_BATCH_BYTES

    def row(self, name: str, label: str) -> str:
        return (
            f"{name} {label:<11} budget={self.budget / MiB:6.1f} MiB (cap {self.limit / MiB:6.1f}) "
            f"verdict={self.verdict:<9} outcome={'ok' if self.ok else 'FAILED'} need={self.need / MiB:.1f} "
            f"peak RSS={self.peak_rss / MiB:.1f} start RSS/charge={self.rss_start / MiB:.1f}/"
            f"{self.charge_start / MiB:.1f} charge peak={self.peak / MiB:6.1f} (anon {self.anon / MiB:.1f}, "
            f"file {self.file / MiB:.1f}) reached_cap={self.reached_cap} re-read pages={self.reread} "
            f"oom_kills={self.oom_kills} tokens={self.tokens} {self.seconds:.1f} s — {self.what}"
        )


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"no VmRSS for process {pid}")


Budgeter = Callable[[mm.MemoryPrediction, int], int]  # (prediction, margin) -> budget in bytes


def _run_worst_case(
    model: Path, header: GGUFHeader, params: LoadParams, backend: Backend, budgeter: Budgeter, log: Path
) -> CappedRun:
    """The verdict for a budget, then load and the worst-case chat inside a cgroup that stands for it.

    The verdict counts the worker's start-up at its RSS (measured here, as the app measures it); the
    group is charged only for the start-up pages nobody else had cached (shared libraries usually are),
    so the cap is the budget less that difference, set once the worker is ready and before it loads.
    """
    _evict_from_page_cache(model)
    cap = MemoryCap(4 * GiB)
    session = EngineSession(log_path=log)
    t0 = time.monotonic()
    anon = file = tokens = peak_rss = reread = 0
    tg_tps = 0.0
    stage = "start"
    try:
        with cap.spawning():
            session.client.start()
        session.wait_for("ready", timeout=60)
        assert session.client.pid is not None
        rss_start, charge_start = _rss(session.client.pid), sum(cap.charged())
        pred = predict(header, params, backend, baseline_bytes=rss_start)
        budget = budgeter(pred, margin_for(pred.ram_bytes))
        verdict = check_fit(
            header, params, Budget(budget, 0, "cgroup", backend), 0, with_max_ctx=False, baseline_bytes=rss_start
        ).verdict
        limit = budget - max(rss_start - charge_start, 0)
        cap.set_limit(limit)
        stage = "load"
        session.load(model, params)
        stage = f"chat (loaded after {time.monotonic() - t0:.1f} s)"
        faults = cap.major_faults()
        _, stats = session.generate(
            SamplingParams(temperature=0.0, max_tokens=WORKLOAD_REPLY_TOKENS, seed=1), prompt=WORKLOAD_PROMPT
        )
        reread = cap.major_faults() - faults
        anon, file = cap.charged()
        tokens = stats.prompt_tokens + stats.tokens
        peak_rss = stats.peak_rss_bytes
        tg_tps = stats.tg_tps
        ok, what = True, f"prompt {stats.prompt_tokens} tokens, reply {stats.tokens} at {stats.tg_tps:.1f} t/s"
    except EngineError as exc:
        ok, what = False, f"during {stage}, after {time.monotonic() - t0:.1f} s: {exc}"
    finally:
        session.close()
        seconds = time.monotonic() - t0
        peak, hits, kills = cap.peak(), cap.hits(), cap.oom_kills()
        cap.close()
    return CappedRun(
        budget, limit, verdict, pred.ram_bytes, ok, what, kills, hits, rss_start, charge_start, peak, peak_rss,
        anon, file, reread, tokens, tg_tps, seconds,
    )  # fmt: skip


# A small mixture-of-experts model with the starter model's vocabulary (for the workload's prompt), random weights
# quantized by llama.cpp to Q4_K_M, whose experts an AVX2/AVX-512 CPU copies to CPU_REPACK: the case the memory
# model once under-predicted (issue 15). 4 layers × 16 experts of 512 × 512, 4 used: 66 MiB.
MOE_CAPPED = HyperParams(
    arch="qwen3moe", n_layer=4, n_embd=512, n_ff=512, n_head=8, n_head_kv=2, n_vocab=49152, head_dim=64,
    n_expert=16, n_expert_used=4, n_ff_exp=512, tied_embeddings=False,
)  # fmt: skip


# A small hybrid model (LFM2's layout: short-convolution layers with a recurrent state, attention in two of six
# layers) with the starter model's vocabulary, random weights at Q4_K_M: the KV cache covers the attention layers
# only and the recurrent state is a buffer of its own (issue 15: one hybrid architecture under the cap).
HYBRID_CAPPED = HyperParams("lfm2", 6, 1024, 4096, 16, 4, 49152, attn_layers=(2, 5))


def _capped_model(hp: HyperParams, smollm2_path: Path, tmp: Path) -> Path:
    src = write_model(tmp / f"{hp.arch}-F16.gguf", hp, tokenizer=read_tokenizer(smollm2_path))
    out = quantize_all(src, tmp, ["Q4_K_M"])
    assert out["Q4_K_M"]["rc"] == 0, out
    src.unlink()
    model = tmp / f"{hp.arch}-Q4_K_M.gguf"
    (tmp / "Q4_K_M.gguf").rename(model)
    return model


@pytest.fixture(scope="module")
def qwen3moe_q4_path(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _capped_model(MOE_CAPPED, smollm2_path, tmp_path_factory.mktemp("capped-moe"))


@pytest.fixture(scope="module")
def lfm2_q4_path(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _capped_model(HYBRID_CAPPED, smollm2_path, tmp_path_factory.mktemp("capped-hybrid"))


@pytest.mark.slow
@pytest.mark.parametrize("model_fixture", ["smollm2_path", "gemma_path", "qwen3moe_q4_path", "lfm2_q4_path"])
def test_verdict_agrees_with_worst_case_runs_under_a_memory_cap(
    model_fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Real loads and worst-case chats inside a memory cgroup, at budgets around the predicted need.

    The cap is the kernel's (cgroup v1 ``memory.limit_in_bytes`` + ``memsw`` here; v2 ``memory.max``
    elsewhere). Each run starts from a private copy of the model whose pages were dropped from the page
    cache, so the worker is charged for every page of the weights it maps; it loads with n_ctx 1024 and
    runs the worst case a chat can produce (``WORKLOAD_PROMPT``: a full 512-token micro-batch, then one
    that sees all 1024 KV cells; a 32-token reply). The need is ``ram_bytes``: what the engine's graphs
    write, not the logits rows llama.cpp reserves for every token of a micro-batch and the engine never
    asks for (core/fit/memory_model.py, "Allocated vs needed"). The models: the two test models, a small
    mixture-of-experts model (its experts go to CPU_REPACK) and a small hybrid one (a recurrent state beside the
    KV cache): issue 15's MoE and hybrid architectures under the cap.
    Per model, three budgets:

    * **just above** the need the verdict asks for (need + margin, × 1.03): the verdict says
      ``fits_cpu``, the run succeeds without reaching the cap, and the worker's peak RSS is within 1 %
      of the need (README's figure; the accuracy that makes "just below" mean something);
    * **just below** the need (× 0.97): the verdict says ``too_large``, and the run does not fit: the
      cap binds, and the worker either dies or goes on only by dropping pages of its mapped weights and
      reading them again from the disk for every token (major faults while generating, none above), at
      a fraction of its speed;
    * **below the anonymous memory** the just-above run ended with (× 0.75): the worker is OOM-killed,
      the engine reports "The engine stopped", and the verdict says ``too_large``.

    Measured here (2 shared cores, llama-cpp-python 0.3.36, AVX-512, Linux 6.18 cgroup v1, n_ctx 1024;
    MiB; the need counts the measured start-up RSS, 41.9 MiB in this run)::

                            need   peak RSS  x0.97 budget: outcome                         killed at
        SmolLM2-135M Q4_1   213.5  213.1     207.2: cap reached, 315 pages re-read,         93.7
                                             10.2 t/s instead of 57.0
        Gemma-3-270M Q4_K_M 387.5  388.0     375.8: cap reached, 247 pages re-read,        117.2
                                             1.8 t/s instead of 30.8
        Qwen3-MoE Q4_K_M    182.8  181.4     177.3: cap reached, 15-265 pages re-read,      72.7
        (synthetic, 4 layers                 2.0-9.7 t/s instead of 19.8-456
        x 16 experts, 66 MiB)
        LFM2 Q4_K_M         261.7  260.1     253.8: cap reached, 292 pages re-read,        110.1
        (synthetic hybrid,                   3.5 t/s instead of 199
        6 layers, 96 MiB)

    llama.cpp allocates 96 MiB (SmolLM2) and 512 MiB (Gemma) more than that for the logits rows the
    engine never writes; before the need counted only what is written, the verdict said ``too_large``
    for budgets under which the worst case ran at full speed.

    The safety rule holds at every budget: the verdict never says a model fits when its run failed.
    """
    reason = _cap_unavailable()
    if reason:
        pytest.skip(reason)
    with EngineSession(log_path=tmp_path / "probe.log") as probe:
        ready = probe.start()
    backend = Backend.from_system_info(ready["system_info"], gpu_offload=False)
    params = LoadParams(n_ctx=WORKLOAD_CTX)
    rows: list[str] = []
    for source in (request.getfixturevalue(model_fixture),):
        model = tmp_path / source.name
        shutil.copyfile(source, model)
        try:
            header = read_header(model)

            def capped(label: str, budgeter: Budgeter, model: Path = model, header: GGUFHeader = header) -> CappedRun:
                run = _run_worst_case(model, header, params, backend, budgeter, tmp_path / f"{label}.log")
                rows.append(run.row(model.name, label))
                assert run.ok or run.verdict == "too_large", rows  # the safety rule: never "fits" when it failed
                return run

            above = capped("just above", lambda p, margin: int((p.ram_bytes + margin) * 1.03))
            assert above.verdict == "fits_cpu" and above.ok and above.oom_kills == 0, rows
            assert not above.reached_cap, rows  # "fits" means room to spare: the cap was never even reached
            assert above.tokens >= 0.9 * WORKLOAD_CTX, rows  # the worst case really ran
            assert above.file >= 0.9 * model.stat().st_size, rows  # the mapped weights were charged to it
            assert abs(above.peak_rss - above.need) <= PEAK_RSS_TOLERANCE * above.need, rows  # the need is the peak

            below = capped("just below", lambda p, margin: int(p.ram_bytes * 0.97))
            assert below.verdict == "too_large", rows
            assert below.reached_cap, rows  # the budget was too small for the worst case ...
            # ... so it died, or it went on only by reading its weights from the disk again, much slower
            # (pages of weights read again from disk: a count the host's load cannot change; the speeds in
            # `rows` show the same but swing with the load of a shared 2-core host, so they are not asserted)
            # A MoE model's experts are copied to CPU_REPACK (anonymous memory), so few pages of its file are
            # read per token and the reclaim shows as lost speed more than as pages read again (15-265 pages,
            # 2.0-9.7 t/s against 19.8-456 t/s above, in four runs here).
            harmed = below.reread > above.reread + 16 or below.tg_tps < 0.5 * above.tg_tps
            assert not below.ok or harmed, rows

            budget = int(above.anon * 0.75) + above.rss_start - above.charge_start  # a cap of 0.75 x anon
            killed = capped("below anon", lambda p, margin, budget=budget: budget)
            assert killed.verdict == "too_large" and not killed.ok and killed.oom_kills >= 1, rows
            assert "The engine stopped" in killed.what, rows
        finally:
            model.unlink(missing_ok=True)
    print("\n" + "\n".join(rows))
