"""PyInstaller's entry script: the bundle's ``sizewise`` executable runs ``sizewise.cli:main``.

A separate file because PyInstaller needs a script, not an entry point; main() calls
multiprocessing.freeze_support() first, which is how the engine worker (spawned by re-running this
executable) takes its own path instead of starting a second app.
"""

import sys

from sizewise.cli import main

if __name__ == "__main__":
    sys.exit(main())
