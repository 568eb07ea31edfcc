"""The benchmarks' summary table (buffer_check.WorstErrors) keeps the worst error per component and tells rounding
from error: its verdict is the accuracy tests' bound, so it must fail what they fail."""

from __future__ import annotations

from tests.core.fit.buffer_check import LOG_ROUNDING_BYTES, WorstErrors

MiB = 2**20


def test_worst_error_and_what_is_left_beyond_the_logs_rounding() -> None:
    t = WorstErrors(tolerance_pct=1.0)
    t.add("lfm2", "recurrent", 16384, round(0.02 * MiB), lines=1)  # 16 KiB printed as "0.02 MiB": rounding alone
    t.add("lfm2", "compute", 100 * MiB, 100 * MiB + MiB // 2, lines=1)  # -0.5 %
    t.add("lfm2", "compute", 100 * MiB, 100 * MiB - MiB // 4, lines=1)  # +0.25 %: smaller, the -0.5 % stays
    t.add("lfm2", "output", 4000, 0, lines=1)  # not logged: no figure
    pct, beyond = t.rows["lfm2"]["recurrent"]
    assert round(pct, 1) == -21.9 and beyond == 0.0
    pct, beyond = t.rows["lfm2"]["compute"]
    assert round(pct, 3) == -0.498 and 0.49 < beyond < 0.5
    assert "output" not in t.rows["lfm2"] and not t.failures()
    assert "| lfm2 | — | — | -21.877 / 0.00 | -0.498 / 0.49 |" in t.table()
    t.add("deepseek2", "kv", 102 * MiB, 100 * MiB, lines=1)  # +2 %: outside the bound, whatever came before
    t.add("deepseek2", "kv", 100 * MiB, 100 * MiB, lines=1)
    beyond = 100 * (2 * MiB - LOG_ROUNDING_BYTES) / (100 * MiB)
    assert t.failures() == [f"deepseek2: kv {beyond:.3f}% beyond the log's rounding (bound 1.0%)"]
