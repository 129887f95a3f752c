"""benchmarks/bench_recorder.py runs (quick) and returns finite, positive figures."""

from __future__ import annotations

import math
import os

import pytest

from guitarlab.corpus.errors import RecorderError

pytestmark = pytest.mark.server


def test_quick_benchmark_rows_are_finite_and_positive() -> None:
    from benchmarks.bench_recorder import run

    try:
        rows = run(quick=True)
    except RecorderError as exc:
        if os.environ.get("CI") or "pulseaudio" not in str(exc):
            raise
        pytest.skip(f"no audio server on this machine: {exc}")
    assert len(rows) == 4
    for row in rows:
        assert row.benchmark == "recorder"
        assert math.isfinite(row.value) and row.value > 0, row.figure
        assert row.ratio is not None and math.isfinite(row.ratio) and row.ratio > 0, row.figure
    kept = next(r for r in rows if r.figure.startswith("frames kept"))
    assert kept.ratio <= 1.0
