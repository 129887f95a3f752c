"""``dataset build`` honours review verdicts: excluded rows and excluded spans in every tone."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import post_corpus

from guitarlab.cli import cli
from guitarlab.corpus.edits import add_span, exclude_row
from guitarlab.datasets.build import build_dataset
from guitarlab.datasets.folder import check_dataset, open_dataset

STRAT = "stratocaster-backing-t001"
RATE, WINDOW = 44100, 8000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return post_corpus(tmp_path_factory.mktemp("review-build") / "corpus")


@pytest.fixture(scope="module")
def before(corpus: Path, tmp_path_factory) -> Path:
    return build_dataset(corpus, tmp_path_factory.mktemp("ds") / "before", progress=False)


def all_windows(path: Path):
    ds = open_dataset(path)
    return ds, pd.concat([ds.windows(split) for split in ("train", "val", "test")])


def test_excluded_span_and_row_leave_the_build_in_every_tone(
    corpus: Path, before: Path, tmp_path: Path
) -> None:
    span = (0.5, 1.0)
    add_span(corpus, f"{STRAT}-clean", *span)
    exclude_row(corpus, "les_paul-backing-t001-crunch", "cable crackle")
    result = CliRunner().invoke(
        cli, ["dataset", "build", "--corpus", str(corpus), "--out", str(tmp_path / "after")]
    )
    assert result.exit_code == 0, result.output
    assert "1 file(s) excluded in review left out" in result.output
    assert "in excluded spans of 1 take(s) left out" in result.output

    _, old = all_windows(before)
    ds, new = all_windows(tmp_path / "after")
    start, end = span[0] * RATE, span[1] * RATE
    touching = (new["start"] < end) & (new["start"] + WINDOW > start)
    assert not (touching & (new["take"] == STRAT)).any()
    was = old[(old["take"] == STRAT) & (old["start"] < end) & (old["start"] + WINDOW > start)]
    assert set(was["tone"]) == {"raw", "clean", "crunch"} and len(was) > 0
    strat_old, strat_new = (t[t["take"] == STRAT] for t in (old, new))
    assert len(strat_new) == len(strat_old) - len(was)
    assert "les_paul-backing-t001-crunch" not in set(new["id"])
    assert ds.meta["excluded"]["rows"] == ["les_paul-backing-t001-crunch"]
    assert ds.meta["excluded"]["spans"] == {STRAT: [list(span)]}
    assert ds.meta["excluded"]["windows"] == len(was)
    assert check_dataset(tmp_path / "after") == []


def test_renders_keep_their_takes_timing(corpus: Path) -> None:
    """Spans are seconds of the raw take; they hold in renders because every file of a
    take has the same length and starts at the same sample."""
    from guitarlab.corpus.manifest import load_manifest

    frame = load_manifest(corpus)
    assert frame.groupby("take")["frames"].nunique().eq(1).all()
