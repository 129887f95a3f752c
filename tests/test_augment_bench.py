"""benchmarks/bench_augment.py runs (quick) and returns finite, positive figures."""

from __future__ import annotations

import math

from benchmarks.bench_augment import run


def test_quick_benchmark_rows_are_finite_and_positive() -> None:
    rows = run(quick=True)
    assert len(rows) >= 6
    for row in rows:
        assert row.benchmark == "augment"
        assert math.isfinite(row.value) and row.value > 0, row.figure
        assert row.ratio is not None and math.isfinite(row.ratio) and row.ratio > 0, row.figure
