"""Reading a dataset folder: numpy arrays, window tables, tf.data pipelines, evaluation clips.

The trainer codes against this module only. Arrays are memory-mapped, so opening a
dataset costs nothing and a tf.data pipeline gathers one batch at a time from disk.

Examples
--------
>>> ds = open_dataset("my-dataset")                       # doctest: +SKIP
>>> x, y = ds.arrays("train")                              # doctest: +SKIP
>>> clips = ds.eval_clips()          # one per test file   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from guitarlab.corpus.errors import DatasetError
from guitarlab.datasets.layout import (
    META_NAME,
    WINDOWS_NAME,
    audio_name,
    starts_name,
    y_name,
)
from guitarlab.datasets.meta import DatasetMeta
from guitarlab.datasets.splits import SPLITS, overlap_problems
from guitarlab.datasets.windows import WindowView


@dataclass
class Clip:
    """One test file's held-out span as consecutive windows, for a per-file vote."""

    id: str
    label: int
    label_name: str
    guitar: str
    phrase: str
    tone: str
    take: str
    start: int
    windows: np.ndarray  # (n, window, 1) float32


def read_meta(path: str | os.PathLike) -> DatasetMeta:
    """``dataset.json`` of a dataset folder, checked to be one, as its typed record."""
    folder = Path(path)
    meta_path = folder / META_NAME
    if not folder.is_dir():
        raise DatasetError(
            f"{folder}: no such dataset folder; build one with 'guitarlab dataset build'"
        )
    if not meta_path.is_file():
        raise DatasetError(
            f"{folder}: not a dataset folder (no {META_NAME}); build one with 'guitarlab dataset build'"
        )
    try:
        data = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{meta_path}: corrupt ({exc}); rebuild the dataset") from None
    return DatasetMeta.from_dict(data, source=str(meta_path))


def _split_name(split: str) -> str:
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    return split


def _load_npy(path: Path, *, rows: int | None) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"{path}: missing from the dataset folder; rebuild the dataset")
    try:
        array = np.load(path, mmap_mode="r")
    except (ValueError, EOFError, OSError):  # an empty array cannot be memory-mapped
        try:
            array = np.load(path)
        except (ValueError, EOFError, OSError) as exc:  # cut short, or not an .npy file
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatasetError(
                f"{path}: corrupt, cut short or damaged ({reason}); rebuild the dataset"
            ) from None
    if rows is not None and array.shape[0] != rows:
        raise DatasetError(
            f"{path}: {array.shape[0]} windows but dataset.json says {rows}; the folder is corrupt, rebuild it"
        )
    return array


class DatasetFolder:
    """An opened dataset folder. Use :func:`open_dataset`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.meta: DatasetMeta = read_meta(self.path)
        self.label_names: list[str] = list(self.meta.label_names)
        self.n_classes: int = len(self.label_names)
        self.window: int = int(self.meta.window)
        self.sample_rate: int = int(self.meta.sample_rate)
        self.hash: str = str(self.meta.manifest_hash or "")
        self._table: pd.DataFrame | None = None

    def __repr__(self) -> str:
        totals = ", ".join(f"{s}={self.meta.totals[s]}" for s in SPLITS)
        return f"DatasetFolder({str(self.path)!r}, {self.n_classes} classes, {totals})"

    @property
    def leaky(self) -> bool:
        return bool(self.meta.leaky)

    def arrays(self, split: str) -> tuple[WindowView, np.ndarray]:
        """``(X, y)``: float32 ``(N, window, 1)`` windows (read on demand from the split's
        memory-mapped audio) and int64 labels."""
        split = _split_name(split)
        rows = int(self.meta.totals[split])
        audio = _load_npy(self.path / audio_name(split), rows=None)
        starts = _load_npy(self.path / starts_name(split), rows=rows)
        y = _load_npy(self.path / y_name(split), rows=rows)
        if audio.ndim != 1 or starts.ndim != 1:
            raise DatasetError(
                f"{self.path / audio_name(split)}: shape {audio.shape}, starts {starts.shape}; "
                "the folder is corrupt, rebuild it"
            )
        try:
            return WindowView(audio, starts, self.window), y
        except DatasetError as exc:
            raise DatasetError(f"{self.path / starts_name(split)}: {exc}") from None

    def _all_windows(self) -> pd.DataFrame:
        if self._table is None:
            path = self.path / WINDOWS_NAME
            if not path.is_file():
                raise DatasetError(f"{path}: missing from the dataset folder; rebuild the dataset")
            self._table = pd.read_csv(
                path,
                dtype={
                    "split": str,
                    "id": str,
                    "take": str,
                    "tone": str,
                    "guitar": str,
                    "phrase": str,
                },
                keep_default_na=False,
            )
        return self._table

    def windows(self, split: str) -> pd.DataFrame:
        """One row per window of ``split``, in array order: id, take, tone, guitar, phrase, start, label."""
        split = _split_name(split)
        table = self._all_windows()
        part = table[table["split"] == split].sort_values("index")
        return part.drop(columns=["split", "index"]).reset_index(drop=True)

    def counts(self) -> pd.DataFrame:
        """Windows per split x label x tone (label as its name)."""
        frame = pd.DataFrame(self.meta.counts, columns=["split", "label", "tone", "windows"])
        return frame

    def eval_clips(self, split: str = "test") -> list[Clip]:
        """Each file's held-out windows of ``split`` as one clip, in file order.

        A file whose windows change label (a dataset built ``--from-segments``) gives one
        clip per run of windows with one label, so a vote is over one segment's time.
        """
        split = _split_name(split)
        x, _ = self.arrays(split)
        table = self.windows(split)
        runs = (table["label"] != table["label"].shift()) | (table["id"] != table["id"].shift())
        clips = []
        for (file_id, _), group in table.groupby([table["id"], runs.cumsum()], sort=False):
            first, last = int(group.index[0]), int(group.index[-1])
            row = group.iloc[0]
            code = int(row["label"])
            clips.append(
                Clip(
                    id=str(file_id),
                    label=code,
                    label_name=self.label_names[code],
                    guitar=str(row["guitar"]),
                    phrase=str(row["phrase"]),
                    tone=str(row["tone"]),
                    take=str(row["take"]),
                    start=int(row["start"]),
                    windows=np.asarray(x[first : last + 1], dtype=np.float32),
                )
            )
        return clips

    def tf_dataset(
        self,
        split: str,
        *,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int = 0,
        cache: bool = False,
        repeat: bool = False,
        drop_remainder: bool = False,
    ):
        """A ``tf.data.Dataset`` of ``(x (B, window, 1) float32, y (B,) int64)`` batches.

        Without ``cache`` each batch is gathered from the memory-mapped file (a shuffled
        index per epoch, so memory stays flat); with ``cache`` the split is loaded into
        memory once, which is faster for splits that fit.
        """
        import tensorflow as tf

        x, y = self.arrays(split)
        n = int(x.shape[0])
        if batch_size < 1:
            raise DatasetError(f"batch_size must be at least 1, got {batch_size}")
        window = self.window
        if cache:
            data = tf.data.Dataset.from_tensor_slices((np.asarray(x), np.asarray(y)))
            if shuffle:
                data = data.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
            data = data.batch(batch_size, drop_remainder=drop_remainder)
        else:
            data = tf.data.Dataset.range(n)
            if shuffle:
                data = data.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
            data = data.batch(batch_size, drop_remainder=drop_remainder)

            def gather(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                order = np.sort(index)
                return np.asarray(x[order], dtype=np.float32), np.asarray(y[order], dtype=np.int64)

            rows = batch_size if drop_remainder else None

            def load(index):
                xb, yb = tf.numpy_function(gather, [index], (tf.float32, tf.int64))
                xb.set_shape((rows, window, 1))
                yb.set_shape((rows,))
                return xb, yb

            data = data.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if repeat:
            data = data.repeat()
        return data.prefetch(tf.data.AUTOTUNE)


def open_dataset(path: str | os.PathLike) -> DatasetFolder:
    """Open a dataset folder written by ``build_dataset``; DatasetError if it is not one."""
    return DatasetFolder(path)


def nonfinite_window(x: WindowView, *, chunk: int = 1 << 22) -> int | None:
    """Index of the first window that holds a NaN or infinite sample, or None.

    Reads the split's stored audio once, a chunk at a time (it is memory-mapped).
    """
    audio, starts, length = x.audio, x.starts, x.length
    for first in range(0, int(audio.shape[0]), chunk):
        block = np.asarray(audio[first : first + chunk])
        if np.isfinite(block).all():
            continue
        for sample in (first + np.flatnonzero(~np.isfinite(block)))[:1000].tolist():
            inside = np.flatnonzero((starts <= sample) & (sample < starts + length))
            if inside.size:
                return int(inside[0])
    return None


def check_dataset(path: str | os.PathLike, *, allow_leak: bool = False) -> list[str]:
    """Every way the folder could leak or be inconsistent; an empty list means it is sound.

    For every take: no training window overlaps validation or test time, in any tone,
    and no validation window overlaps test time. A folder built with ``val="random"`` is
    reported as leaky unless ``allow_leak``. A window holding NaN or infinite samples is
    named with its file.
    """
    ds = open_dataset(path)
    problems: list[str] = []
    table = ds._all_windows()
    for split in SPLITS:
        try:
            x, y = ds.arrays(split)
        except DatasetError as exc:
            problems.append(str(exc))
            continue
        n_table = int((table["split"] == split).sum())
        if n_table != x.shape[0]:
            problems.append(
                f"{split}: {x.shape[0]} windows in {starts_name(split)} but {n_table} in {WINDOWS_NAME}"
            )
        if y.size and (int(y.min()) < 0 or int(y.max()) >= ds.n_classes):
            problems.append(f"{split}: labels outside 0..{ds.n_classes - 1}")
        bad = nonfinite_window(x)
        if bad is not None:  # a NaN or infinite file got in (built before import refused it)
            ids = table.loc[table["split"] == split, "id"]
            rid = ids.iloc[bad] if bad < len(ids) else f"window {bad}"
            problems.append(
                f"{split}: {rid} holds NaN or infinite samples (window {bad}); re-export that "
                "file as PCM WAV, replace it in the corpus and rebuild the dataset"
            )
    leaky = ds.leaky
    if leaky and not allow_leak:
        problems.append(
            f"built with --val {ds.meta.options.get('val')}: validation windows share time with "
            "training windows of the same take (leaky); rebuild with --val span, or pass --allow-leak"
        )
    problems += overlap_problems(table, ds.meta.takes, window=ds.window, check_val=not leaky)
    seen: dict[tuple[str, str], str] = {}
    for row in ds.meta.rows:  # one file twice: trained and tested on twice
        for key in ("id", "sha256"):
            value = str(row.get(key, ""))
            if value and (key, value) in seen:
                problems.append(
                    f"rows {seen[(key, value)]} and {row.get('id')} have the same {key}: one "
                    "file is in the dataset twice; remove the duplicate row and rebuild"
                )
            seen.setdefault((key, value), str(row.get("id")))
    return problems
