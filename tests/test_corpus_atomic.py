"""Atomic writes: the target holds the old or the whole new content, never a part."""

from __future__ import annotations

from pathlib import Path

import pytest

from guitarlab.corpus.atomic import atomic_path, write_text_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = write_text_atomic(tmp_path / "state.json", '{"epoch": 1}')
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text('{"epo')
        raise RuntimeError("killed mid-write")
    assert target.read_text() == '{"epoch": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_finished_write_replaces_the_file(tmp_path: Path) -> None:
    target = write_text_atomic(tmp_path / "sub" / "notes.txt", "old")
    write_text_atomic(target, "new")
    assert target.read_text() == "new" and len(list(target.parent.iterdir())) == 1
