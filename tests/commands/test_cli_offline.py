"""``sizewise search`` with no network, run as a user runs it: one sentence within a few seconds, no retry lines.

Before, huggingface_hub retried a refused connection or an unresolvable name five times (~25 s), printing
eleven warning lines before the sentence. The unresolvable case replaces ``socket.getaddrinfo`` in the child
so that no DNS query leaves the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.hub_fixtures import DESKTOP, closed_port

# Fails *.invalid the way a resolver does, then runs the CLI in the same process.
NO_DNS_FOR_INVALID = textwrap.dedent(
    """
    import socket, sys
    real = socket.getaddrinfo
    def fake(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)
    socket.getaddrinfo = fake
    from sizewise.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _env(tmp_path: Path, endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("HF_")}
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HUB_DISABLE_TELEMETRY="1",
        PYTHONPATH=os.pathsep.join([str(DESKTOP), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        PYTHONUNBUFFERED="1",
    )
    return env


def _search(cmd: list[str], env: dict[str, str], base: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    r = subprocess.run(
        [*cmd, "--basedir", str(base), "search", "smollm2"], env=env, capture_output=True, text=True, timeout=120
    )
    return r, time.monotonic() - t0


def _one_sentence(r: subprocess.CompletedProcess[str], elapsed: float) -> str:
    assert r.returncode == 1, r.stderr
    assert elapsed < 10, f"{elapsed:.1f} s\n{r.stderr}"  # start-up included; the retries alone took ~25 s
    assert "Retry" not in r.stderr and "thrown while requesting" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert r.stdout == ""
    return lines[0]


def test_search_with_a_refused_connection(tmp_path: Path) -> None:
    port = closed_port()
    r, elapsed = _search([sys.executable, "-m", "sizewise"], _env(tmp_path, f"http://127.0.0.1:{port}"), tmp_path)
    line = _one_sentence(r, elapsed)
    assert line.startswith(f"sizewise: The Hub at http://127.0.0.1:{port} could not be reached: ")
    assert "refused the connection" in line and "local models still work" in line


def test_search_when_the_name_does_not_resolve(tmp_path: Path) -> None:
    r, elapsed = _search(
        [sys.executable, "-c", NO_DNS_FOR_INVALID], _env(tmp_path, "http://nonexistent.invalid"), tmp_path
    )
    line = _one_sentence(r, elapsed)
    assert "the name nonexistent.invalid does not resolve" in line, line
