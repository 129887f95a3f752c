"""Build a dataset folder from a corpus: select rows, plan leak-free splits, stream windows.

The edge of the dataset stage. Everything that can be decided without audio (which
rows, which spans, how many windows go where, and where in each split's ``.npy`` every
file's spans go) is decided first from the file headers; then each file is read once
(sha256 checked on the same bytes) and writes the spans its windows cover into place, in
this process, in ``jobs`` processes or on a Dask cluster (``datasets.engine``), so peak
memory is one file per process, whatever the size of the corpus, the folder is the same
bit for bit however it ran, and overlapping windows are stored once
(``DatasetFolder.arrays`` reads them as windows).

The build in four steps, each its own function: the options (``plan.BuildConfig``,
checked when made) -> the plan (``plan.plan_build``: rows selected, splits decided,
windows placed) -> the stream (``stream.stream_windows``: audio read and written in
place) -> the description (:func:`dataset_meta`, a ``meta.DatasetMeta`` written as
``dataset.json``).

Folder layout::

    dataset.json        every option, label map, spans per take, counts, rows, notes
    train_audio.npy     float32 (S,) the covered spans, file after file (likewise val_, test_)
    train_starts.npy    int64 (N,) where each window starts in train_audio.npy
    train_y.npy         int64 (N,) label index   (likewise val_y.npy, test_y.npy)
    windows.csv         one row per window: split, index, id, take, tone, guitar, phrase, start, label
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from guitarlab.corpus.defaults import VERSION
from guitarlab.corpus.errors import DatasetError
from guitarlab.corpus.outputs import check_output, refuse_if_locked, replace_output
from guitarlab.corpus.parallel import shared_pools
from guitarlab.datasets.layout import (
    META_NAME,
    WINDOWS_NAME,
    audio_name,
    starts_name,
    y_name,
)
from guitarlab.datasets.meta import DatasetMeta
from guitarlab.datasets.plan import BuildConfig, BuildPlan, plan_build, used_columns
from guitarlab.datasets.select import manifest_hash
from guitarlab.datasets.splits import SPLITS
from guitarlab.datasets.stream import stream_windows

log = logging.getLogger("guitarlab.datasets")


# ---------------------------------------------------------------- the build


def build_dataset(corpus: str | os.PathLike, out: str | os.PathLike, **options: Any) -> Path:
    """Cut a corpus into a dataset folder with leak-free train/val/test windows.

    Parameters
    ----------
    corpus : path
        Corpus folder (``manifest.csv`` and its audio).
    out : path
        Dataset folder to create. With ``overwrite`` a dataset folder guitarlab made is
        replaced; any other folder, and the corpus or a folder in or around it, never is.
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
        post's random share of windows (leaky, flagged in ``dataset.json``). Default:
        ``"take"`` with ``val_where``, ``test_where`` or ``test_groups`` (a span cut out of
        every training note would waste most of a note library; ``"span"`` when a label
        has too few training takes), the old dataset's with ``held_out_from``, else
        ``"span"``.
    standardize : {"file", "train", "none"}
        Each file by its own mean/std (the post), or all by the training windows' mean/std.
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
        Silence is not evidence of a guitar. Off by default (the post keeps every window).
    onsets, note_windows : bool, int
        Start windows at detected note onsets (``datasets.onsets``) instead of on the
        grid: one at each onset, then every ``hop`` while the note sounds and before the
        next onset, up to ``note_windows`` per note. Notes quieter than ``gate_dbfs`` give
        none. ``predict`` then cuts files the same way.
    from_segments : bool
        Label windows by the corpus's segments (``segments.csv``, column ``label``), not
        by a manifest column: each window takes the label of the segment it lies wholly
        in; windows across two segments or in none are left out and counted. Every tone
        of a take inherits its segments. ``where``/``test_where``/``val_where`` may name
        segment columns: ``where`` then keeps the time it selects, ``test_where`` holds
        that time out of every tone of the take (``split="segment"``).
    jobs, engine, scheduler : int, str, str
        Where the files are read and windowed (``datasets.engine``): ``jobs`` processes
        here (0, the default: every core, one process per ~6 minutes of audio read;
        1: this process alone, one core), or
        ``engine="dask"`` on the cluster at ``scheduler`` (a LocalCluster of ``jobs``
        processes without one; the corpus and ``out`` must be on a filesystem every worker
        sees at the same path). The folder is the same bit for bit.

    Returns
    -------
    Path
        The dataset folder.
    """
    return build(BuildConfig(corpus, out, **options))


def build(config: BuildConfig) -> Path:
    """The build in its steps: the options checked (``config``), the plan (rows selected,
    splits decided, windows placed), the windows streamed into the folder, its
    ``dataset.json`` written; the folder appears whole or not at all."""
    inputs = {"corpus": config.corpus, "dataset": config.held_out_from}
    where = dict(purpose="dataset", inputs=inputs, overwrite=config.overwrite, legacy=META_NAME)
    check_output(config.out, **where, error=DatasetError)
    refuse_if_locked(config.out, error=DatasetError)
    # one BLAS thread in this process and the workers it forks: --jobs N is N cores (numpy's
    # dot of a long window wakes every core's BLAS thread, and N processes that each woke
    # them all ran the --skip-silence gate 4x slower with 2 jobs than with 1); the probes'
    # worker processes window the files too
    with threadpool_limits(limits=1, user_api="blas"), shared_pools():
        plan = plan_build(config)
        with replace_output(config.out, suffix=".building", **where, error=DatasetError) as work:
            c = plan.config
            stats, notes = stream_windows(
                plan,
                work,
                workers=plan.workers,
                engine=c.engine,
                scheduler=c.scheduler,
                progress=c.progress,
            )
            plan.notes += notes
            meta = dataset_meta(plan, stats)
            (work / META_NAME).write_text(meta_text(meta.to_dict()), encoding="utf-8")
    for note in plan.notes:
        log.info("dataset %s: %s", config.out, note)
    return config.out


def meta_text(meta: dict) -> str:
    """``dataset.json``'s text: a top-level field a line, so a person reads the options,
    totals and notes at a glance, each value compact (json writes those with its C
    encoder: the per-file lists of a large build cost a tenth of indented JSON)."""
    fields = (f"{json.dumps(key)}: {json.dumps(value)}" for key, value in meta.items())
    return "{\n " + ",\n ".join(fields) + "\n}\n"


def dataset_meta(plan: BuildPlan, standardization: dict) -> DatasetMeta:
    """What the folder says about itself (``dataset.json``): every option, the label map,
    each take's spans, the counts and the rows, from the plan and the stream's stats."""
    c, rate, splits = plan.config, plan.rate, plan.splits
    columns = used_columns(plan)
    roles = {t: sp.role for t, sp in splits.takes.items()}
    held_out = {
        "split": c.split,
        "val": c.val,
        "test_where": c.test_where,
        "val_where": c.val_where,
        "test_groups": splits.test_groups or None,
        "group_by": c.group_by,
        "columns": columns,
        "test_takes": sorted(t for t, r in roles.items() if r == "test"),
        "val_takes": sorted(t for t, r in roles.items() if r == "val"),
    }
    return DatasetMeta(
        guitarlab_version=VERSION,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        corpus=str(c.corpus.resolve()),
        options=c.recorded(),
        label=c.label,
        label_names=plan.label_names,
        sample_rate=int(rate),
        window=c.window,
        hop=c.hop,
        windows_at="onsets" if c.onsets else "grid",
        note_windows=int(c.note_windows) if c.onsets else None,
        onset_floor_dbfs=float(c.gate_dbfs) if c.onsets else None,
        test_span_samples=int(c.test_windows) * c.window if c.split == "span" else None,
        manifest_hash=manifest_hash(plan.rows),
        leaky=bool(splits.leaky),
        standardization=standardization,
        totals=plan.totals,
        dropped_windows=plan.dropped,
        excluded={
            "rows": sorted(map(str, plan.left_out["id"])),
            "spans": {
                t: [[round(a / rate, 3), round(b / rate, 3)] for a, b in sp]
                for t, sp in sorted(plan.marked.items())
            },
            "windows": plan.in_bad_spans,
        },
        counts=[
            {"split": s, "label": lab, "tone": tone, "windows": n}
            for (s, lab, tone), n in sorted(plan.counts.items())
        ],
        held_out=held_out,
        takes=splits.takes_json(),
        rows=_row_info(plan.rows, c.label, columns),
        files={
            s: {"audio": audio_name(s), "starts": starts_name(s), "y": y_name(s)} for s in SPLITS
        },
        stored_samples=plan.audio_totals,
        windows_table=WINDOWS_NAME,
        notes=plan.notes,
        held_out_from_hash=plan.previous.manifest_hash if plan.previous is not None else None,
        segments=(
            {k: v for k, v in plan.segment_info.items() if k != "note"}
            if plan.segment_info is not None
            else None
        ),
    )


def _row_info(rows: pd.DataFrame, label: str, columns: list[str] | None = None) -> list[dict]:
    keep = ["id", "path", "sha256", "take", "tone", "guitar", "phrase", "status"]
    keep += [c for c in columns or [] if c not in keep and c in rows.columns]
    info = []
    for row in rows.to_dict("records"):
        item = {k: str(row[k]) for k in keep if k in row}
        item.update(
            label=str(row[label]),
            frames=int(row["frames"]),
            channels=int(row["channels"]),
            file_rate=int(row["file_rate"]),
        )
        info.append(item)
    return info
