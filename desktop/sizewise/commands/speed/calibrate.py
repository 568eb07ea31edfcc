"""``sizewise calibrate [--threads N] [--no-gpu] [--json]``: measure this machine's speed profiles.

Writes synthetic random-weight models, quantizes and measures them (on the CPU, then on the GPU where the build
drives one), fits and stores a profile per device keyed by this hardware and llama.cpp build
(engine/speed/calibrate.py), and deletes every synthetic file. Progress
goes to stderr. Ctrl+C stops it: nothing is stored and no file is left (exit 130).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from sizewise.commands import CliContext
from sizewise.commands.quant_lab import INTERRUPTED, restore_default_sigint
from sizewise.core.errors import UserError
from sizewise.core.hub.starter import find_app_starter
from sizewise.core.speed.fit import FitError
from sizewise.core.speed.profile import ATTN, CELLS, NOT_BYTES, ProfileStore, SpeedProfile
from sizewise.core.speed.steady import steady_rounds
from sizewise.engine.session import EngineError
from sizewise.engine.speed.calibrate import calibrate
from sizewise.engine.speed.measure import CalibrationFailed, Measured


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "calibrate",
        help="measure this machine's speed (about a minute) so speeds can be predicted before download",
    )
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: llama-cpp-python's choice)")
    p.add_argument(
        "--no-gpu",
        action="store_true",
        help="measure the CPU only, even where the build drives a GPU",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _summary(profile: SpeedProfile, measured: list[Measured]) -> dict[str, Any]:
    return {
        "profile": profile.to_dict(),
        "measurements": [
            {
                "model": m.label,
                "tg_tps": m.tg_tps,
                "tg_deep_tps": m.tg_deep_tps,
                "pp_tps": m.pp_tps,
                "pp_deep_tps": m.pp_deep_tps,
                "rounds": [
                    {
                        "tg_tps": 1 / r.tg,
                        "tg_deep_tps": 1 / r.tg_deep,
                        "pp_tps": 1 / r.pp,
                        "pp_deep_tps": 1 / r.pp_deep,
                        "bench_s": r.bench_s,
                        "steady": r in steady_rounds(m.rounds),
                    }
                    for r in m.rounds
                ],
            }
            for m in measured
        ],
    }


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    starter = find_app_starter(ctx.paths)
    if starter is None:
        raise UserError("Calibration borrows the starter model's tokenizer, and the starter model is not installed.")
    t0 = time.perf_counter()

    def progress(line: str) -> None:
        print(f"[{time.perf_counter() - t0:5.1f} s] {line}", file=sys.stderr, flush=True)

    restore_default_sigint()
    try:
        done = calibrate(ctx.paths, starter.path, progress, threads=args.threads, gpu=False if args.no_gpu else None)
    except KeyboardInterrupt:
        print("Calibration cancelled; nothing was stored and the synthetic models were deleted.", file=sys.stderr)
        return INTERRUPTED
    except (CalibrationFailed, EngineError, FitError) as exc:
        raise UserError(f"Calibration failed, nothing was stored: {exc}") from exc
    store = ProfileStore.for_app(ctx.paths)
    for profile in done.profiles:
        store.put(profile)
    if args.json:
        out = _summary(done.profile, done.measured)
        out["gpu"] = _summary(done.gpu, done.gpu_measured) if done.gpu is not None else None
        print(json.dumps(out, indent=1))
        return 0
    _print_device(done.profile, done.measured)
    if done.gpu is not None:
        _print_device(done.gpu, done.gpu_measured)
    return 0


def _print_device(profile: SpeedProfile, measured: list[Measured]) -> None:
    where = "CPU" if profile.backend == "cpu" else f"GPU ({profile.backend}: {profile.device})"
    print(f"{where}:")
    for m in measured:
        print(
            f"  {m.label:<14} tg {m.tg_tps:7.1f} t/s (at depth: {m.tg_deep_tps:7.1f})   "
            f"pp {m.pp_tps:8.1f} t/s (at depth: {m.pp_deep_tps:7.1f})"
        )
    fams = ", ".join(f"{t} {bw / 1e9:.1f}" for t, bw in sorted(profile.bw_by_quant.items()) if t not in NOT_BYTES)
    attn, cells = profile.bw_by_quant.get(ATTN), profile.bw_by_quant.get(CELLS)
    attention = (f"attention {attn / 1e9:.1f} GFLOP/s, " if attn else "") + (
        f"{1e9 / cells:.0f} ns per cached token, " if cells else ""
    )
    print(
        f"  Bandwidth {profile.bw_effective / 1e9:.1f} GB/s effective ({fams or 'one figure for all types'}), "
        f"{attention}"
        f"{profile.t_fixed * 1e3:.2f} ms fixed and {profile.t_layer * 1e3:.3f} ms per layer per token; "
        f"every point within {profile.fit_error:.0%} of the fit; measured in {profile.calibration_s:.0f} s."
    )
