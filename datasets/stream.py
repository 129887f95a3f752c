"""Reading files once and writing their windows into a dataset folder's ``.npy`` files.

Each file is read from disk once (its sha256 checked on the same bytes) and goes through
the one preprocessing path (``windows.prepare``'s steps); one file in memory per process,
whatever the corpus size. Each split stores the spans its windows cover once, and every
window as its start in them (``windows.WindowView`` reads them back), so overlapping
windows cost no extra disk. Where every span goes is fixed before any audio is read, so
files can be processed in any order, in parallel (``engine.run_tasks``).
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np
import pandas as pd
from tqdm import tqdm

from guitarlab.corpus.errors import DatasetError
from guitarlab.datasets.engine import (
    FLOAT32,
    IN_THIS_PROCESS,
    FileTask,
    Probe,
    Target,
    Workers,
    preallocate_npy,
    probe_audio,
    run_tasks,
)
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
)

if TYPE_CHECKING:  # plan.py uses this module's probes
    from guitarlab.datasets.plan import BuildPlan

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


# ---------------------------------------------------------------- looks before the plan


# the columns the plan's grid of a row reads (``plan.place_windows``)
GRID_COLUMNS = ("id", "take", "frames", "offset")


def row_records(rows: pd.DataFrame, *columns: str) -> list[dict]:
    """The rows as dicts of the grid's columns and ``columns``: the plan walks them row by
    row, and a dict of a few columns costs a fraction of a pandas row of all of them."""
    keep = list(dict.fromkeys((*GRID_COLUMNS, *columns)))
    return rows[[name for name in keep if name in rows]].to_dict("records")


def silent_starts(
    rows: pd.DataFrame,
    grid,
    *,
    window: int,
    rate: int,
    floor_dbfs: float,
    workers: Workers = IN_THIS_PROCESS,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Per file id, the start samples of its windows (on ``grid(row)``) below the gate.

    Reads every file once more (the gate is measured on the audio as recorded), in
    ``workers``.
    """
    ids, probes = [], []
    for row in row_records(rows, "file", "file_rate"):
        starts = np.unique(
            np.concatenate([v for k, v in grid(row).items() if k != "dropped"] or [[]])
        ).astype(np.int64)
        if not starts.size:
            continue
        ids.append(str(row["id"]))
        probes.append(
            Probe(
                str(row["file"]), int(row["file_rate"]), int(rate), "quiet",
                starts=starts, window=int(window), floor_dbfs=float(floor_dbfs),
            )
        )  # fmt: skip
    return dict(zip(ids, _probed(probes, workers, "gate", progress), strict=True))


def note_onset_starts(
    rows: pd.DataFrame,
    rate: int,
    windowing,
    *,
    workers: Workers = IN_THIS_PROCESS,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Per file id, the starts of its note windows (``datasets.onsets.OnsetWindows``),
    found in the file as recorded: before gain and standardization, as ``predict`` finds
    them. Reads every file once more, in ``workers``."""
    probes = [
        Probe(str(f), int(r), int(rate), "onsets", windowing=windowing)
        for f, r in zip(rows["file"], rows["file_rate"], strict=True)
    ]
    found = _probed(probes, workers, "onsets", progress)
    return dict(zip(map(str, rows["id"]), found, strict=True))


def take_onsets(
    rows: pd.DataFrame, rate: int, *, workers: Workers = IN_THIS_PROCESS, progress: bool = False
) -> list[int]:
    """Per row, its take's first sound in samples: the earliest onset among the take's files.

    Reads every file once (in ``workers``); a take's tones keep one shared timeline.
    """
    probes = [
        Probe(str(f), int(r), int(rate), "first_sound")
        for f, r in zip(rows["file"], rows["file_rate"], strict=True)
    ]
    onset = list(_probed(probes, workers, "first sound", progress))
    per_take = pd.Series(onset, index=rows.index).groupby(rows["take"].astype(str)).transform("min")
    return [int(o) for o in per_take]


def _probed(probes: list[Probe], workers: Workers, what: str, progress: bool) -> Iterator:
    """``probe_audio`` of each probe, in order, in ``workers``, with a bar named ``what``
    (this pass reads every file too: on a large corpus it takes as long as the build)."""
    found = workers.map(probe_audio, probes)
    return tqdm(found, total=len(probes), desc=what, unit="file", disable=not progress)


def stream_windows(
    plan: BuildPlan,
    work: Path,
    *,
    workers: Workers = IN_THIS_PROCESS,
    engine: str = "local",
    scheduler: str | None = None,
    progress: bool = True,
) -> tuple[dict, list[str]]:
    """Write the plan's split files into ``work``: each file read once, in ``workers``'
    processes or on a Dask cluster. Returns the standardization and the notes it found.

    Where each file's spans go in its split's audio is fixed here before any sample is
    read (from ``plan.layouts``, each row's windows per split, and ``plan.audio_totals``,
    the samples each split stores), so the audio files are allocated whole, and every
    file becomes one task (``engine.FileTask``) that writes its own spans in place: the
    same bytes in the same places however many processes run them. The tasks are made
    (and their starts, labels and ``windows.csv`` rows written) as the workers take
    them, so the audio starts flowing at once, however many rows the corpus has.
    """
    rows, standardize = plan.rows, plan.config.standardize
    rate = plan.rate
    notes: list[str] = []
    heads = {s: preallocate_npy(work / audio_name(s), plan.audio_totals[s]) for s in SPLITS}
    at = {s: _NpyAppender(work / starts_name(s), (plan.totals[s],), np.int64) for s in SPLITS}
    ys = {s: _NpyAppender(work / y_name(s), (plan.totals[s],), np.int64) for s in SPLITS}
    stored = dict.fromkeys(SPLITS, 0)
    train_sum = train_sq = 0.0
    train_n = 0
    mixed_ids, silent_ids = [], []
    ids = [str(i) for i in rows["id"]]
    seconds = [int(f) / rate for f in rows["frames"]]
    bar = tqdm(total=sum(seconds), desc="dataset", unit="s", unit_scale=True, disable=not progress)
    try:
        with open(work / WINDOWS_NAME, "w", newline="", encoding="utf-8") as table_handle:
            csv.writer(table_handle).writerow(WINDOW_COLUMNS)
            tasks = _file_tasks(plan, work, heads, table_handle, at, ys, stored)
            if engine == "dask":  # the cluster is handed every task at once
                tasks = list(tasks)
            for result in run_tasks(
                tasks, workers=workers, engine=engine, scheduler=scheduler, work=work
            ):
                if result.mixed:
                    mixed_ids.append(ids[result.index])
                if result.silent:
                    silent_ids.append(ids[result.index])
                for block_sum, block_sq, block_n in result.train_sums:  # in file order
                    train_sum += block_sum
                    train_sq += block_sq
                    train_n += block_n
                bar.update(seconds[result.index])
    except BaseException:  # the folder is removed; its open files are closed first
        for writer in (*at.values(), *ys.values()):
            writer.handle.close()
        raise
    finally:
        bar.close()
    for writer in (*at.values(), *ys.values()):
        writer.close()
    for name in SPLITS:
        if stored[name] != plan.audio_totals[name]:
            raise DatasetError(
                f"{audio_name(name)}: {stored[name]} samples placed, planned "
                f"{plan.audio_totals[name]}; a file changed during the build, run it again"
            )
    if mixed_ids:
        notes.append(f"{len(mixed_ids)} multichannel file(s) mixed to mono (e.g. {mixed_ids[0]})")
        log.info("mixed %d multichannel file(s) to mono", len(mixed_ids))
    if silent_ids:
        notes.append(f"{len(silent_ids)} silent file(s) only mean-centred (e.g. {silent_ids[0]})")
    if standardize != "train":
        return {"mode": standardize}, notes
    mean = train_sum / train_n
    std = math.sqrt(max(train_sq / train_n - mean * mean, 0.0))
    for name in SPLITS:
        rescale_npy(work / audio_name(name), mean=mean, std=std)
    return {"mode": "train", "mean": mean, "std": std}, notes


def _file_tasks(
    plan: BuildPlan,
    work: Path,
    heads: dict[str, int],
    table: TextIO,
    at: dict[str, _NpyAppender],
    ys: dict[str, _NpyAppender],
    stored: dict[str, int],
) -> Iterator[FileTask]:
    """Each row's task, its windows' starts, labels and ``windows.csv`` rows written as it
    is made; ``stored`` counts the samples placed in each split's audio so far."""
    window, label, label_index = plan.config.window, plan.config.label, plan.label_index
    standardize, apply_gain = plan.config.standardize, plan.config.apply_gain
    rows = plan.rows
    column = {name: rows[name].tolist() for name in (label, *TABLE_FIXED)}
    for name, default in (("sha256", ""), ("gain_db", None)):
        column[name] = rows[name].tolist() if name in rows else [default] * len(rows)
    files, file_rates = rows["file"].tolist(), rows["file_rate"].tolist()
    frames, offsets = rows["frames"].tolist(), rows["offset"].tolist()
    audio_paths = {name: str((work / audio_name(name)).absolute()) for name in SPLITS}
    positions = dict.fromkeys(SPLITS, 0)
    for index, starts in enumerate(plan.layouts):
        code = label_index.get(str(column[label][index]), -1)  # by segments: per window
        fixed = _csv_fields([column[name][index] for name in TABLE_FIXED])
        targets = []
        for name in SPLITS:
            st = starts[name]
            if not st.size:
                continue
            spans = plan.spans[index][name]
            lengths = spans[:, 1] - spans[:, 0]
            begins = stored[name] + np.cumsum(lengths) - lengths  # in the split's audio
            span = np.searchsorted(spans[:, 0], st, side="right") - 1  # each window's
            at[name].append(begins[span] + st - spans[span, 0])
            targets.append(
                Target(
                    audio_paths[name],
                    heads[name] + stored[name] * FLOAT32.itemsize,
                    spans,
                )
            )
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
            # the rows csv.writer writes (numbers need no quoting), ~5x faster
            table.write(
                "".join(
                    f"{name},{first + i},{fixed},{s},{c}\r\n"
                    for i, (s, c) in enumerate(zip(st.tolist(), codes.tolist(), strict=True))
                )
            )
        gain = column["gain_db"][index] if apply_gain else None
        gain = float(gain) if gain is not None and not pd.isna(gain) else None
        train = starts["train"]
        yield FileTask(
            index=index,
            path=str(Path(files[index]).absolute()),
            sha256=str(column["sha256"][index] or ""),
            file_rate=int(file_rates[index]),
            rate=int(plan.rate),
            frames=int(frames[index]),
            gain_db=gain,
            standardize=standardize,
            offset=int(offsets[index]),
            window=int(window),
            targets=tuple(targets),
            train_starts=train if standardize == "train" and train.size else None,
        )


# the columns of windows.csv that are the same for every window of a file
TABLE_FIXED = ("id", "take", "tone", "guitar", "phrase")


def _csv_fields(values: list) -> str:
    """``values`` as one CSV line's fields, quoted as ``csv.writer`` quotes them."""
    line = io.StringIO()
    csv.writer(line).writerow(values)
    return line.getvalue()[:-2]  # less the writer's "\r\n"
