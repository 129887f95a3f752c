"""A dataset build's options and its plan: everything decided before a sample is written.

:class:`BuildConfig` holds every option of ``dataset build``, checked in one place;
:func:`plan_build` turns it into a :class:`BuildPlan`: the rows selected, the splits
decided, and every file's windows placed, from the manifest and the file headers (the
few options that look at the audio, ``--trim-silence``, ``--onsets`` and
``--skip-silence``, read each file here once more). ``stream.stream_windows`` then writes
the plan's windows and ``build.build`` its ``dataset.json``.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from guitarlab.corpus.cluster import check_engine
from guitarlab.corpus.defaults import MIN_WINDOW, WINDOW
from guitarlab.corpus.errors import DatasetError, GuitarlabError
from guitarlab.corpus.manifest_cache import load_manifest_cached
from guitarlab.datasets.engine import Workers, build_workers, resolve_jobs
from guitarlab.datasets.meta import DatasetMeta
from guitarlab.datasets.onsets import NOTE_WINDOWS, OnsetWindows
from guitarlab.datasets.segment_windows import (
    LEFT_OUT,
    SEGMENT_SPLIT,
    SegmentLabels,
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
    probe_files,
    query_columns,
    select_rows,
    where_takes,
)
from guitarlab.datasets.splits import SPLITS, SplitPlan, file_windows, overlaps, plan_splits
from guitarlab.datasets.stream import (
    GRID_COLUMNS,
    note_onset_starts,
    row_records,
    silent_starts,
    take_onsets,
)
from guitarlab.datasets.windows import SILENCE_FLOOR_DBFS, STANDARDIZE_MODES, covered_spans

# What ``run`` fields are not options of the dataset (where and how the build runs).
RUN_FIELDS = ("corpus", "out", "progress", "overwrite", "jobs", "engine", "scheduler")


@dataclass
class BuildConfig:
    """Every option of a dataset build (``build.build_dataset`` documents each one).

    Checked when made: a value no build accepts gives one line naming the option. The
    options that depend on the corpus (``split`` and ``val`` defaults, which need the
    segments and an older dataset) are resolved by :func:`resolve_split`.
    """

    corpus: Path
    out: Path
    label: str = "guitar"
    window: int = WINDOW
    hop: int | None = None
    split: str | None = None
    test_seconds: float | None = None
    test_windows: int = 12
    val: str | None = None
    val_fraction: float = 0.2
    same_span_all: bool = False
    group_by: str | None = None
    where: str | None = None
    standardize: str = "file"
    apply_gain: bool = False
    resample: bool = False
    seed: int = 0
    held_out_from: str | os.PathLike | None = None
    test_where: str | None = None
    val_where: str | None = None
    test_groups: list[str] | str | None = None
    trim_silence: bool = False
    skip_silence: bool = False
    gate_dbfs: float = SILENCE_FLOOR_DBFS
    onsets: bool = False
    note_windows: int = NOTE_WINDOWS
    from_segments: bool = False
    progress: bool = True
    overwrite: bool = False
    jobs: int = 0  # every core the audio keeps busy (engine.build_workers)
    engine: str = "local"
    scheduler: str | None = None

    def __post_init__(self) -> None:
        self.corpus, self.out = Path(self.corpus), Path(self.out)
        resolve_jobs(self.jobs)  # a negative number is refused here, 0 stays "every core"
        check_engine(self.engine, self.scheduler, error=DatasetError)
        if isinstance(self.test_groups, str):
            self.test_groups = [g.strip() for g in self.test_groups.split(",") if g.strip()]
        self.test_groups = list(self.test_groups or []) or None
        if self.onsets and int(self.note_windows) < 1:
            raise DatasetError(f"--note-windows must be at least 1, got {self.note_windows}")
        self.window = int(self.window)
        self.hop = self.window if self.hop is None else int(self.hop)
        if self.window < MIN_WINDOW or self.hop < 1:
            raise DatasetError(
                f"window={self.window}, hop={self.hop}: use a window of at least {MIN_WINDOW} "
                "samples (shorter ones hold no note, only more rows) and a hop of at least 1"
            )
        seconds = self.test_seconds
        if seconds is not None and not (np.isfinite(seconds) and seconds > 0):
            raise DatasetError(f"test_seconds={seconds}: give a finite length above 0")
        if self.standardize not in STANDARDIZE_MODES:
            raise DatasetError(
                f"unknown standardize {self.standardize!r}; use one of "
                f"{', '.join(STANDARDIZE_MODES)}"
            )

    def recorded(self) -> dict[str, Any]:
        """The options as ``dataset.json`` records them (the resolved split and val)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in RUN_FIELDS}
        out.update(
            test_windows=int(self.test_windows),
            val_fraction=float(self.val_fraction),
            same_span_all=bool(self.same_span_all),
            apply_gain=bool(self.apply_gain),
            resample=bool(self.resample),
            seed=int(self.seed),
            held_out_from=str(self.held_out_from) if self.held_out_from else None,
            trim_silence=bool(self.trim_silence),
            skip_silence=bool(self.skip_silence),
            gate_dbfs=float(self.gate_dbfs) if self.skip_silence else None,
            onsets=bool(self.onsets),
            note_windows=int(self.note_windows),
            from_segments=bool(self.from_segments),
        )
        return out


@dataclass
class BuildPlan:
    """What a build writes, decided before any window is: the rows, their split and
    every file's window starts per split (``layouts``, one per row)."""

    config: BuildConfig  # split, val and test_windows resolved
    val_asked: str | None  # --val as given (None: the default, which may fall back)
    rows: pd.DataFrame
    rate: int
    segs: SegmentLabels | None
    left_out: pd.DataFrame  # rows excluded in review
    bad_spans: dict[str, list]  # per take, its excluded spans (samples)
    previous: DatasetMeta | None  # the --held-out-from dataset
    workers: Workers = field(default_factory=Workers)  # where the files are read
    splits: SplitPlan | None = None
    label_names: list[str] = field(default_factory=list)
    layouts: list[dict[str, np.ndarray]] = field(default_factory=list)
    # per row and split, the spans its windows cover (``windows.covered_spans``)
    spans: list[dict[str, np.ndarray]] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)  # windows per split
    audio_totals: dict[str, int] = field(default_factory=dict)  # samples stored per split
    counts: Counter = field(default_factory=Counter)  # (split, label, tone) -> windows
    dropped: int = 0
    in_bad_spans: int = 0
    seg_left: Counter = field(default_factory=Counter)  # windows segments left out, by why
    marked: dict[str, list] = field(default_factory=dict)  # excluded spans of used takes
    segment_info: dict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def label_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.label_names)}

    def ordered(self, names) -> list[str]:
        """Label names sorted; with ``--held-out-from`` the old classes keep their
        indices, so a retrained model can widen its output layer."""
        names = sorted(set(names))
        if self.previous is not None:
            kept = [name for name in self.previous.label_names if name in names]
            names = kept + [name for name in names if name not in kept]
        return names


# ---------------------------------------------------------------- the plan


def plan_build(config: BuildConfig) -> BuildPlan:
    """The build decided: rows selected, splits planned, windows placed and counted."""
    segs = (
        load_segment_labels(config.corpus, config.label, rate=0, window=config.window)
        if config.from_segments
        else None
    )
    resolved = resolve_split(config, segs)
    plan = select_build_rows(resolved, config.val, segs)
    plan_takes(plan)
    place_windows(plan)
    return plan


def resolve_split(config: BuildConfig, segs: SegmentLabels | None) -> BuildConfig:
    """``config`` with ``split`` and ``val`` defaulted, refusing options that contradict."""
    c = config
    seg_test, seg_val = (names_segment_columns(e, segs) for e in (c.test_where, c.val_where))
    if seg_test or seg_val:
        split, val = segment_split_options(
            c.split, c.val, seg_test, seg_val, c.val_where, c.test_groups, c.held_out_from,
            c.same_span_all,
        )  # fmt: skip
    else:
        split, val = _resolve_split(
            c.split, c.val, c.test_where, c.val_where, c.test_groups, c.held_out_from
        )
    if c.same_span_all and split != "span":
        raise DatasetError(
            f"--same-span-all puts one test span in every take; it needs --split span, "
            f"not --split {split}"
        )
    return replace(config, split=split, val=val)


def select_build_rows(config: BuildConfig, val_asked: str | None, segs) -> BuildPlan:
    """The manifest rows the build uses, their audio probed and each take's start offset."""
    from guitarlab.datasets.folder import read_meta

    c = config
    try:  # a 100,000-row manifest costs 2.5 s to parse and 0.05 s from its cache
        manifest = load_manifest_cached(c.corpus)
    except GuitarlabError as exc:
        raise DatasetError(str(exc)) from None
    seg_where = names_segment_columns(c.where, segs)
    kept, left_out = drop_excluded(manifest)
    if segs is not None:
        rows, notes = segment_rows(kept, segs, None if seg_where else c.where)
    else:
        rows, notes = select_rows(kept, label=c.label, where=c.where), []
    rows, rate = probe_files(rows, c.corpus, resample=c.resample)
    if segs is not None:
        segs.rate = int(rate)
    if len(left_out):
        first = left_out.iloc[0]
        notes.append(
            f"{len(left_out)} file(s) excluded in review left out (e.g. {first['id']}: "
            f"{first['excluded']})"
        )
    bad_spans = excluded_spans(manifest, rate)
    workers = build_workers(c.jobs, rows["frames"].tolist())
    rows["offset"] = (
        take_onsets(rows, rate, workers=workers, progress=c.progress) if c.trim_silence else 0
    )
    previous = read_meta(c.held_out_from) if c.held_out_from else None
    if previous is not None:  # takes of the old dataset keep their timeline exactly
        old_takes = previous.takes
        old_offset = (
            rows["take"]
            .astype(str)
            .map(lambda t: int(old_takes[t].get("offset", 0)) if t in old_takes else None)
        )
        rows["offset"] = old_offset.where(old_offset.notna(), rows["offset"]).astype(int)
    short = rows[rows["frames"] - rows["offset"] < c.window]
    if len(short):
        first = short.iloc[0]
        after = " after its silent lead-in" if c.trim_silence else ""
        raise DatasetError(
            f"{first['file']}: {first['frames'] - first['offset']} samples{after}, shorter than "
            f"one window of {c.window}; use a smaller --window or leave it out with --where"
        )
    if c.trim_silence:
        trimmed = rows.drop_duplicates("take")["offset"]
        notes.append(
            f"--trim-silence: windows start at each take's first sound "
            f"(lead-in {trimmed.min() / rate:.3f}-{trimmed.max() / rate:.3f} s skipped)"
        )
    if c.test_seconds is not None:
        test_windows = max(1, int(round(float(c.test_seconds) * rate / c.window)))
        config = replace(config, test_windows=test_windows)
    return BuildPlan(
        config=config, val_asked=val_asked, rows=rows, rate=int(rate), segs=segs,
        left_out=left_out, bad_spans=bad_spans, previous=previous, notes=notes,
        workers=workers,
    )  # fmt: skip


def _named_roles(plan: BuildPlan) -> dict[str, str]:
    """Per take, the role ``--test-where``/``--val-where`` name it for (whole-take splits)."""
    c, named = plan.config, {}
    for option, expression, role in (
        ("--test-where", c.test_where, "test"),
        ("--val-where", c.val_where, "val"),
    ):
        if expression and c.split != SEGMENT_SPLIT:
            for take in where_takes(plan.rows, expression, option=option):
                if named.get(take) == "test":
                    raise DatasetError(
                        f"take {take} is selected by both --test-where and --val-where; "
                        "make them disjoint"
                    )
                named[take] = role
    return named


def plan_takes(plan: BuildPlan) -> None:
    """Decide each take's test and validation time (``plan.splits``), then the notes on
    what the rows hold that the user should know."""
    c, rows, notes = plan.config, plan.rows, plan.notes
    named = _named_roles(plan)
    if plan.previous is not None:
        old = plan.previous.options
        if (old["split"], old["val"]) != (c.split, c.val):
            raise DatasetError(
                f"{c.held_out_from}: built with --split {old['split']} --val {old['val']}; "
                f"use the same to keep its held-out spans (asked: {c.split}, {c.val})"
            )
    previous = plan.previous.takes if plan.previous is not None else None
    offsets = rows.groupby("take")["offset"].first()

    def segment_time(expression: str, option: str) -> dict:
        spans = condition_spans(rows, plan.segs, expression, option=option)
        return take_condition_spans(rows, spans, option=option, expression=expression)

    def plan_with(val: str) -> SplitPlan:
        if c.split == SEGMENT_SPLIT:
            return plan_segment_split(
                rows, segment_time(c.test_where, "--test-where"), window=c.window, hop=c.hop,
                val=val, val_fraction=c.val_fraction, seed=c.seed,
                val_time=segment_time(c.val_where, "--val-where") if c.val_where else None,
                offsets=offsets.to_dict(),
            )  # fmt: skip
        return plan_splits(
            rows.assign(frames=rows["frames"] - rows["offset"]), label=c.label,
            window=c.window, hop=c.hop, split=c.split, test_windows=c.test_windows, val=val,
            val_fraction=c.val_fraction, same_span_all=c.same_span_all, group_by=c.group_by,
            seed=c.seed, previous=previous, named_roles=named, test_groups=c.test_groups,
        )  # fmt: skip

    try:
        splits = plan_with(c.val)
    except DatasetError as exc:
        if plan.val_asked is not None or c.val != "take" or c.val_where or previous:
            raise
        splits = plan_with("span")  # the default: whole-take validation won't fit
        plan.config = c = replace(c, val="span")
        notes.append(
            f"validation: a span of every training take, not whole takes ({exc}); "
            "pass --val to choose"
        )
    splits.takes = {
        t: sp if t in (previous or {}) else sp.shifted(int(offsets[t]))
        for t, sp in splits.takes.items()
    }
    for role, expression in (("test", c.test_where), ("val", c.val_where)):
        for take, spans in splits.takes.items() if expression else ():
            if (spans.role == role) != (named.get(take) == role):
                raise DatasetError(
                    f"take {take} is {spans.role} in {c.held_out_from}, but --{role}-where "
                    f"{expression!r} now puts it {'in' if named.get(take) == role else 'out of'} "
                    f"{role}; keep the old condition or drop --held-out-from"
                )
    plan.splits = splits
    notes += splits.notes
    partial = rows.loc[rows["status"].astype(str) == "partial", "id"].tolist()
    if partial:
        notes.append(
            f"{len(partial)} partial take file(s) included (e.g. {partial[0]}); exclude them with --where \"status != 'partial'\""
        )
    resampled = rows.loc[rows["file_rate"] != plan.rate, "id"].tolist()
    if resampled:
        notes.append(f"{len(resampled)} file(s) resampled to {plan.rate} Hz (e.g. {resampled[0]})")
    if c.apply_gain and c.standardize == "file":
        notes.append("apply_gain has no effect on per-file standardized windows (scale-invariant)")
    plan.label_names = plan.ordered(rows[c.label].astype(str))  # from segments: set again


def place_windows(plan: BuildPlan) -> None:
    """Every file's windows per split (``plan.layouts``): the grid (or the note onsets),
    less silence and excluded spans; then the counts every ``.npy`` is allocated from."""
    c, rows, rate, notes, segs = plan.config, plan.rows, plan.rate, plan.notes, plan.segs
    windowing = (
        OnsetWindows(c.window, c.hop, int(c.note_windows), float(c.gate_dbfs)) if c.onsets else None
    )
    at_onsets = (
        note_onset_starts(rows, rate, windowing, workers=plan.workers, progress=c.progress)
        if windowing
        else {}
    )
    if windowing:
        found = {i: int(s.size) for i, s in at_onsets.items()}
        none = sorted(i for i, n in found.items() if n == 0)
        notes.append(
            f"--onsets: {sum(found.values())} window(s) start at note onsets (up to "
            f"{c.note_windows} per note, {c.hop} samples apart) in {len(found) - len(none)} of "
            f"{len(found)} file(s)"
        )
        if none:
            notes.append(
                f"{len(none)} file(s) have no note above {c.gate_dbfs:g} dBFS and give no "
                f"window (e.g. {none[0]})"
            )

    grids: dict[tuple, dict[str, np.ndarray]] = {}  # the gate's pass and the count share them

    def grid(row: dict) -> dict[str, np.ndarray]:
        key = tuple(str(row[name]) for name in GRID_COLUMNS)
        if key not in grids:
            grids[key] = _grid(row)
        return grids[key]

    def _grid(row: dict) -> dict[str, np.ndarray]:
        return file_windows(
            int(row["frames"]), plan.splits.takes[str(row["take"])], window=c.window,
            hop=c.hop, val=c.val, val_fraction=c.val_fraction, seed=c.seed,
            file_id=str(row["id"]), start=int(row["offset"]),
            candidates=at_onsets[str(row["id"])] if windowing else None,
        )  # fmt: skip

    silent = (
        silent_starts(
            rows,
            grid,
            window=c.window,
            rate=rate,
            floor_dbfs=c.gate_dbfs,
            workers=plan.workers,
            progress=c.progress,
        )  # fmt: skip
        if c.skip_silence
        else {}
    )
    seg_where = names_segment_columns(c.where, segs)
    where_time = condition_spans(rows, segs, c.where, option="--where") if seg_where else None

    def layout(row: dict) -> dict[str, np.ndarray]:
        """The windows of one file: the grid, less silence and the take's excluded spans
        (and, from segments, less the windows no single segment labels)."""
        starts = grid(row)
        quiet = silent.get(str(row["id"]))
        bad = plan.bad_spans.get(str(row["take"]))
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
                    keep &= ~overlaps(st, c.window, bad)
                out[name] = st[keep]
        if segs is not None:
            kept_time = where_time.get(str(row["id"]), []) if where_time is not None else None
            out = segment_layout(out, segs, str(row["take"]), kept_time)
        return out

    _count_windows(plan, layout, grid)
    if c.skip_silence:
        skipped = sum(int(v.size) for v in silent.values())
        notes.append(
            f"--skip-silence: {skipped} window(s) below {c.gate_dbfs:g} dBFS left out as silence"
        )
    _check_counts(plan, grid, seg_where)


def _count_windows(plan: BuildPlan, layout, grid) -> None:
    """Pass 1, headers only: how many windows of each split, label and tone."""
    c, segs = plan.config, plan.segs
    plan.totals = dict.fromkeys(SPLITS, 0)
    plan.audio_totals = dict.fromkeys(SPLITS, 0)
    for row in row_records(plan.rows, "tone", c.label):
        starts = layout(row)
        plan.layouts.append(starts)
        plan.spans.append({})
        plan.dropped += int(starts["dropped"][0])
        bad = plan.bad_spans.get(str(row["take"]))
        if bad:
            every = grid(row)
            plan.in_bad_spans += sum(int(overlaps(every[n], c.window, bad).sum()) for n in SPLITS)
        for key in LEFT_OUT:
            plan.seg_left[key] += int(starts.get(key, [0])[0])
        for name in SPLITS:
            n = int(starts[name].size)
            plan.totals[name] += n
            spans = plan.spans[-1][name] = covered_spans(starts[name], c.window)
            plan.audio_totals[name] += int((spans[:, 1] - spans[:, 0]).sum())
            if n and segs is not None:
                for lab, k in Counter(starts[f"labels:{name}"].tolist()).items():
                    plan.counts[(name, str(lab), str(row["tone"]))] += k
            elif n:
                plan.counts[(name, str(row[c.label]), str(row["tone"]))] += n


def _check_counts(plan: BuildPlan, grid, seg_where: bool) -> None:
    """Notes on what pass 1 found, and the refusals of a build with nothing to train on."""
    c, rows, notes, counts = plan.config, plan.rows, plan.notes, plan.counts
    used_takes = set(rows["take"].astype(str))
    plan.marked = {t: sp for t, sp in plan.bad_spans.items() if t in used_takes}
    if plan.marked:
        notes.append(
            f"{plan.in_bad_spans} window(s) in excluded spans of {len(plan.marked)} take(s) "
            "left out, in every tone"
        )
    if plan.segs is not None:
        plan.label_names = plan.ordered(lab for (_, lab, _) in counts)
        plan.segment_info = segment_summary(
            plan.segs, rows, plan.seg_left, c.where if seg_where else None
        )
        notes.append(plan.segment_info["note"])
        if len(plan.label_names) < 2 and plan.totals["train"]:
            raise DatasetError(
                f"--from-segments: windows of one {c.label} only "
                f"({', '.join(plan.label_names)}); a classifier needs two: label more time, "
                "or use a shorter --window"
            )
    trained = {lab for (s, lab, _), n in counts.items() if s == "train"}
    unseen = sorted({lab for (s, lab, _) in counts if s == "test"} - trained)
    if unseen:
        notes.append(
            f"test label(s) {', '.join(unseen)} have no training windows: the model cannot predict them"
        )
    if plan.totals["train"] == 0 and c.skip_silence:
        ungated = sum(int(grid(row)["train"].size) for row in row_records(rows))
        if ungated:
            raise DatasetError(_gate_blame(rows, c.gate_dbfs, ungated))
    if plan.totals["train"] == 0:
        raise DatasetError(
            "no training windows are left after holding out test and validation time; "
            "use a shorter --window, --test-seconds or --val-fraction"
        )


def used_columns(plan: BuildPlan) -> list[str]:
    """The manifest columns a build used to choose, label or split rows."""
    c = plan.config
    out = [c.label] + ([c.group_by] if c.group_by else [])
    for expression in (c.where, c.test_where, c.val_where):
        out += [col for col in query_columns(expression, plan.rows.columns) if col not in out]
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

        val = str(read_meta(held_out_from).options["val"])
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
