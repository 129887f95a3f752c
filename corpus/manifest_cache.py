"""The typed manifest kept beside ``manifest.csv``, so a reader pays for it once per change.

Why: parsing, validating and typing a 100,000-row ``manifest.csv`` costs 2.5 s, so a
4-take ``dataset build`` in a grown corpus cost 20x the same build in a small one. After
a full :func:`~guitarlab.corpus.manifest.load_manifest`, the result is written to
``.guitarlab-manifest.arrow`` (Arrow IPC: columns and dtypes as they were, no code runs
on reading, unlike a pickle) with the CSV's size, mtime, ctime, inode and device; the
next reader whose ``stat`` of the CSV matches all of them reads that instead
(0.1 s at 100,000 rows). Any write to the CSV (an append, an edit, a spreadsheet's
save, a copy of the corpus) changes one of them, and the CSV is read again.
``manifest.csv`` stays the truth; the cache is never read while an append is half done
(its journal exists), and never written from a CSV that changed during the read or ends
in a torn line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from guitarlab.corpus.atomic import atomic_path
from guitarlab.corpus.manifest import MANIFEST_NAME, load_manifest

CACHE_NAME = ".guitarlab-manifest.arrow"
CACHE_VERSION = 1
_META_KEY = b"guitarlab"


def _stamp(path: Path) -> list[int]:
    info = os.stat(path)
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev]


def _journal_open(root: Path) -> bool:
    from guitarlab.corpus.appends import JOURNAL_NAME

    return (root / JOURNAL_NAME).exists()


def load_manifest_cached(root: str | os.PathLike) -> pd.DataFrame:
    """:func:`~guitarlab.corpus.manifest.load_manifest`, from the cache while the CSV is
    unchanged (see the module docstring); the same DataFrame either way."""
    root = Path(root)
    csv_path = root / MANIFEST_NAME
    try:
        before = _stamp(csv_path)
    except OSError:
        return load_manifest(root)  # its one line says what is wrong
    journal = _journal_open(root)
    if not journal:
        cached = _read(root / CACHE_NAME, before)
        if cached is not None:
            return cached
    frame = load_manifest(root)
    try:
        whole = _ends_in_newline(csv_path) and _stamp(csv_path) == before
    except OSError:
        return frame
    if whole and not journal and not _journal_open(root):
        _write(root / CACHE_NAME, frame, before)
    return frame


def _ends_in_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return False
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def _read(path: Path, stamp: list[int]) -> pd.DataFrame | None:
    """The cached frame when it was made from the CSV as it is now, else None."""
    import pyarrow as pa
    import pyarrow.feather as feather

    try:
        table = feather.read_table(str(path), memory_map=False)
        meta = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
    except (OSError, ValueError, pa.ArrowException):
        return None  # absent, cut short or from another program: read the CSV
    if meta.get("version") != CACHE_VERSION or meta.get("stamp") != stamp:
        return None
    frame = table.to_pandas()
    frame.attrs["bad_cells"] = [tuple(cell) for cell in meta.get("bad_cells", [])]
    return frame


def _write(path: Path, frame: pd.DataFrame, stamp: list[int]) -> None:
    """Best effort: a corpus on a read-only disk, or a full one, is read from the CSV."""
    import pyarrow as pa
    import pyarrow.feather as feather

    meta = {
        "version": CACHE_VERSION,
        "stamp": stamp,
        "bad_cells": [list(cell) for cell in frame.attrs.get("bad_cells") or []],
    }
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()}
        )
        with atomic_path(path, suffix=".tmp") as tmp:
            feather.write_feather(table, str(tmp), compression="uncompressed")
    except (OSError, pa.ArrowException):
        pass
