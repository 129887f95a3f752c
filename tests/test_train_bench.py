"""benchmarks/bench_train.py runs in quick mode and returns finite, positive figures."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("tensorflow")


def test_bench_train_quick_rows_are_finite_and_positive():
    from benchmarks.bench_train import run

    rows = run(quick=True)
    assert len(rows) == 4
    for row in rows:
        assert row.benchmark == "train"
        assert math.isfinite(row.value) and row.value > 0, row
        assert row.ratio is not None and math.isfinite(row.ratio) and row.ratio > 0, row
