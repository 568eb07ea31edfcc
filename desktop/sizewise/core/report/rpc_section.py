"""The report's "Split across machines" section: a model entry's ``rpc_split`` (core.fit.rpc's prediction, as
``RpcSplit.to_dict`` writes it) as a per-host table for Markdown and HTML, with the group verdict and upstream's
warning about rpc-server. Only predictions: the split's bytes were never measured in the run that made the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sizewise.core.fit.rpc.hosts import RPC_WARNING

HEAD = ["Host", "Layers", "Weights", "KV", "Compute", "Output", "Total", "Memory", "Verdict"]


def _mib(n: Any) -> str:
    return "–" if n is None else f"{n / 2**20:,.1f} MiB"


def _layers(h: Mapping[str, Any]) -> str:
    lo, hi = (h.get("layers") or [0, 0])[:2]
    text = "none" if hi <= lo else (str(lo) if hi - lo == 1 else f"{lo}-{hi - 1}")
    return text + (" + output" if h.get("output_layer") else "")


def rows(split: Mapping[str, Any]) -> list[list[str]]:
    return [
        [
            str(h.get("name")),
            _layers(h),
            *(_mib(h.get(k)) for k in ("weights_bytes", "kv_bytes", "compute_bytes", "output_bytes", "total_bytes")),
            _mib(h.get("budget_bytes")),
            str(h.get("verdict")),
        ]
        for h in split.get("hosts") or []
    ]


def sentences(split: Mapping[str, Any]) -> list[str]:
    """The group verdict, how to get the split, the confidence and the warning, one sentence each."""
    return [
        f"Group verdict: {split.get('verdict')} — {split.get('words')}",
        f"To get this split whatever the rpc-servers report, start llama-server with --tensor-split "
        f"{split.get('tensor_split')}.",
        f"Confidence: {split.get('confidence')} — {split.get('confidence_reason')}.",
        RPC_WARNING,
    ]


def split_of(entry: Mapping[str, Any]) -> Mapping[str, Any] | None:
    split = entry.get("rpc_split")
    return split if isinstance(split, Mapping) else None
