"""Each catalogue family's figures against what its publishers say: the parameter count its hyper-parameters give
(core/arch/params.py) is the stored one, and the stored one is the published total.

Exact totals are what the Hub's API reports for the checkpoint's safetensors (``safetensors.total``), which is
also ``general.parameter_count`` in a GGUF converted from it and llama.cpp's ``n_params``; each was found in more
than one independent public record (the address of one is given). Gemma 3's are for the text model as
llama.cpp converts it: the vision tower left out and the token embeddings cut to the tokenizer's 262,144 rows.
Model cards round, so their figures are compared at the card's precision.
"""

from __future__ import annotations

import dataclasses

import pytest

from sizewise.core.arch.params import count_params
from sizewise.core.hub.catalogue import Family, load_catalogue

HF_API = "https://huggingface.co/api/models/{}"  # safetensors.total

EXACT = {
    "SmolLM2 135M Instruct": 134_515_008,  # the test model's GGUF header (tests/core/hub/test_catalogue.py)
    "Gemma 3 270M Instruct": 268_098_176,  # likewise
    "Qwen2.5 7B Instruct": 7_615_616_512,  # HF_API Qwen/Qwen2.5-7B-Instruct
    "Qwen2.5 14B Instruct": 14_770_033_664,  # llama-server n_params of Qwen2.5-14B-Instruct GGUFs
    "Qwen2.5 32B Instruct": 32_763_876_352,  # HF_API Qwen/Qwen2.5-32B-Instruct; keras-hub qwen2.5_instruct_32b_en
    "Qwen2.5 72B Instruct": 72_706_203_648,  # keras-hub qwen2.5_instruct_72b_en; HF_API Qwen/Qwen2.5-72B
    "Qwen3 0.6B": 596_049_920,  # transformers num_parameters() of Qwen/Qwen3-0.6B
    "Qwen3 1.7B": 1_720_574_976,  # general.parameter_count of unsloth/Qwen3-1.7B-GGUF; keras-hub qwen3_1.7b_en
    "Qwen3 4B": 4_022_468_096,  # gguf.total of unsloth/Qwen3-4B-GGUF
    "Qwen3 8B": 8_190_735_360,  # HF_API Qwen/Qwen3-8B
    "Qwen3 14B": 14_768_307_200,  # HF_API Qwen/Qwen3-14B; keras-hub qwen3_14b_en
    "Qwen3 32B": 32_762_123_264,  # HF_API Qwen/Qwen3-32B
    "Llama 3.1 8B Instruct": 8_030_261_248,  # HF_API meta-llama/Llama-3.1-8B
    "Llama 3.3 70B Instruct": 70_553_706_496,  # HF_API meta-llama/Llama-3.3-70B-Instruct
    "Mistral 7B Instruct v0.3": 7_248_023_552,  # HF_API mistralai/Mistral-7B-Instruct-v0.3
    "Mistral Small 24B Instruct 2501": 23_572_403_200,  # llama-server n_params; keras-hub (same architecture)
    "Phi-4 mini Instruct": 3_836_021_760,  # HF_API microsoft/Phi-4-mini-instruct
    "Qwen3 30B-A3B": 30_532_122_624,  # gguf.total of unsloth/Qwen3-30B-A3B-GGUF
    "gpt-oss 20B": 20_914_757_184,  # HF_API openai/gpt-oss-20b; Ollama's general.parameter_count
    "OLMoE 1B-7B Instruct": 6_919_161_856,  # HF_API allenai/OLMoE-1B-7B-0924-Instruct; llama-bench n_params
}
GEMMA_TEXT = {  # keras-hub gemma3_{4b,12b,27b}_text presets; llama-server n_params of the GGUFs
    "Gemma 3 4B Instruct": 3_880_099_328,
    "Gemma 3 12B Instruct": 11_765_788_416,
    "Gemma 3 27B Instruct": 27_009_002_240,
}
# (total, non-embedding) in billions as the Qwen3 model cards print them (huggingface.co/Qwen/<model>).
QWEN3_CARDS = {
    "Qwen3 0.6B": (0.6, 0.44),
    "Qwen3 1.7B": (1.7, 1.4),
    "Qwen3 4B": (4.0, 3.6),
    "Qwen3 8B": (8.2, 6.95),
    "Qwen3 14B": (14.8, 13.2),
    "Qwen3 32B": (32.8, 31.2),
    "Qwen3 30B-A3B": (30.5, 29.9),
}


def _family(name: str) -> Family:
    return next(f for f in load_catalogue() if f.name == name)


def _places(figure: float) -> int:
    """Decimal places a card printed: 0.44 -> 2, 8.2 -> 1."""
    text = repr(figure)
    return len(text.split(".")[1]) if "." in text else 0


@pytest.mark.parametrize("family", load_catalogue(), ids=lambda f: f.name)
def test_stored_counts_are_the_ones_the_hyper_parameters_give(family: Family) -> None:
    """Within 0.5 % as the loader requires; in fact exact for every family shipped."""
    count = count_params(family)
    assert abs(family.params - count.total) <= 0.005 * count.total
    assert family.params == count.total
    assert family.active_params == (count.active if family.is_moe else None)


def test_every_family_with_a_published_exact_total_matches_it() -> None:
    names = {f.name for f in load_catalogue()}
    assert set(EXACT) | set(GEMMA_TEXT) <= names
    for name, published in EXACT.items():
        assert _family(name).params == published, name


@pytest.mark.parametrize(("name", "published"), GEMMA_TEXT.items())
def test_gemma_counts_match_llama_cpps_text_model(name: str, published: int) -> None:
    """The config's 262,208 embedding rows include 64 of padding that llama.cpp's converter drops."""
    family = _family(name)
    assert family.n_vocab == 262_208
    assert count_params(dataclasses.replace(family, n_vocab=262_144)).total == published
    assert family.params - published == 64 * family.n_embd


@pytest.mark.parametrize(("name", "card"), QWEN3_CARDS.items())
def test_qwen3_counts_round_to_the_model_cards(name: str, card: tuple[float, float]) -> None:
    """Qwen's "non-embedding" count leaves out the token embeddings and, when untied, the output matrix too."""
    family = _family(name)
    total, non_embedding = card
    embeddings = family.n_vocab * family.n_embd * (1 if family.tied_embeddings else 2)
    assert round(family.params / 1e9, _places(total)) == total
    assert round((family.params - embeddings) / 1e9, _places(non_embedding)) == non_embedding


def test_active_counts_match_the_published_ones() -> None:
    """Qwen3-30B-A3B "3.3B activated" and OLMoE's 1.3B count the embeddings; OpenAI's 3.6B for gpt-oss-20b leaves
    the input embedding table out (a token reads one row of it), the output matrix in."""
    qwen, olmoe, gpt = _family("Qwen3 30B-A3B"), _family("OLMoE 1B-7B Instruct"), _family("gpt-oss 20B")
    assert qwen.active_params and olmoe.active_params and gpt.active_params
    assert 3.3e9 <= qwen.active_params < 3.4e9  # 3.35B: this card cuts off rather than rounds (as 7.61B for 7.616B)
    assert round(olmoe.active_params / 1e9, 1) == 1.3
    assert round((gpt.active_params - gpt.n_vocab * gpt.n_embd) / 1e9, 1) == 3.6
    assert round(gpt.params / 1e9, 1) == 20.9


def test_windowed_layers_follow_the_configs_layer_types() -> None:
    """Gemma 3: five local layers then one global; gpt-oss: alternating, sliding first (its layer_types)."""
    assert _family("Gemma 3 27B Instruct").n_swa_layers == 62 - 10
    assert _family("Gemma 3 270M Instruct").n_swa_layers == 15
    assert _family("gpt-oss 20B").n_swa_layers == 12
    assert all(f.swa_window == 0 for f in load_catalogue() if f.arch not in ("gemma3", "gpt-oss"))
