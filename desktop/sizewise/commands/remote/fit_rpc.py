"""``sizewise fit MODEL --rpc-hosts "a=24GiB,b=16GiB"``: will the model fit a group of machines joined by
llama.cpp's RPC backend, and what each one holds (core.fit.rpc).

The hosts are the rpc-servers in ``--rpc`` order with the memory each may give; the machine running this command is
the one that would run llama-server (it keeps the token embeddings and the output buffer), judged against this
machine's RAM, a ``--target``'s, or ``--ram-gib``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sizewise.commands import CliContext
from sizewise.core.errors import UserError
from sizewise.core.fit.hardware import format_bytes
from sizewise.core.fit.rpc.hosts import RPC_WARNING, parse_rpc_hosts
from sizewise.core.fit.rpc.probe import RpcProbeError, read_free_memory
from sizewise.core.fit.rpc.split import RpcSplit, predict_rpc_split
from sizewise.core.fit.targets import find_target
from sizewise.core.gguf.header import GGUFHeader, ModelInfo
from sizewise.core.report.fit_report import (
    build_report,
    model_entry,
    model_summary,
    report_format,
    settings_summary,
    write_report,
)
from sizewise.core.sampling import LoadParams

PROBE_TIMEOUT_S = 3.0
RPC_HOSTS_HELP = (
    "predict the split over these rpc-servers, in --rpc order: NAME=SIZE,… (a=24GiB,b=16GiB); a HOST:PORT without "
    "a size is asked for the memory it reports. " + RPC_WARNING
)


def server_memory(endpoint: str) -> int:
    """What the rpc-server at ``host:port`` reports free (3 s at most), for a host given without a size."""
    try:
        free, _ = read_free_memory(endpoint, timeout=PROBE_TIMEOUT_S)
    except (RpcProbeError, ValueError) as exc:
        raise ValueError(f"could not read {endpoint}'s memory ({exc}): give it as {endpoint}=SIZE.") from exc
    if free <= 0:
        raise ValueError(f"{endpoint} reports no free memory: give it as {endpoint}=SIZE.")
    return free


def local_budget(args: argparse.Namespace, ctx: CliContext) -> tuple[int, str]:
    """(RAM bytes, where the figure comes from) of the machine that runs llama-server."""
    if args.target:
        budget = find_target(args.target).budget()
        return budget.ram_bytes, budget.source
    if args.ram_gib is not None:
        return int(args.ram_gib * (1 << 30)), f"--ram-gib {args.ram_gib:g}"
    from sizewise.commands.hardware import probe

    report, _ = probe(ctx, use_engine=False)  # the split needs no backend facts: the devices are the rpc-servers
    return int(report.ram_budget.value or 0), f"this machine: RAM from {report.ram_budget.source}"


def run_rpc(
    args: argparse.Namespace,
    ctx: CliContext,
    header: GGUFHeader,
    info: ModelInfo,
    how: dict[str, Any],
    params: LoadParams,
    gpu: int | str,
) -> int:
    if args.report:
        report_format(args.report)  # a wrong suffix fails before anything else
    try:
        hosts = parse_rpc_hosts(args.rpc_hosts, read_memory=server_memory)
    except ValueError as exc:
        raise UserError(f"--rpc-hosts: {exc}") from exc
    ram, source = local_budget(args, ctx)
    rpc_params = LoadParams(**{**params.__dict__, "n_gpu_layers": -1 if gpu == "auto" else params.n_gpu_layers})
    try:
        split = predict_rpc_split(header, rpc_params, hosts, local_budget_bytes=ram or None)
    except ValueError as exc:
        raise UserError(f"Sizewise cannot size this model: {exc}") from exc
    if args.report:
        entry = model_entry(info=info, settings=settings_summary(params, gpu), fit=None, rpc_split=split.to_dict())
        report = build_report(
            kind="fit",
            entries=[entry],
            hardware=None,
            llama_cpp=None,
            settings=settings_summary(params, gpu),
            notes=[f"The local host runs llama-server; its memory is {source}."],
        )
        write_report(report, args.report)
        print(f"Report written to {args.report}", file=sys.stderr)
    if args.json:
        body = split.to_dict()
        out = {
            "model": {**model_summary(info), "read": how},
            "settings": settings_summary(params, gpu),
            "hosts": body.pop("hosts"),
            "verdict": body.pop("verdict"),
            "rpc": {**body, "local_budget_source": source},
        }
        print(json.dumps(out, indent=2))
    else:
        print_split(info, params, split, source)
    return 0


def print_split(info: ModelInfo, params: LoadParams, split: RpcSplit, source: str) -> None:
    w = sys.stdout.write
    w(f"{info.name}: {info.architecture}, {info.parameters_label} parameters, {info.quantization}, ")
    w(f"{format_bytes(info.file_bytes)} file\n")
    w(
        f"Settings: context {params.n_ctx}, batch {params.n_batch}/{params.n_ubatch}, KV {params.kv_type}, "
        f"flash attention {'on' if params.flash_attn else 'off'}, {split.gpu_layers} of {split.n_layers + 1} layers "
        f"on the rpc-servers{' (pipeline parallel)' if split.pipeline_parallel else ''}\n"
    )
    w(f"Predicted split over {len(split.hosts) - 1} rpc-server(s) (confidence: {split.confidence}):\n")
    for line in split_table(split):
        w(f"  {line}\n")
    w(f"The local host runs llama-server; its memory is {source}.\n")
    w(f"Verdict: {split.verdict} — {split.words()}\n")
    w(
        "llama.cpp shares layers by the free memory each rpc-server reports; to get this split whatever they report, "
        f"start llama-server with --tensor-split {split.tensor_split}.\n"
    )
    w(f"note: {split.confidence_reason}.\n")
    w(f"note: {RPC_WARNING}\n")


def split_table(split: RpcSplit) -> list[str]:
    """The per-host table as text rows (the CLI prints it; reports reuse it)."""
    rows = [("host", "layers", "weights", "KV", "compute", "output", "total", "memory", "verdict")]
    for h in split.hosts:
        rows.append(
            (
                h.name,
                h.layers_label,
                format_bytes(h.weights_bytes),
                format_bytes(h.kv_bytes),
                format_bytes(h.compute_bytes),
                format_bytes(h.output_bytes),
                format_bytes(h.total_bytes),
                format_bytes(h.budget_bytes),
                h.verdict,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows
    ]
