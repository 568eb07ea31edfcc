"""Write the license list and texts of everything a bundle ships into one folder (default build/licenses).

PyInstaller copies no ``.dist-info`` folders, so the frozen app cannot read package metadata; this
script reads it at build time, with the same code the app uses live (sizewise.core.report.licenses), and
packaging/sizewise.spec bundles the result as ``sizewise/resources/licenses/``. Run it with the
Python environment the bundle is built from.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sizewise.core.report.licenses import installed_components, write_index

if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "build" / "licenses"
    components = installed_components()
    missing = [c.name for c in components if not c.text_paths]
    index = write_index(components, out)
    print(f"{len(components)} components -> {index}")
    if missing:
        print(f"no license text found for: {', '.join(missing)}", file=sys.stderr)
        sys.exit(1)
