"""The segments store: labels in time on a real corpus, history, undo, the lock, pure helpers."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import post_corpus

from guitarlab.corpus.edits import read_history, relabel_take, undo_last
from guitarlab.corpus.errors import ManifestConflict, ManifestError
from guitarlab.corpus.segments import (
    add_segments,
    delete_segment,
    label_changes,
    load_segments,
    segment_label_for_spans,
    segments_of,
    segments_version,
    update_segment,
)

STRAT = "stratocaster-backing-t001"
LP = "les_paul-backing-t001"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return post_corpus(tmp_path / "corpus", tones=("raw", "crunch"), seconds=3.0)


def test_no_file_is_no_segments(corpus: Path) -> None:
    frame = load_segments(corpus)
    assert list(frame.columns) == ["id", "take", "start_s", "end_s", "origin"]
    assert frame.empty


def test_add_update_delete_round_trip_through_the_csv(corpus: Path) -> None:
    ids = add_segments(
        corpus,
        STRAT,
        [
            {"start_s": 1.5, "end_s": 2.5, "technique": "bend"},
            {"start_s": 0.0, "end_s": 1.0, "technique": "palm_mute", "pitch": 43},
        ],
        origin="audacity:riff.txt",
    )
    assert ids == ["seg-000001", "seg-000002"]
    raw = pd.read_csv(corpus / "segments.csv", dtype=str, keep_default_na=False)
    assert list(raw.columns) == ["id", "take", "start_s", "end_s", "origin", "technique", "pitch"]
    mine = segments_of(load_segments(corpus), STRAT)
    assert list(mine["id"]) == ["seg-000002", "seg-000001"]  # sorted by start
    assert list(mine["technique"]) == ["palm_mute", "bend"]
    assert list(mine["pitch"]) == ["43", ""]
    assert mine["start_s"].tolist() == [0.0, 1.5]

    update_segment(corpus, "seg-000001", {"end_s": 2.75, "technique": "slide"})
    delete_segment(corpus, "seg-000002")
    frame = load_segments(corpus)
    assert frame["id"].tolist() == ["seg-000001"]
    assert frame["end_s"].tolist() == [2.75] and frame["technique"].tolist() == ["slide"]
    assert "pitch" not in frame  # a column nobody labels any more is dropped
    # ids are never reused, even after a delete
    assert add_segments(
        corpus, LP, [{"start_s": 0, "end_s": 1, "phrase": "solo"}], origin="review"
    ) == ["seg-000003"]


def test_replace_column_replaces_only_that_columns_segments_of_that_take(corpus: Path) -> None:
    add_segments(corpus, STRAT, [{"start_s": 0, "end_s": 1, "technique": "bend"}], origin="a")
    add_segments(corpus, STRAT, [{"start_s": 0, "end_s": 3, "phrase": "solo"}], origin="b")
    add_segments(corpus, LP, [{"start_s": 0, "end_s": 1, "technique": "bend"}], origin="a")
    add_segments(
        corpus,
        STRAT,
        [{"start_s": 1, "end_s": 2, "technique": "vibrato"}],
        origin="a",
        replace_column="technique",
    )
    frame = load_segments(corpus)
    strat = segments_of(frame, STRAT)
    assert sorted(strat["technique"]) == ["", "vibrato"]
    assert (strat["phrase"] == "solo").sum() == 1
    assert segments_of(frame, LP)["technique"].tolist() == ["bend"]


@pytest.mark.parametrize(
    ("take", "segment", "message"),
    [
        (
            "nope-t001",
            {"start_s": 0, "end_s": 1, "technique": "x"},
            "take 'nope-t001' is not in the manifest",
        ),
        (f"{STRAT}-crunch", {"start_s": 0, "end_s": 1, "x": "y"}, f"a file of take '{STRAT}'"),
        (STRAT, {"start_s": 2, "end_s": 2, "technique": "x"}, "needs 0 <= start < end"),
        (STRAT, {"start_s": 2, "end_s": 9, "technique": "x"}, "ends after take"),
        (STRAT, {"start_s": 0, "end_s": 1, "Technique": "x"}, "is not a lower-case slug"),
        (STRAT, {"start_s": 0, "end_s": 1, "take": "x"}, "is not a label column"),
        (STRAT, {"start_s": 0, "technique": "x"}, "needs start_s and end_s"),
        (STRAT, {"start_s": 0, "end_s": 1, "technique": "a\nb"}, "one line"),
    ],
)
def test_bad_segments_are_refused_with_one_line(corpus, take, segment, message) -> None:
    good = {"start_s": 0, "end_s": 1, "technique": "ok"}
    with pytest.raises(ManifestError, match=message) as info:
        add_segments(corpus, take, [good, segment], origin="review")
    assert "\n" not in str(info.value)
    assert not (corpus / "segments.csv").exists()  # all or nothing
    assert read_history(corpus) == []


def test_history_and_undo_step_back_through_segment_and_manifest_edits(corpus: Path) -> None:
    add_segments(
        corpus, STRAT, [{"start_s": 0, "end_s": 1, "technique": "bend"}], origin="r", who="ann"
    )
    relabel_take(corpus, f"{STRAT}-raw", {"phrase": "lead"}, who="ann")
    entry = update_segment(corpus, "seg-000001", {"technique": "slide", "start_s": 0.25}, who="bo")
    assert entry["version"] == segments_version(corpus)
    delete_segment(corpus, "seg-000001")
    history = read_history(corpus)
    assert [e["action"] for e in history] == [
        "add_segments",
        "relabel",
        "update_segment",
        "delete_segment",
    ]
    assert [e["n"] for e in history] == [1, 2, 3, 4]
    assert history[2]["who"] == "bo" and history[2]["kind"] == "segments"
    assert history[2]["segments"][0]["old"]["technique"] == "bend"

    undo_last(corpus)  # the delete: the segment is back, same id
    assert load_segments(corpus)["technique"].tolist() == ["slide"]
    undo_last(corpus)  # the update
    frame = load_segments(corpus)
    assert frame["technique"].tolist() == ["bend"] and frame["start_s"].tolist() == [0.0]
    undo_last(corpus)  # the manifest relabel, in between
    undo_last(corpus)  # the add
    assert load_segments(corpus).empty
    assert [e.get("undoes") for e in read_history(corpus)[4:]] == [4, 3, 2, 1]
    with pytest.raises(ManifestError, match="nothing to undo"):
        undo_last(corpus)


def test_undo_refuses_a_segment_changed_since(corpus: Path) -> None:
    add_segments(corpus, STRAT, [{"start_s": 0, "end_s": 1, "technique": "bend"}], origin="r")
    text = (corpus / "segments.csv").read_text()
    (corpus / "segments.csv").write_text(text.replace("bend", "tap"))  # a hand edit
    with pytest.raises(ManifestError, match="segment seg-000001 has changed since"):
        undo_last(corpus)


def test_stale_version_is_refused(corpus: Path) -> None:
    version = segments_version(corpus)
    add_segments(corpus, STRAT, [{"start_s": 0, "end_s": 1, "technique": "bend"}], origin="r")
    with pytest.raises(ManifestConflict, match="changed since version"):
        update_segment(corpus, "seg-000001", {"technique": "x"}, expected_version=version)
    with pytest.raises(ManifestError, match="no segment 'seg-000009'"):
        delete_segment(corpus, "seg-000009")


def _add_many(root: str, worker: int) -> list[str]:
    ids = []
    for i in range(3):
        ids += add_segments(
            root,
            STRAT,
            [{"start_s": i * 0.5, "end_s": i * 0.5 + 0.25, "who": f"w{worker}"}],
            origin=f"worker{worker}",
        )
    return ids


def test_concurrent_writers_lose_nothing_under_the_lock(corpus: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.starmap(_add_many, [(str(corpus), w) for w in range(3)])
    ids = [i for r in results for i in r]
    assert len(set(ids)) == 9
    frame = load_segments(corpus)
    assert sorted(frame["id"]) == sorted(ids)
    history = read_history(corpus)
    assert sorted(e["n"] for e in history) == list(range(1, 10))


def test_segment_label_for_spans_counts_straddles_as_none() -> None:
    seg = pd.DataFrame(
        {
            "start_s": [0.0, 1.0, 2.0, 0.0],
            "end_s": [1.0, 2.0, 3.0, 3.0],
            "technique": ["mute", "bend", "mute", ""],
            "phrase": ["", "", "", "solo"],
        }
    )
    starts = np.array([0.0, 0.5, 1.0, 2.5, 3.5])
    ends = starts + 0.5
    assert segment_label_for_spans(seg, "technique", starts, ends) == [
        "mute",
        "mute",
        "bend",
        "mute",
        None,
    ]
    assert segment_label_for_spans(seg, "technique", np.array([0.75]), np.array([1.25])) == [None]
    assert segment_label_for_spans(seg, "phrase", starts, ends) == ["solo"] * 4 + [None]
    assert segment_label_for_spans(seg, "pitch", starts, ends) == [None] * 5


def test_label_changes_runs() -> None:
    times = np.arange(6) * 0.5
    assert label_changes(times, ["a", "a", "b", "b", None, "a"]) == [
        (0.0, 1.0, "a"),
        (1.0, 2.0, "b"),
        (2.5, 3.0, "a"),
    ]
    assert label_changes([], []) == []


def test_a_label_a_spreadsheet_would_run_is_stored_escaped_and_read_back_as_written(
    corpus: Path,
) -> None:
    add_segments(corpus, STRAT, [{"start_s": 0, "end_s": 1, "note": "=HYPERLINK(x)"}], origin="r")
    assert "'=HYPERLINK(x)" in (corpus / "segments.csv").read_text()
    assert load_segments(corpus)["note"].tolist() == ["=HYPERLINK(x)"]


def test_a_history_line_that_cannot_be_written_leaves_the_segments_as_they_were(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_segments(corpus, STRAT, [{"start_s": 0, "end_s": 1, "technique": "bend"}], origin="r")
    before = (corpus / "segments.csv").read_bytes()

    def full_disk(handle, line):
        handle.close()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("guitarlab.corpus.edits._append_line", full_disk)
    with pytest.raises(ManifestError, match="cannot append the change's history line"):
        update_segment(corpus, "seg-000001", {"technique": "slide"})
    assert (corpus / "segments.csv").read_bytes() == before
    assert len(read_history(corpus)) == 1
