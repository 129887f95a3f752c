"""corpus/manifest_cache.py: the typed manifest read from its cache only while the CSV is
unchanged, and the same DataFrame as a full read either way."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from conftest import write_tone

from guitarlab.corpus import manifest_cache
from guitarlab.corpus.appends import JOURNAL_NAME
from guitarlab.corpus.intake import import_folder
from guitarlab.corpus.manifest import MANIFEST_NAME, load_manifest
from guitarlab.corpus.manifest_cache import CACHE_NAME, load_manifest_cached


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    for gi, guitar in enumerate(("ST", "LP")):
        for tone in ("raw", "clean"):
            write_tone(src / f"{guitar}_lead_{tone}.wav", seconds=0.2, freq_hz=200.0 + 50 * gi)
    import_folder(src, tmp_path / "corpus", progress=False)
    return tmp_path / "corpus"


def same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return (
        a.equals(b)
        and list(a.columns) == list(b.columns)
        and list(a.dtypes) == list(b.dtypes)
        and a.attrs == b.attrs
        and isinstance(b.index, pd.RangeIndex)
    )


def count_full_reads(monkeypatch) -> list[int]:
    reads: list[int] = []
    real = manifest_cache.load_manifest

    def counting(root):
        reads.append(1)
        return real(root)

    monkeypatch.setattr(manifest_cache, "load_manifest", counting)
    return reads


def test_the_cache_gives_the_full_reads_frame_and_spares_the_parse(corpus, monkeypatch):
    text = (corpus / MANIFEST_NAME).read_text()
    (corpus / MANIFEST_NAME).write_text(text.replace(",-", ",x-", 1))  # a bad number cell
    full = load_manifest(corpus)
    assert full.attrs["bad_cells"]
    reads = count_full_reads(monkeypatch)
    first = load_manifest_cached(corpus)
    second = load_manifest_cached(corpus)
    assert reads == [1] and (corpus / CACHE_NAME).is_file()
    assert same(full, first) and same(full, second)


def test_any_change_to_the_csv_is_read_again(corpus, monkeypatch):
    load_manifest_cached(corpus)
    reads = count_full_reads(monkeypatch)
    path = corpus / MANIFEST_NAME
    info = os.stat(path)
    # an edit of the same size with its mtime put back: the ctime still moves
    text = path.read_text()
    path.write_text(text.replace(",lead,", ",leaf,", 1))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert load_manifest_cached(corpus)["phrase"].tolist().count("leaf") == 1
    assert reads == [1]
    rows = len(load_manifest(corpus))
    with open(path, "a", encoding="utf-8") as handle:  # an appended row
        handle.write(text.splitlines()[-1].replace("t001", "t009") + "\n")
    assert len(load_manifest_cached(corpus)) == len(load_manifest(corpus)) == rows + 1
    assert reads == [1, 1]


def test_a_half_done_append_or_a_damaged_cache_is_never_read(corpus, monkeypatch):
    load_manifest_cached(corpus)
    reads = count_full_reads(monkeypatch)
    (corpus / JOURNAL_NAME).write_text("{}")
    load_manifest_cached(corpus)
    assert reads == [1]
    (corpus / JOURNAL_NAME).unlink()
    (corpus / CACHE_NAME).write_bytes(b"ARROW1 cut short")
    assert same(load_manifest(corpus), load_manifest_cached(corpus)) and reads == [1, 1]


def test_a_torn_last_line_is_not_cached(corpus):
    path = corpus / MANIFEST_NAME
    rows = len(load_manifest(corpus))
    path.write_bytes(path.read_bytes() + b"les_paul-lead-t0")  # a writer cut off
    assert len(load_manifest_cached(corpus)) == rows
    assert not (corpus / CACHE_NAME).exists()
