"""The remote engine client against a real llama-server (and real non-servers), all on loopback."""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sizewise.core.sampling import SamplingParams
from sizewise.engine.remote.http import ApiKey, RemoteError, ServerAddress, read_api_key
from sizewise.engine.remote.session import RemoteSession
from tests.hub_fixtures import closed_port
from tests.llama_server import FakeServer, LlamaServer

native = pytest.mark.native
HELLO = [{"role": "user", "content": "Tell me a short story about a cat."}]


@native
def test_streams_a_reply_with_both_speeds_and_the_same_seed_repeats(llama_server: LlamaServer) -> None:
    with RemoteSession(llama_server.url) as session:
        info = session.connect()
        assert info.kind == "llama-server" and info.model.endswith(".gguf") and info.models == [info.model]
        assert info.n_ctx == 2048 and info.loopback and not info.encrypted
        texts = []
        for seed in (7, 7, 8):
            sampling = SamplingParams(temperature=1.0, max_tokens=40, seed=seed)
            pieces = list(session.stream(sampling, messages=HELLO))
            assert len(pieces) > 1  # streamed piece by piece, not in one answer
            texts.append("".join(pieces))
            stats, timings = session.last_stats, session.last_server_timings
            assert stats is not None and timings is not None
            assert stats.seed == seed and stats.finish_reason in ("stop", "length")
            assert stats.tokens == timings["predicted_n"] > 1 and stats.prompt_tokens > 10
            assert stats.ttft_ms > 0 and stats.tg_tps > 0 and timings["predicted_per_second"] > 0
            assert stats.peak_rss_bytes == 0  # nothing measured here pretends to be the server's memory
        assert texts[0] == texts[1], "the same seed at temperature 1 gave different text"
        assert texts[0] != texts[2], "a different seed gave the same 40 tokens: is the seed sent at all?"
        assert session.last_sampling_sent == [
            "max_tokens", "min_p", "repeat_penalty", "seed", "temperature", "top_k", "top_p"
        ]  # fmt: skip
        assert session.count_tokens(["Hello world"]) == [2]  # llama-server's own tokenizer


@native
def test_stop_closes_the_stream_and_the_server_goes_idle(llama_server: LlamaServer) -> None:
    with RemoteSession(llama_server.url) as session:
        session.connect()
        sampling = SamplingParams(temperature=0.8, max_tokens=1500, seed=1)
        pieces: list[str] = []
        stopper: threading.Thread | None = None
        stopped_at = 0.0

        def stop() -> None:
            nonlocal stopped_at
            stopped_at = time.monotonic()
            session.stop()

        for piece in session.stream(sampling, messages=HELLO, extra={"ignore_eos": True}):
            pieces.append(piece)
            if len(pieces) == 5 and stopper is None:
                stopper = threading.Thread(target=stop)  # stop comes from another thread, as in the app
                stopper.start()
        assert stopper is not None
        stopper.join()
        ended = time.monotonic()
        assert session.last_stats is not None and session.last_stats.finish_reason == "cancelled"
        assert 5 <= len(pieces) < 1500
        while llama_server.busy():
            assert time.monotonic() - stopped_at < 2.0, "llama-server kept generating after the stream was closed"
            time.sleep(0.01)
        idle = time.monotonic() - stopped_at
        print(f"\nstop: stream ended {1000 * (ended - stopped_at):.0f} ms, server idle {1000 * idle:.0f} ms after stop")


@native
def test_a_server_killed_mid_reply_keeps_the_pieces_and_says_so(llama_servers: Callable[..., LlamaServer]) -> None:
    server = llama_servers()
    with RemoteSession(server.url) as session:
        session.connect()
        pieces: list[str] = []
        with pytest.raises(RemoteError, match="closed the connection in the middle of the reply"):
            long_reply = SamplingParams(max_tokens=1500, seed=1)
            for piece in session.stream(long_reply, messages=HELLO, extra={"ignore_eos": True}):
                pieces.append(piece)
                if len(pieces) == 3:
                    server.kill()
        assert len(pieces) >= 3


@native
def test_a_request_the_server_refuses_is_one_sentence_with_its_reason(llama_server: LlamaServer) -> None:
    with RemoteSession(llama_server.url) as session:
        session.connect()
        too_long = [{"role": "user", "content": "word " * 3000}]  # more than the server's 2048-token context
        with pytest.raises(RemoteError, match=r"context") as err:
            list(session.stream(SamplingParams(max_tokens=4), messages=too_long))
        print(f"\n{err.value}")
        assert str(err.value).endswith(".") and "\n" not in str(err.value)
        assert list(session.stream(SamplingParams(max_tokens=4), messages=HELLO))  # the session is still usable


@native
def test_wrong_key_unknown_model_and_key_not_in_messages(llama_servers: Callable[..., LlamaServer]) -> None:
    server = llama_servers(api_key="sekrit-key-123")
    with RemoteSession(server.url, api_key=ApiKey("wrong-key-456")) as session:
        with pytest.raises(RemoteError, match=r"HTTP 401: it refused the API key\.$") as err:
            session.connect()  # /health is public on llama-server, /v1/models is not
        assert "wrong-key-456" not in str(err.value)
    with RemoteSession(server.url) as session, pytest.raises(RemoteError, match="needs an API key"):
        session.connect()
    with RemoteSession(server.url, api_key=ApiKey("sekrit-key-123")) as session:
        session.connect()
        assert list(session.stream(SamplingParams(max_tokens=4), messages=HELLO))
    unknown = RemoteSession(server.url, model="no-such-model", api_key=ApiKey("sekrit-key-123"))
    with unknown, pytest.raises(RemoteError, match=r"has no model named 'no-such-model'; it offers: .*SmolLM2"):
        unknown.connect()
    key = ApiKey("sekrit-key-123")
    assert "sekrit" not in repr(key) + str(key) + f"{key}" + repr(RemoteSession(server.url, api_key=key).http.__dict__)


def test_non_servers_each_get_one_sentence(fake_servers: Callable[[str], FakeServer]) -> None:
    cases = {
        "html": "answered /v1/models with an HTML page (HTTP 404), not an OpenAI-compatible API",
        "garbage": "did not answer in HTTP",
    }
    if shutil.which("openssl"):  # makes the self-signed certificate
        cases["tls"] = "TLS certificate of 127.0.0.1 could not be verified"
    for mode, expected in cases.items():
        server = fake_servers(mode)
        with RemoteSession(server.url) as session, pytest.raises(RemoteError, match=re.escape(expected)) as err:
            session.connect()
        message = str(err.value)
        assert message.endswith((".", "?")) and "\n" not in message and "Traceback" not in message


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
def test_tls_works_once_the_certificate_is_trusted(
    fake_servers: Callable[[str], FakeServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other half of the self-signed refusal: the same server is accepted when its certificate is trusted."""
    server = fake_servers("tls")
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))
    with RemoteSession(server.url) as session:
        info = session.connect()
    assert info.encrypted and info.kind == "openai" and info.model == "m"


def test_a_stalled_stream_is_cut_after_the_timeout(fake_servers: Callable[[str], FakeServer]) -> None:
    server = fake_servers("stall")
    with RemoteSession(server.url, stall_timeout=1.0) as session:
        session.connect()
        pieces: list[str] = []
        t0 = time.monotonic()
        with pytest.raises(RemoteError, match=r"did not answer within 1 s \(the reply\)"):
            for piece in session.stream(SamplingParams(max_tokens=8), messages=HELLO):
                pieces.append(piece)
        assert pieces == ["half a "] and time.monotonic() - t0 < 5
        # not llama-server: only the OpenAI sampling fields are sent (top_k, min_p, repeat_penalty are llama.cpp's)
        assert session.info is not None and session.info.kind == "openai"
        assert session.last_sampling_sent == ["max_tokens", "seed", "temperature", "top_p"]


def test_a_server_with_several_models_needs_model(fake_servers: Callable[[str], FakeServer]) -> None:
    url = fake_servers("two").url
    with RemoteSession(url) as session, pytest.raises(RemoteError, match=r"several models \(small, large\)"):
        session.connect()
    with RemoteSession(url, model="large") as session:
        assert session.connect().model == "large"


def test_oversized_answers_are_cut_not_buffered(fake_servers: Callable[[str], FakeServer]) -> None:
    with RemoteSession(fake_servers("huge").url) as session, pytest.raises(RemoteError, match="more than 8 MiB"):
        session.connect()
    with RemoteSession(fake_servers("hugeevent").url) as session:
        session.connect()
        with pytest.raises(RemoteError, match="sent an event over 1 MiB; the reply was cut"):
            list(session.stream(SamplingParams(max_tokens=8), messages=HELLO))


def test_refused_connection_and_bad_addresses() -> None:
    with RemoteSession(f"http://127.0.0.1:{closed_port()}") as session, pytest.raises(RemoteError, match="refused"):
        session.connect()
    for bad in ("ftp://example.com", "http://", "http://host:notaport"):
        with pytest.raises(RemoteError, match="is not a server address"):
            ServerAddress.parse(bad)
    with pytest.raises(RemoteError, match="not in the server address"):
        ServerAddress.parse("http://user:secret@127.0.0.1:8080")


def test_only_plain_http_off_this_machine_is_flagged() -> None:
    assert ServerAddress.parse("http://127.0.0.1:8080").warning() is None
    assert ServerAddress.parse("http://localhost:8080/v1").warning() is None
    assert ServerAddress.parse("https://gpu.example.com").warning() is None
    warning = ServerAddress.parse("http://192.168.1.20:8080").warning()
    assert warning is not None and "not encrypted" in warning
    address = ServerAddress.parse("gpu.example.com:8080/v1/")
    assert address.url == "http://gpu.example.com:8080" and address.warning() is not None


def test_keys_come_from_the_environment_or_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SW_TEST_KEY", "from-env")
    (tmp_path / "key").write_text("from-file\n")
    env_key, file_key = read_api_key("SW_TEST_KEY", None), read_api_key(None, str(tmp_path / "key"))
    assert env_key is not None and env_key.header() == "Bearer from-env"
    assert file_key is not None and file_key.header() == "Bearer from-file"
    assert read_api_key(None, None) is None
    with pytest.raises(RemoteError, match=r"SW_TEST_MISSING .* is not set"):
        read_api_key("SW_TEST_MISSING", None)
    with pytest.raises(RemoteError, match="cannot be read"):
        read_api_key(None, str(tmp_path / "nope"))
