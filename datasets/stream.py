"""Reading files once and streaming their audio into a dataset folder's ``.npy`` files.

One file in memory at a time (two while the next is read ahead), whatever the corpus
size; each file goes through the one preprocessing path (``windows.prepare``'s steps).
Each split stores the spans its windows cover once, and every window as its start in
them (``windows.WindowView`` reads them back), so overlapping windows cost no extra disk.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm import tqdm

from guitarlab.corpus.audio import mono_at_rate
from guitarlab.corpus.errors import DatasetError
from guitarlab.datasets.layout import (
    WINDOW_COLUMNS,
    WINDOWS_NAME,
    audio_name,
    starts_name,
    y_name,
)
from guitarlab.datasets.splits import SPLITS
from guitarlab.datasets.windows import (
    SILENT_STD,
    covered_spans,
    first_sound_sample,
    sounding,
    standardize_as,
)

log = logging.getLogger("guitarlab.datasets")


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
                f"{self.path.name}: wrote {self.rows} rows, planned {self.shape[0]}; a file changed during the build, run it again"
            )


def rescale_npy(path: Path, *, mean: float, std: float, chunk_items: int = 1 << 20) -> None:
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
        chunk_rows = max(1, chunk_items // max(row_items, 1))
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
    audio, _ = mono_at_rate(audio, rate, target_rate=target_rate, gain_db=gain_db, source=path)
    return np.ascontiguousarray(audio), mixed


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


def note_onset_starts(rows: pd.DataFrame, rate: int, windowing) -> dict[str, np.ndarray]:
    """Per file id, the starts of its note windows (``datasets.onsets.OnsetWindows``),
    found in the file as recorded: before gain and standardization, as ``predict`` finds
    them. Reads every file once more, one at a time."""
    out = {}
    for _, row in rows.iterrows():
        audio, _ = load_mono(
            row["file"], gain_db=None, rate=int(row["file_rate"]), target_rate=rate
        )
        out[str(row["id"])] = windowing.starts(audio, rate)
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


def stream_windows(
    rows: pd.DataFrame,
    work: Path,
    layout,
    totals: dict[str, int],
    audio_totals: dict[str, int],
    window: int,
    rate: int,
    label: str,
    label_index: dict[str, int],
    apply_gain: bool,
    standardize: str,
    notes: list[str],
    progress: bool,
) -> dict:
    """Read each file once and append the spans its windows cover to the split files;
    returns standardization. ``audio_totals``: samples each split stores (``covered_spans``)."""
    xs = {s: _NpyAppender(work / audio_name(s), (audio_totals[s],), np.float32) for s in SPLITS}
    at = {s: _NpyAppender(work / starts_name(s), (totals[s],), np.int64) for s in SPLITS}
    ys = {s: _NpyAppender(work / y_name(s), (totals[s],), np.int64) for s in SPLITS}
    positions = dict.fromkeys(SPLITS, 0)
    stored = dict.fromkeys(SPLITS, 0)
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
            code = label_index.get(str(row[label]), -1)  # windows labelled by segments: per window
            fixed = (row["id"], row["take"], row["tone"], row["guitar"], row["phrase"])
            for name in SPLITS:
                st = starts[name]
                if not st.size:
                    continue
                if name == "train" and standardize == "train":  # over windows, as trained on
                    for block in _blocks(audio, st, window):
                        train_sum += float(block.sum(dtype=np.float64))
                        train_sq += float(np.square(block, dtype=np.float64).sum())
                        train_n += block.size
                spans = covered_spans(st, window)
                lengths = spans[:, 1] - spans[:, 0]
                begins = stored[name] + np.cumsum(lengths) - lengths  # in the split's audio
                span = np.searchsorted(spans[:, 0], st, side="right") - 1  # each window's
                at[name].append(begins[span] + st - spans[span, 0])
                for first, stop in spans.tolist():
                    xs[name].append(audio[first:stop])
                stored[name] += int(lengths.sum())
                per_window = starts.get(f"labels:{name}")
                codes = (
                    np.full(st.size, code, dtype=np.int64)
                    if per_window is None
                    else np.array([label_index[lab] for lab in per_window], dtype=np.int64)
                )
                ys[name].append(codes)
                first = positions[name]
                positions[name] += st.size
                table.writerows(
                    (name, first + i, *fixed, s, c)
                    for i, (s, c) in enumerate(zip(st.tolist(), codes.tolist(), strict=True))
                )
            del audio
            bar.update(int(row["frames"]) / rate)
        bar.close()
    for writer in (*xs.values(), *at.values(), *ys.values()):
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
        rescale_npy(work / audio_name(name), mean=mean, std=std)
    return {"mode": "train", "mean": mean, "std": std}
