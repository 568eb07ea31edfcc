"""Writing help: requests built from the editable prompts file, and the word diff."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sizewise.core.chat.writing import load_catalog, rebuild, reply_budget, summarize_diff, word_diff
from sizewise.core.errors import UserError
from sizewise.core.resources import resource_path
from sizewise.core.sampling import SamplingParams


def test_the_data_file_has_every_action() -> None:
    catalog = load_catalog()
    ids = [a.id for a in catalog.actions]
    assert ids == ["clearer", "shorten", "grammar", "summarize", "formal", "casual", "translate"]
    assert catalog.get("translate").needs_language and not catalog.get("grammar").needs_language
    assert "French" in catalog.languages and "Japanese" in catalog.languages
    for a in catalog.actions:
        assert a.label and a.description and a.instruction and 0.0 <= a.temperature <= 1.0


def test_chat_and_completion_requests() -> None:
    catalog = load_catalog()
    req = catalog.request("grammar", "  Their going too the park.  ", base=SamplingParams(seed=5, max_tokens=10))
    assert req.messages is not None and req.prompt is None
    assert [m["role"] for m in req.messages] == ["system", "user"]
    assert req.messages[1]["content"].endswith("Their going too the park.")
    assert catalog.get("grammar").instruction in req.messages[1]["content"]
    assert req.sampling.temperature == catalog.get("grammar").temperature and req.sampling.seed == 5
    assert req.sampling.max_tokens >= 128  # room for the result, whatever the chat setting
    tr = catalog.request("translate", "Good morning", language="German", chat=False)
    assert tr.messages is None and tr.prompt is not None
    assert "into German" in tr.prompt and "Good morning" in tr.prompt


def test_placeholders_in_the_users_text_are_left_alone() -> None:
    text = "Write {text} and {language} and {instruction} literally."
    req = load_catalog().request("translate", text, language="Italian")
    assert req.messages is not None and req.messages[1]["content"].endswith(text)


def test_missing_input_is_explained() -> None:
    catalog = load_catalog()
    with pytest.raises(UserError, match="language"):
        catalog.request("translate", "hello")
    with pytest.raises(UserError, match="text"):
        catalog.request("shorten", "   ")
    with pytest.raises(UserError, match="no writing action"):
        catalog.request("sing", "hello")


def test_an_edited_prompts_file_is_used(tmp_path: Path) -> None:
    data = json.loads(resource_path("writing_actions.json").read_text())
    data["actions"] = [{"id": "pirate", "label": "Pirate", "instruction": "Say it like a pirate.", "temperature": 0.9}]
    path = tmp_path / "actions.json"
    path.write_text(json.dumps(data))
    req = load_catalog(path).request("pirate", "Hello friend")
    assert req.messages is not None and "Say it like a pirate." in req.messages[1]["content"]
    data["user"] = "no placeholder here"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match="placeholder"):
        load_catalog(path)


def test_word_diff_marks_changed_words() -> None:
    spans = word_diff("I has a apple today.", "I have an apple today.")
    kinds = [(s.kind, s.text) for s in spans]
    assert ("delete", "has") in kinds and ("insert", "have") in kinds
    assert ("delete", "a") in kinds and ("insert", "an") in kinds
    assert rebuild(spans, "original") == "I has a apple today."
    assert rebuild(spans, "result") == "I have an apple today."
    summary = summarize_diff(spans)
    assert (summary.words_added, summary.words_removed, summary.words_kept) == (2, 2, 3)
    assert summary.sentence == "2 words added, 2 removed, 3 kept"
    assert [s.kind for s in word_diff("same", "same")] == ["equal"]
    assert word_diff("", "") == []


@given(st.text(max_size=200), st.text(max_size=200))
def test_word_diff_rebuilds_both_texts(a: str, b: str) -> None:
    spans = word_diff(a, b)
    assert rebuild(spans, "original") == a
    assert rebuild(spans, "result") == b
    assert all(s.text for s in spans)
    assert all(x.kind != y.kind for x, y in itertools.pairwise(spans))  # neighbours merged


def test_reply_budget_grows_with_the_text() -> None:
    assert reply_budget("short") == 128
    assert reply_budget("x" * 4000) == 2 * 1000 + 64
    assert reply_budget("short", at_least=512) == 512
