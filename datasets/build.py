"""Build a dataset folder from a corpus: select rows, plan leak-free splits, stream windows.

The edge of the dataset stage. Everything that can be decided without audio (which
rows, which spans, how many windows go where, and where in each split's ``.npy`` every
file's spans go) is decided first from the file headers; then each file is read once
(sha256 checked on the same bytes) and writes the spans its windows cover into place, in
this process, in ``jobs`` processes or on a Dask cluster (``datasets.engine``), so peak
memory is one file per process, whatever the size of the corpus, the folder is the same
bit for bit however it ran, and overlapping windows are stored once
(``DatasetFolder.arrays`` reads them as windows).

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
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from guitarlab.corpus.defaults import MIN_WINDOW, VERSION, WINDOW
from guitarlab.corpus.errors import DatasetError, GuitarlabError
from guitarlab.corpus.manifest_cache import load_manifest_cached
from guitarlab.corpus.outputs import check_output, refuse_if_locked, replace_output
from guitarlab.datasets.engine import ENGINES, resolve_jobs
from guitarlab.datasets.layout import (
    FORMAT,
    FORMAT_VERSION,
    META_NAME,
    WINDOWS_NAME,
    audio_name,
    starts_name,
    y_name,
)
from guitarlab.datasets.onsets import NOTE_WINDOWS, OnsetWindows
from guitarlab.datasets.segment_windows import (
    LEFT_OUT,
    SEGMENT_SPLIT,
    condition_spans,
    load_segment_labels,
    names_segment_columns,
    plan_segment_split,
    segment_layout,
    segment_rows,
    segment_split_options,
    segment_summary,
    take_condition_spans,
)
from guitarlab.datasets.select import (
    drop_excluded,
    excluded_spans,
    manifest_hash,
    probe_files,
    query_columns,
    select_rows,
    where_takes,
)
from guitarlab.datasets.splits import SPLITS, file_windows, overlaps, plan_splits
from guitarlab.datasets.stream import (
    note_onset_starts,
    silent_starts,
    stream_windows,
    take_onsets,
)
from guitarlab.datasets.windows import (
    SILENCE_FLOOR_DBFS,
    STANDARDIZE_MODES,
    covered_spans,
)

log = logging.getLogger("guitarlab.datasets")


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
    onsets: bool = False,
    note_windows: int = NOTE_WINDOWS,
    from_segments: bool = False,
    progress: bool = True,
    overwrite: bool = False,
    jobs: int = 1,
    engine: str = "local",
    scheduler: str | None = None,
) -> Path:
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
        seed's random share of windows (leaky, flagged in ``dataset.json``). Default:
        ``"take"`` with ``val_where``, ``test_where`` or ``test_groups`` (a span cut out of
        every training note would waste most of a note library; ``"span"`` when a label
        has too few training takes), the old dataset's with ``held_out_from``, else
        ``"span"``.
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
        here (0: every core), or ``engine="dask"`` on the cluster at ``scheduler`` (a
        LocalCluster of ``jobs`` processes without one; the corpus and ``out`` must be on a
        filesystem every worker sees at the same path). The folder is the same bit for bit.

    Returns
    -------
    Path
        The dataset folder.
    """
    corpus, out = Path(corpus), Path(out)
    jobs = resolve_jobs(jobs)
    if engine not in ENGINES:
        raise DatasetError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if scheduler and engine != "dask":
        raise DatasetError("--scheduler names a Dask scheduler; add --engine dask")
    if isinstance(test_groups, str):
        test_groups = [g.strip() for g in test_groups.split(",") if g.strip()]
    test_groups = list(test_groups or []) or None
    val_asked = val
    segs = load_segment_labels(corpus, label, rate=0, window=int(window)) if from_segments else None
    seg_where, seg_test, seg_val = (
        names_segment_columns(e, segs) for e in (where, test_where, val_where)
    )
    if seg_test or seg_val:
        split, val = segment_split_options(
            split, val, seg_test, seg_val, val_where, test_groups, held_out_from, same_span_all
        )
    else:
        split, val = _resolve_split(split, val, test_where, val_where, test_groups, held_out_from)
    if onsets and int(note_windows) < 1:
        raise DatasetError(f"--note-windows must be at least 1, got {note_windows}")
    window = int(window)
    hop = window if hop is None else int(hop)
    if window < MIN_WINDOW or hop < 1:
        raise DatasetError(
            f"window={window}, hop={hop}: use a window of at least {MIN_WINDOW} samples (shorter "
            "ones hold no note, only more rows) and a hop of at least 1"
        )
    if test_seconds is not None and not (np.isfinite(test_seconds) and test_seconds > 0):
        raise DatasetError(f"test_seconds={test_seconds}: give a finite length above 0")
    if same_span_all and split != "span":
        raise DatasetError(
            f"--same-span-all puts one test span in every take; it needs --split span, "
            f"not --split {split}"
        )
    if standardize not in STANDARDIZE_MODES:
        raise DatasetError(
            f"unknown standardize {standardize!r}; use one of {', '.join(STANDARDIZE_MODES)}"
        )
    inputs = {"corpus": corpus, "dataset": held_out_from}
    check_output(
        out,
        purpose="dataset",
        inputs=inputs,
        overwrite=overwrite,
        legacy=META_NAME,
        error=DatasetError,
    )
    refuse_if_locked(out, error=DatasetError)
    try:  # a 100,000-row manifest costs 2.5 s to parse and 0.05 s from its cache
        manifest = load_manifest_cached(corpus)
    except GuitarlabError as exc:
        raise DatasetError(str(exc)) from None

    kept, left_out = drop_excluded(manifest)
    notes: list[str] = []
    if segs is not None:
        rows = segment_rows(kept, segs, None if seg_where else where, notes)
    else:
        rows = select_rows(kept, label=label, where=where)
    rows, rate = probe_files(rows, corpus, resample=resample)
    if segs is not None:
        segs.rate = int(rate)
    if len(left_out):
        first = left_out.iloc[0]
        notes.append(
            f"{len(left_out)} file(s) excluded in review left out (e.g. {first['id']}: "
            f"{first['excluded']})"
        )
    bad_spans = excluded_spans(manifest, rate)
    rows["offset"] = take_onsets(rows, rate, jobs=jobs) if trim_silence else 0
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
        if expression and split != SEGMENT_SPLIT:
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

    def segment_time(expression: str, option: str) -> dict:
        spans = condition_spans(rows, segs, expression, option=option)
        return take_condition_spans(rows, spans, option=option, expression=expression)

    def plan_with(val: str):
        if split == SEGMENT_SPLIT:
            return plan_segment_split(
                rows,
                segment_time(test_where, "--test-where"),
                window=window,
                hop=hop,
                val=val,
                val_fraction=val_fraction,
                seed=seed,
                val_time=segment_time(val_where, "--val-where") if val_where else None,
                offsets=offsets.to_dict(),
            )
        return plan_splits(
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

    try:
        plan = plan_with(val)
    except DatasetError as exc:
        if val_asked is not None or val != "take" or val_where or previous:
            raise
        plan, val = plan_with("span"), "span"  # the default: whole-take validation won't fit
        notes.append(
            f"validation: a span of every training take, not whole takes ({exc}); "
            "pass --val to choose"
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

    def ordered(names) -> list[str]:
        names = sorted(set(names))
        if previous_meta is not None:
            # Old classes keep their indices so a retrained model can widen its output layer.
            kept = [name for name in previous_meta.get("label_names", []) if name in names]
            names = kept + [name for name in names if name not in kept]
        return names

    label_names = ordered(rows[label].astype(str))  # from segments: set again after pass 1
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
        "onsets": bool(onsets),
        "note_windows": int(note_windows),
        "from_segments": bool(from_segments),
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

    windowing = OnsetWindows(window, hop, int(note_windows), float(gate_dbfs)) if onsets else None
    at_onsets = note_onset_starts(rows, rate, windowing, jobs=jobs) if windowing else {}
    if windowing:
        found = {i: int(s.size) for i, s in at_onsets.items()}
        none = sorted(i for i, n in found.items() if n == 0)
        notes.append(
            f"--onsets: {sum(found.values())} window(s) start at note onsets (up to "
            f"{note_windows} per note, {hop} samples apart) in {len(found) - len(none)} of "
            f"{len(found)} file(s)"
        )
        if none:
            notes.append(
                f"{len(none)} file(s) have no note above {gate_dbfs:g} dBFS and give no window "
                f"(e.g. {none[0]})"
            )

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
            candidates=at_onsets[str(row["id"])] if windowing else None,
        )

    silent = (
        silent_starts(rows, grid, window=window, rate=rate, floor_dbfs=gate_dbfs, jobs=jobs)
        if skip_silence
        else {}
    )

    where_time = condition_spans(rows, segs, where, option="--where") if seg_where else None

    def layout(row: pd.Series) -> dict[str, np.ndarray]:
        """The windows of one file: the grid, less silence and the take's excluded spans
        (and, from segments, less the windows no single segment labels)."""
        starts = grid(row)
        quiet = silent.get(str(row["id"]))
        bad = bad_spans.get(str(row["take"]))
        if (quiet is None or not quiet.size) and not bad:
            out = starts
        else:
            out = {"dropped": starts["dropped"]}
            for name in SPLITS:
                st = starts[name]
                keep = np.ones(st.shape, dtype=bool)
                if quiet is not None and quiet.size:
                    keep &= ~np.isin(st, quiet)
                if bad:
                    keep &= ~overlaps(st, window, bad)
                out[name] = st[keep]
        if segs is not None:
            kept_time = where_time.get(str(row["id"]), []) if where_time is not None else None
            out = segment_layout(out, segs, str(row["take"]), kept_time)
        return out

    # Pass 1, headers only: how many windows of each split, label and tone.
    totals = dict.fromkeys(SPLITS, 0)
    audio_totals = dict.fromkeys(SPLITS, 0)
    counts: Counter = Counter()
    seg_left: Counter = Counter()
    dropped = in_bad_spans = 0
    layouts = []
    for _, row in rows.iterrows():
        starts = layout(row)
        layouts.append(starts)
        dropped += int(starts["dropped"][0])
        bad = bad_spans.get(str(row["take"]))
        if bad:
            every = grid(row)
            in_bad_spans += sum(int(overlaps(every[n], window, bad).sum()) for n in SPLITS)
        for key in LEFT_OUT:
            seg_left[key] += int(starts.get(key, [0])[0])
        for name in SPLITS:
            n = int(starts[name].size)
            totals[name] += n
            spans = covered_spans(starts[name], window)
            audio_totals[name] += int((spans[:, 1] - spans[:, 0]).sum())
            if n and segs is not None:
                for lab, k in Counter(starts[f"labels:{name}"].tolist()).items():
                    counts[(name, str(lab), str(row["tone"]))] += k
            elif n:
                counts[(name, str(row[label]), str(row["tone"]))] += n
    if skip_silence:
        skipped = sum(int(v.size) for v in silent.values())
        notes.append(
            f"--skip-silence: {skipped} window(s) below {gate_dbfs:g} dBFS left out as silence"
        )
    used_takes = set(rows["take"].astype(str))
    marked = {t: sp for t, sp in bad_spans.items() if t in used_takes}
    if marked:
        notes.append(
            f"{in_bad_spans} window(s) in excluded spans of {len(marked)} take(s) left out, "
            "in every tone"
        )
    segment_info = None
    if segs is not None:
        label_names = ordered(lab for (_, lab, _) in counts)
        segment_info = segment_summary(segs, rows, seg_left, where if seg_where else None)
        notes.append(segment_info["note"])
        if len(label_names) < 2 and totals["train"]:
            raise DatasetError(
                f"--from-segments: windows of one {label} only ({', '.join(label_names)}); a "
                "classifier needs two: label more time, or use a shorter --window"
            )
    label_index = {name: i for i, name in enumerate(label_names)}
    trained = {lab for (s, lab, _), n in counts.items() if s == "train"}
    unseen = sorted({lab for (s, lab, _) in counts if s == "test"} - trained)
    if unseen:
        notes.append(
            f"test label(s) {', '.join(unseen)} have no training windows: the model cannot predict them"
        )
    if totals["train"] == 0 and skip_silence:
        ungated = sum(int(grid(row)["train"].size) for _, row in rows.iterrows())
        if ungated:
            raise DatasetError(_gate_blame(rows, gate_dbfs, ungated))
    if totals["train"] == 0:
        raise DatasetError(
            "no training windows are left after holding out test and validation time; "
            "use a shorter --window, --test-seconds or --val-fraction"
        )

    with replace_output(
        out, purpose="dataset", suffix=".building", inputs=inputs, overwrite=overwrite,
        legacy=META_NAME, error=DatasetError,
    ) as work:  # fmt: skip
        stats = stream_windows(
            rows, work, layouts, totals, audio_totals, window, rate, label, label_index, apply_gain,
            standardize, notes, progress, jobs=jobs, engine=engine, scheduler=scheduler,
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
            "windows_at": "onsets" if onsets else "grid",
            "note_windows": int(note_windows) if onsets else None,
            "onset_floor_dbfs": float(gate_dbfs) if onsets else None,
            "test_span_samples": int(test_windows) * window if split == "span" else None,
            "manifest_hash": manifest_hash(rows),
            "leaky": bool(plan.leaky),
            "standardization": stats,
            "totals": totals,
            "dropped_windows": dropped,
            "excluded": {
                "rows": sorted(map(str, left_out["id"])),
                "spans": {
                    t: [[round(a / rate, 3), round(b / rate, 3)] for a, b in sp]
                    for t, sp in sorted(marked.items())
                },
                "windows": in_bad_spans,
            },
            "counts": [
                {"split": s, "label": lab, "tone": tone, "windows": n}
                for (s, lab, tone), n in sorted(counts.items())
            ],
            "held_out": held_out,
            "takes": plan.takes_json(),
            "rows": _row_info(rows, label, columns),
            "files": {
                s: {"audio": audio_name(s), "starts": starts_name(s), "y": y_name(s)}
                for s in SPLITS
            },
            "stored_samples": audio_totals,
            "windows_table": WINDOWS_NAME,
            "notes": notes,
        }
        if previous_meta is not None:
            meta["held_out_from_hash"] = previous_meta.get("manifest_hash")
        if segment_info is not None:
            meta["segments"] = {k: v for k, v in segment_info.items() if k != "note"}
        with open(work / META_NAME, "w", encoding="utf-8") as handle:
            json.dump(meta, handle, indent=1)
            handle.write("\n")
    for note in notes:
        log.info("dataset %s: %s", out, note)
    return out


def _gate_blame(rows: pd.DataFrame, gate_dbfs: float, ungated: int) -> str:
    """Why no training window is left when the energy gate took them all: the gate's value
    against the loudest file's level (the manifest's), so the user moves the gate, not the
    window or the test span."""
    level = ""
    rms = pd.to_numeric(rows.get("rms_dbfs", pd.Series(dtype=float)), errors="coerce")
    if rms.notna().any():
        loudest = rows.loc[rms.idxmax()]
        peak = pd.to_numeric(pd.Series([loudest.get("peak_dbfs")]), errors="coerce").iloc[0]
        level = f" (the loudest file, {loudest['id']}, is at {rms.max():.1f} dBFS RMS" + (
            f", peak {peak:.1f} dBFS)" if pd.notna(peak) else ")"
        )
    return (
        f"--gate-dbfs {gate_dbfs:g} calls all {ungated} training window(s) silence{level}; "
        "give a gate below the playing's level (default -60) or leave out --skip-silence"
    )


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
    if val is None and held_out_from:  # the old dataset's, so its held-out spans can be kept
        from guitarlab.datasets.folder import read_meta

        val = str(read_meta(held_out_from)["options"]["val"])
    if val is None:
        val = "take" if val_where or test_where or test_groups else "span"
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
