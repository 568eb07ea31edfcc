"""The curated model catalogue (resources/catalogue.json, core/hub/catalogue.py): the shipped file loads (fast),
its figures agree with the real headers of the two test models, every bad entry fails with one sentence naming
the entry and the field, and the estimate stays close to (and above) the header-based prediction. The figures of
each family against the published parameter counts: tests/core/hub/test_catalogue_counts.py."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest

from sizewise.core.errors import UserError
from sizewise.core.fit.memory_model import Backend, predict
from sizewise.core.fit.verdict import Budget
from sizewise.core.gguf.header import parameter_count, read_header, vocab_size
from sizewise.core.hub.catalogue import (
    Family,
    estimate_fit,
    estimate_memory,
    load_catalogue,
    parse_catalogue,
    rough_q4_k_m_bytes,
)
from sizewise.core.sampling import LoadParams

MiB = 1 << 20
GiB = 1 << 30
GOOD: dict[str, Any] = {
    "name": "Tiny Test 1M",
    "repo_id": "someone/Tiny-Test-GGUF",
    "license": "mit",
    "source": "https://example.org/tiny/config.json",
    "arch": "llama",
    "params": 310_336,  # what the figures below give (core/arch/params.py)
    "n_layer": 4,
    "n_embd": 64,
    "n_ff": 256,
    "n_head": 4,
    "n_head_kv": 2,
    "head_dim": 16,
    "n_vocab": 1000,
    "context_length": 2048,
    "tied_embeddings": True,
    "q4_k_m": {"bytes": 2_000_000, "approx": True},
}
MOE: dict[str, Any] = dict(
    GOOD,
    arch="qwen3moe",
    n_layer=2,
    tied_embeddings=False,
    n_expert=8,
    n_expert_used=2,
    n_ff_exp=32,
    params=252_288,
    active_params=178_560,
)


def _family(name: str) -> Family:
    return next(f for f in load_catalogue() if f.name == name)


def test_the_shipped_catalogue_spans_the_ladder() -> None:
    """Rows from 0.1B to 72B and mixtures of experts, each with the config its figures come from."""
    families = load_catalogue()
    assert len(families) >= 30
    assert len({f.repo_id for f in families}) == len(families)
    assert all(f.repo_id.lower().endswith("-gguf") for f in families)
    assert min(f.params for f in families) < 0.2e9 and max(f.params for f in families) > 70e9
    assert {f.arch for f in families if f.is_moe} == {"qwen3moe", "gpt-oss", "olmoe"}
    assert all(f.active_params is not None and f.active_params < f.params / 4 for f in families if f.is_moe)
    assert all(f.active_params is None for f in families if not f.is_moe)
    assert all(f.source.startswith("https://huggingface.co/") and f.source.endswith("/config.json") for f in families)
    names = " ".join(f.name for f in families)
    for family in (
        "SmolLM2",
        "Qwen2.5",
        "Qwen3",
        "Llama 3.1",
        "Llama 3.2",
        "Llama 3.3",
        "Gemma 3",
        "Mistral",
        "Phi-3.5",
        "Phi-4",
        "gpt-oss",
        "OLMoE",
    ):
        assert family in names
    # a rough Q4_K_M size stands in where the catalogue has none, and says so
    assert any(f.file_estimated for f in families) and all(f.file_approx for f in families if f.file_estimated)


def test_the_whole_catalogue_loads_in_well_under_50_ms() -> None:
    """Checked at start-up on the GUI thread: it must not be felt."""
    load_catalogue()  # imports and the file cache, once
    best = min(_timed(load_catalogue) for _ in range(5))
    assert best < 0.025, f"{best * 1000:.1f} ms"


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@pytest.mark.parametrize("name", ["SmolLM2 135M Instruct", "Gemma 3 270M Instruct"])
def test_catalogue_figures_match_the_real_header(name: str, smollm2_path: Path, gemma_path: Path) -> None:
    """The catalogue's hand-copied figures, checked against the GGUF header of the same architecture."""
    family = _family(name)
    header = read_header(smollm2_path if name.startswith("SmolLM2") else gemma_path)
    n_head = int(header.arch_key("attention.head_count"))
    head_dim = int(header.arch_key("attention.key_length", 0) or header.arch_key("embedding_length") // n_head)
    assert (family.n_layer, family.n_embd, family.n_head, family.n_head_kv, family.head_dim) == (
        header.arch_key("block_count"),
        header.arch_key("embedding_length"),
        n_head,
        header.arch_key("attention.head_count_kv"),
        head_dim,
    )
    assert (family.n_vocab, family.context_length) == (vocab_size(header), header.arch_key("context_length"))
    assert family.n_ff == header.arch_key("feed_forward_length")
    assert family.tied_embeddings == all(t.name != "output.weight" for t in header.tensors)
    assert family.swa_window == (header.arch_key("attention.sliding_window", 0) or 0)
    assert family.params == parameter_count(header)


@pytest.mark.parametrize("name", ["SmolLM2 135M Instruct", "Gemma 3 270M Instruct"])
@pytest.mark.parametrize("n_ctx", [512, 2048, 8192])
def test_estimate_is_within_5_percent_above_the_header_prediction(
    name: str, n_ctx: int, smollm2_path: Path, gemma_path: Path
) -> None:
    path = smollm2_path if name.startswith("SmolLM2") else gemma_path
    load = LoadParams(n_ctx=n_ctx)
    predicted = predict(read_header(path), load).ram_bytes
    estimate = estimate_memory(_family(name), load, file_bytes=path.stat().st_size)
    assert predicted <= estimate.total_bytes <= 1.05 * predicted


def test_kv_cache_follows_the_formula() -> None:
    llama = _family("Llama 3.2 1B Instruct")
    est = estimate_memory(llama, LoadParams(n_ctx=2048))
    assert est.kv_bytes == 16 * 8 * 64 * 2 * 2 * 2048 == 64 * MiB
    assert estimate_memory(llama, LoadParams(n_ctx=2000)).kv_bytes == est.kv_bytes  # padded to 256 cells
    assert est.weights_bytes == llama.file_bytes and est.n_ctx == 2048
    assert "Q4_K_M" in est.breakdown() and "2,048 tokens" in est.breakdown()


def _cpu(ram_gib: float) -> Budget:
    return Budget(int(ram_gib * GiB), 0, "test", Backend(gpu=False))


def test_estimated_verdicts_use_the_browser_words_and_say_estimate() -> None:
    phi = _family("Phi-3.5 mini Instruct")
    need = estimate_memory(phi).total_bytes
    assert estimate_fit(phi, _cpu(64)).verdict == "fits"
    tight = estimate_fit(phi, Budget(int(need * 1.1), 0, "test", Backend(gpu=False)))
    assert tight.verdict == "tight" and tight.needed_bytes is not None and tight.needed_bytes > need  # margin
    too_big = estimate_fit(phi, _cpu(2))
    assert too_big.verdict == "too big"
    assert too_big.reason.startswith("Estimate from the catalogue at 2,048 tokens of context")
    assert "but 2.00 GiB are available" in too_big.reason
    gpu = estimate_fit(phi, Budget(4 * GiB, 24 * GiB, "test", Backend(gpu=True)))
    assert gpu.verdict == "fits" and "fits on the GPU" in gpu.reason and gpu.available_bytes == 24 * GiB
    small_gpu = estimate_fit(phi, Budget(16 * GiB, 1 * GiB, "test", Backend(gpu=True)))
    assert small_gpu.verdict == "fits" and "of RAM" in small_gpu.reason  # falls back to the CPU


def _bad(change: dict[str, Any], drop: str = "", base: dict[str, Any] = GOOD) -> dict[str, Any]:
    entry = copy.deepcopy(base)
    entry.update(change)
    entry.pop(drop, None)
    return {"families": [entry]}


def _moe(change: dict[str, Any], drop: str = "") -> dict[str, Any]:
    return _bad(change, drop, MOE)


def _swa(change: dict[str, Any], drop: str = "") -> dict[str, Any]:
    """A gpt-oss-like entry: a mixture of experts whose layers alternate sliding and full attention."""
    gpt = dict(MOE, arch="gpt-oss", swa_window=128, swa_pattern=2, params=254_680, active_params=179_416)
    return _bad(change, drop, gpt)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_bad({}, drop="n_layer"), "has no n_layer."),
        (_bad({"n_layer": 0}), "has an invalid n_layer (0): it must be a whole number above 0."),
        (_bad({"n_embd": "64"}), "has an invalid n_embd ('64')"),
        (_bad({"head_dim": True}), "has an invalid head_dim (True)"),
        (_bad({"context_length": 2048.5}), "has an invalid context_length (2048.5)"),
        (_bad({}, drop="repo_id"), "has no repo_id."),
        (_bad({"repo_id": "Tiny-Test-GGUF"}), "it must look like owner/name."),
        (_bad({"license": ""}), "has an invalid license ('')"),
        (_bad({"q4_k_m": {"bytes": -5}}), "has an invalid q4_k_m"),
        (_bad({"q4_k_m": {"bytes": 5, "approx": "yes"}}), "has an invalid q4_k_m"),
        (_bad({"q4_k_m": 2_000_000}), "has an invalid q4_k_m"),
        (_bad({"n_layers": 4}), "has an unknown field 'n_layers'"),
        (_bad({"n_head": 5}), "has n_head 5, which is not a multiple of n_head_kv 2."),
        (_bad({}, drop="source"), "has no source."),
        (_bad({"source": "huggingface.co/x"}), "has an invalid source ('huggingface.co/x'): it must be the https://"),
        (_bad({}, drop="arch"), "has no arch (llama.cpp's architecture name"),
        (_bad({"arch": "LlamaForCausalLM"}), "has an unknown arch ('LlamaForCausalLM'): it must be one of gemma2,"),
        (_bad({}, drop="n_ff"), "has no n_ff."),
        (_bad({"n_ff": 0}), "has an invalid n_ff (0): it must be a whole number above 0."),
        (_bad({}, drop="tied_embeddings"), "has no tied_embeddings (true when the output matrix"),
        (_bad({"tied_embeddings": "yes"}), "has an invalid tied_embeddings ('yes'): it must be true or false."),
        (_bad({"n_expert": 8}), "has n_expert, but arch llama is not a mixture of experts."),
        (_bad({"n_ff_shexp": 64}), "has n_ff_shexp, but arch llama is not a mixture of experts."),
        (_bad({"active_params": 1000}), "has active_params, but arch llama is not a mixture of experts."),
        (_bad({"swa_window": 512, "swa_pattern": 6}), "has swa_window, but arch llama has no sliding-window layers"),
        (_bad({"params": 400_000}), "has params 400,000, but its hyper-parameters give 310,336: one of the"),
        (_bad({"n_ff": 300}), "has params 310,336, but its hyper-parameters give 344,128"),
        (_bad({"tied_embeddings": False}), "has params 310,336, but its hyper-parameters give 374,336"),
        (_moe({}, drop="n_expert"), "has no n_expert (arch qwen3moe is a mixture of experts)."),
        (_moe({}, drop="n_ff_exp"), "has no n_ff_exp (arch qwen3moe is a mixture of experts)."),
        (_moe({"n_expert_used": 0}), "has an invalid n_expert_used (0): it must be a whole number above 0."),
        (_moe({"n_expert_used": 9}), "has n_expert_used 9, more than its n_expert 8."),
        (_moe({"n_ff_shexp": -1}), "has an invalid n_ff_shexp (-1): it must be a whole number above 0."),
        (_moe({}, drop="active_params"), "has no active_params."),
        (_moe({"active_params": 252_288}), "has active_params 252,288, but its hyper-parameters give 178,560"),
        (_moe({"active_params": "3B"}), "has an invalid active_params ('3B')"),
        (_swa({}, drop="swa_pattern"), "has swa_window but no swa_pattern (give both or neither)."),
        (_swa({}, drop="swa_window"), "has swa_pattern but no swa_window (give both or neither)."),
        (_swa({"swa_window": 0}), "has an invalid swa_window (0): it must be a whole number above 0."),
        (_swa({"swa_pattern": 1}), "has an invalid swa_pattern (1): it must be 2 or more"),
    ],
)
def test_each_bad_field_fails_with_one_sentence_naming_the_entry(data: dict[str, Any], words: str) -> None:
    with pytest.raises(UserError) as err:
        parse_catalogue(data, "catalogue.json")
    text = str(err.value)
    assert text.startswith("The model catalogue entry “Tiny Test 1M” in catalogue.json ")
    assert words in text and text.endswith(".") and "\n" not in text


def test_entries_without_a_name_are_named_by_number_and_repeats_are_refused() -> None:
    second = dict(GOOD, name=" ")
    with pytest.raises(UserError, match=r"^Entry 2 of the model catalogue catalogue.json has no name\.$"):
        parse_catalogue({"families": [GOOD, second]})
    with pytest.raises(UserError, match=r"“Other” in catalogue\.json repeats the repo_id someone/Tiny-Test-GGUF of an"):
        parse_catalogue({"families": [GOOD, dict(GOOD, name="Other")]})
    with pytest.raises(
        UserError, match=r"“Tiny Test 1M” in catalogue\.json repeats the name Tiny Test 1M of an earlier"
    ):
        parse_catalogue({"families": [GOOD, dict(GOOD, repo_id="other/Tiny-GGUF")]})
    with pytest.raises(UserError, match="must hold an object with a 'families' list"):
        parse_catalogue([GOOD])
    assert parse_catalogue({"families": [GOOD]})[0].file_approx is True


def test_good_entries_load_with_their_optional_fields() -> None:
    """The MoE and sliding-window fields arrive on the family; a missing Q4_K_M size becomes a rough one."""
    moe = parse_catalogue({"families": [MOE]})[0]
    assert (moe.is_moe, moe.n_expert, moe.n_expert_used, moe.n_ff_exp, moe.active_params) == (True, 8, 2, 32, 178_560)
    assert (moe.swa_window, moe.n_swa_layers, moe.file_estimated) == (0, 0, False)
    gpt = parse_catalogue(_swa({}))[0]
    assert (gpt.swa_window, gpt.swa_pattern, gpt.n_swa_layers) == (128, 2, 1)
    nulls = parse_catalogue({"families": [dict(GOOD, n_expert=None, swa_window=None, active_params=None)]})[0]
    assert (nulls.is_moe, nulls.swa_window, nulls.active_params) == (False, 0, None)  # null means absent
    sizeless = {k: v for k, v in GOOD.items() if k != "q4_k_m"}
    rough = parse_catalogue({"families": [sizeless]})[0]
    assert rough.file_estimated and rough.file_approx
    assert rough.file_bytes == rough_q4_k_m_bytes(rough, rough.params) == round((64_000 * 6.5625 + 246_336 * 4.85) / 8)


def test_the_rough_q4_k_m_size_is_near_the_real_files() -> None:
    """Against the three shipped exact sizes the rough rule was set by: within 1.5 %."""
    for name in ("Llama 3.1 8B Instruct", "Qwen2.5 7B Instruct", "Qwen3 14B"):
        family = _family(name)
        assert not family.file_approx
        assert abs(rough_q4_k_m_bytes(family, family.params) / family.file_bytes - 1) < 0.015, name


def test_an_unreadable_file_is_one_sentence(tmp_path: Path) -> None:
    broken = tmp_path / "catalogue.json"
    broken.write_text('{"families": [', encoding="utf-8")
    with pytest.raises(UserError, match=r"^The model catalogue .*catalogue\.json could not be read \("):
        load_catalogue(broken)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"families": [GOOD]}), encoding="utf-8")
    assert [f.name for f in load_catalogue(good)] == ["Tiny Test 1M"]
