"""Quantize plans: checked before any work, never overwriting, with stale partial files cleaned up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sizewise.core.errors import UserError
from sizewise.core.quant.plan import (
    IMATRIX_UNSUPPORTED,
    PARTIAL_PREFIX,
    check_free_space,
    clean_stale_partials,
    output_stem,
    plan_quantize,
)
from tests.ggufs import write_truncated_copy


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct"),
        ("gemma-3-270m-it-Q4_K_M.gguf", "gemma-3-270m-it"),
        ("Qwen2.5-7B-Instruct-f16.gguf", "Qwen2.5-7B-Instruct"),
        ("model-IQ4_XS.gguf", "model"),
        ("plain.gguf", "plain"),
    ],
)
def test_output_stem_drops_the_quant_label(name, stem):
    assert output_stem(Path(name)) == stem


def test_default_plan_names_the_file_after_the_type(smollm2_path, tmp_path):
    plan = plan_quantize(smollm2_path, "q8_0", out=None, default_folder=tmp_path)
    assert plan.out == (tmp_path / "SmolLM2-135M-Instruct-Q8_0.gguf").resolve()
    assert plan.target.name == "Q8_0"
    assert "cannot recover precision" in plan.warning  # the source is Q4_1
    assert 100e6 < plan.estimated_bytes < 200e6


def test_an_existing_file_is_never_overwritten(smollm2_path, tmp_path):
    taken = tmp_path / "taken.gguf"
    taken.write_bytes(b"keep me")
    with pytest.raises(UserError, match="never overwrites"):
        plan_quantize(smollm2_path, "Q8_0", out=taken, default_folder=tmp_path)
    assert taken.read_bytes() == b"keep me"
    with pytest.raises(UserError, match="cannot be the source"):
        plan_quantize(smollm2_path, "Q8_0", out=smollm2_path, default_folder=tmp_path)


def test_bad_requests_get_one_sentence(smollm2_path, tmp_path):
    with pytest.raises(UserError, match="Unknown quant type 'Q9'"):
        plan_quantize(smollm2_path, "Q9", out=None, default_folder=tmp_path)
    with pytest.raises(UserError, match="importance matrix"):
        plan_quantize(smollm2_path, "IQ2_XS", out=None, default_folder=tmp_path)
    with pytest.raises(UserError, match=r"must end in \.gguf"):
        plan_quantize(smollm2_path, "Q8_0", out=tmp_path / "x.bin", default_folder=tmp_path)
    with pytest.raises(UserError) as exc:
        plan_quantize(smollm2_path, "Q8_0", out=None, default_folder=tmp_path, imatrix=tmp_path / "i.dat")
    assert str(exc.value) == IMATRIX_UNSUPPORTED
    broken = write_truncated_copy(smollm2_path, tmp_path / "broken.gguf", 50_000)
    with pytest.raises(UserError, match="truncated or damaged"):
        plan_quantize(broken, "Q8_0", out=None, default_folder=tmp_path)


def test_free_space_check_names_both_figures(tmp_path):
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    check_free_space(tmp_path, 1 << 20)  # a MiB fits wherever tests run
    with pytest.raises(UserError, match=r"needs about .* MiB and .* MiB is free"):
        check_free_space(tmp_path / "not" / "yet", free + (1 << 30))


def test_stale_partials_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f"{PARTIAL_PREFIX}{dead_pid}-abcd1234-m-Q8_0.gguf"
    live = tmp_path / f"{PARTIAL_PREFIX}{os.getpid()}-abcd1234-m-Q4_0.gguf"
    model = tmp_path / "m-Q2_K.gguf"
    for f in (stale, live, model):
        f.write_bytes(b"x")
    assert clean_stale_partials(tmp_path) == [stale]
    assert live.exists() and model.exists() and not stale.exists()
