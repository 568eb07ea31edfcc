"""``sizewise bench --server URL``: llama-bench's method against llama-server, with what differs said out loud.

The figures are the server's own ``timings`` (mean ± sample stddev over the repetitions); the client's
wall-clock figures sit beside them. There is no memory prediction or verdict: the server's machine and settings
are not this one's, and the memory flags do not reach it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sizewise.commands import CliContext
from sizewise.commands.remote.engines import open_remote
from sizewise.core.errors import UserError


def run_remote(args: argparse.Namespace, ctx: CliContext) -> int:
    from sizewise.engine.remote.bench import DIFFERENCES, run_remote_bench
    from sizewise.engine.remote.http import RemoteError

    if args.report:
        raise UserError("--report needs a local MODEL; a remote bench prints its figures (use --json to keep them).")
    session = open_remote(args, ctx)
    info = session.info
    assert info is not None
    label = info.model.rsplit("/", 1)[-1]

    def progress(phase: str, step: int, steps: int, value: float | None) -> None:
        figure = "" if value is None else f": {value:.1f}"
        print(f"[{step}/{steps}] {label} (remote): {phase}{figure}", file=sys.stderr, flush=True)

    try:
        result = run_remote_bench(
            session,
            pp=args.pp,
            tg=args.tg,
            repetitions=args.repetitions,
            warmup=not args.no_warmup,
            ttft=not args.no_ttft,
            progress=progress,
        )
    except RemoteError as exc:
        raise UserError(str(exc)) from None
    finally:
        session.close()
    report: dict[str, Any] = {
        "kind": "bench",
        "remote": {
            **info.to_dict(),
            "figures": "pp and tg are the server's own timings; client_* figures and ttft_ms are measured here, "
            "network and HTTP included",
        },
        "settings": {"pp": args.pp, "tg": args.tg, "repetitions": args.repetitions, "warmup": not args.no_warmup},
        "method": "llama-bench through llama-server's API: random token-id prompts, cache_prompt false, fixed "
        "n_predict with ignore_eos; mean ± sample stddev of per-repetition tokens/s",
        "differences_from_local": list(DIFFERENCES),
        "models": [{"label": label, **result}],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    w = sys.stdout.write
    w(f"Remote bench: {info.url} ({'encrypted' if info.encrypted else 'plain http'}), model {label}\n")
    for key, name in (("pp", "prompt"), ("tg", "generation")):
        sp = result[key]
        w(
            f"  {name:<11} {sp['mean_tps']:8.1f} ± {sp['sd_tps']:.1f} tokens/s  ({key}{sp['n']}, "
            f"{sp['repetitions']} runs; server timings; as received here {sp['client_mean_tps']:.1f})\n"
        )
    if result.get("ttft_ms") is not None:
        w(f"  first token {result['ttft_ms']:8.0f} ms (chat turn, measured here with the network)\n")
    w("Differs from a local bench:\n")
    for line in DIFFERENCES:
        w(f"  - {line}\n")
    return 0
