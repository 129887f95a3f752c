"""benchmarks/bench_cluster.py runs (quick) and returns finite, positive figures."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("distributed")


def test_quick_benchmark_rows_are_finite_and_positive() -> None:
    from benchmarks.bench_cluster import run

    rows = run(quick=True)
    assert len(rows) == 5
    for row in rows:
        assert row.benchmark == "cluster"
        assert math.isfinite(row.value) and row.value > 0, row.figure
        assert row.ratio is not None and math.isfinite(row.ratio) and row.ratio > 0, row.figure
