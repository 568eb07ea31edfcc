"""Parse llama.cpp's load log into the buffer sizes it really allocated.

llama.cpp states every allocation it makes while loading, e.g.
``load_tensors:   CPU_Mapped model buffer size =    92.10 MiB`` or
``llama_context:      CUDA0 compute buffer size =   99.38 MiB``. These lines are the ground truth
for "measured memory" per component and per device; the parser keeps them as bytes.

An RPC device's buffers name the server they live on, e.g. ``RPC0[10.0.0.5:50052] KV buffer size = 36.00 MiB``:
llama.cpp's RPC buffer type is called ``RPC0[endpoint]`` for every server (device 0 of each), so the endpoint in
brackets is what tells two servers apart, and it is kept in the device name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_BUFFER_RE = re.compile(
    r"(?P<device>[A-Za-z0-9_]+(?:\[[^\]\s]+\])?)\s+(?P<kind>model|KV|compute|output|RS|K|V)\s+buffer size\s*=\s*"
    r"(?P<size>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>MiB|KiB|GiB|B)\b"
)
_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
_COMPONENT = {
    "model": "weights",
    "KV": "kv",
    "K": "kv",
    "V": "kv",
    "RS": "kv",
    "compute": "compute",
    "output": "output",
}
COMPONENTS = ("weights", "kv", "compute", "output")


@dataclass(frozen=True)
class BufferLine:
    device: str  # as llama.cpp names it: CPU, CPU_Mapped, CPU_REPACK, CUDA0, Metal, Vulkan0 …
    component: str  # weights | kv | compute | output
    bytes: int
    # The log's own word (model, KV, K, V, RS, compute, output): a hybrid's recurrent state ("RS") counts with the
    # KV cache as a component, and this keeps it apart for the checks that size it on its own
    kind: str = ""

    @property
    def rpc_endpoint(self) -> str | None:
        """``host:port`` of the rpc-server holding this buffer (``RPC0[host:port]``), None for a local device."""
        if self.device.startswith("RPC") and self.device.endswith("]") and "[" in self.device:
            return self.device[self.device.index("[") + 1 : -1]
        return None

    @property
    def on_gpu(self) -> bool:
        """In device memory. ``CUDA_Host``/``Vulkan_Host`` buffers are pinned host memory, i.e. RAM, that the GPU
        backend allocates for its copies (on a Vulkan build: a 4 MiB compute buffer beside Vulkan0's)."""
        name = self.device.upper()
        return not name.startswith("CPU") and not name.endswith("_HOST")


def parse_buffer_line(line: str) -> BufferLine | None:
    m = _BUFFER_RE.search(line)
    if not m:
        return None
    # MiB figures are printed with two decimals: round to the nearest byte of that precision.
    size = round(float(m["size"]) * _UNITS[m["unit"]])
    return BufferLine(device=m["device"], component=_COMPONENT[m["kind"]], bytes=size, kind=m["kind"])


@dataclass
class MeasuredBuffers:
    lines: list[BufferLine] = field(default_factory=list)

    def add_log_text(self, text: str) -> None:
        for raw in text.splitlines():
            parsed = parse_buffer_line(raw)
            if parsed is not None:
                self.lines.append(parsed)

    def total(self, component: str | None = None, *, gpu: bool | None = None) -> int:
        return sum(
            b.bytes
            for b in self.lines
            if (component is None or b.component == component) and (gpu is None or b.on_gpu == gpu)
        )

    def recurrent(self) -> int:
        """The recurrent state's bytes (llama.cpp's "RS buffer" lines), part of the ``kv`` component."""
        return sum(b.bytes for b in self.lines if b.kind == "RS")

    def by_component(self) -> dict[str, int]:
        return {c: self.total(c) for c in COMPONENTS}

    def by_device(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for b in self.lines:
            out.setdefault(b.device, {}).setdefault(b.component, 0)
            out[b.device][b.component] += b.bytes
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            **{f"{c}_bytes": v for c, v in self.by_component().items()},
            "ram_bytes": self.total(gpu=False),
            "vram_bytes": self.total(gpu=True),
            "total_bytes": self.total(),
            "devices": self.by_device(),
        }

    @classmethod
    def from_lines(cls, lines: list[dict[str, object]]) -> MeasuredBuffers:
        return cls(
            [
                BufferLine(str(d["device"]), str(d["component"]), int(str(d["bytes"])), str(d.get("kind", "")))
                for d in lines
            ]
        )
