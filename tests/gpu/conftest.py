"""The GPU tests run on a GPU build of llama.cpp: ``scripts/setup.sh test-gpu`` builds the Vulkan one
(scripts/vulkan-build.sh) and names it in SIZEWISE_LLAMA_CPP_PATH, which the engine worker imports llama_cpp from.
Without a GPU, Mesa's lavapipe is the device; GGML_VK_VISIBLE_DEVICES=0 lets llama.cpp use a device of type CPU.
A missing build fails these tests (they are selected only by ``-m gpu``), it does not skip them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sizewise.engine.entry import LLAMA_CPP_PATH_ENV


@pytest.fixture(scope="session")
def gpu_build() -> Path:
    folder = os.environ.get(LLAMA_CPP_PATH_ENV)
    if not folder or not (Path(folder) / "llama_cpp" / "lib").is_dir():
        pytest.fail(
            f"no GPU build of llama.cpp: run these tests with scripts/setup.sh test-gpu ({LLAMA_CPP_PATH_ENV} unset)"
        )
    return Path(folder)
