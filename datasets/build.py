"""Build a dataset folder from a corpus: select rows, plan leak-free splits, stream windows.

The edge of the dataset stage. Everything that can be decided without audio (which
rows, which spans, how many windows go where) is decided first from the file headers;
then the files are read one at a time and their windows appended to one ``.npy`` per
split, so peak memory is one file, whatever the size of the corpus.

Folder layout::

    dataset.json        every option, label map, spans per take, counts, rows, notes
    train_x.npy         float32 (N, window, 1)   (likewise val_x.npy, test_x.npy)
    train_y.npy         int64 (N,) label index   (likewise val_y.npy, test_y.npy)
    windows.csv         one row per window: split, index, id, take, tone, guitar, phrase, start, label
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm import tqdm

from guitarlab.corpus.audio import mono_at_rate, wav_length_problem
from guitarlab.corpus.defaults import VERSION, WINDOW
from guitarlab.corpus.errors import DatasetError, GuitarlabError
from guitarlab.corpus.manifest import load_manifest, path_problem
from guitarlab.datasets.splits import SPLITS, file_windows, plan_splits
from guitarlab.datasets.windows import (
    SILENCE_FLOOR_DBFS,
    SILENT_STD,
    STANDARDIZE_MODES,
    first_sound_sample,
    sounding,
    standardize_as,
)

log = logging.getLogger("guitarlab.datasets")

FORMAT = "guitarlab-dataset"
FORMAT_VERSION = 1
META_NAME = "dataset.json"
WINDOWS_NAME = "windows.csv"
WINDOW_COLUMNS = ["split", "index", "id", "take", "tone", "guitar", "phrase", "start", "label"]


def x_name(split: str) -> str:
    return f"{split}_x.npy"


def y_name(split: str) -> str:
    return f"{split}_y.npy"


# ---------------------------------------------------------------- selecting rows


def numeric_view(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with every text column whose values are all numbers (or empty) as numbers.

    Extra manifest columns are stored as text (``fret`` = ``"03"``); queries compare
    them as numbers through this view, so ``"fret >= 6"`` means what it says.
    """
    out = rows.copy()
    for column in out.columns:
        if not (
            pd.api.types.is_object_dtype(out[column]) or pd.api.types.is_string_dtype(out[column])
        ):
            continue
        text = out[column].astype(str).str.strip()
        filled = text[text != ""]
        if filled.empty:
            continue
        numbers = pd.to_numeric(filled, errors="coerce")
        if numbers.notna().all():
            out[column] = pd.to_numeric(text.where(text != ""), errors="coerce")
    return out


def query_rows(rows: pd.DataFrame, expression: str, *, option: str = "--where") -> pd.DataFrame:
    """The rows of ``rows`` a pandas query selects, numbers compared as numbers."""
    try:
        picked = numeric_view(rows).query(expression, engine="python")
    except Exception as exc:  # pandas raises many kinds for a bad expression
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(
            f"{option} {expression!r} is not a valid query over the manifest columns ({reason}); "
            'example: "tone != \'distorted\'" or "fret >= 6"'
        ) from None
    if not isinstance(picked, pd.DataFrame):
        raise DatasetError(f"{option} {expression!r} must be a condition such as \"tone == 'raw'\"")
    return rows.loc[picked.index]


def query_columns(expression: str | None, columns) -> list[str]:
    """The manifest columns an expression names, in order of appearance."""
    if not expression:
        return []
    names = re.findall(r"`([^`]+)`|([A-Za-z_][A-Za-z0-9_]*)", expression)
    known, out = set(map(str, columns)), []
    for quoted, plain in names:
        name = quoted or plain
        if name in known and name not in out:
            out.append(name)
    return out


def where_takes(rows: pd.DataFrame, expression: str, *, option: str) -> list[str]:
    """The takes a condition holds out whole; refuses one that splits a take.

    Every file of a returned take matches ``expression``, and no file of any other take
    does, so no held-out file shares its performance with a training file.
    """
    picked = query_rows(rows, expression, option=option)
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


def select_rows(manifest: pd.DataFrame, *, label: str, where: str | None = None) -> pd.DataFrame:
    """The manifest rows a dataset uses: ``where`` applied, label present and varied."""
    for column in ("id", "path"):  # one file twice would be trained and tested on twice
        twice = manifest[column][manifest[column].duplicated() & (manifest[column] != "")]
        if len(twice):
            raise DatasetError(
                f"manifest.csv: {column} {twice.iloc[0]!r} is in more than one row; remove the "
                "duplicate ('guitarlab manifest check' lists it)"
            )
    rows = manifest
    if where:
        rows = query_rows(manifest, where, option="--where")
    if rows.empty:
        raise DatasetError(
            "no manifest rows selected"
            + (f" by --where {where!r}" if where else " (the corpus is empty)")
            + "; check 'guitarlab manifest summary'"
        )
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
        try:
            info = sf.info(str(full))
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise DatasetError(
                f"{full}: cannot read the audio header of row {rid} ({str(exc).splitlines()[0]}); re-export it or leave it out with --where"
            ) from None
        cut = wav_length_problem(full)
        if cut:
            raise DatasetError(f"{full}: row {rid}: {cut}, or leave it out with --where")
        files.append(str(full))
        rates.append(int(info.samplerate))
        channels.append(int(info.channels))
        frames.append(int(info.frames))
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
    out["frames"] = [_resampled_frames(n, r, rate) for n, r in zip(frames, rates, strict=True)]
    return out, rate


def _resampled_frames(frames: int, rate: int, target: int) -> int:
    if rate == target:
        return int(frames)
    g = math.gcd(rate, target)
    return int(math.ceil(frames * (target // g) / (rate // g)))


# ---------------------------------------------------------------- streaming writers


class _NpyAppender:
    """An ``.npy`` file of known shape written front to back, never held in memory."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path, self.shape, self.dtype = path, tuple(shape), np.dtype(dtype)
        self.handle = open(path, "wb")  # noqa: SIM115 - closed in close()
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": self.shape,
        }
        np.lib.format.write_array_header_1_0(self.handle, header)
        self.header_bytes = self.handle.tell()
        self.rows = 0

    def append(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if block.shape[1:] != self.shape[1:]:
            raise DatasetError(f"{self.path.name}: block {block.shape} does not fit {self.shape}")
        self.handle.write(memoryview(block).cast("B"))
        self.rows += block.shape[0]

    def close(self) -> None:
        self.handle.close()
        if self.rows != self.shape[0]:
            raise DatasetError(
                f"{self.path.name}: wrote {self.rows} windows, planned {self.shape[0]}; a file changed during the build, run it again"
            )


def _rescale_npy(path: Path, *, mean: float, std: float, chunk_rows: int = 256) -> None:
    """``(x - mean) / std`` over an ``.npy`` file in place, a chunk at a time."""
    scale = np.float32(1.0 / std if std > SILENT_STD else 1.0)
    with open(path, "r+b") as handle:
        version = np.lib.format.read_magic(handle)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read_header(handle)
        offset = handle.tell()
        row_items = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
        for first in range(0, shape[0], chunk_rows):
            n = min(chunk_rows, shape[0] - first)
            position = offset + first * row_items * dtype.itemsize
            handle.seek(position)
            block = np.fromfile(handle, dtype=dtype, count=n * row_items)
            block -= np.float32(mean)
            block *= scale
            handle.seek(position)
            handle.write(memoryview(block).cast("B"))


# ---------------------------------------------------------------- reading one file


def load_mono(
    path: str,
    *,
    gain_db: float | None,
    rate: int,
    target_rate: int,
    buffer: np.ndarray | None = None,
    sha256: str = "",
) -> tuple[np.ndarray, bool]:
    """One file as mono float32 at ``target_rate`` with its gain applied; (audio, was_mixed).

    A mono file at the target rate is decoded straight into ``buffer`` when it is big
    enough (the result is then a view of it), which spares a fresh allocation per file.
    With ``sha256`` the bytes are read once, checked against it, and decoded from memory.
    """
    source: str | io.BytesIO = path
    if sha256:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise DatasetError(f"{path}: cannot read ({exc.strerror})") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise DatasetError(
                f"{path}: sha256 differs from its manifest row: the file changed since it was "
                "added; run 'guitarlab manifest check'"
            )
        source = io.BytesIO(data)
    try:
        with sf.SoundFile(source) as handle:
            frames, channels = handle.frames, handle.channels
            if channels == 1 and buffer is not None and buffer.size >= frames:
                audio = handle.read(frames, dtype="float32", out=buffer[:frames])
            else:
                audio = handle.read(frames, dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise DatasetError(f"{path}: cannot read audio ({str(exc).splitlines()[0]})") from None
    mixed = audio.ndim == 2
    audio, _ = mono_at_rate(audio, rate, target_rate=target_rate, gain_db=gain_db)
    return np.ascontiguousarray(audio), mixed


# ---------------------------------------------------------------- the build


def build_dataset(
    corpus: str | os.PathLike,
    out: str | os.PathLike,
    *,
    label: str = "guitar",
    window: int = WINDOW,
    hop: int | None = None,
    split: str | None = None,
    test_seconds: float | None = None,
    test_windows: int = 12,
    val: str | None = None,
    val_fraction: float = 0.2,
    same_span_all: bool = False,
    group_by: str | None = None,
    where: str | None = None,
    standardize: str = "file",
    apply_gain: bool = False,
    resample: bool = False,
    seed: int = 0,
    held_out_from: str | os.PathLike | None = None,
    test_where: str | None = None,
    val_where: str | None = None,
    test_groups: list[str] | str | None = None,
    trim_silence: bool = False,
    skip_silence: bool = False,
    gate_dbfs: float = SILENCE_FLOOR_DBFS,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Cut a corpus into a dataset folder with leak-free train/val/test windows.

    Parameters
    ----------
    corpus : path
        Corpus folder (``manifest.csv`` and its audio).
    out : path
        Dataset folder to create; refused if it exists, unless ``overwrite``.
    label : str
        Manifest column to classify: ``guitar``, ``pickup``, ``phrase``, ``tone``, ...
    window, hop : int
        Window length and hop in samples (hop defaults to the window: no overlap).
    split : {"span", "take", "group"}, optional
        What the test set holds out: a span of every take, whole takes, or whole values
        of ``group_by``. Default: ``"take"`` with ``test_where``, ``"group"`` with
        ``test_groups``, else ``"span"``.
    test_seconds, test_windows : float, int
        Test span length for ``split="span"``: ``test_windows`` windows, or
        ``test_seconds`` rounded to whole windows (2.18 s at 44.1 kHz -> 12 x 8,000).
    val : {"span", "take", "random"}, optional
        Validation: a span per take disjoint from the test span, whole takes, or the
        seed's random share of windows (leaky, flagged in ``dataset.json``). Default:
        ``"take"`` with ``val_where``, else ``"span"``.
    standardize : {"file", "train", "none"}
        Each file by its own mean/std (the seed), or all by the training windows' mean/std.
    held_out_from : path, optional
        An older dataset folder: its takes keep exactly their test/validation spans.
    test_where, val_where : str, optional
        Name the test (validation) set: a pandas query over manifest columns, numbers
        compared as numbers (``"fret >= 6"``). It must select whole takes.
    test_groups : list of str or "a,b", optional
        The values of ``group_by`` held out for test (``split="group"``).
    trim_silence : bool
        Start each take's windows at its first sound (``first_sound_sample`` of the
        earliest file of the take, so every tone of a take keeps one timeline).
    skip_silence, gate_dbfs : bool, float
        The energy gate: leave out every window whose RMS (as recorded, before gain or
        standardization) is below ``gate_dbfs``: note lead-ins, gaps between phrases.
        Silence is not evidence of a guitar. Off by default (the seed keeps every window).

    Returns
    -------
    Path
        The dataset folder.
    """
    corpus, out = Path(corpus), Path(out)
    if isinstance(test_groups, str):
        test_groups = [g.strip() for g in test_groups.split(",") if g.strip()]
    test_groups = list(test_groups or []) or None
    split, val = _resolve_split(split, val, test_where, val_where, test_groups, held_out_from)
    window = int(window)
    hop = window if hop is None else int(hop)
    if window < 1 or hop < 1:
        raise DatasetError(f"window and hop must be positive sample counts, got {window}, {hop}")
    if standardize not in STANDARDIZE_MODES:
        raise DatasetError(
            f"unknown standardize {standardize!r}; use one of {', '.join(STANDARDIZE_MODES)}"
        )
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DatasetError(
            f"{out}: exists and is not empty; choose another --out or pass --overwrite"
        )
    try:
        manifest = load_manifest(corpus)
    except GuitarlabError as exc:
        raise DatasetError(str(exc)) from None

    rows = select_rows(manifest, label=label, where=where)
    rows, rate = probe_files(rows, corpus, resample=resample)
    notes: list[str] = []
    rows["offset"] = take_onsets(rows, rate) if trim_silence else 0
    if held_out_from:  # takes of the old dataset keep their timeline exactly
        from guitarlab.datasets.folder import read_meta

        old_takes = read_meta(held_out_from)["takes"]
        old_offset = (
            rows["take"]
            .astype(str)
            .map(lambda t: int(old_takes[t].get("offset", 0)) if t in old_takes else None)
        )
        rows["offset"] = old_offset.where(old_offset.notna(), rows["offset"]).astype(int)
    short = rows[rows["frames"] - rows["offset"] < window]
    if len(short):
        first = short.iloc[0]
        after = " after its silent lead-in" if trim_silence else ""
        raise DatasetError(
            f"{first['file']}: {first['frames'] - first['offset']} samples{after}, shorter than "
            f"one window of {window}; use a smaller --window or leave it out with --where"
        )
    if trim_silence:
        trimmed = rows.drop_duplicates("take")["offset"]
        notes.append(
            f"--trim-silence: windows start at each take's first sound "
            f"(lead-in {trimmed.min() / rate:.3f}-{trimmed.max() / rate:.3f} s skipped)"
        )
    named: dict[str, str] = {}
    for option, expression, role in (
        ("--test-where", test_where, "test"),
        ("--val-where", val_where, "val"),
    ):
        if expression:
            for take in where_takes(rows, expression, option=option):
                if named.get(take) == "test":
                    raise DatasetError(
                        f"take {take} is selected by both --test-where and --val-where; "
                        "make them disjoint"
                    )
                named[take] = role
    if test_seconds is not None:
        test_windows = max(1, int(round(float(test_seconds) * rate / window)))
    previous, previous_meta = None, None
    if held_out_from:
        from guitarlab.datasets.folder import read_meta

        previous_meta = read_meta(held_out_from)
        old = previous_meta["options"]
        if (old["split"], old["val"]) != (split, val):
            raise DatasetError(
                f"{held_out_from}: built with --split {old['split']} --val {old['val']}; "
                f"use the same to keep its held-out spans (asked: {split}, {val})"
            )
        previous = previous_meta["takes"]

    offsets = rows.groupby("take")["offset"].first()
    plan = plan_splits(
        rows.assign(frames=rows["frames"] - rows["offset"]),
        label=label,
        window=window,
        hop=hop,
        split=split,
        test_windows=test_windows,
        val=val,
        val_fraction=val_fraction,
        same_span_all=same_span_all,
        group_by=group_by,
        seed=seed,
        previous=previous,
        named_roles=named,
        test_groups=test_groups,
    )
    plan.takes = {
        t: sp if t in (previous or {}) else sp.shifted(int(offsets[t]))
        for t, sp in plan.takes.items()
    }
    for role, expression in (("test", test_where), ("val", val_where)):
        for take, spans in plan.takes.items() if expression else ():
            if (spans.role == role) != (named.get(take) == role):
                raise DatasetError(
                    f"take {take} is {spans.role} in {held_out_from}, but --{role}-where "
                    f"{expression!r} now puts it {'in' if named.get(take) == role else 'out of'} "
                    f"{role}; keep the old condition or drop --held-out-from"
                )
    notes += plan.notes
    if plan.leaky:
        log.warning("dataset %s: %s", out, plan.notes[-1])
    partial = rows.loc[rows["status"].astype(str) == "partial", "id"].tolist()
    if partial:
        notes.append(
            f"{len(partial)} partial take file(s) included (e.g. {partial[0]}); exclude them with --where \"status != 'partial'\""
        )
    resampled = rows.loc[rows["file_rate"] != rate, "id"].tolist()
    if resampled:
        notes.append(f"{len(resampled)} file(s) resampled to {rate} Hz (e.g. {resampled[0]})")
    if apply_gain and standardize == "file":
        notes.append("apply_gain has no effect on per-file standardized windows (scale-invariant)")

    label_names = sorted(set(rows[label].astype(str)))
    if previous_meta is not None:
        # Old classes keep their indices so a retrained model can widen its output layer.
        kept = [name for name in previous_meta.get("label_names", []) if name in label_names]
        label_names = kept + [name for name in label_names if name not in kept]
    label_index = {name: i for i, name in enumerate(label_names)}
    options = {
        "label": label,
        "window": window,
        "hop": hop,
        "split": split,
        "test_seconds": test_seconds,
        "test_windows": int(test_windows),
        "val": val,
        "val_fraction": float(val_fraction),
        "same_span_all": bool(same_span_all),
        "group_by": group_by,
        "where": where,
        "standardize": standardize,
        "apply_gain": bool(apply_gain),
        "resample": bool(resample),
        "seed": int(seed),
        "held_out_from": str(held_out_from) if held_out_from else None,
        "test_where": test_where,
        "val_where": val_where,
        "test_groups": test_groups,
        "trim_silence": bool(trim_silence),
        "skip_silence": bool(skip_silence),
        "gate_dbfs": float(gate_dbfs) if skip_silence else None,
    }
    columns = _used_columns(rows, label, group_by, where, test_where, val_where)
    roles = {t: sp.role for t, sp in plan.takes.items()}
    held_out = {
        "split": split,
        "val": val,
        "test_where": test_where,
        "val_where": val_where,
        "test_groups": plan.test_groups or None,
        "group_by": group_by,
        "columns": columns,
        "test_takes": sorted(t for t, r in roles.items() if r == "test"),
        "val_takes": sorted(t for t, r in roles.items() if r == "val"),
    }

    def grid(row: pd.Series) -> dict[str, np.ndarray]:
        return file_windows(
            int(row["frames"]),
            plan.takes[str(row["take"])],
            window=window,
            hop=hop,
            val=val,
            val_fraction=val_fraction,
            seed=seed,
            file_id=str(row["id"]),
            start=int(row["offset"]),
        )

    silent = (
        silent_starts(rows, grid, window=window, rate=rate, floor_dbfs=gate_dbfs)
        if skip_silence
        else {}
    )

    def layout(row: pd.Series) -> dict[str, np.ndarray]:
        starts = grid(row)
        quiet = silent.get(str(row["id"]))
        if quiet is None or not quiet.size:
            return starts
        return {
            name: (st if name == "dropped" else st[~np.isin(st, quiet)])
            for name, st in starts.items()
        }

    # Pass 1, headers only: how many windows of each split, label and tone.
    totals = dict.fromkeys(SPLITS, 0)
    counts: Counter = Counter()
    dropped = 0
    for _, row in rows.iterrows():
        starts = layout(row)
        dropped += int(starts["dropped"][0])
        for name in SPLITS:
            n = int(starts[name].size)
            totals[name] += n
            if n:
                counts[(name, str(row[label]), str(row["tone"]))] += n
    if skip_silence:
        skipped = sum(int(v.size) for v in silent.values())
        notes.append(
            f"--skip-silence: {skipped} window(s) below {gate_dbfs:g} dBFS left out as silence"
        )
    trained = {lab for (s, lab, _), n in counts.items() if s == "train"}
    unseen = sorted({lab for (s, lab, _) in counts if s == "test"} - trained)
    if unseen:
        notes.append(
            f"test label(s) {', '.join(unseen)} have no training windows: the model cannot predict them"
        )
    if totals["train"] == 0:
        raise DatasetError(
            "no training windows are left after holding out test and validation time; "
            "use a shorter --window, --test-seconds or --val-fraction"
        )

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".building", dir=out.parent))
    try:
        stats = _stream(
            rows, work, layout, totals, window, rate, label, label_index, apply_gain,
            standardize, notes, progress,
        )  # fmt: skip
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "guitarlab_version": VERSION,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "corpus": str(corpus.resolve()),
            "options": options,
            "label": label,
            "label_names": label_names,
            "sample_rate": int(rate),
            "window": window,
            "hop": hop,
            "test_span_samples": int(test_windows) * window if split == "span" else None,
            "manifest_hash": manifest_hash(rows),
            "leaky": bool(plan.leaky),
            "standardization": stats,
            "totals": totals,
            "dropped_windows": dropped,
            "counts": [
                {"split": s, "label": lab, "tone": tone, "windows": n}
                for (s, lab, tone), n in sorted(counts.items())
            ],
            "held_out": held_out,
            "takes": plan.takes_json(),
            "rows": _row_info(rows, label, columns),
            "files": {s: {"x": x_name(s), "y": y_name(s)} for s in SPLITS},
            "windows_table": WINDOWS_NAME,
            "notes": notes,
        }
        if previous_meta is not None:
            meta["held_out_from_hash"] = previous_meta.get("manifest_hash")
        with open(work / META_NAME, "w", encoding="utf-8") as handle:
            json.dump(meta, handle, indent=1)
            handle.write("\n")
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    for note in notes:
        log.info("dataset %s: %s", out, note)
    return out


def _resolve_split(
    split: str | None,
    val: str | None,
    test_where: str | None,
    val_where: str | None,
    test_groups: list[str] | None,
    held_out_from,
) -> tuple[str, str]:
    """``split`` and ``val`` with their defaults, refusing options that contradict them."""
    if test_where and test_groups:
        raise DatasetError("give --test-where or --test-groups, not both")
    if split is None:
        split = "take" if test_where else "group" if test_groups else "span"
    if val is None:
        val = "take" if val_where else "span"
    if test_where and split != "take":
        raise DatasetError(
            f"--test-where holds out whole takes; use it with --split take (or leave --split "
            f"out), not --split {split}"
        )
    if test_groups and split != "group":
        raise DatasetError(
            "--test-groups names values of --group-by; use it with --split group --group-by COLUMN"
        )
    if val_where and val != "take":
        raise DatasetError(f"--val-where holds out whole takes; leave --val out (not --val {val})")
    if val_where and split == "span":
        raise DatasetError(
            "--val-where holds out whole takes, but --split span keeps every take in training; "
            "add --test-where or --split take/group"
        )
    return split, val


def silent_starts(
    rows: pd.DataFrame, grid, *, window: int, rate: int, floor_dbfs: float
) -> dict[str, np.ndarray]:
    """Per file id, the start samples of its windows (on ``grid(row)``) below the gate.

    Reads every file once more (the gate is measured on the audio as recorded).
    """
    out = {}
    for _, row in rows.iterrows():
        starts = np.unique(
            np.concatenate([v for k, v in grid(row).items() if k != "dropped"] or [[]])
        ).astype(np.int64)
        if not starts.size:
            continue
        audio, _ = load_mono(
            row["file"], gain_db=None, rate=int(row["file_rate"]), target_rate=rate
        )
        blocks = np.stack([audio[s : s + window] for s in starts])
        out[str(row["id"])] = starts[~sounding(blocks, floor_dbfs=floor_dbfs)]
    return out


def take_onsets(rows: pd.DataFrame, rate: int) -> list[int]:
    """Per row, its take's first sound in samples: the earliest onset among the take's files.

    Reads every file once (one at a time); a take's tones keep one shared timeline.
    """
    onset = []
    for _, row in rows.iterrows():
        audio, _ = load_mono(
            row["file"], gain_db=None, rate=int(row["file_rate"]), target_rate=rate
        )
        onset.append(first_sound_sample(audio, rate))
    per_take = pd.Series(onset, index=rows.index).groupby(rows["take"].astype(str)).transform("min")
    return [int(o) for o in per_take]


def _used_columns(rows: pd.DataFrame, label: str, group_by, *expressions) -> list[str]:
    """The manifest columns a build used to choose, label or split rows."""
    out = [label] + ([group_by] if group_by else [])
    for expression in expressions:
        out += [c for c in query_columns(expression, rows.columns) if c not in out]
    return out


def _row_info(rows: pd.DataFrame, label: str, columns: list[str] | None = None) -> list[dict]:
    keep = ["id", "path", "sha256", "take", "tone", "guitar", "phrase", "status"]
    keep += [c for c in columns or [] if c not in keep and c in rows.columns]
    info = []
    for _, row in rows.iterrows():
        item = {k: str(row[k]) for k in keep if k in row}
        item.update(
            label=str(row[label]),
            frames=int(row["frames"]),
            channels=int(row["channels"]),
            file_rate=int(row["file_rate"]),
        )
        info.append(item)
    return info


def _prefetched(rows: pd.DataFrame, prepare):
    """``(row, prepare(row))`` in order, preparing the next file while this one is written.

    soundfile releases the GIL while decoding, so reading file i+1 overlaps writing file
    i; at most two files are in memory at once, whatever the corpus size.
    """
    from concurrent.futures import ThreadPoolExecutor

    items = [row for _, row in rows.iterrows()]
    if not items:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataset-read") as pool:
        future = pool.submit(prepare, items[0])
        try:
            for index, row in enumerate(items):
                result = future.result()
                if index + 1 < len(items):
                    future = pool.submit(prepare, items[index + 1])
                yield row, result
                del result
        finally:
            future.cancel()


def _blocks(audio: np.ndarray, starts: np.ndarray, window: int):
    """The windows at ``starts`` as ``(n, window)`` blocks: runs of back-to-back windows
    are reshaped views of ``audio`` (no copy); anything else is gathered."""
    if starts.size == 0:
        return
    breaks = np.flatnonzero(np.diff(starts) != window) + 1
    for run in np.split(starts, breaks):
        first = int(run[0])
        yield audio[first : first + run.size * window].reshape(run.size, window)


def _stream(
    rows: pd.DataFrame,
    work: Path,
    layout,
    totals: dict[str, int],
    window: int,
    rate: int,
    label: str,
    label_index: dict[str, int],
    apply_gain: bool,
    standardize: str,
    notes: list[str],
    progress: bool,
) -> dict:
    """Read each file once and append its windows to the split files; returns standardization."""
    xs = {s: _NpyAppender(work / x_name(s), (totals[s], window, 1), np.float32) for s in SPLITS}
    ys = {s: _NpyAppender(work / y_name(s), (totals[s],), np.int64) for s in SPLITS}
    positions = dict.fromkeys(SPLITS, 0)
    train_sum = train_sq = 0.0
    train_n = 0
    mixed_ids, silent_ids = [], []
    with open(work / WINDOWS_NAME, "w", newline="", encoding="utf-8") as table_handle:
        table = csv.writer(table_handle)
        table.writerow(WINDOW_COLUMNS)
        bar = tqdm(
            total=int(rows["frames"].sum()) / rate,
            desc="dataset",
            unit="s",
            unit_scale=True,
            disable=not progress,
        )
        # two buffers in turn: one being filled by the reader, one being written out
        longest = int(rows["file_frames"].max())
        buffers = [np.empty(longest, dtype=np.float32) for _ in range(2)]
        turn = iter(range(len(rows)))

        def prepare(row: pd.Series) -> tuple[np.ndarray, bool, bool]:
            gain = row.get("gain_db") if apply_gain else None
            gain = float(gain) if gain is not None and not pd.isna(gain) else None
            audio, mixed = load_mono(
                row["file"],
                gain_db=gain,
                rate=int(row["file_rate"]),
                target_rate=rate,
                buffer=buffers[next(turn) % 2],
                sha256=str(row.get("sha256", "") or ""),
            )
            if audio.shape[0] != int(row["frames"]):
                raise DatasetError(
                    f"{row['file']}: {audio.shape[0]} samples read, header said {row['frames']}; the file changed, run the build again"
                )
            silent = False
            if standardize == "file":  # over the windowed part: a silent lead-in is no data
                audio, silent = standardize_as(
                    audio, "file", offset=int(row["offset"]), in_place=True
                )
            return audio, mixed, silent

        for row, (audio, mixed, silent) in _prefetched(rows, prepare):
            if mixed:
                mixed_ids.append(str(row["id"]))
            if silent:
                silent_ids.append(str(row["id"]))
            starts = layout(row)
            code = label_index[str(row[label])]
            fixed = (row["id"], row["take"], row["tone"], row["guitar"], row["phrase"])
            for name in SPLITS:
                st = starts[name]
                if not st.size:
                    continue
                for block in _blocks(audio, st, window):
                    if name == "train" and standardize == "train":
                        train_sum += float(block.sum(dtype=np.float64))
                        train_sq += float(np.square(block, dtype=np.float64).sum())
                        train_n += block.size
                    xs[name].append(block[:, :, None])
                ys[name].append(np.full(st.size, code, dtype=np.int64))
                first = positions[name]
                positions[name] += st.size
                table.writerows(
                    (name, first + i, *fixed, s, code) for i, s in enumerate(st.tolist())
                )
            del audio
            bar.update(int(row["frames"]) / rate)
        bar.close()
    for writer in (*xs.values(), *ys.values()):
        writer.close()
    if mixed_ids:
        notes.append(f"{len(mixed_ids)} multichannel file(s) mixed to mono (e.g. {mixed_ids[0]})")
        log.info("mixed %d multichannel file(s) to mono", len(mixed_ids))
    if silent_ids:
        notes.append(f"{len(silent_ids)} silent file(s) only mean-centred (e.g. {silent_ids[0]})")
    if standardize != "train":
        return {"mode": standardize}
    mean = train_sum / train_n
    std = math.sqrt(max(train_sq / train_n - mean * mean, 0.0))
    for name in SPLITS:
        _rescale_npy(work / x_name(name), mean=mean, std=std)
    return {"mode": "train", "mean": mean, "std": std}
