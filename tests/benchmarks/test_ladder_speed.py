"""The model ladder's goal (issue 13): the whole catalogue on every target in at most 1 s, no network.

Times ``build_ladder`` for all 30 catalogue models × 7 quants on every target in resources/targets.json and on
two typed budgets (16 GiB RAM; 32 GiB RAM + 8 GiB VRAM), in one process, over several rounds, and prints each
one's median and spread. Before each target's ladder the compute-buffer caches are emptied, so every target
pays for its own allocator simulations; the catalogue's virtual headers are built once per process (the
first ladder pays for them, timed and printed separately) and shared by every target, as in the app.

Wall time on a shared machine moves with whatever else runs, so the test also counts what noise cannot
touch: the allocator simulations each target needs (3,900 for nvidia-12gb-32gb before the ladder was made
fast, 371 now; the most, 533, on the Vulkan budget), and the process CPU time.

The goal is the first ladder a person sees, so ``test_first_ladder_in_a_fresh_process`` also times it cold: a
new interpreter per target and round (the targets alternate within each round), which imports the ladder's
modules, builds the catalogue's virtual headers and what the memory and speed models read from them, then the
ladder; the imports are timed apart (they are the CLI's start-up, not the ladder's computation). Last run (Intel
Xeon, 2 vCPUs, 5 rounds): 0.46-0.51 s on CPU budgets, 0.71-0.82 s on GPU ones; the code before the tensor plan
shared across quants, the "auto" search from its guess and the guided largest-context search took 1.07 s on
nvidia-12gb-32gb in the same alternated run (new/old 0.78 over 30 pairs, 0.74-0.82).

Run: pytest -m benchmarks tests/benchmarks/test_ladder_speed.py -s
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from sizewise.core.fit import compute_graph, memory_model
from sizewise.core.fit.memory_model import Backend
from sizewise.core.fit.targets import custom_budget, load_targets
from sizewise.core.fit.verdict import Budget
from sizewise.core.ladder.catalogue_rows import ladder_rows
from sizewise.core.ladder.cells import LADDER_QUANTS, LadderModel, build_ladder, collector_paused
from sizewise.core.ladder.virtual_header import virtual_header
from sizewise.core.sampling import LoadParams
from sizewise.core.speed.predicted import Devices
from sizewise.core.speed.profile import estimate_profile
from sizewise.engine.speed.devices import target_devices

pytestmark = pytest.mark.benchmarks

ROUNDS = int(os.environ.get("SIZEWISE_BENCH_ROUNDS", "5"))
GOAL_S = 1.0
MAX_SIMULATIONS = 800  # per target and budget; the most any needs now is 533 (Vulkan)


def _budgets() -> list[tuple[str, Budget, Devices]]:
    out = [(t.id, t.budget(), target_devices(t.id)) for t in load_targets()]
    for ram, vram in ((16.0, 0.0), (32.0, 8.0)):
        out.append((f"ram {ram:g} + vram {vram:g} GiB", custom_budget(ram, vram), Devices(estimate_profile())))
    # this machine on a Vulkan build (lavapipe's 2 GiB and 128 MiB tensor limit): the split is estimated per device
    vulkan = Backend(gpu=True, repack=True, gpu_backend="vulkan", gpu_max_tensor_bytes=1 << 27)
    out.append(("vulkan 16 + 2 GiB", replace(custom_budget(16.0, 2.0), backend=vulkan), Devices(estimate_profile())))
    return out


def _clear_compute_caches() -> None:
    compute_graph.compute_buffer_bytes.cache_clear()
    compute_graph._recurrence.cache_clear()
    memory_model._compute.cache_clear()


def _ladder(models: list[LadderModel], budget: Budget, devices: Devices) -> tuple[float, float, int]:
    """(wall s, CPU s, allocator simulations) of one whole-catalogue ladder with empty compute caches."""
    _clear_compute_caches()
    count = [0]
    simulate = compute_graph.simulate_allocator

    def counted(graph: compute_graph.Graph, states: list[tuple[object, ...]] | None = None) -> int:
        count[0] += 1
        return simulate(graph, states)

    compute_graph.simulate_allocator = counted  # type: ignore[assignment]
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        cells = build_ladder(models, budget, devices, LoadParams(n_ctx=4096))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        compute_graph.simulate_allocator = simulate  # type: ignore[assignment]
    assert len(cells) == len(models) * len(LADDER_QUANTS)
    return wall, cpu, count[0]


def test_whole_catalogue_ladder_within_a_second_on_every_target() -> None:
    models = ladder_rows().models
    t0 = time.perf_counter()
    with collector_paused():  # as inside build_ladder, where the CLI and the page build them
        for m in models:
            for q in LADDER_QUANTS:
                memory_model.layer_count(virtual_header(m.shape, q))  # the header and its per-header tables
    headers_s = time.perf_counter() - t0
    budgets = _budgets()
    walls: dict[str, list[float]] = {name: [] for name, _, _ in budgets}
    cpus: dict[str, list[float]] = {name: [] for name, _, _ in budgets}
    sims: dict[str, int] = {}
    for _ in range(ROUNDS):
        for name, budget, devices in budgets:
            wall, cpu, n = _ladder(models, budget, devices)
            walls[name].append(wall)
            cpus[name].append(cpu)
            sims[name] = n
    print(f"\n{len(models)} models x {len(LADDER_QUANTS)} quants; building their headers once: {headers_s:.2f} s")
    print(f"{'target':<28}{'median s':>9}{'min-max s':>15}{'CPU s':>8}{'simulations':>13}   ({ROUNDS} rounds)")
    for name, _, _ in budgets:
        w = walls[name]
        print(
            f"{name:<28}{statistics.median(w):>9.3f}{min(w):>8.3f}-{max(w):<6.3f}"
            f"{statistics.median(cpus[name]):>8.3f}{sims[name]:>13}"
        )
    for name, _, _ in budgets:
        assert sims[name] <= MAX_SIMULATIONS, f"{name}: {sims[name]} allocator simulations"
        assert statistics.median(walls[name]) <= GOAL_S, f"{name}: median {statistics.median(walls[name]):.2f} s"


# One cold ladder in a fresh interpreter: what `sizewise ladder --target NAME` computes, headers included.
_COLD = """
import json, sys, time
w0, c0 = time.perf_counter(), time.process_time()
from sizewise.core.fit.targets import custom_budget, load_targets
from sizewise.core.ladder.catalogue_rows import ladder_rows
from sizewise.core.ladder.cells import build_ladder
from sizewise.core.sampling import LoadParams
from sizewise.core.speed.predicted import Devices
from sizewise.core.speed.profile import estimate_profile
from sizewise.engine.speed.devices import target_devices
w1, c1 = time.perf_counter(), time.process_time()
name = sys.argv[1]
if name.startswith("ram "):
    ram, vram = (float(x) for x in name[4:].split("+"))
    budget, devices = custom_budget(ram, vram), Devices(estimate_profile())
else:
    t = next(t for t in load_targets() if t.id == name)
    budget, devices = t.budget(), target_devices(t.id)
models = ladder_rows().models
cells = build_ladder(models, budget, devices, LoadParams(n_ctx=4096))
w2, c2 = time.perf_counter(), time.process_time()
assert len(cells) == len(models) * 7
print(json.dumps({"import_wall": w1 - w0, "wall": w2 - w1, "cpu": c2 - c1}))
"""


def _cold_names() -> list[str]:
    return [t.id for t in load_targets()] + ["ram 16+0", "ram 32+8"]


def test_first_ladder_in_a_fresh_process() -> None:
    names = _cold_names()
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    env = dict(os.environ)
    for _ in range(ROUNDS):
        for name in names:  # alternating: a burst of load on the machine spreads over every target
            out = subprocess.run(
                [sys.executable, "-c", _COLD, name], env=env, capture_output=True, text=True, check=True, timeout=120
            )
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"\nfirst ladder in a fresh process, headers included ({ROUNDS} rounds, targets alternating)")
    print(f"{'target':<28}{'median s':>9}{'min-max s':>15}{'CPU s':>8}{'imports s':>11}")
    for name in names:
        w = [r["wall"] for r in runs[name]]
        cpu = statistics.median(r["cpu"] for r in runs[name])
        imp = statistics.median(r["import_wall"] for r in runs[name])
        print(f"{name:<28}{statistics.median(w):>9.3f}{min(w):>8.3f}-{max(w):<6.3f}{cpu:>8.3f}{imp:>11.3f}")
    for name in names:
        median = statistics.median(r["wall"] for r in runs[name])
        assert median <= GOAL_S, f"{name}: first ladder median {median:.2f} s"
