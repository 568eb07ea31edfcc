"""What the running llama.cpp build is: its backends and their compiled features, from the engine's ready message.

``llama_print_system_info()`` lists every registered ggml backend that reports features, GPU
backends first, e.g. ``CUDA : ARCHS = 890 | USE_GRAPHS = 1 | CPU : SSE3 = 1 | AVX2 = 1 | `` or, on a
Mac, ``MTL : EMBED_LIBRARY = 1 | CPU : NEON = 1 | …``. Some backends report none (Vulkan and BLAS in
llama.cpp as vendored by llama-cpp-python 0.3.36), so they do not
appear there even though ``llama_supports_gpu_offload()`` is true: ``describe_backends`` says so
instead of pretending the build is CPU-only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_BACKEND_START = re.compile(r"^\s*([A-Za-z0-9_ .-]+?)\s+:\s+(.*)$")
# ggml's registry names that are not what people call the backend.
DISPLAY_NAMES = {"MTL": "Metal"}


@dataclass(frozen=True)
class BackendFeatures:
    name: str
    features: dict[str, str] = field(default_factory=dict)

    @property
    def enabled(self) -> list[str]:
        """Feature names switched on (value 1), e.g. ``["AVX2", "FMA"]``."""
        return [k for k, v in self.features.items() if v == "1"]


def parse_system_info(system_info: str) -> list[BackendFeatures]:
    """Backends in the order llama.cpp registered them, each with its ``NAME = value`` features."""
    backends: list[BackendFeatures] = []
    for raw in system_info.split("|"):
        token = raw.strip()
        if not token:
            continue
        start = _BACKEND_START.match(token)
        if start and "=" not in start.group(1):
            backends.append(BackendFeatures(start.group(1).strip()))
            token = start.group(2).strip()
        if not backends or "=" not in token:
            continue
        key, _, value = token.partition("=")
        backends[-1].features[key.strip()] = value.strip()
    return backends


def describe_backends(ready: dict[str, Any]) -> str:
    """One line for people: ``CUDA (ARCHS 890) + CPU (AVX2, AVX512, …)``, or why it is unknown."""
    if not ready:
        return "not known yet (the engine has not started)"
    backends = parse_system_info(str(ready.get("system_info", "")))
    parts = []
    for b in backends:
        if b.name == "CPU":
            parts.append(f"CPU ({', '.join(b.enabled) or 'baseline'})")
        else:
            name = DISPLAY_NAMES.get(b.name, b.name)
            extra = ", ".join(f"{k} {v}" if v != "1" else k for k, v in b.features.items())
            parts.append(f"{name} ({extra})" if extra else name)
    has_gpu_listed = any(b.name != "CPU" and b.name != "BLAS" for b in backends)
    if ready.get("gpu_offload") and not has_gpu_listed:
        parts.insert(0, "a GPU backend that lists no features (e.g. Vulkan)")
    return " + ".join(parts) if parts else "unknown (llama_print_system_info() was empty)"
