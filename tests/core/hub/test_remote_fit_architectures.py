"""Remote fit for every architecture the memory model measures (issue 15 point 5): a file on the Hub gets the
same prediction from its header, read by HTTP ranges, as the same file on disk, and only the header crosses
the wire (at most 2 % of the file).

The files are the memory-model tests' synthetic shapes (tests/core/fit/test_memory_model_dense.py and _moe.py),
written with zero weights (quick; weights do not enter a prediction) and SmolLM2's real 49 152-token vocabulary,
so the header weighs what a real model's does (the token list and merges: 1.8 MB of SmolLM2's 98 MB file, of
which the reader fetches ~1.6 MB), and twelve layers, so the files are the size of the smallest real models.
Each file is served by the local Hub stand-in, which counts the bytes it sends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from sizewise.core.fit.memory_model import Backend, predict
from sizewise.core.fit.verdict import Budget, check_fit
from sizewise.core.gguf.header import read_header
from sizewise.core.hub.remote_header import HEADER_BUDGET_FRACTION, read_remote_header
from sizewise.core.quant.shapes import HyperParams
from sizewise.core.sampling import LoadParams
from sizewise.core.speed.synthetic import read_tokenizer
from tests.core.fit.test_memory_model_dense import DENSE, N_VOCAB, SLIDING_WINDOW
from tests.core.fit.test_memory_model_hybrid import HYBRID
from tests.core.fit.test_memory_model_mla import LITE
from tests.core.fit.test_memory_model_moe import MEASURED_ARCHES, MODELS
from tests.hub_server import HubFile, HubRepo, HubServer
from tests.quant_models import write_model

# The MoE tests' shapes with the real vocabulary (theirs is 1 000 tokens: a 3 MB file, most of it header) and
# 512 wide; the same experts and heads.
MOE = {arch: replace(MODELS[arch], n_vocab=N_VOCAB, n_embd=512) for arch in MEASURED_ARCHES}
_SHAPES: dict[str, HyperParams] = {
    "llama": HyperParams("llama", 3, 512, 2048, 8, 2, N_VOCAB),
    "gemma3": HyperParams("gemma3", 6, 512, 2048, 4, 1, N_VOCAB, head_dim=128),
    **DENSE,
    **MOE,
    # the hybrids' and MLA's test shapes (tests/core/fit/test_memory_model_hybrid.py, _mla.py), the real vocabulary
    **{arch: replace(hp, n_vocab=N_VOCAB) for arch, hp in HYBRID.items()},
    "deepseek2": replace(LITE, n_vocab=N_VOCAB),
}
# Twelve layers: every file 90-140 MB, the size of the smallest real models (SmolLM2-135M at Q4_1: 98 MB).
ARCHES = {arch: replace(hp, n_layer=12) for arch, hp in _SHAPES.items()}
GEMMA3_WINDOW = 512
PARAMS = (LoadParams(n_ctx=4096), LoadParams(n_ctx=32768, kv_type="q8_0", flash_attn=True))


@pytest.fixture(scope="module")
def arch_files(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    tmp = tmp_path_factory.mktemp("remote-arches")
    tokenizer = read_tokenizer(smollm2_path)
    window = {**SLIDING_WINDOW, "gemma3": GEMMA3_WINDOW}
    yield {
        arch: write_model(
            tmp / f"{arch}-F16.gguf",
            hp,
            zeros=True,
            sparse=True,
            tokenizer=tokenizer,
            sliding_window=window.get(arch, 0),
        )
        for arch, hp in ARCHES.items()
    }


def test_every_measured_architecture_is_covered() -> None:
    """A new measured architecture must join this test (the memory model's own list is the reference)."""
    from sizewise.core.fit.memory_model import _KNOWN_GRAPHS

    assert set(_KNOWN_GRAPHS) <= set(ARCHES), sorted(set(_KNOWN_GRAPHS) - set(ARCHES))


@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_a_hub_file_of_each_architecture_fits_as_the_same_file_on_disk(
    arch: str, arch_files: dict[str, Path], hub_server: HubServer
) -> None:
    path = arch_files[arch]
    repo = f"synthetic/{arch}-GGUF"
    hub_server.add_repo(HubRepo(repo).add(HubFile(path.name, path)))
    local = read_header(path)
    hub_server.reset_stats()
    remote = read_remote_header(repo, path.name)

    size = path.stat().st_size
    sent = max(hub_server.served(path.name), remote.bytes_fetched)
    print(f"{arch}: {sent:,} of {size:,} bytes read ({100 * sent / size:.2f} %)")
    assert 0 < sent <= HEADER_BUDGET_FRACTION * size, f"{arch}: {sent:,} of {size:,} bytes"
    assert remote.header.architecture == arch
    assert remote.header.tensors == local.tensors and remote.header.metadata == local.metadata

    backend = Backend(repack=True, cpu_features=frozenset({"AVX2", "AVX512"}))
    budget = Budget(16 << 30, 0, "test", backend)
    for params in PARAMS:
        want, got = predict(local, params, backend), predict(remote.header, params, backend)
        assert got.to_dict() == want.to_dict(), (arch, params)
        assert got.confidence == "measured", (arch, got.confidence_reason)
        fit_local = check_fit(local, params, budget)
        fit_remote = check_fit(remote.header, params, budget)
        assert (fit_remote.verdict, fit_remote.max_ctx) == (fit_local.verdict, fit_local.max_ctx)
