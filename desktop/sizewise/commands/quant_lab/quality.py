"""``sizewise quality MODEL``: what a quant costs, measured as llama-perplexity measures it.

Perplexity on a text (the bundled public-domain excerpt by default), and with a reference — the
highest-precision version of the same model in the Library, or ``--reference`` — the KL divergence from
it, how often the top token agrees, and the change in the probability of the right token. The run is kept
(core/quant/results.py) for Compare, the report and the trade-off chart. Ctrl+C cancels it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sizewise.commands import CliContext
from sizewise.commands.quant_lab import INTERRUPTED, restore_default_sigint, wait_cancellable
from sizewise.core.errors import UserError
from sizewise.core.hub.library import Library, LibraryEntry
from sizewise.core.hub.resolve import check_model, resolve_model_path
from sizewise.core.quant.quality import TOP_K_DEFAULT
from sizewise.core.quant.reference_cache import reference_cache_dir
from sizewise.core.quant.reference_pick import Candidate, pick_reference
from sizewise.core.quant.results import QualityRun, QualityStore
from sizewise.core.quant.text import load_text
from sizewise.engine.quant.quality_job import QualityJob


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("quality", help="measure what a quant costs: perplexity, and KL divergence from a reference")
    p.add_argument("model", metavar="MODEL", help="a .gguf path or 'starter'")
    p.add_argument(
        "--reference",
        metavar="MODEL",
        help="higher-precision version of the same model (default: the most precise one in the Library)",
    )
    p.add_argument("--no-reference", action="store_true", help="perplexity only, even if a reference exists")
    p.add_argument("--text", metavar="FILE", help="UTF-8 text to score (default: a bundled public-domain text)")
    p.add_argument("--ctx", type=int, default=512, help="tokens per chunk (llama-perplexity's -c; default 512)")
    p.add_argument("--chunks", type=int, default=None, help="chunks to score (default: all the text has)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: llama-cpp-python's choice)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _candidate(e: LibraryEntry) -> Candidate:
    return Candidate(e.path, e.architecture, e.parameters, e.quantization, e.size_bytes)


def find_reference(model: Path, library: Library) -> Path | None:
    """The most precise file of the same model among the Library's (None if the model is that file)."""
    info = check_model(model)
    me = Candidate(str(model.resolve()), info.architecture, info.parameters, info.quantization, info.file_bytes)
    others = [_candidate(e) for e in library.list() if e.status == "ok" and Path(e.path).resolve() != model.resolve()]
    best = pick_reference(me, others)
    return Path(best.path) if best else None


def _print_progress(msg: dict[str, Any]) -> None:
    phase = msg.get("phase")
    if phase in ("loading", "loading_reference"):
        what = "reference model" if phase == "loading_reference" else "model"
        print(f"Loading the {what}…", file=sys.stderr, flush=True)
        return
    who = "reference" if phase == "reference" else "model"
    print(
        f"[{msg['chunk']}/{msg['chunks']}] {who}: perplexity so far {msg['ppl']:.3f} "
        f"({msg['tokens_per_s']:.0f} tokens/s)",
        file=sys.stderr,
        flush=True,
    )


def format_run(run: QualityRun) -> str:
    f = run.figures
    lines = [
        f"Perplexity      {f.ppl:.4f} ± {f.ppl_err:.4f}   ({f.tokens_scored:,} tokens scored, "
        f"{run.chunks} chunks of {run.ctx})"
    ]
    if f.kld_mean is not None:
        lines += [
            f"Reference       {run.reference}  (perplexity {f.reference_ppl:.4f})",
            f"KL divergence   mean {f.kld_mean:.5f}, 99th percentile {f.kld_p99:.5f}",
            f"Same top token  {f.same_top_pct:.2f} %",
            f"Mean Δp         {100 * (f.delta_p_mean or 0):+.3f} %",
        ]
    lines.append(f"Evaluation      {run.eval_tokens_per_s:.1f} tokens/s")
    return "\n".join(lines)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    model = resolve_model_path(args.model)
    check_model(model)
    if args.ctx < 16:
        raise UserError("--ctx must be 16 or more.")
    if args.chunks is not None and args.chunks < 1:
        raise UserError("--chunks must be 1 or more.")
    text = load_text(args.text)
    reference: Path | None = None
    if args.reference and args.no_reference:
        raise UserError("--reference and --no-reference contradict each other.")
    if args.reference:
        reference = resolve_model_path(args.reference)
        check_model(reference)
        if reference.resolve() == model.resolve():
            raise UserError("The reference is the model itself; name a higher-precision version of it.")
    elif not args.no_reference:
        reference = find_reference(model, Library.for_app(ctx.paths))
        if reference is not None:
            print(f"Reference: {reference} (the most precise version of this model here).", file=sys.stderr)
    store = QualityStore(ctx.paths)
    finals: list[dict[str, Any]] = []

    def on_event(msg: dict[str, Any]) -> None:
        if msg.get("type") == "progress":
            _print_progress(msg)
        else:
            finals.append(msg)

    job = QualityJob(
        model,
        on_event,
        text=text,
        cache_dir=reference_cache_dir(ctx.paths),
        reference=reference,
        ctx=args.ctx,
        chunks=args.chunks,
        threads=args.threads,
        k=TOP_K_DEFAULT,
        log_path=str(ctx.paths.log_dir / "quality.log"),
        on_run=store.add,
    )
    restore_default_sigint()
    job.start()
    try:
        wait_cancellable(job.wait, job.cancel)
    except KeyboardInterrupt:
        job.wait(10)
        print("Cancelled.", file=sys.stderr)
        return INTERRUPTED
    final = finals[-1]
    if final.get("type") != "finished":
        raise UserError(str(final.get("message") or "The quality run was cancelled."))
    run_: QualityRun = final["run"]
    if args.json:
        raw = final["raw"]
        extra = {k: raw[k] for k in ("eval_s", "text_tokens", "threads")}
        print(json.dumps({**run_.to_json(), **extra}, indent=1))
    else:
        print(format_run(run_))
    return 0
