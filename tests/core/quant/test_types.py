"""The quant-type table against llama.cpp's own numbers, and the rules for which types a source may become."""

from __future__ import annotations

import json
import subprocess
import sys

import gguf
import pytest

from sizewise.core.quant.types import BY_NAME, QUANT_TYPES, quant_type, targets_for


@pytest.fixture(scope="module")
def llama_ftypes() -> dict[str, int]:
    """llama_cpp's LLAMA_FTYPE_* constants, read in a subprocess: this test process must never import llama_cpp
    (tests/gui/shell/test_process_isolation.py checks that the GUI's process does not)."""
    code = (
        "import json, llama_cpp; "
        "print(json.dumps({n: getattr(llama_cpp, n) for n in dir(llama_cpp) if n.startswith('LLAMA_FTYPE_')}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@pytest.mark.parametrize("t", QUANT_TYPES, ids=lambda t: t.name)
def test_ftype_numbers_are_llama_cpps(t, llama_ftypes):
    prefix = "LLAMA_FTYPE_ALL_" if t.name == "F32" else "LLAMA_FTYPE_MOSTLY_"
    assert llama_ftypes[prefix + t.name] == t.ftype
    gguf_name = ("ALL_" if t.name == "F32" else "MOSTLY_") + t.name
    if gguf_name in gguf.LlamaFileType.__members__:  # gguf 0.19 predates Q2_0
        assert gguf.LlamaFileType[gguf_name].value == t.ftype
    else:
        assert t.name == "Q2_0"


def test_every_llama_cpp_type_is_known_or_deliberately_left_out(llama_ftypes):
    # Types llama.cpp added that the table does not offer must be a decision, not an oversight.
    left_out = {"GUESSED", "NVFP4"}  # not a type / not offered by llama-quantize either
    names = {n.removeprefix("LLAMA_FTYPE_").removeprefix("MOSTLY_").removeprefix("ALL_") for n in llama_ftypes}
    assert names - set(BY_NAME) == left_out


def test_table_is_ordered_by_precision_within_families():
    order = [t.name for t in QUANT_TYPES]
    assert order.index("Q8_0") < order.index("Q6_K") < order.index("Q4_K_M") < order.index("Q3_K_M")
    assert order.index("Q3_K_M") < order.index("Q2_K")


def test_quant_type_is_case_insensitive_and_names_valid_types():
    assert quant_type("q4_k_m").name == "Q4_K_M"
    with pytest.raises(ValueError, match="valid types: F32, F16"):
        quant_type("Q4_K_X")


def _by_name(avail):
    return {a.type.name: a for a in avail}


def test_f16_source_allows_the_usual_types_and_refuses_imatrix_and_special_ones():
    a = _by_name(targets_for(ftype=1, label="F16"))
    for name in ("Q8_0", "Q6_K", "Q4_K_M", "Q3_K_M", "Q2_K", "IQ4_XS"):
        assert a[name].allowed and a[name].reason == ""
    assert not a["IQ2_XS"].allowed and "importance matrix" in a["IQ2_XS"].reason
    assert not a["TQ1_0"].allowed and "ternary" in a["TQ1_0"].reason
    assert not a["MXFP4_MOE"].allowed and "mixture-of-experts" in a["MXFP4_MOE"].reason


def test_moe_source_may_use_mxfp4():
    assert _by_name(targets_for(ftype=1, label="F16", is_moe=True))["MXFP4_MOE"].allowed


def test_quantized_source_warns_of_stacked_errors_and_of_no_recovered_precision():
    a = _by_name(targets_for(ftype=3, label="Q4_1"))  # SmolLM2's own type
    assert a["Q2_K"].allowed and "stacks the errors" in a["Q2_K"].reason
    assert a["Q8_0"].allowed and "cannot recover precision" in a["Q8_0"].reason
    assert "cannot recover precision" in a["F16"].reason


def test_every_type_sizewise_can_make_is_named_when_its_file_is_read() -> None:
    """The header reader names a file by its declared type; a type newer than the gguf package (Q2_0) must
    not be shown as its dominant tensor type instead."""
    from sizewise.core.gguf.header import _file_type_names

    names = _file_type_names()
    assert {q.name: names.get(q.ftype) for q in QUANT_TYPES} == {q.name: q.name for q in QUANT_TYPES}
