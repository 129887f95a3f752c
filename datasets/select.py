"""Choosing a build's rows: ``--where`` queries, labels, file probes.

Everything a build can decide from the manifest and the file headers, before any audio
is read. Conditions are :func:`guitarlab.corpus.query.query_rows`, the one ``--where``
language every stage shares.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from pathlib import Path

import pandas as pd
import soundfile as sf

from guitarlab.corpus.audio import wav_length_problem
from guitarlab.corpus.errors import DatasetError
from guitarlab.corpus.manifest import path_problem
from guitarlab.corpus.query import query_columns, query_rows  # noqa: F401 (build, segment_windows import them here)
from guitarlab.datasets.engine import wav_header


def where_takes(rows: pd.DataFrame, expression: str, *, option: str) -> list[str]:
    """The takes a condition holds out whole; refuses one that splits a take.

    Every file of a returned take matches ``expression``, and no file of any other take
    does, so no held-out file shares its performance with a training file.
    """
    picked = query_rows(rows, expression, option=option, error=DatasetError)
    if picked.empty:
        raise DatasetError(
            f"{option} {expression!r} selects no file; check the column's values with "
            "'guitarlab manifest summary'"
        )
    chosen = set(picked["id"])
    takes = sorted(set(map(str, picked["take"])))
    for take in takes:
        ids = rows.loc[rows["take"].astype(str) == take, "id"]
        outside = [i for i in ids if i not in chosen]
        if outside:
            inside = next(i for i in ids if i in chosen)
            raise DatasetError(
                f"{option} {expression!r} splits take {take}: it selects {inside} but not "
                f"{outside[0]}; hold out whole takes (widen the condition, or re-import with "
                "--take file so every file is its own take)"
            )
    return takes


def select_rows(
    manifest: pd.DataFrame, *, label: str | None, where: str | None = None
) -> pd.DataFrame:
    """The manifest rows a dataset uses: ``where`` applied, label present and varied.

    ``label=None``: the labels come from elsewhere (a build ``--from-segments``), so no
    manifest column is checked for them.
    """
    rows = manifest
    if where:
        rows = query_rows(manifest, where, option="--where", error=DatasetError)
    for column in ("id", "path"):  # one file twice would be trained and tested on twice
        twice = rows[column][rows[column].duplicated() & (rows[column] != "")]
        if len(twice):  # checked on the selection: a build costs what it reads
            raise DatasetError(
                f"manifest.csv: {column} {twice.iloc[0]!r} is in more than one row; remove the "
                "duplicate ('guitarlab manifest check' lists it)"
            )
    if rows.empty:
        raise DatasetError(
            "no manifest rows selected"
            + (f" by --where {where!r}" if where else " (the corpus is empty)")
            + "; check 'guitarlab manifest summary'"
        )
    if label is None:
        return rows.reset_index(drop=True)
    if label not in rows.columns:
        raise DatasetError(
            f"no column {label!r} to use as the label; known: {', '.join(map(str, rows.columns))}"
        )
    values = rows[label].astype(str)
    empty = rows.loc[(values == "") | (values == "nan"), "id"]
    if len(empty):
        raise DatasetError(
            f"row {empty.iloc[0]} has no {label!r} label; fill it in the manifest or exclude it with --where"
        )
    classes = sorted(set(values))
    if len(classes) < 2:
        raise DatasetError(
            f"label {label!r} has one value ({classes[0]}) in the selection; a classifier needs "
            "at least two: add files or change --label/--where"
        )
    return rows.reset_index(drop=True)


def manifest_hash(rows: pd.DataFrame) -> str:
    """sha256 over ``id:sha256`` of the rows used, sorted by id: which files, which bytes."""
    digest = hashlib.sha256()
    for rid, sha in sorted(zip(rows["id"], rows["sha256"], strict=True)):
        digest.update(f"{rid}:{sha}\n".encode())
    return digest.hexdigest()


def probe_files(
    rows: pd.DataFrame, corpus: str | os.PathLike, *, resample: bool = False
) -> tuple[pd.DataFrame, int]:
    """Read every file's header: ``rows`` plus ``file``, ``file_rate``, ``channels``, ``frames``.

    ``frames`` is what the build will produce (after resampling), so splits can be planned
    before any sample is read. Returns the rows and the dataset's sample rate.
    """
    files, rates, channels, frames = [], [], [], []
    for rid, rel in zip(rows["id"], rows["path"], strict=True):
        problem = path_problem(rel)
        if problem:
            raise DatasetError(f"row {rid}: {problem}")
        full = Path(corpus) / rel
        if not full.is_file():
            raise DatasetError(
                f"{full}: file of row {rid} is missing; restore it, or leave it out with --where \"id != '{rid}'\""
            )
        header = _audio_header(full, rid)
        files.append(str(full))
        rates.append(header[0])
        channels.append(header[1])
        frames.append(header[2])
    counts = Counter(rates)
    rate = max(counts, key=lambda r: (counts[r], r))
    out = rows.copy()
    out["file"] = files
    out["file_rate"] = rates
    out["channels"] = channels
    out["file_frames"] = frames
    odd = out[out["file_rate"] != rate]
    if len(odd) and not resample:
        first = odd.iloc[0]
        raise DatasetError(
            f"{first['file']}: {first['file_rate']} Hz but the other files are {rate} Hz; "
            "pass --resample to convert it, or leave it out with --where"
        )
    out["frames"] = [resampled_frames(n, r, rate) for n, r in zip(frames, rates, strict=True)]
    return out, rate


def _audio_header(full: Path, rid: str) -> tuple[int, int, int]:
    """``(rate, channels, frames)`` of a row's file: a PCM or float WAV's from its first
    bytes, anything else (and a WAV cut off mid-data, refused) through libsndfile."""
    try:
        header = wav_header(str(full))
        if header is not None:
            return header
        info = sf.info(str(full))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise DatasetError(
            f"{full}: cannot read the audio header of row {rid} ({str(exc).splitlines()[0]}); re-export it or leave it out with --where"
        ) from None
    cut = wav_length_problem(full)
    if cut:
        raise DatasetError(f"{full}: row {rid}: {cut}, or leave it out with --where")
    return int(info.samplerate), int(info.channels), int(info.frames)


def resampled_frames(frames: int, rate: int, target: int) -> int:
    if rate == target:
        return int(frames)
    g = math.gcd(rate, target)
    return int(math.ceil(frames * (target // g) / (rate // g)))


def drop_excluded(manifest: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(kept, excluded)``: rows a review marked ``excluded`` (with a reason) leave the build."""
    from guitarlab.corpus.edits import EXCLUDED

    if EXCLUDED not in manifest:
        return manifest, manifest.iloc[0:0]
    out = manifest[EXCLUDED].astype(str).str.strip() != ""
    return manifest[~out].reset_index(drop=True), manifest[out]


def excluded_spans(manifest: pd.DataFrame, rate: int) -> dict[str, list[tuple[int, int]]]:
    """Per take, the spans a review marked bad, as ``(start, end)`` samples at ``rate``.

    Spans are seconds of the take stored on its rows (``exclude_spans``); a span on any
    row of a take holds for every tone of it, since renders keep their take's timing.
    """
    from guitarlab.corpus.edits import EXCLUDE_SPANS, take_spans
    from guitarlab.corpus.errors import GuitarlabError

    if EXCLUDE_SPANS not in manifest:
        return {}
    marked = manifest.loc[manifest[EXCLUDE_SPANS].astype(str).str.strip() != "", "take"]
    out = {}
    for take in sorted(set(marked.astype(str))):
        try:
            spans = take_spans(manifest, take)
        except GuitarlabError as exc:
            raise DatasetError(str(exc)) from None
        out[take] = [(math.floor(s * rate), math.ceil(e * rate)) for s, e in spans]
    return out
