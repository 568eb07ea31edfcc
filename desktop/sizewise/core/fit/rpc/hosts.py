"""The ``--rpc-hosts`` list: ``a=24GiB,b=16GiB`` — each rpc-server's name (or ``host:port``) and its memory.

The order matters: llama.cpp gives the first server in ``--rpc`` the first layers, so the hosts are kept in the
order given. Every error is one sentence naming the entry that is wrong, because the list is typed by hand.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_UNITS = {
    "b": 1,
    "kib": 1 << 10,
    "kb": 1000,
    "mib": 1 << 20,
    "mb": 1000**2,
    "m": 1 << 20,
    "gib": 1 << 30,
    "gb": 1000**3,
    "g": 1 << 30,
    "tib": 1 << 40,
    "tb": 1000**4,
    "t": 1 << 40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$")
_NAME = re.compile(r"^[A-Za-z0-9_.:\-\[\]]+$")
# What upstream says about rpc-server, wherever Sizewise offers an RPC split (llama.cpp tools/rpc/README.md: "Never run
# the RPC server on an open network or in a sensitive environment!").
RPC_WARNING = (
    "rpc-server has no authentication and its traffic is not encrypted: run it only on a trusted network, "
    "never on an open one (llama.cpp's own advice)."
)
MAX_HOSTS = 64  # far above any real split; a pasted file must not make a thousand-row table


@dataclass(frozen=True)
class RpcHost:
    """One rpc-server of the group: a name (a label, or its ``host:port``) and the memory llama.cpp may use."""

    name: str
    memory_bytes: int


def parse_size(text: str, name: str) -> int:
    """``24GiB``, ``16 GB``, ``512MiB``, ``1.5T`` as bytes (G, M and T are binary units, as llama.cpp reports)."""
    m = _SIZE.match(text)
    unit = _UNITS.get(m.group(2).lower()) if m else None
    if m is None or unit is None:
        raise ValueError(f"'{text.strip()}' is not a memory size (host {name}): write it like 24GiB or 512MiB.")
    size = int(float(m.group(1)) * unit)
    if size <= 0:
        raise ValueError(f"host {name} has no memory ({text.strip()}): give it more than 0 bytes.")
    return size


def parse_rpc_hosts(text: str, read_memory: Callable[[str], int] | None = None) -> list[RpcHost]:
    """``name=SIZE`` entries separated by commas, in llama.cpp's ``--rpc`` order. Raises ValueError (one sentence).

    With ``read_memory``, an entry that is only ``host:port`` gets the memory that function reads from the server
    (``probe.read_free_memory``: the figure llama.cpp splits by); it raises ValueError when it cannot."""
    entries = [e.strip() for e in text.split(",")]
    if not text.strip() or any(not e for e in entries):
        raise ValueError(f"'{text}' has an empty entry: write the hosts like a=24GiB,b=16GiB.")
    if len(entries) > MAX_HOSTS:
        raise ValueError(f"{len(entries)} hosts is more than the {MAX_HOSTS} Sizewise sizes in one split.")
    hosts: list[RpcHost] = []
    for entry in entries:
        name, sep, size = entry.rpartition("=")
        name = name.strip()
        if not sep and read_memory is not None and ":" in entry:
            if any(h.name == entry for h in hosts):
                raise ValueError(f"host {entry} is listed twice: give each rpc-server once.")
            hosts.append(RpcHost(entry, read_memory(entry)))
            continue
        if not sep or not name:
            raise ValueError(f"'{entry}' gives no memory size: write it as NAME=SIZE, such as {entry or 'a'}=24GiB.")
        if not _NAME.match(name):
            raise ValueError(f"'{name}' is not a host name: use letters, digits, '.', '-', '_' or host:port.")
        if any(h.name == name for h in hosts):
            raise ValueError(f"host {name} is listed twice: give each rpc-server once.")
        hosts.append(RpcHost(name, parse_size(size, name)))
    return hosts
