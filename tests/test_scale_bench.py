"""benchmarks/bench_scale.py: the fast-built corpus is a sound one, and a quick run gives
every row (issue 32)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from benchmarks import bench_scale
from guitarlab.corpus import audit
from guitarlab.corpus import manifest as mf


def test_the_built_corpus_checks_clean_with_a_file_per_row(tmp_path: Path) -> None:
    root = bench_scale.build_corpus(tmp_path / "c", 30)
    frame = mf.load_manifest(root)
    assert len(frame) == 30 and frame["sha256"].is_unique
    assert len(list((root / "takes").iterdir())) == 30
    assert audit.check_manifest(root) == []
    assert list(pd.read_csv(root / "manifest.csv").columns[:3]) == ["id", "path", "guitar"]


def test_a_quick_run_gives_every_row(monkeypatch) -> None:
    monkeypatch.setattr(bench_scale, "QUICK_SIZES", (40, 120))
    rows = bench_scale.run(quick=True)
    figures = [row.figure for row in rows]
    assert any("append one take at 120 rows over at 40" in f for f in figures)
    assert sum("nothing changed" in f for f in figures) == 3  # 2 sizes + the CLI
    assert any("--full" in f for f in figures)
    for row in rows:
        assert row.value > 0 and math.isfinite(row.value) and row.ratio is not None
    cli = next(row for row in rows if "a fresh process" in row.figure)
    assert "no problems" in cli.notes
