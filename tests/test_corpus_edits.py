"""Review edits on a real corpus: relabel a take, exclude rows and spans, history, undo, conflicts."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import post_corpus

from guitarlab.corpus.edits import (
    UnknownRow,
    add_span,
    exclude_row,
    format_spans,
    parse_spans,
    read_history,
    relabel_take,
    remove_span,
    take_spans,
    undo_last,
)
from guitarlab.corpus.errors import ManifestConflict, ManifestError
from guitarlab.corpus.manifest import load_manifest, manifest_version

STRAT = "stratocaster-backing-t001"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return post_corpus(tmp_path / "corpus")


def take_rows(corpus: Path, take: str = STRAT):
    frame = load_manifest(corpus)
    return frame[frame["take"] == take]


def test_relabel_changes_every_render_of_the_take_and_records_it(corpus: Path) -> None:
    entry = relabel_take(corpus, f"{STRAT}-crunch", {"guitar": "telecaster"}, who="ann")
    assert set(take_rows(corpus)["guitar"]) == {"telecaster"}
    assert len(take_rows(corpus)) == 3
    assert set(take_rows(corpus, "les_paul-backing-t001")["guitar"]) == {"les_paul"}
    (line,) = read_history(corpus)
    assert line["who"] == "ann" and line["action"] == "relabel" and line["n"] == 1
    assert {(e["old"], e["new"]) for e in line["edits"]} == {("stratocaster", "telecaster")}
    assert len(line["edits"]) == 3 and line["when"].endswith("+00:00")
    assert entry["version"] == manifest_version(corpus)
    assert relabel_take(corpus, f"{STRAT}-raw", {"guitar": "telecaster"}) is None  # no-op


def test_history_is_appended_and_keeps_lines_it_cannot_read(corpus: Path) -> None:
    history = corpus / "history.jsonl"
    history.write_text('{"n": 7, "action": "relabel"}\n{"cut short by a cra', encoding="utf-8")
    relabel_take(corpus, f"{STRAT}-raw", {"guitar": "telecaster"}, who="ann")
    lines = history.read_text(encoding="utf-8").splitlines()
    assert lines[:2] == ['{"n": 7, "action": "relabel"}', '{"cut short by a cra']  # kept
    entries = read_history(corpus)  # the broken line is skipped, the new one is whole
    assert [(e["n"], e["action"]) for e in entries] == [(7, "relabel"), (8, "relabel")]
    assert entries[1]["who"] == "ann"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"colour": "red"}, "unknown column 'colour'"),
        ({"tone": "clean"}, "not a label review can edit"),
        ({"sha256": "0"}, "not a label review can edit"),
        ({"guitar": "Les Paul"}, "not a lower-case slug"),
        ({"pickup": "banana"}, "not a known pickup"),
        ({"notes": "two\nlines"}, "one line"),
        ({}, "give the columns"),
    ],
)
def test_bad_edits_are_refused_with_one_line(corpus: Path, changes, message) -> None:
    before = (corpus / "manifest.csv").read_bytes()
    with pytest.raises(ManifestError, match=message) as info:
        relabel_take(corpus, f"{STRAT}-raw", changes)
    assert "\n" not in str(info.value)
    assert (corpus / "manifest.csv").read_bytes() == before
    assert read_history(corpus) == []


def test_unknown_row_and_stale_version(corpus: Path) -> None:
    with pytest.raises(UnknownRow):
        relabel_take(corpus, "nope", {"guitar": "sg"})
    version = manifest_version(corpus)
    relabel_take(corpus, f"{STRAT}-raw", {"player": "bo"})
    with pytest.raises(ManifestConflict):
        relabel_take(corpus, f"{STRAT}-raw", {"player": "cy"}, expect_version=version)
    assert set(take_rows(corpus)["player"]) == {"bo"}


def test_spans_hold_for_the_whole_take_and_are_checked(corpus: Path) -> None:
    add_span(corpus, f"{STRAT}-raw", 0.5, 1.0)
    add_span(corpus, f"{STRAT}-clean", 0.9, 1.25)  # overlaps: merged
    assert set(take_rows(corpus)["exclude_spans"]) == {"[[0.5,1.25]]"}
    assert take_spans(load_manifest(corpus), STRAT) == [(0.5, 1.25)]
    with pytest.raises(ManifestError, match="ends after the file"):
        add_span(corpus, f"{STRAT}-raw", 2.0, 3.5)
    with pytest.raises(ManifestError, match="start < end"):
        add_span(corpus, f"{STRAT}-raw", 1.0, 0.5)
    with pytest.raises(ManifestError, match="shorter than 0.001 s"):  # not stored as [0, 0]
        add_span(corpus, f"{STRAT}-raw", 0.0001, 0.0004)
    with pytest.raises(ManifestError, match="no excluded span"):
        remove_span(corpus, f"{STRAT}-raw", 0.5, 1.0)
    remove_span(corpus, f"{STRAT}-raw", 0.5, 1.25)
    assert set(take_rows(corpus)["exclude_spans"]) == {""}


def test_exclude_row_and_undo_step_back(corpus: Path) -> None:
    exclude_row(corpus, f"{STRAT}-crunch", "render came out wrong")
    relabel_take(corpus, f"{STRAT}-raw", {"guitar": "telecaster"})
    frame = load_manifest(corpus).set_index("id")
    assert frame.loc[f"{STRAT}-crunch", "excluded"] == "render came out wrong"
    assert frame.loc[f"{STRAT}-raw", "excluded"] == ""
    undone = undo_last(corpus)
    assert undone["undoes"] == 2 and set(take_rows(corpus)["guitar"]) == {"stratocaster"}
    undo_last(corpus)
    assert load_manifest(corpus).set_index("id").loc[f"{STRAT}-crunch", "excluded"] == ""
    with pytest.raises(ManifestError, match="nothing to undo"):
        undo_last(corpus)
    assert [e["action"] for e in read_history(corpus)] == ["exclude", "relabel", "undo", "undo"]


def test_undo_refuses_a_cell_changed_since(corpus: Path) -> None:
    relabel_take(corpus, f"{STRAT}-raw", {"player": "ann"})
    text = (corpus / "manifest.csv").read_text().replace(",ann,", ",zed,", 1)
    (corpus / "manifest.csv").write_text(text)
    with pytest.raises(ManifestError, match="fix it by hand"):
        undo_last(corpus)


def test_span_text_round_trips() -> None:
    assert parse_spans(format_spans([(2, 3), (0.25, 1)])) == [(0.25, 1.0), (2.0, 3.0)]
    with pytest.raises(ManifestError, match="not a JSON list"):
        parse_spans("1-2")
